package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
)

// Regression tests for the guard's redirect to the login page and the
// login form's error page; caddyRequest runs Caddy's own request setup and
// rewrite module, as the server does before xano_guard.

// caddyRequest prepares r as Caddy's server does (replacer, vars, original
// request), then applies rw as handle_path / uri strip_prefix / try_files do
// before xano_guard runs (they are ordered before it).
func caddyRequest(r *http.Request, rw *rewrite.Rewrite) *http.Request {
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, httptest.NewRecorder(), &caddyhttp.Server{})
	if rw != nil {
		rw.Rewrite(r, repl)
	}
	return r
}

func navReq(target string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	return r
}

// TestGuardReturnIsTheRequestedURL: handle_path, uri and try_files
// rewrite the request before the guard runs; the return target is what
// the browser asked for all the same.
func TestGuardReturnIsTheRequestedURL(t *testing.T) {
	f := newFixture(t)
	g := newGuard(t, f, &Guard{Redirect: "/login"})
	for _, c := range []struct {
		name      string
		requested string
		rw        *rewrite.Rewrite
	}{
		// handle_path /members/* { xano_guard { redirect /login } file_server }
		{"strip prefix", "/members/report.html?x=1", &rewrite.Rewrite{StripPathPrefix: "/members"}},
		// a single-page app: try_files {path} /index.html runs first
		{"try_files", "/app/orders/42", &rewrite.Rewrite{URI: "/index.html"}},
	} {
		w := httptest.NewRecorder()
		if err := g.ServeHTTP(w, caddyRequest(navReq(c.requested), c.rw), &nextRecorder{}); err != nil {
			t.Fatal(err)
		}
		want := "/login?return=" + url.QueryEscape(c.requested)
		if loc := w.Header().Get("Location"); w.Code != 302 || loc != want {
			t.Errorf("%s: %d Location %q, want %q", c.name, w.Code, loc, want)
		}
	}
}

// TestGuardPassesItsOwnLoginPage: a guard over the whole site whose
// redirect target is a static page it covers serves that page (as an
// anonymous request) instead of redirecting it to itself until the
// browser gives up.
func TestGuardPassesItsOwnLoginPage(t *testing.T) {
	f := newFixture(t)
	g := newGuard(t, f, &Guard{Redirect: "/login.html"})
	target := "/members/"
	for i := 0; i < 5; i++ {
		w := httptest.NewRecorder()
		next := &nextRecorder{}
		if err := g.ServeHTTP(w, caddyRequest(navReq(target), nil), next); err != nil {
			t.Fatal(err)
		}
		if next.called {
			return // the login page was served
		}
		if w.Code != 302 {
			t.Fatalf("hop %d: %d", i, w.Code)
		}
		target = w.Header().Get("Location")
	}
	t.Fatalf("redirect loop: the login page %q is never served", "/login.html")
}

// TestFormLogin429HasRetryAfter: the login form runs the API's login code
// with its rate limits, and its 429 page carries Retry-After like the API's.
func TestFormLogin429HasRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{2, 5 * time.Minute}, nil, nil, nil)
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	csrf, field, _ := loginPage(t, a, "http://localhost/login")
	var resp response
	for i := 0; i < 3; i++ {
		r := formReq("http://localhost/login", url.Values{"email": {"ann@example.com"}, "password": {"wrong1234"},
			"_csrf": {field}, "_form": {"1"}})
		r.Header.Set("Origin", "http://localhost")
		resp, _ = serve(t, a, from(browserNav(r, "same-origin", csrf), "198.51.100.7"))
	}
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("third attempt: %d", resp.Status)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Fatalf("429 login page without Retry-After (headers %v)", resp.Header)
	}
}

// TestGuardReturnDropsQueryToken: a link carrying an expired ?authtoken=
// sends the browser to the login page; the return target leaves the token
// out, since after the login it would outrank the fresh session cookie and
// send the user back to the login page, however often they logged in.
func TestGuardReturnDropsQueryToken(t *testing.T) {
	f := newFixture(t)
	old := f.signup(t, "ann@example.com", "secret123")
	f.clock = f.clock.Add(2 * time.Hour) // past token_ttl (1h)
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	// The module always adds the session cookie to the guard's list.
	g := newGuard(t, f, &Guard{Redirect: "/login", Cookies: []string{DefaultCookieName}})

	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, caddyRequest(navReq("/members/page?authtoken="+old), nil), &nextRecorder{})
	if w.Code != 302 {
		t.Fatalf("first visit: %d", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	ret := loc.Query().Get("return")
	if strings.Contains(ret, "authtoken") {
		t.Errorf("return target keeps the token: %.60s...", ret)
	}

	// The user logs in through the form.
	csrf, field, _ := loginPage(t, a, "http://localhost/login?return="+url.QueryEscape(ret))
	r := formReq("http://localhost/login", url.Values{"email": {"ann@example.com"}, "password": {"secret123"},
		"_csrf": {field}, "_form": {"1"}, "return": {ret}})
	r.Header.Set("Origin", "http://localhost")
	resp, _ := serve(t, a, browserNav(r, "same-origin", csrf))
	if resp.Status != http.StatusSeeOther {
		t.Fatalf("form login: %d %s", resp.Status, resp.Body)
	}
	ck := cookiesOf(resp)[DefaultCookieName]
	back := resp.Header.Get("Location")

	// Back to the page, with the fresh session cookie.
	nr := navReq(back)
	nr.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	w = httptest.NewRecorder()
	next := &nextRecorder{}
	_ = g.ServeHTTP(w, caddyRequest(nr, nil), next)
	if !next.called {
		t.Fatalf("after a successful login the page answers %d, Location %.40s... (login loop)", w.Code, w.Header().Get("Location"))
	}
}

// TestGuardLoginPageWithQueryStaysGuarded: only a login page that is a
// plain path passes the guard that covers it; one with a query (a front
// controller's route) or a fragment must not let the other pages of its
// path through.
func TestGuardLoginPageWithQueryStaysGuarded(t *testing.T) {
	for _, tc := range []struct{ redirect, target string }{
		{"/index.php?route=account/login", "/index.php?route=admin/orders"},
		{"/?page=login", "/"},
		{"/app#/login", "/app"},
	} {
		f := newFixture(t)
		g := newGuard(t, f, &Guard{Redirect: tc.redirect})
		// API-style request, no token at all
		r := caddyRequest(httptest.NewRequest("GET", tc.target, nil), nil)
		w := httptest.NewRecorder()
		next := &nextRecorder{}
		if err := g.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if next.called {
			t.Errorf("redirect %q: protected %q served anonymously without a token (status %d)", tc.redirect, tc.target, w.Code)
		}
	}
}

// TestGuardReturnKeepsTheQuery: dropping authtoken from the return target
// leaves every other byte of the query as it was.
func TestGuardReturnKeepsTheQuery(t *testing.T) {
	f := newFixture(t)
	g := newGuard(t, f, &Guard{Redirect: "/login"})
	for _, tc := range []struct{ in, want string }{
		{"/search?q=a;b&authtoken=x", "/search?q=a;b"},
		{"/p?z=1&a=2&authtoken=x", "/p?z=1&a=2"},
		{"/p?edit&authtoken=x", "/p?edit"},
		{"/p?q=100%&authtoken=x", "/p?q=100%"},
		{"/p?auth%74oken=x&b=1", "/p?b=1"},
		{"/p?b=1", "/p?b=1"},
	} {
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, caddyRequest(navReq(tc.in), nil), &nextRecorder{})
		loc, _ := url.Parse(w.Header().Get("Location"))
		if got := loc.Query().Get("return"); got != tc.want {
			t.Errorf("%s: return %q, want %q", tc.in, got, tc.want)
		}
	}
}
