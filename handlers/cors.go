package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS answers cross-origin requests as Xano does: by default any origin
// may call with credentials, so the request's Origin is echoed (a literal
// "*" is not allowed together with credentials) with Vary: Origin, the
// requested headers are echoed, and preflights are cached for an hour.
type CORS struct {
	// Origins, when set, restricts the allowed origins to this list.
	Origins []string
	// Disabled leaves CORS headers to other handlers.
	Disabled bool
}

const corsMethods = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// Handle sets the CORS headers for r and reports whether r was a preflight
// it has answered completely. With Disabled it does nothing.
func (c CORS) Handle(w http.ResponseWriter, r *http.Request) bool {
	if c.Disabled {
		return false
	}
	origin := r.Header.Get("Origin")
	preflight := IsPreflight(r)
	if origin == "" {
		if preflight {
			w.WriteHeader(http.StatusNoContent)
		}
		return preflight
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if len(c.Origins) > 0 && !slices.Contains(c.Origins, origin) {
		if preflight {
			w.WriteHeader(http.StatusNoContent) // no allow headers: the browser refuses
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if !preflight {
		// Scripts on other origins see only safelisted headers; a client
		// backing off from 429/503 needs Retry-After.
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Headers", strings.TrimSpace(req))
	}
	h.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// CheckOrigin reports why o cannot match a browser's Origin header, which
// is always scheme://host[:port] in lower case, with no path: an entry
// that never matches would block every call from the origin meant,
// silently.
func CheckOrigin(o string) error {
	if o == "*" {
		return fmt.Errorf("origin %q: any origin is the default; list origins only to restrict them", o)
	}
	// Any scheme: app webviews and extensions send capacitor://localhost,
	// ionic://localhost or chrome-extension://<id>.
	// Anything beyond scheme://host[:port] (a path, even a lone "/", a
	// query, a fragment, a user) makes o differ from what it rebuilds to.
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || o != u.Scheme+"://"+u.Host {
		return fmt.Errorf("origin %q: want scheme://host[:port] with nothing after it, e.g. https://app.example.com", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("origin %q: browsers send origins in lower case (%s)", o, strings.ToLower(o))
	}
	return nil
}
