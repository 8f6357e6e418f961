package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/token"
)

func newGuard(t *testing.T, f *fixture, g *Guard) *Guard {
	t.Helper()
	g.Svc = f.svc
	if len(g.Tables) == 0 {
		g.Tables = []string{"user"}
	}
	if err := g.Init(); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGuardTokenLookupOrder(t *testing.T) {
	f := newFixture(t)
	good := f.signup(t, "g@example.com", "secret123")
	const bad = "not-a-token"
	g := newGuard(t, f, &Guard{Cookies: []string{"ww-auth-access-token", "AuthToken"}})

	cases := []struct {
		name    string
		set     func(r *http.Request)
		want    int
		authHdr string // Authorization the next handler must see, if checked
	}{
		{"none", func(r *http.Request) {}, 401, ""},
		{"authorization bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+good) }, 418, ""},
		{"scheme case-insensitive", func(r *http.Request) { r.Header.Set("Authorization", "bEaReR "+good) }, 418, ""},
		{"authorization without scheme is not a token", func(r *http.Request) { r.Header.Set("Authorization", good) }, 401, ""},
		{"basic auth is not a token", func(r *http.Request) { r.SetBasicAuth("a", "b") }, 401, ""},
		{"x-xano-authorization bare", func(r *http.Request) { r.Header.Set("X-Xano-Authorization", good) }, 418, ""},
		{"x-xano-authorization bearer", func(r *http.Request) { r.Header.Set("X-Xano-Authorization", "Bearer "+good) }, 418, ""},
		{"x-xano wins over authorization", func(r *http.Request) {
			r.Header.Set("X-Xano-Authorization", good)
			r.Header.Set("Authorization", "Bearer "+bad)
		}, 418, ""},
		{"authorization wins over query", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+bad)
			r.URL.RawQuery = "authtoken=" + good
		}, 401, ""},
		{"query authtoken", func(r *http.Request) { r.URL.RawQuery = "authtoken=" + good }, 418, ""},
		{"query wins over cookie", func(r *http.Request) {
			r.URL.RawQuery = "authtoken=" + bad
			r.AddCookie(&http.Cookie{Name: "AuthToken", Value: good})
		}, 401, ""},
		{"weweb cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "ww-auth-access-token", Value: good}) }, 418, ""},
		{"sdk cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "AuthToken", Value: good}) }, 418, ""},
		{"unconfigured cookie ignored", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "other", Value: good}) }, 401, ""},
		{"only: reads x-xano only", func(r *http.Request) {
			r.Header.Set("X-Xano-Authorization-Only", "true")
			r.Header.Set("X-Xano-Authorization", good)
			r.Header.Set("Authorization", "Basic dXBzdHJlYW06c2VjcmV0")
		}, 418, "Basic dXBzdHJlYW06c2VjcmV0"},
		{"only: authorization ignored", func(r *http.Request) {
			r.Header.Set("X-Xano-Authorization-Only", "TRUE")
			r.Header.Set("Authorization", "Bearer "+good)
		}, 401, ""},
		{"only: 1 counts as true", func(r *http.Request) {
			r.Header.Set("X-Xano-Authorization-Only", "1")
			r.URL.RawQuery = "authtoken=" + good
		}, 401, ""},
		{"only: false is ignored", func(r *http.Request) {
			r.Header.Set("X-Xano-Authorization-Only", "false")
			r.Header.Set("Authorization", "Bearer "+good)
		}, 418, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/members/page", nil)
			c.set(r)
			resp, next := serve(t, g, r)
			if resp.Status != c.want {
				t.Fatalf("status %d, want %d (%s)", resp.Status, c.want, resp.Body)
			}
			if c.want == 401 && next.called {
				t.Fatal("next ran on a rejected request")
			}
			if c.authHdr != "" && next.req.Header.Get("Authorization") != c.authHdr {
				t.Fatalf("Authorization not left untouched: %q", next.req.Header.Get("Authorization"))
			}
		})
	}
}

func TestGuardErrorsAndPlaceholders(t *testing.T) {
	f := newFixture(t)
	good := f.signup(t, "p@example.com", "secret123")
	g := newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id", "X-User-Role": "extras.role"}})

	resp, _ := serve(t, g, httptest.NewRequest("GET", "/x", nil))
	wantError(t, resp, 401, CodeUnauthorized, MsgAuthRequired, "")
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer junk")
	resp, _ = serve(t, g, r)
	wantError(t, resp, 401, CodeUnauthorized, MsgInvalidToken, "")

	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+good)
	r.Header.Set("X-User-Id", "999") // forged
	r.Header.Set("X-User-Role", "admin")
	r, repl := withReplacer(r)
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	if err := g.ServeHTTP(w, r, next); err != nil || !next.called {
		t.Fatalf("valid token not let through: %v %d", err, w.Code)
	}
	if got := next.req.Header.Get("X-User-Id"); got != "1" {
		t.Fatalf("X-User-Id %q", got)
	}
	if got := next.req.Header.Get("X-User-Role"); got != "member" {
		t.Fatalf("X-User-Role %q", got)
	}
	for k, want := range map[string]string{
		"http.auth.user.id": "1", "http.auth.user.table": "user", "http.auth.user.ds": "live", "http.auth.user.extras.role": "member",
	} {
		if v, _ := repl.GetString(k); v != want {
			t.Fatalf("%s = %q, want %q", k, v, want)
		}
	}

	// a forged header never survives, even on a rejected or anonymous request
	og := newGuard(t, f, &Guard{Optional: true, Headers: map[string]string{"X-User-Id": "id"}})
	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-User-Id", "999")
	r, repl = withReplacer(r)
	next = &nextRecorder{}
	if err := og.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || !next.called {
		t.Fatal("optional guard blocked an anonymous request")
	}
	if _, ok := next.req.Header["X-User-Id"]; ok {
		t.Fatal("forged X-User-Id survived an anonymous pass")
	}
	for _, k := range []string{"http.auth.user.id", "http.auth.user.table", "http.auth.user.ds", "http.auth.user.extras.role"} {
		v, ok := repl.GetString(k)
		if !ok || v != "" {
			t.Fatalf("%s = %q (%v), want empty and set", k, v, ok)
		}
	}
}

func TestGuardOptionalInvalid(t *testing.T) {
	f := newFixture(t)
	for _, ignore := range []bool{false, true} {
		g := newGuard(t, f, &Guard{Optional: true, IgnoreInvalid: ignore})
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer junk")
		resp, next := serve(t, g, r)
		if ignore != next.called {
			t.Fatalf("ignore_invalid=%v: next called=%v (%d)", ignore, next.called, resp.Status)
		}
	}
}

func TestGuardTablesAndRequire(t *testing.T) {
	f := newFixture(t)
	userTok := f.signup(t, "r@example.com", "secret123")
	adminTok, _ := f.svc.Keys().Mint(token.Claims{ID: 7, Table: "admin", DS: "live", Expiry: f.clock.Unix() + 60})
	adminRole, _ := f.svc.Keys().Mint(token.Claims{ID: 8, Table: "user", DS: "live", Extras: map[string]any{"role": "admin"}, Expiry: f.clock.Unix() + 60})

	try := func(g *Guard, tok string) int {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := serve(t, g, r)
		return resp.Status
	}
	admin := newGuard(t, f, &Guard{Tables: []string{"admin"}})
	if s := try(admin, userTok); s != 401 {
		t.Fatalf("user token on admin guard: %d", s)
	}
	if s := try(admin, adminTok); s != 418 {
		t.Fatalf("admin token on admin guard: %d", s)
	}
	both := newGuard(t, f, &Guard{Tables: []string{"user", "admin"}})
	if try(both, userTok) != 418 || try(both, adminTok) != 418 {
		t.Fatal("two-table guard refused a token")
	}
	req := newGuard(t, f, &Guard{Require: []Rule{{Claim: "extras.role", Values: []string{"admin", "editor"}}}})
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+userTok)
	resp, _ := serve(t, req, r)
	wantError(t, resp, 403, CodeAccessDenied, MsgAccessDenied, "")
	if s := try(req, adminRole); s != 418 {
		t.Fatalf("admin role refused: %d", s)
	}

	bad := &Guard{Svc: f.svc, Tables: []string{"nope"}}
	if bad.Init() == nil {
		t.Fatal("unknown table accepted")
	}
	bad = &Guard{Svc: f.svc, Tables: []string{"user"}, Require: []Rule{{Claim: "role", Values: []string{"x"}}}}
	if bad.Init() == nil {
		t.Fatal("bad claim name accepted")
	}
}

// TestGuardPreflight: any client can send a "preflight", so a guard that
// requires a token answers it itself and the next handler (which may not
// look at the method) never sees it; with ForwardPreflight, or on an
// optional guard, it passes as anonymous: a forged identity header is
// deleted from it too, and the placeholders are set and empty (unset,
// Caddy's header_up would send the literal "{http.auth.user.id}").
func TestGuardPreflight(t *testing.T) {
	f := newFixture(t)
	preflight := func() *http.Request {
		r := httptest.NewRequest("OPTIONS", "/x", nil)
		r.Header.Set("Origin", "https://a.example")
		r.Header.Set("Access-Control-Request-Method", "GET")
		r.Header.Set("X-User-Id", "1")
		return r
	}
	g := newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id"}})
	resp, next := serve(t, g, preflight())
	if next.called {
		t.Fatal("a preflight without a token reached the next handler of a guard that requires one")
	}
	if resp.Status != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight answer: %d %v", resp.Status, resp.Header)
	}

	for name, g := range map[string]*Guard{
		"forward":  newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id"}, ForwardPreflight: true}),
		"optional": newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id"}, Optional: true}),
	} {
		t.Run(name, func(t *testing.T) {
			r, repl := withReplacer(preflight())
			next := &nextRecorder{}
			if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			if !next.called {
				t.Fatal("preflight not forwarded")
			}
			if v := next.req.Header.Values("X-User-Id"); len(v) != 0 {
				t.Errorf("forged X-User-Id reached the next handler: %q", v)
			}
			if got := repl.ReplaceKnown("[{http.auth.user.id}]", ""); got != "[]" {
				t.Errorf("{http.auth.user.id} on a preflight = %q, want empty", got)
			}
		})
	}
}

func TestHeaderNamesCanonical(t *testing.T) {
	for _, name := range []string{hdrXanoAuth, hdrXanoAuthOnly, hdrAuthorization, hdrDataSource} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("%q is not canonical (%q): header() would never find it", name, c)
		}
	}
}

// TestGuardExtrasPlaceholders: a declared extra the token lacks is set and
// empty; an extra the token carries but the table no longer declares is
// published too, as the token says.
func TestGuardExtrasPlaceholders(t *testing.T) {
	f := newFixture(t)
	g := newGuard(t, f, &Guard{})
	tok, err := f.svc.Keys().Mint(token.Claims{ID: 7, Table: "user", DS: "live", SID: "s7",
		Extras: map[string]any{"plan": "pro"}, IssuedAt: f.clock.Unix(), Expiry: f.clock.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r, repl := withReplacer(r)
	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || !next.called {
		t.Fatalf("valid token not let through: %v", err)
	}
	for k, want := range map[string]string{"http.auth.user.id": "7", "http.auth.user.extras.role": "", "http.auth.user.extras.plan": "pro"} {
		if v, ok := repl.GetString(k); !ok || v != want {
			t.Errorf("%s = %q (set: %v), want %q", k, v, ok, want)
		}
	}
}
