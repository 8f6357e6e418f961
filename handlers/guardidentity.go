package handlers

import (
	"io"
	"net/http"
	"slices"
	"strings"
)

// scrubIdentity removes every client-sent value of the guard's identity
// headers, wherever the client can put one: the header itself, the
// Connection header (reverse_proxy drops the headers Connection names as
// hop-by-hop, so "Connection: X-User-Id" would delete the guard's own
// value on the way to the upstream), and trailers (a chunked request's
// "X-User-Id" trailer is forwarded beside the header).
func (g *Guard) scrubIdentity(r *http.Request) {
	if len(g.identity) == 0 {
		return
	}
	for _, h := range g.identity {
		delete(r.Header, h)
	}
	if conn := r.Header["Connection"]; len(conn) > 0 {
		r.Header["Connection"] = g.withoutIdentity(conn)
		if len(r.Header["Connection"]) == 0 {
			delete(r.Header, "Connection")
		}
	}
	if r.Trailer != nil && r.Body != nil && r.Body != http.NoBody {
		// net/http fills r.Trailer only when the body has been read to
		// its end, with whatever the client sent: scrub it then too.
		for _, h := range g.identity {
			delete(r.Trailer, h)
		}
		r.Body = &scrubbedTrailers{ReadCloser: r.Body, trailer: r.Trailer, names: g.identity}
	}
}

// withoutIdentity returns the Connection values with the identity names
// left out of each comma-separated list.
func (g *Guard) withoutIdentity(values []string) []string {
	var out []string
	for _, v := range values {
		var kept []string
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || slices.Contains(g.identity, http.CanonicalHeaderKey(tok)) {
				continue
			}
			kept = append(kept, tok)
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out
}

// scrubbedTrailers deletes the identity names from the request's
// trailers once the body's end has filled them in, before its reader
// (reverse_proxy copies the trailers at that same EOF) sees them.
type scrubbedTrailers struct {
	io.ReadCloser
	trailer http.Header
	names   []string
}

func (b *scrubbedTrailers) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		for _, h := range b.names {
			delete(b.trailer, h)
		}
	}
	return n, err
}
