package handlers

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

// Messages of the login page (ours).
const (
	MsgFormExpired = "Your sign-in form has expired. Please try again."
	MsgSignedOut   = "You have been signed out."
	MsgBadRequest  = "The form could not be read. Please try again."
)

//go:embed loginpage.html
var defaultLoginTemplate string

var builtinTemplate = template.Must(template.New("login").Parse(defaultLoginTemplate))

// LoginPage is the built-in login page of an Auth handler. GET shows a
// form; its POST logs in and answers 303 to the return target with the
// session cookie set, or shows the form again with the error. A logout
// page next to it ends the cookie session.
type LoginPage struct {
	// Path serves the page at exactly this path. Empty: the page is served
	// to HTML-wanting GETs of …/auth/login itself.
	Path string
	// LogoutPath is the page logout. Empty: <login page path>/logout.
	LogoutPath string
	// Template renders the page (see PageData); nil: the built-in one.
	Template *template.Template
}

// PageData is what a login page template receives.
type PageData struct {
	// Mode is "login" (the sign-in form) or "logout" (a confirmation
	// form, shown when a logout request did not come from this site).
	Mode string
	// Status is the HTTP status of the answer (200, or the error's).
	Status int
	// Action is where the form posts.
	Action string
	// LoginURL and LogoutURL are the page's own addresses, for links.
	LoginURL  string
	LogoutURL string
	// Return is the validated return target carried through the form in
	// a hidden field named "return"; empty: "/".
	Return string
	// CSRFField and CSRFToken are the hidden anti-CSRF field's name and
	// value; the form must send them.
	CSRFField string
	CSRFToken string
	// Email is the address typed before a failed attempt (never the
	// password).
	Email string
	// Error is the message of a failed attempt, e.g. "Invalid Credentials.".
	Error string
	// Message is an informational note, e.g. "You have been signed out.".
	Message string
}

// ParseLoginTemplate parses a user-supplied login page template.
func ParseLoginTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Parse(text)
}

// serveBrowser answers the login page, its form POST and the page logout.
// It reports false for every other request, which Auth then serves as
// API calls; API clients (JSON, no Accept: text/html) never land here.
func (a *Auth) serveBrowser(w http.ResponseWriter, r *http.Request) bool {
	p := a.Browser.Page
	if p == nil {
		return false
	}
	path := r.URL.Path
	if !pagePath(path) {
		return false // answered as an API call, which echoes no path
	}
	switch {
	case p.Path != "" && path == p.Path:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			a.showLogin(w, r, path)
		case http.MethodPost:
			a.formLogin(w, r, path)
		default:
			WriteError(w, errNotLocated)
		}
		return true
	case (p.Path != "" || p.LogoutPath != "") && path == p.logoutURL(p.Path):
		a.pageLogout(w, r, p.Path)
		return true
	case p.Path == "" && p.LogoutPath == "" && strings.HasSuffix(path, "/auth/login/logout"):
		a.pageLogout(w, r, strings.TrimSuffix(path, "/logout"))
		return true
	case endpoint(path) == "login":
		switch {
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r):
			a.showLogin(w, r, path)
			return true
		case r.Method == http.MethodPost && isFormPost(r, a.maxBody()):
			a.formLogin(w, r, path)
			return true
		}
	}
	return false
}

// logoutURL is the page logout's path for a page served at loginPath.
func (p *LoginPage) logoutURL(loginPath string) string {
	switch {
	case p.LogoutPath != "":
		return p.LogoutPath
	case p.Path != "":
		return strings.TrimSuffix(p.Path, "/") + "/logout"
	}
	return loginPath + "/logout"
}

func (a *Auth) maxBody() int64 {
	if a.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return a.MaxBody
}

// isFormPost reports whether a POST to the login endpoint came from a
// browser form, which gets a redirect instead of JSON: a navigation
// (Accept lists text/html, or Sec-Fetch-Mode navigate), or an urlencoded
// body with the hidden field _form=1. The body is peeked, never consumed.
func isFormPost(r *http.Request, max int64) bool {
	if wantsHTML(r) || r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, max))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(raw), r.Body), r.Body}
	vals, err := url.ParseQuery(string(raw))
	return err == nil && vals.Get("_form") == "1"
}

// returnTarget picks the validated return target from the inputs.
func returnTarget(in Input) string {
	for _, k := range []string{"return", "redirect"} {
		if s, _, e := in.Text(k); e == nil && SafeReturn(s) {
			return s
		}
	}
	return ""
}

func queryReturn(r *http.Request) string {
	q := r.URL.Query()
	for _, k := range []string{"return", "redirect"} {
		if s := q.Get(k); SafeReturn(s) {
			return s
		}
	}
	return ""
}

func (a *Auth) showLogin(w http.ResponseWriter, r *http.Request, loginPath string) {
	d := &PageData{Mode: "login", Status: http.StatusOK, Action: loginPath, Return: queryReturn(r)}
	if r.URL.Query().Get("logged_out") == "1" {
		d.Message = MsgSignedOut
	}
	a.renderPage(w, r, loginPath, d)
}

// formLogin logs in for a form POST: it checks the CSRF token, calls the
// same login as the API (logIn, with its rate limits and logging), and
// answers a 303 with the session cookie, or the form again with the error
// and the error's status.
func (a *Auth) formLogin(w http.ResponseWriter, r *http.Request, loginPath string) {
	log := a.Svc.Logger.With(zap.String("endpoint", "login_page"), zap.String("table", a.Table))
	d := &PageData{Mode: "login", Action: loginPath}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody()))
	if err != nil {
		d.Status, d.Error = http.StatusBadRequest, MsgBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			d.Status = http.StatusRequestEntityTooLarge
		}
		a.renderPage(w, r, loginPath, d)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	in, e := ParseInput(w, r, a.maxBody())
	if e != nil {
		d.Status, d.Error = e.Status, e.Message
		a.renderPage(w, r, loginPath, d)
		return
	}
	d.Return = returnTarget(in)
	d.Email, _, _ = in.Text("email")
	if !a.Browser.csrfOK(r, in) {
		log.Info("login form refused: CSRF check failed",
			zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")), zap.String("origin", r.Header.Get("Origin")))
		d.Status, d.Error = http.StatusForbidden, MsgFormExpired
		a.renderPage(w, r, loginPath, d)
		return
	}

	ds, e := a.Svc.dataSource(r)
	if e == nil {
		var p tokenPair
		if p, e = a.logIn(r, ds, in); e == nil {
			a.setSessionCookie(w, r, p.Access, a.table().TokenTTL)
		}
	}
	if e != nil {
		setRetryAfter(w, e)
		d.Status, d.Error = e.Status, e.Message
		a.renderPage(w, r, loginPath, d)
		return
	}
	target := d.Return
	if target == "" {
		target = "/"
	}
	seeOther(w, target)
}

// pageLogout ends the cookie session: it revokes the session server-side
// and deletes the cookie, then sends the browser to the login page. A GET
// from this site's own pages (a "Log out" link) or typed by the user logs
// out at once; a GET from elsewhere shows a confirmation form, so that
// another site cannot log users out with a link or an image. A POST needs
// the CSRF token or a same-origin signal from the browser.
func (a *Auth) pageLogout(w http.ResponseWriter, r *http.Request, loginPath string) {
	if loginPath == "" {
		loginPath = "/"
	}
	d := &PageData{Mode: "logout", Status: http.StatusOK, Action: r.URL.Path}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		d.Return = queryReturn(r)
		if s := r.Header.Get("Sec-Fetch-Site"); s != "same-origin" && s != "none" {
			a.renderPage(w, r, loginPath, d)
			return
		}
	case http.MethodPost:
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody()))
		if err == nil {
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		in, e := ParseInput(w, r, a.maxBody())
		if err != nil || e != nil {
			d.Status, d.Error = http.StatusBadRequest, MsgBadRequest
			a.renderPage(w, r, loginPath, d)
			return
		}
		d.Return = returnTarget(in)
		if !originOK(r) || !(sameOriginSignal(r) || a.Browser.csrfOK(r, in)) {
			d.Status, d.Error = http.StatusForbidden, MsgFormExpired
			a.renderPage(w, r, loginPath, d)
			return
		}
	default:
		WriteError(w, errNotLocated)
		return
	}
	a.endCookieSession(r)
	a.clearSessionCookie(w, r)
	target := loginPath + "?logged_out=1"
	if d.Return != "" {
		target += "&return=" + url.QueryEscape(d.Return)
	}
	seeOther(w, target)
}

// endCookieSession revokes the session whose token is in the session
// cookie, so that a copy of the cookie is worthless after logout. Failure
// is logged; the cookie is deleted anyway.
func (a *Auth) endCookieSession(r *http.Request) {
	c, err := r.Cookie(a.Browser.Cookie.name())
	if err != nil || c.Value == "" {
		return
	}
	claims, err := a.Svc.Keys().Verify(c.Value, a.Svc.now(), a.Svc.Leeway)
	if err != nil && !errors.Is(err, token.ErrExpired) {
		return
	}
	if err != nil || claims.Table != a.Table || claims.SID == "" {
		return // expired or not ours: nothing left to revoke
	}
	realm := store.Realm{DataSource: claims.DS, Table: claims.Table}
	if a.Svc.Store.IsRevoked(realm, claims.ID, claims.SID, claims.IssuedAt) {
		return // already logged out: a replayed cookie must not count again
	}
	log := a.Svc.Logger.With(zap.String("endpoint", "logout_page"), zap.String("table", a.Table))
	folded, err := a.Svc.revokeSession(r.Context(), a.table(), realm, claims.ID, claims.SID, claims.Expiry)
	if err != nil {
		log.Error("revoking session", zap.Error(err))
		return
	}
	if folded {
		log.Warn("too many single-session logouts; logged the user out everywhere",
			zap.Int64("user_id", claims.ID), zap.Int("limit", MaxSessionRevocations))
	}
	log.Info("logout", zap.Int64("user_id", claims.ID))
}

// renderPage executes the page template and sends it with d.Status.
func (a *Auth) renderPage(w http.ResponseWriter, r *http.Request, loginPath string, d *PageData) {
	tok, err := a.Browser.csrfToken(w, r)
	if err != nil {
		a.Svc.Logger.Error("generating CSRF token", zap.Error(err))
		WriteError(w, errFatal)
		return
	}
	d.CSRFField, d.CSRFToken = CSRFField, tok
	d.LoginURL = loginPath
	d.LogoutURL = a.Browser.Page.logoutURL(loginPath)
	if d.Status == 0 {
		d.Status = http.StatusOK
	}
	tmpl := a.Browser.Page.Template
	builtin := tmpl == nil
	if builtin {
		tmpl = builtinTemplate
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		a.Svc.Logger.Error("rendering login page", zap.Error(err))
		WriteError(w, errFatal)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // keeps Origin on our own form posts
	h.Set("X-Frame-Options", "DENY")
	if builtin {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	} else {
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	}
	w.WriteHeader(d.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func seeOther(w http.ResponseWriter, target string) {
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}
