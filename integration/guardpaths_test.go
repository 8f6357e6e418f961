package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCrossSiteWebSocketRefused: a WebSocket handshake is a GET, but it
// opens a two-way channel that the page on the other end controls and
// reads: from a sibling subdomain (same-site, which carries even a
// SameSite=Strict cookie) with the session cookie, it is refused like a
// POST.
func TestCrossSiteWebSocketRefused(t *testing.T) {
	up, tok := startProbes(t)
	status, body := rawExchange(t, "GET /app/ws HTTP/1.1\r\nHost: localhost:9080\r\n"+
		"Cookie: xano_auth="+tok+"\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Origin: http://evil.localhost:9080\r\nSec-Fetch-Site: same-site\r\nSec-Fetch-Mode: websocket\r\n\r\n")
	n, h, _ := up.last()
	if n != 0 {
		t.Errorf("cross-origin WebSocket handshake with the cookie reached the upstream as X-User-Id %q (%d %s)",
			h.Get("X-User-Id"), status, body)
	}
}

// TestTargetedCacheHeadersRemoved: the headers a CDN or nginx obeys
// instead of Cache-Control (CDN-Cache-Control, RFC 9213 §2.1: targeted
// caches ignore Cache-Control when it is present; Surrogate-Control;
// nginx's X-Accel-Expires, which proxy_cache honours over Cache-Control)
// are removed from guarded responses.
func TestTargetedCacheHeadersRemoved(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("CDN-Cache-Control", "public, max-age=3600")
		w.Header().Set("Cloudflare-CDN-Cache-Control", "max-age=3600")
		w.Header().Set("Surrogate-Control", "max-age=3600")
		w.Header().Set("X-Accel-Expires", "3600")
		fmt.Fprintf(w, "private page of %s", r.Header.Get("X-User-Id"))
	}))
	t.Cleanup(up.Close)
	tok := guardSite(t, "", appRoute(up.Listener.Addr().String()))
	r := do(t, "GET", "/app/x", nil, "Cookie", "xano_auth="+tok)
	if r.header.Get("Cache-Control") != "private, no-cache" {
		t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	for _, h := range []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control", "X-Accel-Expires"} {
		if v := r.header.Get(h); v != "" {
			t.Errorf("guarded cookie-authenticated response still carries %s: %s", h, v)
		}
	}
}

// TestDocumentedCORSRecipe: docs/guard.md's recipe for a guarded route
// called from another origin answers the preflight with the grants a
// browser needs to send Authorization.
func TestDocumentedCORSRecipe(t *testing.T) {
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
	}
}
http://localhost:9080 {
	xano_auth /api:*
	@preflight {
		method OPTIONS
		header Access-Control-Request-Method *
		header Origin https://app.example.com
	}
	handle @preflight {
		header Access-Control-Allow-Origin https://app.example.com
		header Access-Control-Allow-Credentials true
		header Access-Control-Allow-Methods "GET, POST, PUT, PATCH, DELETE"
		header Access-Control-Allow-Headers "Authorization, Content-Type, X-Data-Source"
		header Access-Control-Max-Age 3600
		respond 204
	}
	handle /app/* {
		xano_guard
		header Access-Control-Allow-Origin https://app.example.com
		header Access-Control-Allow-Credentials true
		reverse_proxy %s
	}
}`, globals, filepath.Join(dir, "p.db"), up.Listener.Addr().String()), "caddyfile")
	r := do(t, "OPTIONS", "/app/items", nil, "Origin", "https://app.example.com",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if !strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight of the documented recipe: %d, Allow-Headers %q, Allow-Methods %q (the guard answered it)",
			r.status, r.header.Get("Access-Control-Allow-Headers"), r.header.Get("Access-Control-Allow-Methods"))
	}
}

// TestGuardedCacheWritePaths: every way a response can be written ends up
// "private, no-cache": encode around file_server, HEAD, a Range request,
// templates, and a streaming proxy (flush_interval -1).
func TestGuardedCacheWritePaths(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", r.Header.Get("X-User-Id"))
		http.NewResponseController(w).Flush()
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	_ = os.MkdirAll(filepath.Join(site, "m"), 0o755)
	_ = os.WriteFile(filepath.Join(site, "m", "p.html"), []byte(strings.Repeat("<p>members only</p>", 200)), 0o644)
	tok := guardSite(t, "", fmt.Sprintf(`handle /m/* {
		xano_guard
		encode gzip
		root * %s
		file_server
	}
	handle /t/* {
		xano_guard
		root * %s
		templates
		rewrite * /m/p.html
		file_server
	}
	handle /sse/* {
		xano_guard {
			header X-User-Id id
		}
		reverse_proxy %s {
			flush_interval -1
		}
	}`, site, site, up.Listener.Addr().String()))
	for _, c := range []struct {
		method, path string
		h            []string
	}{
		{"GET", "/m/p.html", []string{"Accept-Encoding", "gzip"}},
		{"HEAD", "/m/p.html", []string{"Accept-Encoding", "gzip"}},
		{"GET", "/m/p.html", []string{"Range", "bytes=0-10"}},
		{"GET", "/t/x", nil},
		{"GET", "/sse/x", nil},
	} {
		r := do(t, c.method, c.path, nil, append([]string{"Cookie", "xano_auth=" + tok}, c.h...)...)
		if cc := r.header.Get("Cache-Control"); cc != "private, no-cache" {
			t.Errorf("%s %s %v: %d Cache-Control %q", c.method, c.path, c.h, r.status, cc)
		}
	}
}

type trailerBody struct {
	r    *strings.Reader
	req  *http.Request
	name string
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.req.Trailer.Set(b.name, "999")
	}
	return n, err
}

// TestIdentityHeaderVariants: the identity header survives Connection spellings, undeclared HTTP/1
// trailers and declared HTTP/2 (h2c) trailers.
func TestIdentityHeaderVariants(t *testing.T) {
	up := newRecordingUpstream(t)
	tok := guardSite(t, "protocols h1 h2c", appRoute(up.Listener.Addr().String()))
	for _, conn := range []string{
		"Connection: x-user-id", "Connection: close,X-USER-ID", "Connection: keep-alive\r\nConnection: \tX-User-Id\t",
		"Connection: , x-user-id ,", "Connection: X-User-Id, X-User-Id",
	} {
		status, body := rawExchange(t, "GET /app/x HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+tok+"\r\n"+conn+"\r\n\r\n")
		_, h, _ := up.last()
		if status != 200 || h.Get("X-User-Id") != "1" {
			t.Errorf("%q: %d %s, upstream %q", conn, status, body, h.Values("X-User-Id"))
		}
	}
	// Undeclared HTTP/1 trailer.
	status, body := rawExchange(t, "POST /app/x HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+tok+
		"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\nX-User-Id: 999\r\n\r\n")
	_, h, tr := up.last()
	if status != 200 || len(tr.Values("X-User-Id")) != 0 || h.Get("X-User-Id") != "1" {
		t.Errorf("undeclared trailer: %d %s header %q trailer %q", status, body, h.Values("X-User-Id"), tr.Values("X-User-Id"))
	}
	// Declared trailer over h2c.
	const trName = "X-User-Id"
	tp := &http.Transport{Protocols: new(http.Protocols)}
	tp.Protocols.SetUnencryptedHTTP2(true)
	req, _ := http.NewRequest("POST", base+"/app/x", nil)
	req.Body = io.NopCloser(&trailerBody{r: strings.NewReader("body"), req: req, name: trName})
	req.ContentLength = -1
	req.Trailer = http.Header{trName: nil}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Transport: tp}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, h, tr = up.last()
	if resp.ProtoMajor != 2 || len(tr.Values("X-User-Id")) != 0 || h.Get("X-User-Id") != "1" {
		t.Errorf("h2c trailer: %s %d header %q trailer %q", resp.Proto, resp.StatusCode, h.Values("X-User-Id"), tr.Values("X-User-Id"))
	}
}

// guardSite loads a site on localhost:9080 with the auth API (rate limits
// off, a database of its own) and routes, with servers, when not empty, as
// the global servers block; it signs up the owner and returns the token.
func guardSite(t *testing.T, servers, routes string) string {
	t.Helper()
	if servers != "" {
		servers = "servers {\n\t\t" + servers + "\n\t}"
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	%s
	%s
	xano {
		storage bbolt %s
		rate_limit {
			off
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	%s
}`, globals, servers, filepath.Join(t.TempDir(), "site.db"), routes), "caddyfile")
	s := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "owner@example.com", "password": "secret123"})
	if s.status != 200 {
		t.Fatalf("signup: %d %s", s.status, s.body)
	}
	return s.field(t, "authToken")
}

// appRoute guards /app/* with X-User-Id and proxies it to upstream.
func appRoute(upstream string) string {
	return `handle /app/* {
		xano_guard {
			header X-User-Id id
		}
		reverse_proxy ` + upstream + `
	}`
}
