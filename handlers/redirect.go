package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// maxReturnLength bounds a return target; longer ones are dropped.
const maxReturnLength = 2048

// SafeReturn reports whether s may be used as a post-login redirect target.
// Only paths on this site qualify: s must start with exactly one "/", and
// consist of visible ASCII without a backslash. That rejects absolute URLs
// ("https://evil"), schemes ("javascript:"), protocol-relative URLs
// ("//evil"), and the forms browsers normalise into them: "/\evil"
// (backslash is a slash in http URLs) and "/\t/evil" (tabs and newlines are
// stripped by the URL parser). Percent-encoded characters stay encoded in
// a Location header, so "/%2F/evil" is a path, not a host.
func SafeReturn(s string) bool {
	if len(s) == 0 || len(s) > maxReturnLength || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// pagePath reports whether a request path may stand in the login page as
// its form action, its links and the logout's redirect target: Go hands
// over a path such as //evil.example/auth/login as it was sent, and a
// browser takes it, or /\evil.example/..., or one with a tab or newline it
// strips, for another host.
func pagePath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// wantsHTML reports whether the request's Accept header lists text/html
// explicitly. "*/*" does not count: API clients send it.
func wantsHTML(r *http.Request) bool {
	for _, a := range r.Header.Values("Accept") {
		for _, part := range strings.Split(a, ",") {
			mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				continue
			}
			if !refused(params) {
				return true
			}
		}
	}
	return false
}

// refused reports whether media-range parameters carry q=0 ("not this").
func refused(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f == 0
		}
	}
	return false
}

// IsNavigation reports whether r is a browser loading a page, which can be
// sent to a login page, rather than a script or API client, which needs
// the 401 envelope: GET or HEAD, Accept listing text/html, not marked as
// XHR, and Sec-Fetch-Mode navigate or absent (older browsers, curl).
func IsNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	return wantsHTML(r)
}

// requestedURL is the URL the client asked for: rewrite, uri, try_files
// and handle_path change r's before the guard runs.
func requestedURL(r *http.Request) *url.URL {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		return or.URL
	}
	return r.URL
}

// loginRedirect returns the address of the login page with the path and
// query the client asked for as return target, or the login page alone
// when that is not a safe return path. An authtoken query parameter is
// left out: it outranks the session cookie a login sets, so an expired one
// would send the user back to the login page after every login (and it
// would end up in logs).
func loginRedirect(login string, r *http.Request) string {
	u := *requestedURL(r)
	u.RawQuery = withoutAuthtoken(u.RawQuery)
	ret := u.RequestURI()
	if !SafeReturn(ret) {
		return login
	}
	sep := "?"
	if strings.Contains(login, "?") {
		sep = "&"
	}
	return login + sep + "return=" + url.QueryEscape(ret)
}

// withoutAuthtoken drops the authtoken pairs from a raw query (those
// ExtractToken would read) and keeps every other byte as it was: a
// decoded and re-encoded query would be reordered, and lose pairs Go does
// not parse.
func withoutAuthtoken(raw string) string {
	if raw == "" {
		return raw
	}
	pairs := strings.Split(raw, "&")
	kept := pairs[:0]
	for _, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == "authtoken" {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// isLoginPage reports whether r asks for the guard's own login page, when
// that is a plain path on this site (g.loginPage). The page is for
// visitors without a valid token, so it passes as an anonymous request: a
// guard over the whole site covers it too, and redirecting it to itself
// would loop until the browser gives up. A target with a query or fragment
// does not count: other queries of its path (or, for a fragment, the whole
// path) are other pages, which must stay guarded.
func (g *Guard) isLoginPage(r *http.Request) bool {
	return g.loginPage != "" && requestedURL(r).Path == g.loginPage
}

// reject answers a request the guard refuses. Navigations without a valid
// token are sent to the login page when one is configured; everything else
// (API calls, and 403s, which a new login would not fix) gets the envelope.
func (g *Guard) reject(w http.ResponseWriter, r *http.Request, e *Error) {
	if g.Redirect != "" && e.Status == http.StatusUnauthorized && IsNavigation(r) {
		h := w.Header()
		h.Set("Location", loginRedirect(g.Redirect, r))
		h.Set("Cache-Control", "no-store")
		h.Add("Vary", "Accept, Sec-Fetch-Mode, Cookie")
		w.WriteHeader(http.StatusFound)
		return
	}
	WriteError(w, e)
}

// CheckLoginURL validates a guard's redirect target: a path on this site
// or an absolute http(s) URL.
func CheckLoginURL(s string) error {
	if SafeReturn(s) {
		return nil
	}
	u, err := url.Parse(s)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.ContainsAny(s, " \t\r\n\\") {
		return nil
	}
	return fmt.Errorf("redirect %q: want a path starting with / or an http(s) URL", s)
}
