package handlers

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRF protection of the login page's forms (login and logout).
//
// Design: a double-submit token checked together with the browser's own
// origin signals.
//
//   - GET of the page sets a random 256-bit token in an HttpOnly cookie
//     (`__Host-xano_csrf` when the cookie is Secure, which binds it to this
//     exact host so a sibling subdomain cannot plant one; `xano_csrf` on
//     plain-HTTP localhost) and repeats it in a hidden form field `_csrf`.
//   - A POST must carry both, equal (compared in constant time). Another
//     site can make a browser send the cookie, but cannot read it, so it
//     cannot fill in the field.
//   - In addition, when the browser says where the request comes from, it
//     must be this origin: Sec-Fetch-Site must be same-origin (or none: the
//     user's own action), and an Origin header, when present, must name
//     this host ("null", which hides its sender, never does).
//
// This stops login CSRF (logging the victim into the attacker's account)
// and forced logout. The API endpoints do not need it: a JSON body forces a
// CORS preflight, and the session cookie (SameSite=Lax by default) is not
// set for cross-site requests (see setSessionCookie).

// CSRFField is the name of the hidden form field carrying the token.
const CSRFField = "_csrf"

const (
	csrfCookie       = "xano_csrf"
	csrfCookieSecure = "__Host-xano_csrf"
)

func (b *Browser) csrfCookieName(r *http.Request) string {
	if b.Cookie.secure(r) {
		return csrfCookieSecure
	}
	return csrfCookie
}

// csrfToken returns the request's CSRF token, setting a new cookie when
// it has none (or a malformed one). Reusing an existing token keeps
// several open tabs of the login page working.
func (b *Browser) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	name := b.csrfCookieName(r)
	if c, err := r.Cookie(name); err == nil && wellFormedCSRF(c.Value) {
		return c.Value, nil
	}
	tok, err := newCSRFToken()
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    tok,
		Path:     "/", // required by the __Host- prefix
		Secure:   b.Cookie.secure(r),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return tok, nil
}

// originOK reports whether the browser's origin signals, where present,
// say the request comes from this site's own pages.
func originOK(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !sameHost(o, r) {
		return false // "null" included: its sender is hidden
	}
	return true
}

// sameOriginSignal reports whether the browser positively said the
// request comes from this origin.
func sameOriginSignal(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" {
		return sameHost(o, r)
	}
	return false
}

// csrfOK checks the double-submit token and the origin signals of a form
// POST whose fields are in.
func (b *Browser) csrfOK(r *http.Request, in Input) bool {
	if !originOK(r) {
		return false
	}
	c, err := r.Cookie(b.csrfCookieName(r))
	if err != nil || !wellFormedCSRF(c.Value) {
		return false
	}
	field, _, e := in.Text(CSRFField)
	if e != nil || len(field) != len(c.Value) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(field), []byte(c.Value)) == 1
}

// csrfTokenLen is the length of a token: 32 random bytes, unpadded base64url.
const csrfTokenLen = 43

func newCSRFToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func wellFormedCSRF(s string) bool {
	if len(s) != csrfTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
