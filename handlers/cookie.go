package handlers

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultCookieName is the session cookie's name when none is configured.
// The guard reads it by default, after its configured cookies.
const DefaultCookieName = "xano_auth"

// SecureMode decides the Secure attribute of the cookies we set.
type SecureMode int

const (
	// SecureAuto sets Secure except on plain HTTP to a loopback host
	// (localhost, 127.0.0.0/8, ::1), where a browser would drop a Secure
	// cookie set by an insecure origin and development would break.
	// Behind a TLS-terminating proxy the request is plain HTTP but the
	// browser's origin is https, so any other host keeps Secure.
	SecureAuto SecureMode = iota
	// SecureOn always sets Secure.
	SecureOn
	// SecureOff never sets Secure.
	SecureOff
)

// Browser holds the browser features of an Auth handler: the session
// cookie that login and signup set (always on when Browser is non-nil), and
// the optional built-in login page.
type Browser struct {
	Cookie SessionCookie
	// Page is the login page; nil: none.
	Page *LoginPage
}

// SessionCookie is the cookie that carries the access token for browser
// navigation, where no header can be added.
type SessionCookie struct {
	// Name of the cookie (DefaultCookieName when empty).
	Name string
	// Domain attribute; empty: host-only, the safest choice.
	Domain string
	// Path attribute ("/" when empty).
	Path string
	// SameSite attribute (Lax when left at http.SameSiteDefaultMode or 0).
	SameSite http.SameSite
	// Secure decides the Secure attribute.
	Secure SecureMode
}

func (c *SessionCookie) name() string {
	if c.Name == "" {
		return DefaultCookieName
	}
	return c.Name
}

func (c *SessionCookie) path() string {
	if c.Path == "" {
		return "/"
	}
	return c.Path
}

func (c *SessionCookie) sameSite() http.SameSite {
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		return http.SameSiteLaxMode
	}
	return c.SameSite
}

// secure reports whether cookies set in answer to r get Secure.
func (c *SessionCookie) secure(r *http.Request) bool {
	switch c.Secure {
	case SecureOn:
		return true
	case SecureOff:
		return false
	}
	if c.sameSite() == http.SameSiteNoneMode {
		return true // browsers reject SameSite=None without Secure
	}
	return !plainLoopback(r)
}

// plainLoopback reports whether r came over plain HTTP to a loopback host.
func plainLoopback(r *http.Request) bool {
	if r.TLS != nil {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// build returns the cookie with value v and the configured attributes.
// maxAge < 0 deletes it.
func (c *SessionCookie) build(r *http.Request, v string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     c.name(),
		Value:    v,
		Path:     c.path(),
		Domain:   c.Domain,
		MaxAge:   maxAge,
		Secure:   c.secure(r),
		HttpOnly: true, // scripts never need the token: the guard reads it
		SameSite: c.sameSite(),
	}
}

// cookieOrigin reports whether the session cookie may be set or used for
// r: for requests from this origin (or the user's own navigation), and
// from origins the operator listed in `cors`. Any other origin, a sibling
// subdomain included, can send a login or logout as a simple request (a
// urlencoded body needs no preflight) that the browser lets carry and set
// this site's cookie: setting it would be login CSRF (the attacker's
// account in the victim's browser), and reading it would let that origin
// log the user out.
func (a *Auth) cookieOrigin(r *http.Request) bool {
	if originOK(r) {
		return true
	}
	o := r.Header.Get("Origin")
	return o != "" && slices.Contains(a.CORS.Origins, o)
}

// setSessionCookie sets the access token in the session cookie, for
// login, signup and refresh answers, with Max-Age the token's lifetime. It
// does nothing without cookie sessions, and nothing for a request from
// another origin that `cors` does not list (cookieOrigin); for one it
// lists, a cross-site request gets the cookie only with SameSite None,
// since the browser would drop it anyway.
func (a *Auth) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, ttl time.Duration) {
	if a.Browser == nil || token == "" || !a.cookieOrigin(r) {
		return
	}
	c := &a.Browser.Cookie
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" && c.sameSite() != http.SameSiteNoneMode {
		return
	}
	maxAge := int(ttl / time.Second)
	if maxAge <= 0 {
		maxAge = 1
	}
	http.SetCookie(w, c.build(r, token, maxAge))
}

// clearSessionCookie deletes the session cookie (same name, path and
// domain, Max-Age=0). Logout endpoints call it; without cookie sessions it
// does nothing.
//
// Like setting it, clearing it is only for the origins that may use it
// (cookieOrigin): a cross-site form posting to the JSON logout would
// otherwise log the user out of this site.
func (a *Auth) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	if a.Browser == nil || !a.cookieOrigin(r) {
		return
	}
	http.SetCookie(w, a.Browser.Cookie.build(r, "", -1))
}

// sessionCookieNames lists the cookie that may carry this handler's token
// in r (for endpoints that accept it, such as logout), or nil without
// cookie sessions or for a request from an origin that may not use it
// (cookieOrigin).
func (a *Auth) sessionCookieNames(r *http.Request) []string {
	if a.Browser == nil || !a.cookieOrigin(r) {
		return nil
	}
	return []string{a.Browser.Cookie.name()}
}
