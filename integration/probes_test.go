package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// recordingUpstream is an application behind the guard that records what
// reached it, trailers included (they are known once the body is read).
type recordingUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	header   http.Header
	trailer  http.Header
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.requests++
		u.header, u.trailer = r.Header.Clone(), r.Trailer.Clone()
		u.mu.Unlock()
		// Method-blind, as Go's FileServer or a PHP script: it answers
		// whatever comes, OPTIONS included.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fmt.Fprintf(w, "private data of user %q", r.Header.Get("X-User-Id"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) last() (int, http.Header, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests, u.header, u.trailer
}

func probesConfig(dbPath, upstream, siteDir string) string {
	return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		data_sources live test
		rate_limit {
			off
		}
		table user {
			extras role
			default role member
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	handle /app/* {
		xano_guard {
			header X-User-Id id
		}
		reverse_proxy %s
	}
	handle /bearer/* {
		xano_guard {
			session_cookie off
		}
		respond "bearer only"
	}
	handle /members/* {
		xano_guard
		root * %s
		file_server
	}
	handle /blind/* {
		xano_guard
		respond "secret page"
	}
}`, globals, dbPath, upstream, siteDir)
}

func startProbes(t *testing.T) (*recordingUpstream, string) {
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(site, "members"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Old enough that heuristic freshness (a tenth of its age) would be
	// days long.
	page := filepath.Join(site, "members", "page.html")
	if err := os.WriteFile(page, []byte("<p>members only</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	_ = os.Chtimes(page, old, old)
	tester := caddytest.NewTester(t)
	tester.InitServer(probesConfig(filepath.Join(dir, "probes.db"), up.Listener.Addr().String(), site), "caddyfile")
	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "owner@example.com", "password": "secret123"})
	if r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	return up, r.field(t, "authToken")
}

// TestGuardedResponsesAreNotCached: a guarded static page and a proxied
// page that says public, max-age come back "private, no-cache" (so no
// browser shows them after logout without asking, and no shared cache
// stores them), keep their ETag, and revalidate to a 304 that says the
// same; without a token the revalidation gets no 304.
func TestGuardedResponsesAreNotCached(t *testing.T) {
	_, tok := startProbes(t)
	r := do(t, "GET", "/members/page.html", nil, "Authorization", "Bearer "+tok)
	if r.status != 200 || !strings.Contains(r.body, "members only") {
		t.Fatalf("page: %d %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "private, no-cache" {
		t.Errorf("file_server page Cache-Control %q", cc)
	}
	etag := r.header.Get("Etag")
	if etag == "" {
		t.Fatal("no ETag: revalidation would cost the whole page")
	}
	r = do(t, "GET", "/members/page.html", nil, "Authorization", "Bearer "+tok, "If-None-Match", etag)
	if r.status != 304 || r.header.Get("Cache-Control") != "private, no-cache" {
		t.Errorf("revalidation: %d Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
	r = do(t, "GET", "/members/page.html", nil, "If-None-Match", etag)
	if r.status != 401 || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("revalidation without a token: %d Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
	r = do(t, "GET", "/app/x", nil, "Authorization", "Bearer "+tok)
	if r.status != 200 || r.header.Get("Cache-Control") != "private, no-cache" {
		t.Errorf("proxied public page: %d Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
}

// TestFakePreflightGetsNothing: any client can send OPTIONS with
// Access-Control-Request-Method; a guard that requires a token answers it
// itself, so neither a method-blind respond nor an upstream sees it.
func TestFakePreflightGetsNothing(t *testing.T) {
	up, _ := startProbes(t)
	for _, path := range []string{"/blind/secret", "/app/secret", "/members/page.html"} {
		r := do(t, "OPTIONS", path, nil, "Access-Control-Request-Method", "GET", "Origin", "https://evil.example")
		if r.status != 204 || r.body != "" || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: preflight answered %d %q %v", path, r.status, r.body, r.header)
		}
	}
	if n, _, _ := up.last(); n != 0 {
		t.Errorf("the upstream got %d requests without a token", n)
	}
}

// TestSecondDataSourceIsNotLive: anyone can sign up in the "test" data
// source (signup is open there too), and that user's token with its own
// X-Data-Source must not reach the live app as X-User-Id 1, the live
// owner's id.
func TestSecondDataSourceIsNotLive(t *testing.T) {
	up, _ := startProbes(t)
	r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "intruder@example.com", "password": "secret123"}, "X-Data-Source", "test")
	if r.status != 200 {
		t.Fatalf("test signup: %d %s", r.status, r.body)
	}
	tok := r.field(t, "authToken")
	r = do(t, "GET", "/app/x", nil, "Authorization", "Bearer "+tok, "X-Data-Source", "test")
	if r.status != 401 || !strings.Contains(r.body, "different datasource") {
		t.Errorf("test token at the live guard: %d %s", r.status, r.body)
	}
	if n, h, _ := up.last(); n != 0 {
		t.Errorf("reached the upstream as X-User-Id %q", h.Get("X-User-Id"))
	}
}

// TestCookieCSRFOnProxiedApp: with the session cookie, a POST from a
// sibling subdomain is refused before the upstream; from this origin it
// passes; a route with session_cookie off does not read the cookie.
func TestCookieCSRFOnProxiedApp(t *testing.T) {
	up, tok := startProbes(t)
	cookie := "xano_auth=" + tok
	r := send(t, "POST", "/app/transfer", "application/x-www-form-urlencoded", []byte("to=mallory&amount=100"),
		"Cookie", cookie, "Sec-Fetch-Site", "same-site", "Origin", "http://evil.localhost:9080")
	if r.status != 403 {
		t.Errorf("same-site POST with the cookie: %d %s", r.status, r.body)
	}
	if n, _, _ := up.last(); n != 0 {
		t.Fatalf("the upstream got the cross-origin POST")
	}
	r = send(t, "POST", "/app/transfer", "application/x-www-form-urlencoded", []byte("x=1"), "Cookie", cookie, "Origin", "null")
	if r.status != 403 {
		t.Errorf("Origin null POST with the cookie: %d %s", r.status, r.body)
	}
	r = send(t, "POST", "/app/transfer", "application/x-www-form-urlencoded", []byte("x=1"),
		"Cookie", cookie, "Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:9080")
	if r.status != 200 || !strings.Contains(r.body, `"1"`) {
		t.Errorf("same-origin POST: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", "/bearer/x", nil, "Cookie", cookie); r.status != 401 {
		t.Errorf("session_cookie off read the cookie: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", "/bearer/x", nil, "Authorization", "Bearer "+tok); r.status != 200 {
		t.Errorf("session_cookie off refused a bearer token: %d %s", r.status, r.body)
	}
}

// rawExchange writes a raw HTTP/1.1 request (for what net/http clients
// refuse to send) and returns the answer's status and body.
func rawExchange(t *testing.T, raw string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "localhost:9080", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { _, _ = conn.Write([]byte(raw)) }() // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIdentityHeaderTricks: the client can neither have reverse_proxy
// strip the guard's X-User-Id as hop-by-hop (Connection: X-User-Id) nor
// put a second one beside it as a chunked request's trailer.
func TestIdentityHeaderTricks(t *testing.T) {
	up, tok := startProbes(t)
	status, body := rawExchange(t, "GET /app/x HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+tok+
		"\r\nConnection: close, X-User-Id\r\n\r\n")
	if status != 200 || !strings.Contains(body, `user "1"`) {
		t.Errorf("Connection: X-User-Id: %d %s", status, body)
	}
	_, h, _ := up.last()
	if h.Get("X-User-Id") != "1" {
		t.Errorf("upstream X-User-Id %q", h.Values("X-User-Id"))
	}

	status, body = rawExchange(t, "POST /app/x HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+tok+
		"\r\nTransfer-Encoding: chunked\r\nTrailer: X-User-Id\r\nConnection: close\r\n\r\n"+
		"4\r\nbody\r\n0\r\nX-User-Id: 999\r\n\r\n")
	if status != 200 {
		t.Fatalf("chunked with a trailer: %d %s", status, body)
	}
	_, h, tr := up.last()
	if v := tr.Values("X-User-Id"); len(v) != 0 {
		t.Errorf("the client's X-User-Id trailer reached the upstream: %q", v)
	}
	if v := h.Values("X-User-Id"); len(v) != 1 || v[0] != "1" {
		t.Errorf("upstream X-User-Id %q, want [1]", v)
	}
}
