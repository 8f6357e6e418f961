package handlers

import (
	"crypto/tls"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/token"
)

// browserAuth is the "user" table's Auth with cookie sessions and a login
// page at /login.
func (f *fixture) browserAuth(c SessionCookie, page *LoginPage) *Auth {
	a := f.auth("user")
	a.Browser = &Browser{Cookie: c, Page: page}
	return a
}

func cookiesOf(resp response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

func formReq(target string, vals url.Values) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(vals.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// browserNav marks r as a same-origin form submission or navigation by
// Chromium, with the given cookies.
func browserNav(r *http.Request, site string, cookies ...*http.Cookie) *http.Request {
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	if site != "" {
		r.Header.Set("Sec-Fetch-Site", site)
	}
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// loginPage GETs the page and returns its CSRF cookie and field value.
func loginPage(t *testing.T, a *Auth, target string) (*http.Cookie, string, response) {
	t.Helper()
	resp, next := serve(t, a, browserNav(httptest.NewRequest("GET", target, nil), "none"))
	if next.called || resp.Status != 200 {
		t.Fatalf("login page: %d %s", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	m := csrfFieldRE.FindSubmatch(resp.Body)
	c := cookiesOf(resp)["xano_csrf"]
	if m == nil || c == nil || string(m[1]) != c.Value || !c.HttpOnly {
		t.Fatalf("no matching CSRF field and cookie: %v %s", resp.Header, resp.Body)
	}
	return c, string(m[1]), resp
}

func TestSessionCookieAttributes(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "c@example.com", "secret123")
	cases := []struct {
		name       string
		cookie     SessionCookie
		target     string
		tls        bool
		wantSecure bool
		wantSite   http.SameSite
	}{
		{"localhost plain http", SessionCookie{}, "http://localhost:9400/api:x/auth/login", false, false, http.SameSiteLaxMode},
		{"127.0.0.1 plain http", SessionCookie{}, "http://127.0.0.1/api:x/auth/login", false, false, http.SameSiteLaxMode},
		{"ipv6 loopback", SessionCookie{}, "http://[::1]:8080/api:x/auth/login", false, false, http.SameSiteLaxMode},
		{"dev subdomain of localhost", SessionCookie{}, "http://app.localhost/api:x/auth/login", false, false, http.SameSiteLaxMode},
		{"public host behind a TLS proxy", SessionCookie{}, "http://example.com/api:x/auth/login", false, true, http.SameSiteLaxMode},
		{"https localhost", SessionCookie{}, "https://localhost/api:x/auth/login", true, true, http.SameSiteLaxMode},
		{"secure off", SessionCookie{Secure: SecureOff}, "http://example.com/api:x/auth/login", false, false, http.SameSiteLaxMode},
		{"secure on", SessionCookie{Secure: SecureOn}, "http://localhost/api:x/auth/login", false, true, http.SameSiteLaxMode},
		{"samesite none forces secure", SessionCookie{SameSite: http.SameSiteNoneMode}, "http://localhost/api:x/auth/login", false, true, http.SameSiteNoneMode},
		{"strict", SessionCookie{SameSite: http.SameSiteStrictMode}, "http://localhost/api:x/auth/login", false, false, http.SameSiteStrictMode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := jsonReq("POST", c.target, map[string]any{"email": "c@example.com", "password": "secret123"})
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			resp, _ := serve(t, f.browserAuth(c.cookie, nil), r)
			if resp.Status != 200 {
				t.Fatalf("login: %d %s", resp.Status, resp.Body)
			}
			ck := cookiesOf(resp)[DefaultCookieName]
			if ck == nil {
				t.Fatalf("no session cookie: %v", resp.Header)
			}
			if ck.Value != resp.json(t)["authToken"] {
				t.Fatal("cookie does not carry the token")
			}
			if ck.Secure != c.wantSecure || ck.SameSite != c.wantSite || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" {
				t.Fatalf("attributes: %q", resp.Header.Values("Set-Cookie"))
			}
			if ck.MaxAge != 3600 { // the table's token lifetime
				t.Fatalf("Max-Age %d, want 3600", ck.MaxAge)
			}
		})
	}

	t.Run("configured name, domain and path; signup too", func(t *testing.T) {
		a := f.browserAuth(SessionCookie{Name: "sid", Domain: "example.com", Path: "/app"}, nil)
		resp, _ := serve(t, a, jsonReq("POST", "http://example.com/api:x/auth/signup", map[string]any{"email": "d@example.com", "password": "secret123"}))
		ck := cookiesOf(resp)["sid"]
		if resp.Status != 200 || ck == nil || ck.Domain != "example.com" || ck.Path != "/app" || !ck.Secure {
			t.Fatalf("%d %q", resp.Status, resp.Header.Values("Set-Cookie"))
		}
	})
	t.Run("no cookie without cookie sessions", func(t *testing.T) {
		resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "c@example.com", "password": "secret123"}))
		if resp.Status != 200 || len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("%d %q", resp.Status, resp.Header.Values("Set-Cookie"))
		}
	})
	// Another origin gets the cookie only if `cors` lists it (a sibling
	// subdomain is same-site, but not this origin: login CSRF), and a
	// cross-site one only with SameSite=None as well.
	t.Run("cookie for another origin only if cors lists it", func(t *testing.T) {
		none := SessionCookie{SameSite: http.SameSiteNoneMode}
		for _, c := range []struct {
			cookie SessionCookie
			site   string
			origin string
			cors   []string
			want   bool
		}{
			{SessionCookie{}, "same-origin", "http://localhost", nil, true},
			{SessionCookie{}, "", "", nil, true},
			{SessionCookie{}, "none", "", nil, true},
			{SessionCookie{}, "same-site", "http://evil.localhost", nil, false},
			{SessionCookie{}, "", "http://evil.localhost", nil, false},
			{SessionCookie{}, "same-site", "http://app.localhost", []string{"http://app.localhost"}, true},
			{SessionCookie{}, "same-site", "http://evil.localhost", []string{"http://app.localhost"}, false},
			{SessionCookie{}, "cross-site", "https://app.example", []string{"https://app.example"}, false},
			{none, "cross-site", "https://app.example", nil, false},
			{none, "cross-site", "https://app.example", []string{"https://app.example"}, true},
		} {
			r := jsonReq("POST", "http://localhost/api:x/auth/login", map[string]any{"email": "c@example.com", "password": "secret123"})
			if c.site != "" {
				r.Header.Set("Sec-Fetch-Site", c.site)
			}
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			a := f.browserAuth(c.cookie, nil)
			a.CORS.Origins = c.cors
			resp, _ := serve(t, a, r)
			if got := cookiesOf(resp)[DefaultCookieName] != nil; resp.Status != 200 || got != c.want {
				t.Errorf("SameSite %v, Sec-Fetch-Site %q, Origin %q, cors %q: %d, cookie set %v", c.cookie.SameSite, c.site, c.origin, c.cors, resp.Status, got)
			}
		}
	})
	t.Run("clear", func(t *testing.T) {
		a := f.browserAuth(SessionCookie{Name: "sid", Path: "/app", SameSite: http.SameSiteStrictMode}, nil)
		w := httptest.NewRecorder()
		a.clearSessionCookie(w, httptest.NewRequest("POST", "http://localhost/x", nil))
		got := w.Header().Get("Set-Cookie")
		if got != "sid=; Path=/app; Max-Age=0; HttpOnly; SameSite=Strict" {
			t.Fatalf("clearing cookie %q", got)
		}
		w = httptest.NewRecorder()
		f.auth("user").clearSessionCookie(w, httptest.NewRequest("POST", "/x", nil))
		if len(w.Header()) != 0 {
			t.Fatal("cleared a cookie without cookie sessions")
		}
	})
}

func TestFormLoginRedirectsWithCookie(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})

	csrf, field, page := loginPage(t, a, "http://localhost/login?return=%2Fmembers%2Fpage%3Fx%3D1")
	for _, want := range []string{`action="/login"`, `name="return" value="/members/page?x=1"`, `autocomplete="current-password"`, `<label for="email">`} {
		if !strings.Contains(string(page.Body), want) {
			t.Fatalf("page lacks %s:\n%s", want, page.Body)
		}
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}

	r := formReq("http://localhost/login", url.Values{"email": {"ANN@example.com"}, "password": {"secret123"},
		"_csrf": {field}, "_form": {"1"}, "return": {"/members/page?x=1"}})
	r.Header.Set("Origin", "http://localhost")
	resp, next := serve(t, a, browserNav(r, "same-origin", csrf))
	if next.called || resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/members/page?x=1" {
		t.Fatalf("form login: %d %v %s", resp.Status, resp.Header, resp.Body)
	}
	ck := cookiesOf(resp)[DefaultCookieName]
	if ck == nil || ck.MaxAge != 3600 || !ck.HttpOnly || len(resp.Body) != 0 {
		t.Fatalf("session cookie: %q body %q", resp.Header.Values("Set-Cookie"), resp.Body)
	}

	// The guard accepts the cookie.
	g := newGuard(t, f, &Guard{Cookies: []string{DefaultCookieName}})
	gr := httptest.NewRequest("GET", "/members/page", nil)
	gr.AddCookie(ck)
	if gresp, _ := serve(t, g, gr); gresp.Status != http.StatusTeapot {
		t.Fatalf("guard with the session cookie: %d %s", gresp.Status, gresp.Body)
	}

	// Without a return target: the site's root.
	r = formReq("http://localhost/login", url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "_csrf": {field}})
	resp, _ = serve(t, a, browserNav(r, "same-origin", csrf))
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("no return: %d %v", resp.Status, resp.Header)
	}
}

func TestLoginEndpointFormVersusAPI(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{}) // the page lives at …/auth/login
	const ep = "http://localhost/api:x/auth/login"

	// GET wanting HTML: the page, posting back to the endpoint.
	csrf, field, page := loginPage(t, a, ep+"?return=/members/")
	if !strings.Contains(string(page.Body), `action="/api:x/auth/login"`) {
		t.Fatalf("form action: %s", page.Body)
	}
	// GET from an API client: still Xano's 404.
	r := httptest.NewRequest("GET", ep, nil)
	r.Header.Set("Accept", "*/*")
	resp, _ := serve(t, a, r)
	wantError(t, resp, 404, CodeNotFound, MsgNotLocated, "")

	// JSON POST: JSON, with the cookie.
	resp, _ = serve(t, a, jsonReq("POST", ep, map[string]any{"email": "ann@example.com", "password": "secret123"}))
	if resp.Status != 200 || resp.json(t)["authToken"] == nil || cookiesOf(resp)[DefaultCookieName] == nil {
		t.Fatalf("API login: %d %s", resp.Status, resp.Body)
	}
	// urlencoded without the form marker (JetAdmin, curl -d): JSON, and
	// peeking for the marker left the body intact.
	resp, _ = serve(t, a, formReq(ep, url.Values{"email": {"ann@example.com"}, "password": {"secret123"}}))
	if resp.Status != 200 || resp.json(t)["authToken"] == nil {
		t.Fatalf("urlencoded API login: %d %s", resp.Status, resp.Body)
	}
	// _form=1 without any browser header: the form flow (303).
	r = formReq(ep, url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "_form": {"1"}, "_csrf": {field}, "return": {"/members/"}})
	r.AddCookie(csrf)
	resp, _ = serve(t, a, r)
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/members/" || cookiesOf(resp)[DefaultCookieName] == nil {
		t.Fatalf("_form login: %d %v %s", resp.Status, resp.Header, resp.Body)
	}
}

func TestFormLoginFailureShowsPage(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	csrf, field, _ := loginPage(t, a, "http://localhost/login")

	for _, c := range []struct {
		name   string
		vals   url.Values
		status int
		msg    string
	}{
		{"wrong password", url.Values{"email": {"ann@example.com"}, "password": {"wrong1234"}}, 403, MsgInvalidCredentials},
		{"unknown user", url.Values{"email": {"nobody@example.com"}, "password": {"secret123"}}, 403, MsgInvalidCredentials},
		{"missing password", url.Values{"email": {"ann@example.com"}}, 400, "Missing param: password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.vals.Set("_csrf", field)
			c.vals.Set("return", "/members/")
			resp, _ := serve(t, a, browserNav(formReq("http://localhost/login", c.vals), "same-origin", csrf))
			if resp.Status != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %v", resp.Status, resp.Header)
			}
			body := string(resp.Body)
			if !strings.Contains(body, `role="alert" id="form-error">`+template.HTMLEscapeString(c.msg)+`</p>`) {
				t.Fatalf("no error message %q in\n%s", c.msg, body)
			}
			if !strings.Contains(body, `value="`+c.vals.Get("email")+`"`) || !strings.Contains(body, `name="return" value="/members/"`) {
				t.Fatalf("email or return target not kept:\n%s", body)
			}
			if strings.Contains(body, "wrong1234") || strings.Contains(body, "secret123") {
				t.Fatal("the password was echoed")
			}
			if cookiesOf(resp)[DefaultCookieName] != nil {
				t.Fatal("session cookie set on failure")
			}
		})
	}
}

func TestFormLoginCSRF(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	csrf, field, _ := loginPage(t, a, "http://localhost/login")
	_, otherField, _ := loginPage(t, a, "http://localhost/login") // another browser's token

	cases := []struct {
		name    string
		field   string
		cookie  *http.Cookie
		site    string
		origin  string
		wantOK  bool
		comment string
	}{
		{"valid", field, csrf, "same-origin", "http://localhost", true, ""},
		{"valid, no fetch metadata (old browser)", field, csrf, "", "", true, ""},
		{"no cookie", field, nil, "same-origin", "", false, "a forged form cannot send our cookie's value"},
		{"no field", "", csrf, "same-origin", "", false, ""},
		{"field from another browser", otherField, csrf, "same-origin", "", false, ""},
		{"cross-site", field, csrf, "cross-site", "", false, ""},
		{"same-site subdomain", field, csrf, "same-site", "", false, ""},
		{"foreign origin", field, csrf, "", "http://evil.example", false, ""},
		{"Origin null (sender hidden)", field, csrf, "", "null", false, "a sandboxed frame sends null"},
		{"malformed cookie", "x", &http.Cookie{Name: "xano_csrf", Value: "x"}, "same-origin", "", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "return": {"/members/"}}
			if c.field != "" {
				vals.Set("_csrf", c.field)
			}
			var cookies []*http.Cookie
			if c.cookie != nil {
				cookies = append(cookies, c.cookie)
			}
			r := browserNav(formReq("http://localhost/login", vals), c.site, cookies...)
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			resp, _ := serve(t, a, r)
			gotCookie := cookiesOf(resp)[DefaultCookieName] != nil
			if c.wantOK {
				if resp.Status != http.StatusSeeOther || !gotCookie {
					t.Fatalf("%d %s", resp.Status, resp.Body)
				}
				return
			}
			if resp.Status != 403 || gotCookie || !strings.Contains(string(resp.Body), MsgFormExpired) {
				t.Fatalf("not refused: %d cookie=%v %s", resp.Status, gotCookie, resp.Body)
			}
			// The refusal carries a fresh form, so a user can retry.
			if !csrfFieldRE.Match(resp.Body) {
				t.Fatal("no new CSRF field")
			}
		})
	}
}

func TestSafeReturn(t *testing.T) {
	bad := []string{
		"", "members", "evil.com", "//evil.com", "///evil.com", "//evil.com/members",
		"/\\evil.com", "\\\\evil.com", "/\\/evil.com", "https://evil.com/", "http:/evil.com",
		"HTTPS://evil.com", "javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
		"/\t/evil.com", "/\n/evil.com", "/\r\n/evil.com", "/x\x00", "/x\x7f", " /members",
		"/members page", "/ünïcode", "/a\\b", "/" + strings.Repeat("a", 3000),
	}
	for _, s := range bad {
		if SafeReturn(s) {
			t.Errorf("SafeReturn(%q) = true", s)
		}
	}
	good := []string{"/", "/members/", "/members/page?x=1", "/a/b#frag", "/%2F%2Fevil.com", "/search?q=a%20b&next=//x"}
	for _, s := range good {
		if !SafeReturn(s) {
			t.Errorf("SafeReturn(%q) = false", s)
		}
	}

	// Through the whole flow: a nasty target is never a Location, neither
	// from the query string nor from the posted form.
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	for _, s := range bad {
		csrf, field, page := loginPage(t, a, "http://localhost/login?return="+url.QueryEscape(s))
		if strings.Contains(string(page.Body), `name="return"`) {
			t.Fatalf("return %q carried into the page", s)
		}
		vals := url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "_csrf": {field}, "return": {s}}
		resp, _ := serve(t, a, browserNav(formReq("http://localhost/login", vals), "same-origin", csrf))
		if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("return %q: %d Location %q", s, resp.Status, resp.Header.Get("Location"))
		}
	}
}

func TestGuardRedirectsNavigationsOnly(t *testing.T) {
	f := newFixture(t)
	good := f.signup(t, "g@example.com", "secret123")
	g := newGuard(t, f, &Guard{Redirect: "/login", Cookies: []string{DefaultCookieName}, Require: []Rule{{Claim: "extras.role", Values: []string{"admin"}}}})
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	cases := []struct {
		name     string
		method   string
		target   string
		headers  []string
		token    string
		want     int
		location string
	}{
		{"navigation", "GET", "/members/page?x=1", []string{"Accept", html, "Sec-Fetch-Mode", "navigate"}, "", 302, "/login?return=%2Fmembers%2Fpage%3Fx%3D1"},
		{"navigation, no fetch metadata", "GET", "/members/", []string{"Accept", html}, "", 302, "/login?return=%2Fmembers%2F"},
		{"HEAD navigation", "HEAD", "/members/", []string{"Accept", html}, "", 302, "/login?return=%2Fmembers%2F"},
		{"navigation with an invalid token", "GET", "/members/", []string{"Accept", html}, "garbage", 302, "/login?return=%2Fmembers%2F"},
		{"unsafe own path is not carried", "GET", "//evil.com/x", []string{"Accept", html}, "", 302, "/login"},
		{"fetch (cors)", "GET", "/members/", []string{"Accept", html, "Sec-Fetch-Mode", "cors"}, "", 401, ""},
		{"fetch (same-origin)", "GET", "/members/", []string{"Accept", "*/*", "Sec-Fetch-Mode", "same-origin"}, "", 401, ""},
		{"JSON client", "GET", "/members/", []string{"Accept", "application/json"}, "", 401, ""},
		{"curl", "GET", "/members/", []string{"Accept", "*/*"}, "", 401, ""},
		{"XHR", "GET", "/members/", []string{"Accept", html, "X-Requested-With", "XMLHttpRequest"}, "", 401, ""},
		{"HTML refused with q=0", "GET", "/members/", []string{"Accept", "text/html;q=0, application/json"}, "", 401, ""},
		{"POST", "POST", "/members/", []string{"Accept", html, "Sec-Fetch-Mode", "navigate"}, "", 401, ""},
		{"valid token, rule not met: 403, not a login loop", "GET", "/members/", []string{"Accept", html}, good, 403, ""},
		{"bad request (unknown data source): 400, not a redirect", "GET", "/members/", []string{"Accept", html, "X-Data-Source", "nope"}, good, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "http://localhost/", nil)
			r.URL = &url.URL{Path: c.target}
			if p, q, ok := strings.Cut(c.target, "?"); ok {
				r.URL = &url.URL{Path: p, RawQuery: q}
			}
			for i := 0; i < len(c.headers); i += 2 {
				r.Header.Set(c.headers[i], c.headers[i+1])
			}
			if c.token != "" {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: c.token})
			}
			resp, next := serve(t, g, r)
			if next.called || resp.Status != c.want {
				t.Fatalf("status %d, want %d (%s)", resp.Status, c.want, resp.Body)
			}
			if c.want == 302 {
				if loc := resp.Header.Get("Location"); loc != c.location {
					t.Fatalf("Location %q, want %q", loc, c.location)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("not the envelope: %q", ct)
			}
		})
	}

	// Without redirect configured, navigations get the 401 envelope.
	plain := newGuard(t, f, &Guard{})
	r := httptest.NewRequest("GET", "/members/", nil)
	r.Header.Set("Accept", html)
	if resp, _ := serve(t, plain, r); resp.Status != 401 {
		t.Fatalf("no redirect configured: %d", resp.Status)
	}
	// A login URL with a query gets &return=.
	q := newGuard(t, f, &Guard{Redirect: "https://id.example.com/login?app=1"})
	if resp, _ := serve(t, q, r); resp.Header.Get("Location") != "https://id.example.com/login?app=1&return=%2Fmembers%2F" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
}

func TestPageLogout(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	g := newGuard(t, f, &Guard{Cookies: []string{DefaultCookieName}})

	login := func() *http.Cookie {
		csrf, field, _ := loginPage(t, a, "http://localhost/login")
		vals := url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "_csrf": {field}}
		resp, _ := serve(t, a, browserNav(formReq("http://localhost/login", vals), "same-origin", csrf))
		ck := cookiesOf(resp)[DefaultCookieName]
		if resp.Status != 303 || ck == nil {
			t.Fatalf("login: %d", resp.Status)
		}
		return ck
	}
	guarded := func(ck *http.Cookie) int {
		r := httptest.NewRequest("GET", "/members/", nil)
		r.AddCookie(ck)
		resp, _ := serve(t, g, r)
		return resp.Status
	}

	// A "Log out" link on our own page: out at once, and revoked.
	ck := login()
	resp, _ := serve(t, a, browserNav(httptest.NewRequest("GET", "http://localhost/login/logout", nil), "same-origin", ck))
	cleared := cookiesOf(resp)[DefaultCookieName]
	if resp.Status != 303 || resp.Header.Get("Location") != "/login?logged_out=1" || cleared == nil || cleared.MaxAge != -1 {
		t.Fatalf("logout link: %d %v", resp.Status, resp.Header)
	}
	if st := guarded(ck); st != 401 {
		t.Fatalf("a copy of the old cookie still passes the guard: %d", st)
	}
	page, _ := serve(t, a, browserNav(httptest.NewRequest("GET", "http://localhost/login?logged_out=1", nil), "same-origin"))
	if !strings.Contains(string(page.Body), MsgSignedOut) {
		t.Fatal("no signed-out note")
	}

	// A link from another site: a confirmation form, nothing cleared.
	ck = login()
	resp, _ = serve(t, a, browserNav(httptest.NewRequest("GET", "http://localhost/login/logout", nil), "cross-site", ck))
	if resp.Status != 200 || cookiesOf(resp)[DefaultCookieName] != nil || !strings.Contains(string(resp.Body), `action="/login/logout"`) {
		t.Fatalf("cross-site logout link: %d %q %s", resp.Status, resp.Header.Values("Set-Cookie"), resp.Body)
	}
	if st := guarded(ck); st != 418 {
		t.Fatalf("session ended by a cross-site link: %d", st)
	}
	// A cross-site POST without the token: refused.
	resp, _ = serve(t, a, browserNav(formReq("http://localhost/login/logout", url.Values{}), "cross-site", ck))
	if resp.Status != 403 || cookiesOf(resp)[DefaultCookieName] != nil || guarded(ck) != 418 {
		t.Fatalf("cross-site logout POST: %d", resp.Status)
	}
	// The confirmation form's POST (token, no fetch metadata): out.
	csrf, field, _ := loginPage(t, a, "http://localhost/login")
	resp, _ = serve(t, a, browserNav(formReq("http://localhost/login/logout", url.Values{"_csrf": {field}, "return": {"/members/"}}), "", csrf, ck))
	if resp.Status != 303 || resp.Header.Get("Location") != "/login?logged_out=1&return=%2Fmembers%2F" || guarded(ck) != 401 {
		t.Fatalf("confirmed logout: %d %v", resp.Status, resp.Header)
	}
}

func TestCustomLoginTemplate(t *testing.T) {
	f := newFixture(t)
	tmpl, err := ParseLoginTemplate("mine", `<h1>Acme</h1><form action="{{.Action}}"><input name="{{.CSRFField}}" value="{{.CSRFToken}}">{{.Return}}|{{.LogoutURL}}</form>`)
	if err != nil {
		t.Fatal(err)
	}
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/signin", Template: tmpl})
	resp, _ := serve(t, a, browserNav(httptest.NewRequest("GET", "http://localhost/signin?return=/x", nil), "none"))
	body := string(resp.Body)
	if resp.Status != 200 || !strings.HasPrefix(body, `<h1>Acme</h1><form action="/signin"><input name="_csrf" value="`) || !strings.HasSuffix(body, `/x|/signin/logout</form>`) {
		t.Fatalf("%d %s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "frame-ancestors 'none'" {
		t.Fatalf("a custom template must be free to load its own assets: CSP %q", csp)
	}
}

// TestCORSExposesRetryAfter: a cross-origin script must be able to read
// Retry-After to back off; the envelope itself needs no exposed header.
func TestCORSExposesRetryAfter(t *testing.T) {
	f := newFixture(t)
	r := jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "a@example.com"})
	r.Header.Set("Origin", "http://127.0.0.1:9401")
	resp, _ := serve(t, f.auth("user"), r)
	h := resp.Header
	if resp.Status != 400 || h.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:9401" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Expose-Headers") != "Retry-After" {
		t.Fatalf("%d %v", resp.Status, h)
	}
}

// TestLoginPageOnlyAtLocalPaths: a request path such as
// //evil.example/auth/login reaches the handler as sent, and the page uses
// its own path as its form action and the logout's redirect target. Such a
// path is answered as an API call, so nothing on the page or in a redirect
// points at another host.
func TestLoginPageOnlyAtLocalPaths(t *testing.T) {
	f := newFixture(t)
	tmpl, err := ParseLoginTemplate("mine", `<form method="post" action="{{.Action}}"></form>`)
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []*LoginPage{{Template: tmpl}, {Path: "/login", Template: tmpl}, {}} {
		a := f.browserAuth(SessionCookie{}, page)
		for _, target := range []string{
			"https://victim.example//evil.example/auth/login",
			"https://victim.example//evil.example/auth/login/logout",
			"https://victim.example/%5Cevil.example/auth/login",
			"https://victim.example/%09/evil.example/auth/login/logout",
		} {
			resp, _ := serve(t, a, browserNav(httptest.NewRequest("GET", target, nil), "none"))
			if strings.Contains(string(resp.Body), "evil.example") {
				t.Errorf("page %+v, GET %s: body names the other host: %s", *page, target, resp.Body)
			}
			if loc := resp.Header.Get("Location"); strings.Contains(loc, "evil.example") {
				t.Errorf("page %+v, GET %s: redirects to %q", *page, target, loc)
			}
		}
		// The page itself is still served at a local path.
		resp, _ := serve(t, a, browserNav(httptest.NewRequest("GET", "https://victim.example/api:x/auth/login", nil), "none"))
		if resp.Status != 200 || !strings.Contains(string(resp.Body), "<form") {
			t.Errorf("page %+v at a local path: %d %s", *page, resp.Status, resp.Body)
		}
	}
}

// TestLogoutIgnoresCookieFromOtherOrigins: the JSON logout reads the
// session cookie only for this origin and origins `cors` lists, so a
// sibling subdomain cannot log the user out with a simple request.
func TestLogoutIgnoresCookieFromOtherOrigins(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, nil)
	resp, _ := serve(t, a, jsonReq("POST", "https://app.example.com/api:x/auth/login", map[string]any{"email": "ann@example.com", "password": "secret123"}))
	ck := cookiesOf(resp)[DefaultCookieName]
	if ck == nil {
		t.Fatal("login set no session cookie")
	}
	logout := func(origin string) response {
		r := formReq("https://app.example.com/api:x/auth/logout", url.Values{"all": {"true"}})
		r.Header.Set("Sec-Fetch-Site", "same-site")
		r.Header.Set("Origin", origin)
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, _ := serve(t, a, r)
		return resp
	}
	wantError(t, logout("https://evil.example.com"), 401, CodeUnauthorized, MsgAuthRequired, "")
	if got := f.me(t, ck.Value); got != 200 {
		t.Fatalf("session after a logout from another origin: %d, want 200", got)
	}
	a.CORS.Origins = []string{"https://www.example.com"}
	if resp := logout("https://www.example.com"); resp.Status != 200 {
		t.Fatalf("logout from a listed origin: %d %s", resp.Status, resp.Body)
	}
	if got := f.me(t, ck.Value); got != 401 {
		t.Errorf("session after a logout from a listed origin: %d, want 401", got)
	}
}

// TestLogoutKeepsCookieForOtherOrigins: a cross-site form posting to the
// JSON logout with a junk token does not delete the session cookie
// (forced logout); from this origin it does.
func TestLogoutKeepsCookieForOtherOrigins(t *testing.T) {
	f := newFixture(t)
	a := f.browserAuth(SessionCookie{}, nil)
	logout := func(site, origin string) response {
		r := formReq("https://app.example.com/api:x/auth/logout?authtoken=junk", url.Values{})
		r.Header.Set("Sec-Fetch-Site", site)
		r.Header.Set("Origin", origin)
		resp, _ := serve(t, a, r)
		return resp
	}
	for _, c := range []struct{ site, origin string }{{"cross-site", "https://evil.example"}, {"same-site", "https://evil.example.com"}, {"", "null"}} {
		resp := logout(c.site, c.origin)
		if ck := cookiesOf(resp)[DefaultCookieName]; ck != nil {
			t.Errorf("logout from %s %s deleted the session cookie: %v", c.site, c.origin, ck)
		}
	}
	resp := logout("same-origin", "https://app.example.com")
	if ck := cookiesOf(resp)[DefaultCookieName]; ck == nil || ck.MaxAge >= 0 {
		t.Errorf("logout from this origin with a dead token kept the cookie: %v", resp.Header)
	}
}

// TestPageLogoutLoopFoldsRevocations: the page logout counts against the
// same bound as the JSON one, and a replayed cookie of a session already
// logged out counts nothing.
func TestPageLogoutLoopFoldsRevocations(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, &LoginPage{Path: "/login"})
	mint := func(i int) *http.Cookie {
		tok, err := f.svc.Keys().Mint(token.Claims{ID: 1, Table: "user", DS: "live", SID: fmt.Sprintf("page-%d", i),
			IssuedAt: f.clock.Unix(), NotBefore: f.clock.Unix(), Expiry: f.clock.Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: DefaultCookieName, Value: tok}
	}
	logout := func(ck *http.Cookie) {
		resp, _ := serve(t, a, browserNav(httptest.NewRequest("GET", "http://localhost/login/logout", nil), "same-origin", ck))
		if resp.Status != 303 {
			t.Fatalf("page logout: %d", resp.Status)
		}
	}
	first := mint(0)
	logout(first)
	for range 3 * MaxSessionRevocations {
		logout(first) // replays: already revoked, not counted
	}
	keep := mint(-1)
	for i := 1; i < MaxSessionRevocations; i++ {
		logout(mint(i))
	}
	if n := f.revokedCount(t); n != MaxSessionRevocations {
		t.Fatalf("%d records after %d page logouts", n, MaxSessionRevocations)
	}
	if f.me(t, keep.Value) != 200 {
		t.Fatal("another session ended before the limit: replays were counted")
	}
	logout(mint(MaxSessionRevocations))
	if n := f.revokedCount(t); n > MaxSessionRevocations {
		t.Fatalf("%d records past the limit", n)
	}
	if f.me(t, keep.Value) != http.StatusUnauthorized {
		t.Fatal("past the limit the page logout did not log the user out everywhere")
	}
}
