package integration

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

func sessionsConfig(dbPath string) string {
	return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		table user {
			refresh_ttl 720h
			refresh_grace 2s
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	xano_guard /members/*
	respond "member {http.auth.user.id}"
}`, globals, dbPath)
}

// restartPlugin restarts the plugin as a process restart would: a config
// without xano closes the database, then cfg opens it again.
func restartPlugin(t *testing.T, cfg string) {
	t.Helper()
	if err := loadCaddyfile(fmt.Sprintf("{\n%s\n}\nhttp://localhost:9080 {\n\trespond \"down\"\n}\n", globals)); err != nil {
		t.Fatal(err)
	}
	if err := loadCaddyfile(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestSessionsSurviveRestart logs out one session, restarts the plugin
// (a config without it closes the database; the next one reopens it) and
// checks that the revocation, the other session and its refresh token all
// survived; then rotates the key through the admin API.
func TestSessionsSurviveRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "sessions.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(sessionsConfig(dbPath), "caddyfile")

	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "s@example.com", "password": "secret123"})
	if r.status != 200 || r.field(t, "refreshToken") == "" {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	gone := r.field(t, "authToken")
	r = do(t, "POST", "/api:x/auth/login", map[string]string{"email": "s@example.com", "password": "secret123"})
	kept, keptRefresh := r.field(t, "authToken"), r.field(t, "refreshToken")

	if r := do(t, "POST", "/api:x/auth/logout", map[string]string{}, "Authorization", "Bearer "+gone); r.status != 200 || r.body != "{}" {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+gone); r.status != 401 {
		t.Fatalf("logged-out token at the guard: %d", r.status)
	}

	restartPlugin(t, sessionsConfig(dbPath))
	if r := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+gone); r.status != 401 {
		t.Fatalf("revocation lost on restart: %d", r.status)
	}
	if r := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+kept); r.status != 200 || r.body != "member 1" {
		t.Fatalf("session lost on restart: %d %s", r.status, r.body)
	}
	r = do(t, "POST", "/api:x/auth/refresh", map[string]string{"refreshToken": keptRefresh})
	if r.status != 200 || r.field(t, "authToken") == "" {
		t.Fatalf("refresh after restart: %d %s", r.status, r.body)
	}

	// key rotation through the admin API: nobody is logged out
	resp, err := client.Post("http://localhost:2999/xano/keys/rotate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"keys":2`) {
		t.Fatalf("rotate: %d %s", resp.StatusCode, body)
	}
	if r := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+kept); r.status != 200 {
		t.Fatalf("token minted before rotation refused: %d", r.status)
	}
	r = do(t, "POST", "/api:x/auth/login", map[string]string{"email": "s@example.com", "password": "secret123"})
	if r2 := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+r.field(t, "authToken")); r2.status != 200 {
		t.Fatalf("token minted after rotation refused: %d", r2.status)
	}

	// admin revocation of every session
	resp, err = client.Post("http://localhost:2999/xano/sessions/revoke", "application/json", strings.NewReader(`{"user_id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin revoke: %d", resp.StatusCode)
	}
	if r := do(t, "GET", "/members/", nil, "Authorization", "Bearer "+kept); r.status != 401 {
		t.Fatalf("admin revocation ignored: %d", r.status)
	}
}

// TestUnstoredSessionsRevokedAcrossRestart: with refresh off (the default)
// a login stores nothing, yet logout, logout everywhere and the admin API's
// revocation all hold across a restart, and a login right after a
// revocation works.
func TestUnstoredSessionsRevokedAcrossRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "unstored.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(reloadConfig(dbPath, "member"), "caddyfile")
	login := func(email string) string {
		t.Helper()
		r := do(t, "POST", "/api:x/auth/login", map[string]string{"email": email, "password": "secret123"})
		if r.status != 200 {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		return r.field(t, "authToken")
	}
	member := func(tok string) int {
		t.Helper()
		return do(t, "GET", "/members/", nil, "Authorization", "Bearer "+tok).status
	}
	for _, email := range []string{"u1@example.com", "u2@example.com"} {
		if r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": email, "password": "secret123"}); r.status != 200 {
			t.Fatalf("signup: %d %s", r.status, r.body)
		}
	}
	one, everywhere, other := login("u1@example.com"), login("u1@example.com"), login("u2@example.com")
	if r := do(t, "POST", "/api:x/auth/logout", map[string]string{}, "Authorization", "Bearer "+one); r.status != 200 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if member(one) != 401 || member(everywhere) != 200 {
		t.Fatal("logout of one session")
	}
	if r := do(t, "POST", "/api:x/auth/logout", map[string]string{"all": "true"}, "Authorization", "Bearer "+everywhere); r.status != 200 {
		t.Fatalf("logout everywhere: %d %s", r.status, r.body)
	}
	after := login("u1@example.com")
	if member(everywhere) != 401 || member(after) != 200 || member(other) != 200 {
		t.Fatal("logout everywhere")
	}

	revoke := func(body string) int {
		t.Helper()
		resp, err := client.Post("http://localhost:2999/xano/sessions/revoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, bad := range []string{`{"user_id":2,"data_source":"nope"}`, `{"user_id":2,"table":"nope"}`, `{"user_id":0}`} {
		if got := revoke(bad); got != 400 {
			t.Errorf("admin revoke %s: %d, want 400", bad, got)
		}
	}
	if member(other) != 200 {
		t.Fatal("a refused admin revoke revoked")
	}
	if got := revoke(`{"user_id":2}`); got != 200 || member(other) != 401 {
		t.Fatalf("admin revoke: %d", got)
	}

	restartPlugin(t, reloadConfig(dbPath, "member"))
	for name, c := range map[string]struct {
		tok  string
		want int
	}{"logged out": {one, 401}, "logged out everywhere": {everywhere, 401}, "revoked by the admin": {other, 401}, "logged in after": {after, 200}} {
		if got := member(c.tok); got != c.want {
			t.Errorf("after restart, the token %s: %d, want %d", name, got, c.want)
		}
	}
	if member(login("u2@example.com")) != 200 {
		t.Fatal("login after an admin revocation and a restart")
	}
}
