package integration

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestAdminCreatesAdmins: a closed admin table gets its users through the
// admin API, and only they pass the admin guard.
func TestAdminCreatesAdmins(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		table user {
			extras role
			default role member
		}
		table admin {
			extras role
			signup closed
		}
	}
}
http://localhost:9080 {
	xano_auth /api:users/*
	xano_auth /api:admin/* {
		table admin
	}
	xano_guard /admin/* {
		table admin
		require extras.role owner
	}
	respond "ok {http.auth.user.extras.role}"
}`, globals, filepath.Join(t.TempDir(), "admin.db")), "caddyfile")

	admin := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://localhost:2999/xano/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := admin("POST", `{"table":"admin","email":"Root@Example.com","password":"secret123","fields":{"role":"owner"}}`); s != 200 || !strings.Contains(b, `"id":1`) {
		t.Fatalf("create admin: %d %s", s, b)
	}
	if s, b := admin("POST", `{"table":"admin","email":"root@example.com","password":"secret123"}`); s != 409 {
		t.Fatalf("duplicate admin: %d %s", s, b)
	}
	if s, b := admin("POST", `{"table":"admin","email":"x@example.com","password":"weak"}`); s != 400 || strings.Contains(b, "weak") {
		t.Fatalf("weak password: %d %s", s, b)
	}
	r := do(t, "POST", "/api:admin/auth/login", map[string]string{"email": "root@example.com", "password": "secret123"})
	if r.status != 200 {
		t.Fatalf("admin login: %d %s", r.status, r.body)
	}
	if g := do(t, "GET", "/admin/x", nil, "Authorization", "Bearer "+r.field(t, "authToken")); g.status != 200 || g.body != "ok owner" {
		t.Fatalf("admin guard: %d %s", g.status, g.body)
	}
	// a user of the open table cannot get in, even after signing up
	u := do(t, "POST", "/api:users/auth/signup", map[string]string{"email": "root@example.com", "password": "secret123", "role": "owner"})
	if g := do(t, "GET", "/admin/x", nil, "Authorization", "Bearer "+u.field(t, "authToken")); g.status != 401 {
		t.Fatalf("user token at the admin guard: %d", g.status)
	}
	// demotion applies at the next login
	if s, b := admin("PATCH", `{"table":"admin","email":"root@example.com","fields":{"role":"guest"}}`); s != 200 {
		t.Fatalf("demote: %d %s", s, b)
	}
	r = do(t, "POST", "/api:admin/auth/login", map[string]string{"email": "root@example.com", "password": "secret123"})
	if g := do(t, "GET", "/admin/x", nil, "Authorization", "Bearer "+r.field(t, "authToken")); g.status != 403 {
		t.Fatalf("demoted admin: %d %s", g.status, g.body)
	}
}
