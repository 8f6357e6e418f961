package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

const base = "http://localhost:9080"

// upstream is an httptest backend that records the identity headers it got.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.mu.Unlock()
		fmt.Fprint(w, "upstream ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) header(name string) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.last[http.CanonicalHeaderKey(name)]
	if !ok {
		return "", false
	}
	return strings.Join(v, ","), true
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.URL, "http://") }

type result struct {
	status int
	header http.Header
	body   string
}

func (r result) field(t *testing.T, k string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not JSON: %q", r.body)
	}
	s, _ := m[k].(string)
	return s
}

const globals = `
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 10s
`

func TestZeroConfigFlowAndGuard(t *testing.T) {
	up := newUpstream(t)
	// The zero-config database outlives a run of this test (it is the
	// default location, shared by the whole test binary): start from none,
	// so that `go test -count=2` signs Ann up again. No other config holds
	// it open now, so this removes its file.
	defaultDB := filepath.Join(dataHome, "caddy", "xano", "auth.db")
	if err := os.Remove(defaultDB); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
}
http://localhost:9080 {
	xano_auth /api:*
	handle /members/* {
		xano_guard {
			cookie ww-auth-access-token
		}
		respond "member {http.auth.user.id} of {http.auth.user.table} in {http.auth.user.ds}"
	}
	handle /app/* {
		xano_guard {
			header X-User-Id id
		}
		reverse_proxy %s {
			header_up X-Placeholder-Id {http.auth.user.id}
		}
	}
	handle /maybe/* {
		xano_guard {
			optional
		}
		reverse_proxy %s {
			header_up X-User-Id {http.auth.user.id}
		}
	}
	respond "public"
}`, globals, up.addr(), up.addr()), "caddyfile")

	// zero config: the database lives under Caddy's data directory
	if _, err := os.Stat(defaultDB); err != nil {
		t.Fatalf("default database not created: %v", err)
	}

	r := do(t, "POST", "/api:abc123/auth/signup", map[string]string{"name": "Ann", "email": " Ann@Example.com", "password": "secret123"})
	if r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	tok := r.field(t, "authToken")
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if string(hdr) != `{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}` {
		t.Fatalf("JWE header %s", hdr)
	}
	if r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}

	// login with JetAdmin's query-string style
	q := url.Values{"email": {"ann@example.com"}, "password": {"secret123"}}
	r = do(t, "POST", "/api:abc123/auth/login?"+q.Encode(), nil)
	if r.status != 200 || r.field(t, "authToken") == "" {
		t.Fatalf("login: %d %s", r.status, r.body)
	}

	r = do(t, "GET", "/api:other/auth/me", nil, "Authorization", "Bearer "+tok)
	if r.status != 200 || !strings.HasPrefix(r.body, `{"id":1,"created_at":`) || !strings.HasSuffix(r.body, `,"name":"Ann","email":"ann@example.com"}`) {
		t.Fatalf("me: %d %s", r.status, r.body)
	}

	r = do(t, "GET", "/api:abc123/auth/login", nil)
	if r.status != 404 || r.body != `{"code":"ERROR_CODE_NOT_FOUND","message":"Unable to locate request.","payload":""}` {
		t.Fatalf("wrong method: %d %s", r.status, r.body)
	}
	r = do(t, "POST", "/api:abc123/auth/login", map[string]string{"email": "ann@example.com", "password": "wrong1234"})
	if r.status != 403 || r.body != `{"code":"ERROR_CODE_ACCESS_DENIED","message":"Invalid Credentials.","payload":""}` {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	r = do(t, "POST", "/api:abc123/auth/signup", map[string]string{"email": "x@example.com"})
	if r.status != 400 || r.body != `{"code":"ERROR_CODE_INPUT_ERROR","message":"Missing param: password","payload":{"param":"password"}}` {
		t.Fatalf("missing param: %d %s", r.status, r.body)
	}

	// guard header matrix over real HTTP
	for _, c := range []struct {
		name    string
		path    string
		headers []string
		want    int
		body    string
	}{
		{"no token", "/members/a", nil, 401, `{"code":"ERROR_CODE_UNAUTHORIZED","message":"Unauthorized - Authentication Required","payload":""}`},
		{"bearer", "/members/a", []string{"Authorization", "Bearer " + tok}, 200, "member 1 of user in live"},
		{"x-xano", "/members/a", []string{"X-Xano-Authorization", tok}, 200, "member 1 of user in live"},
		{"query", "/members/a?authtoken=" + tok, nil, 200, "member 1 of user in live"},
		{"cookie", "/members/a", []string{"Cookie", "ww-auth-access-token=" + tok}, 200, "member 1 of user in live"},
		{"only ignores bearer", "/members/a", []string{"X-Xano-Authorization-Only", "true", "Authorization", "Bearer " + tok}, 401, ""},
		{"bad token", "/members/a", []string{"Authorization", "Bearer nope"}, 401, `{"code":"ERROR_CODE_UNAUTHORIZED","message":"Invalid token.","payload":""}`},
		{"public", "/", nil, 200, "public"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "GET", c.path, nil, c.headers...)
			if r.status != c.want || (c.body != "" && r.body != c.body) {
				t.Fatalf("%d %q, want %d %q", r.status, r.body, c.want, c.body)
			}
		})
	}

	// identity reaches the upstream; a forged X-User-Id does not
	r = do(t, "GET", "/app/x", nil, "Authorization", "Bearer "+tok, "X-User-Id", "999")
	if r.status != 200 {
		t.Fatalf("app: %d %s", r.status, r.body)
	}
	if v, _ := up.header("X-User-Id"); v != "1" {
		t.Fatalf("upstream X-User-Id %q", v)
	}
	if v, _ := up.header("X-Placeholder-Id"); v != "1" {
		t.Fatalf("upstream placeholder %q", v)
	}
	r = do(t, "GET", "/app/x", nil, "X-User-Id", "999")
	if r.status != 401 {
		t.Fatalf("app without token: %d", r.status)
	}

	// anonymous pass: placeholders are empty, never literal, never forged
	r = do(t, "GET", "/maybe/x", nil, "X-User-Id", "999")
	if r.status != 200 {
		t.Fatalf("optional: %d %s", r.status, r.body)
	}
	if v, _ := up.header("X-User-Id"); v != "" {
		t.Fatalf("anonymous upstream X-User-Id %q", v)
	}
	r = do(t, "GET", "/maybe/x", nil, "Authorization", "Bearer "+tok)
	if v, _ := up.header("X-User-Id"); r.status != 200 || v != "1" {
		t.Fatalf("optional with token: %d %q", r.status, v)
	}
}

func TestTablesAndRequireRules(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		table user {
			extras role
			default role member
			token_ttl 1h
		}
		table staff {
			fields name department
		}
		table admin {
			signup closed
		}
	}
}
http://localhost:9080 {
	xano_auth /api:users/*
	xano_auth /api:staff/* {
		table staff
	}
	xano_auth /api:admin/* {
		table admin
	}
	xano_guard /staff/* {
		table staff
	}
	xano_guard /vip/* {
		require extras.role vip
	}
	respond "in {http.auth.user.table}"
}`, globals, filepath.Join(t.TempDir(), "tables.db")), "caddyfile")

	r := do(t, "POST", "/api:admin/auth/signup", map[string]string{"email": "a@example.com", "password": "secret123"})
	if r.status != 403 || r.field(t, "code") != "ERROR_CODE_ACCESS_DENIED" {
		t.Fatalf("closed signup: %d %s", r.status, r.body)
	}
	r = do(t, "POST", "/api:users/auth/signup", map[string]string{"email": "u@example.com", "password": "secret123", "role": "vip"})
	userTok := r.field(t, "authToken")
	r = do(t, "POST", "/api:staff/auth/signup", map[string]string{"email": "u@example.com", "password": "secret123", "department": "ops"})
	staffTok := r.field(t, "authToken")
	if userTok == "" || staffTok == "" {
		t.Fatalf("signups failed: %s", r.body)
	}
	// the same email is a different user in each table, with its own ids
	r = do(t, "GET", "/api:staff/auth/me", nil, "Authorization", "Bearer "+staffTok)
	if !strings.HasPrefix(r.body, `{"id":1,`) || !strings.HasSuffix(r.body, `"name":"","email":"u@example.com","department":"ops"}`) {
		t.Fatalf("staff me: %s", r.body)
	}
	for _, c := range []struct {
		path, tok string
		want      int
	}{
		{"/api:staff/auth/me", userTok, 401},
		{"/api:users/auth/me", staffTok, 401},
		{"/staff/x", userTok, 401},
		{"/staff/x", staffTok, 200},
		{"/vip/x", staffTok, 401},
		{"/vip/x", userTok, 403}, // signing up as role=vip must not work
	} {
		if r := do(t, "GET", c.path, nil, "Authorization", "Bearer "+c.tok); r.status != c.want {
			t.Fatalf("%s: %d %s, want %d", c.path, r.status, r.body, c.want)
		}
	}
}
