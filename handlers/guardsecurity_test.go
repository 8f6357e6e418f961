package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// upstream is a next handler that answers like a file server or an
// upstream: headers of its own, then a body.
type upstream struct {
	header http.Header
	status int
	write  func(w http.ResponseWriter) // how the body is written
	called bool
	req    *http.Request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	u.called, u.req = true, r
	for k, v := range u.header {
		w.Header()[k] = v
	}
	if u.write != nil {
		u.write(w)
		return nil
	}
	w.WriteHeader(u.status)
	return nil
}

func signupIn(t *testing.T, f *fixture, ds, email string) string {
	t.Helper()
	r := jsonReq("POST", "/api:x/auth/signup", map[string]string{"email": email, "password": "secret123"})
	r.Header.Set("X-Data-Source", ds)
	resp, _ := serve(t, f.auth("user"), r)
	if resp.Status != 200 {
		t.Fatalf("signup in %s: %d %s", ds, resp.Status, resp.Body)
	}
	return resp.json(t)["authToken"].(string)
}

// TestGuardCacheControl: a response to a request that passed with a token
// is never reusable without asking the guard again, however the upstream
// wrote it and whatever it said; no-store stays; off leaves it alone.
func TestGuardCacheControl(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "c@example.com", "secret123")
	writes := map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(200) },
		"Write":       func(w http.ResponseWriter) { _, _ = w.Write([]byte("private page")) },
		"ReadFrom":    func(w http.ResponseWriter) { _, _ = io.Copy(w, strings.NewReader("private page")) },
		"Flush":       func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() },
		"304":         func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotModified) },
	}
	cases := []struct {
		name     string
		mode     CacheMode
		upstream string // the upstream's Cache-Control
		want     string
	}{
		{"none", CachePrivate, "", "private, no-cache"},
		{"public max-age overridden", CachePrivate, "public, max-age=3600", "private, no-cache"},
		{"private max-age overridden", CachePrivate, "private, max-age=60", "private, no-cache"},
		{"no-store kept", CachePrivate, "no-store", "no-store"},
		{"no_store mode", CacheNoStore, "public, max-age=3600", "no-store"},
		{"off", CacheOff, "public, max-age=3600", "public, max-age=3600"},
	}
	for _, c := range cases {
		for wname, write := range writes {
			t.Run(c.name+"/"+wname, func(t *testing.T) {
				g := newGuard(t, f, &Guard{Cache: c.mode})
				u := &upstream{header: http.Header{"Etag": {`"v1"`}, "Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"}}, write: write}
				if c.upstream != "" {
					u.header.Set("Cache-Control", c.upstream)
				}
				r := httptest.NewRequest("GET", "/members/page.html", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				r, _ = withReplacer(r)
				w := httptest.NewRecorder()
				if err := g.ServeHTTP(w, r, u); err != nil || !u.called {
					t.Fatalf("not passed: %v", err)
				}
				if got := w.Result().Header.Get("Cache-Control"); got != c.want {
					t.Errorf("Cache-Control %q, want %q", got, c.want)
				}
				if c.want == "private, no-cache" && w.Result().Header.Get("Expires") != "" {
					t.Error("Expires kept beside the guard's Cache-Control")
				}
				if w.Result().Header.Get("Etag") == "" {
					t.Error("ETag lost: revalidation would cost a whole body")
				}
			})
		}
	}

	// Anonymous passes of an optional route and refusals keep theirs.
	g := newGuard(t, f, &Guard{Optional: true})
	u := &upstream{header: http.Header{"Cache-Control": {"public, max-age=60"}}, status: 200}
	r := httptest.NewRequest("GET", "/x", nil)
	r, _ = withReplacer(r)
	w := httptest.NewRecorder()
	_ = g.ServeHTTP(w, r, u)
	if got := w.Result().Header.Get("Cache-Control"); got != "public, max-age=60" {
		t.Errorf("anonymous optional pass: Cache-Control %q", got)
	}
	g = newGuard(t, f, &Guard{})
	resp, _ := serve(t, g, httptest.NewRequest("GET", "/x", nil))
	if resp.Status != 401 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("401: %d Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
	// The wrapper keeps http.ResponseController working through Unwrap.
	var _ interface{ Unwrap() http.ResponseWriter } = &privateResponse{}
}

// TestGuardDataSources: a token of a second data source, sent with its own
// X-Data-Source, does not pass a guard of the default one: user 1 of
// "test" is not user 1 of "live". Listed, it passes.
func TestGuardDataSources(t *testing.T) {
	f := newFixture(t)
	live := signupIn(t, f, "live", "owner@example.com")
	test := signupIn(t, f, "test", "intruder@example.com")
	req := func(tok, ds string) *http.Request {
		r := httptest.NewRequest("GET", "/app/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if ds != "" {
			r.Header.Set("X-Data-Source", ds)
		}
		return r
	}
	g := newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id"}})
	if _, next := serve(t, g, req(live, "")); !next.called || next.req.Header.Get("X-User-Id") != "1" {
		t.Fatal("the live owner did not pass")
	}
	resp, next := serve(t, g, req(test, "test"))
	if next.called {
		t.Fatalf("a test-data-source user passed the live guard as X-User-Id %q", next.req.Header.Get("X-User-Id"))
	}
	wantError(t, resp, 401, CodeUnauthorized, MsgOtherDataSource, "")

	both := newGuard(t, f, &Guard{DataSources: []string{"live", "test"}, Headers: map[string]string{"X-User-Id": "id", "X-User-Ds": "ds"}})
	if _, next := serve(t, both, req(test, "test")); !next.called || next.req.Header.Get("X-User-Ds") != "test" {
		t.Fatal("a listed data source did not pass with its name")
	}
	// Forwarding the id alone from a guard of several data sources (or
	// tables) would make their ids look alike.
	bad := &Guard{Svc: f.svc, Tables: []string{"user"}, DataSources: []string{"live", "test"}, Headers: map[string]string{"X-User-Id": "id"}}
	if err := bad.Init(); err == nil || !strings.Contains(err.Error(), "data source") {
		t.Errorf("id without ds from two data sources: %v", err)
	}
	bad = &Guard{Svc: f.svc, Tables: []string{"user", "admin"}, Headers: map[string]string{"X-User-Id": "id"}}
	if err := bad.Init(); err == nil || !strings.Contains(err.Error(), "table") {
		t.Errorf("id without table from two tables: %v", err)
	}
	bad = &Guard{Svc: f.svc, Tables: []string{"user"}, DataSources: []string{"staging"}}
	if err := bad.Init(); err == nil {
		t.Error("an unknown data source was accepted")
	}
}

// TestGuardCookieCSRF: a token from a cookie passes an unsafe method only
// from this origin or a listed one; a header token passes from anywhere
// (no other page can attach it); safe methods pass; csrf off passes all.
func TestGuardCookieCSRF(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "v@example.com", "secret123")
	type hdrs map[string]string
	cases := []struct {
		name   string
		method string
		cookie bool
		h      hdrs
		pass   bool
	}{
		{"same-origin POST", "POST", true, hdrs{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, true},
		{"same-site POST (sibling subdomain)", "POST", true, hdrs{"Sec-Fetch-Site": "same-site", "Origin": "http://evil.example.com"}, false},
		{"cross-site POST", "POST", true, hdrs{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, false},
		{"cross-site DELETE", "DELETE", true, hdrs{"Sec-Fetch-Site": "cross-site"}, false},
		{"Origin only, other host", "PUT", true, hdrs{"Origin": "http://other.example.com"}, false},
		{"Origin only, this host", "PATCH", true, hdrs{"Origin": "http://example.com"}, true},
		{"Origin null", "POST", true, hdrs{"Origin": "null"}, false},
		{"listed origin", "POST", true, hdrs{"Sec-Fetch-Site": "same-site", "Origin": "https://admin.example.com"}, true},
		{"no browser signals (not a browser)", "POST", true, hdrs{}, true},
		{"cross-site GET", "GET", true, hdrs{"Sec-Fetch-Site": "cross-site"}, true},
		{"cross-site POST with a header token", "POST", false, hdrs{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, true},
	}
	g := newGuard(t, f, &Guard{Cookies: []string{DefaultCookieName}, CSRFOrigins: []string{"https://admin.example.com"}})
	off := newGuard(t, f, &Guard{Cookies: []string{DefaultCookieName}, CSRFOff: true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "http://example.com/app/transfer", nil)
			if c.cookie {
				r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tok})
			} else {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			for k, v := range c.h {
				r.Header.Set(k, v)
			}
			resp, next := serve(t, g, r)
			if next.called != c.pass {
				t.Fatalf("passed %v, want %v (%d %s)", next.called, c.pass, resp.Status, resp.Body)
			}
			if !c.pass {
				wantError(t, resp, 403, CodeAccessDenied, MsgCrossSiteCookie, "")
			}
			if _, next := serve(t, off, r.Clone(r.Context())); !next.called {
				t.Error("csrf off refused it")
			}
		})
	}
}

// TestGuardScrubsIdentity: the client cannot remove or shadow the guard's
// identity headers through Connection (hop-by-hop) or trailers.
func TestGuardScrubsIdentity(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "s@example.com", "secret123")
	g := newGuard(t, f, &Guard{Headers: map[string]string{"X-User-Id": "id"}})
	r := httptest.NewRequest("POST", "/app/x", strings.NewReader("body"))
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Connection", "keep-alive, x-user-id")
	r.Header.Add("Connection", "X-User-Id")
	r.Trailer = http.Header{"X-User-Id": nil, "X-Other": nil}
	resp, next := serve(t, g, r)
	if !next.called {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if got := next.req.Header.Values("Connection"); len(got) != 1 || got[0] != "keep-alive" {
		t.Errorf("Connection %q still names the identity header", got)
	}
	if _, ok := next.req.Trailer["X-User-Id"]; ok {
		t.Error("declared X-User-Id trailer kept")
	}
	// What the body's end fills in (net/http does) is scrubbed at EOF.
	body := next.req.Body
	inner := body.(*scrubbedTrailers)
	inner.ReadCloser = io.NopCloser(&fillAtEOF{r: strings.NewReader("body"), fill: func() {
		next.req.Trailer["X-User-Id"] = []string{"1"}
		next.req.Trailer["X-Other"] = []string{"kept"}
	}})
	if _, err := io.ReadAll(body); err != nil {
		t.Fatal(err)
	}
	if v, ok := next.req.Trailer["X-User-Id"]; ok {
		t.Errorf("X-User-Id trailer %q reached the next handler", v)
	}
	if next.req.Trailer.Get("X-Other") != "kept" {
		t.Error("another trailer was dropped")
	}
}

type fillAtEOF struct {
	r    io.Reader
	fill func()
}

func (f *fillAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		f.fill()
	}
	return n, err
}

// TestGuardConfigRefusals: combinations that would do something else than
// they say are refused when the config loads.
func TestGuardConfigRefusals(t *testing.T) {
	f := newFixture(t)
	for name, g := range map[string]*Guard{
		"optional with require":          {Optional: true, Require: []Rule{{Claim: "extras.role", Values: []string{"admin"}}}},
		"header of an undeclared extra":  {Headers: map[string]string{"X-Org": "extras.org"}},
		"require of an undeclared extra": {Require: []Rule{{Claim: "extras.org", Values: []string{"a"}}}},
		"csrf origin with a path":        {CSRFOrigins: []string{"https://a.example/"}},
	} {
		g.Svc, g.Tables = f.svc, []string{"user"}
		if err := g.Init(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHasDirective(t *testing.T) {
	for _, c := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"no-store"}, true},
		{[]string{"private, NO-STORE"}, true},
		{[]string{"max-age=0", " no-store "}, true},
		{[]string{"no-store-please, max-age=no-store"}, false},
		{[]string{"public, max-age=3600"}, false},
	} {
		if got := hasDirective(c.values, "no-store"); got != c.want {
			t.Errorf("%q: %v, want %v", c.values, got, c.want)
		}
	}
}

// TestGuardRequireIDAcrossRealms: `require id 1` on a guard of several
// tables or data sources would let user 1 of table "user" (or of data
// source "test", where signup is open to anyone) pass a rule meant for
// admin 1: refused unless a rule on the table or data source goes with it.
func TestGuardRequireIDAcrossRealms(t *testing.T) {
	f := newFixture(t)
	userOne := f.signup(t, "first@example.com", "secret123") // id 1 of table user, live
	for name, g := range map[string]*Guard{
		"tables":       {Tables: []string{"user", "admin"}, Require: []Rule{{Claim: "id", Values: []string{"1"}}}},
		"data sources": {Tables: []string{"user"}, DataSources: []string{"live", "test"}, Require: []Rule{{Claim: "id", Values: []string{"1"}}}},
	} {
		g.Svc = f.svc
		if err := g.Init(); err != nil {
			continue // refused: fine
		}
		tok := userOne
		r := httptest.NewRequest("GET", "/admin/", nil)
		if name == "data sources" {
			tok = signupIn(t, f, "test", "anyone@example.com") // id 1 of test
			r.Header.Set("X-Data-Source", "test")
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, next := serve(t, g, r)
		if next.called {
			t.Errorf("%s: `require id 1` was accepted and let a non-admin id 1 through (%d)", name, resp.Status)
		}
	}
}

// TestGuardHeaderNamesOnceInJSON: JSON keys differ by case where header
// names do not; the Caddyfile refuses the pair, and so does Init.
func TestGuardHeaderNamesOnceInJSON(t *testing.T) {
	f := newFixture(t)
	g := &Guard{Svc: f.svc, Tables: []string{"user"}, Headers: map[string]string{"X-User-Id": "id", "x-user-id": "extras.role"}}
	if err := g.Init(); err == nil {
		t.Fatal("X-User-Id and x-user-id accepted together")
	}
}
