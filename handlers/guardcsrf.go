package handlers

import (
	"net/http"
	"net/url"
	"slices"
)

// CSRF protection of guarded routes.
//
// A browser sends a site's cookies with requests that other sites' pages
// make: a sibling subdomain or another port (same-site, so even a
// SameSite=Strict cookie goes along) can POST a form to /app/transfer, and
// a cross-site page can too where the cookie is SameSite=None. An upstream
// written for bearer tokens, which no other page can attach, would take
// such a request for the user's. So when the token came from a cookie, a
// request with an unsafe method passes only if the browser says it comes
// from this origin, or from an origin the operator listed (csrf on the
// guard). Safe methods (GET, HEAD, OPTIONS, TRACE) pass: they must not
// change anything, and a top-level link from another site is how people
// arrive.

// safeMethod reports whether m is safe in the sense of RFC 9110 §9.2.1.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// cookieRequestOK reports whether a request whose token came from a
// cookie may pass. Browsers send Sec-Fetch-Site (all current ones) and
// Origin on every unsafe request; a request with neither comes from a
// client that is not a browser, which no other site can drive.
func (g *Guard) cookieRequestOK(r *http.Request) bool {
	if safeMethod(r.Method) && r.Header.Get("Upgrade") == "" && r.Header.Get("Sec-Fetch-Mode") != "websocket" {
		return true // a WebSocket handshake is a GET that opens a two-way channel: checked like POST
	}
	origin := r.Header.Get("Origin")
	if origin != "" && slices.Contains(g.CSRFOrigins, origin) {
		return true
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		// same-site is a sibling subdomain or another port: another
		// origin. none is the user's own action (the address bar).
		return s == "same-origin" || s == "none"
	}
	if origin != "" {
		return sameHost(origin, r)
	}
	return true
}

// sameHost reports whether origin names r's host. "null" (a sandboxed
// frame, a redirect across origins, a file: page) never does: its sender
// is hidden, so it counts as foreign, as Caddy's admin API counts it.
func sameHost(origin string, r *http.Request) bool {
	if origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && u.Host == r.Host
}
