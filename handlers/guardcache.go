package handlers

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// CacheMode is what a guard does to the Cache-Control of a response to a
// request that passed with a token.
//
// A guarded page is someone's page. Without Cache-Control a browser may
// reuse it under heuristic freshness (RFC 9111 §4.2.2) after its user has
// logged out, without asking the server, and a shared cache (a CDN) may
// store one that a cookie authenticated and hand it to anyone: only
// requests with Authorization are kept out of shared caches (§3.5).
type CacheMode int

const (
	// CachePrivate (the default) sends "private, no-cache": no shared
	// cache stores the response, and a browser revalidates it on every
	// use, which runs the guard again while ETag and 304 keep it cheap.
	// It replaces what the upstream said (public, max-age), except a
	// no-store, which is stricter.
	CachePrivate CacheMode = iota
	// CacheNoStore sends "no-store": nothing keeps the response at all.
	CacheNoStore
	// CacheOff leaves Cache-Control to the upstream and the route.
	CacheOff
)

// cacheWriter wraps w so that a response to a request that passed with a
// token carries the guard's Cache-Control, or returns w under CacheOff.
func (g *Guard) cacheWriter(w http.ResponseWriter) http.ResponseWriter {
	if g.Cache == CacheOff {
		return w
	}
	return &privateResponse{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, mode: g.Cache}
}

// privateResponse sets Cache-Control when the header is written: the
// upstream and the handlers after the guard set theirs before that, and
// some (a file server's ETag and Last-Modified) only then.
type privateResponse struct {
	caddyhttp.ResponseWriterWrapper // by value: one allocation per request
	mode                            CacheMode
	done                            bool
}

func (pr *privateResponse) setCacheControl(status int) {
	if pr.done || status < http.StatusOK {
		return // 1xx: informational, the final header comes later
	}
	pr.done = true
	h := pr.Header()
	// One pass over the few headers a response has, rather than a lookup
	// per name: the caches that obey a targeted header ignore
	// Cache-Control when it is present (RFC 9213 §2.1; nginx's
	// X-Accel-Expires likewise), and an HTTP/1.0 cache that reads no
	// Cache-Control goes by Expires.
	for k := range h {
		switch k {
		case "Cdn-Cache-Control", "Cloudflare-Cdn-Cache-Control", "Surrogate-Control", "X-Accel-Expires", "Expires":
			delete(h, k)
		}
	}
	// Header keys are canonical here (Set and Add canonicalise), so the
	// map is indexed directly.
	if pr.mode == CachePrivate && hasDirective(h["Cache-Control"], "no-store") {
		return
	}
	if pr.mode == CacheNoStore {
		h["Cache-Control"] = []string{"no-store"}
	} else {
		h["Cache-Control"] = []string{"private, no-cache"}
	}
}

// WriteHeader implements http.ResponseWriter.
func (pr *privateResponse) WriteHeader(status int) {
	pr.setCacheControl(status)
	pr.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter; a first Write sends a 200.
func (pr *privateResponse) Write(b []byte) (int, error) {
	pr.setCacheControl(http.StatusOK)
	return pr.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom: the wrapper's own would hand the
// body to the underlying writer, which sends the header without us.
func (pr *privateResponse) ReadFrom(r io.Reader) (int64, error) {
	pr.setCacheControl(http.StatusOK)
	return pr.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.ResponseController flush through the wrapper: a
// flush before any write sends a 200 header.
func (pr *privateResponse) FlushError() error {
	pr.setCacheControl(http.StatusOK)
	return http.NewResponseController(pr.ResponseWriterWrapper.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that assert it.
func (pr *privateResponse) Flush() { _ = pr.FlushError() }

// hasDirective reports whether Cache-Control values list directive. It
// walks the lists without splitting them, which would allocate on every
// guarded response.
func hasDirective(values []string, directive string) bool {
	for _, v := range values {
		for v != "" {
			var d string
			d, v, _ = strings.Cut(v, ",")
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(name), directive) {
				return true
			}
		}
	}
	return false
}
