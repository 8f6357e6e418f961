package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// Auth serves Xano's auth endpoints for one table. Paths are matched by
// suffix so that it works under any API group prefix, as on Xano
// (/api:abc123/auth/login); other paths go to the next handler.
type Auth struct {
	Svc   *Service
	Table string
	// MaxBody limits request bodies (DefaultMaxBody when 0).
	MaxBody int64
	// MirrorAccessToken also sends the token as accessToken, which some
	// front ends (WeWeb) read instead of authToken.
	MirrorAccessToken bool
	// CORS decides the cross-origin headers of the endpoints.
	CORS CORS
	// Browser turns on the session cookie and the login page (cookie.go,
	// loginpage.go); nil: off.
	Browser *Browser
}

// endpoint names the auth endpoint a path ends with, or "".
func endpoint(path string) string {
	i := strings.LastIndex(path, "/auth/")
	if i < 0 {
		return ""
	}
	switch ep := path[i+len("/auth/"):]; ep {
	case "signup", "login", "me", "refresh", "logout", "password":
		return ep
	}
	return ""
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It always answers with
// its own envelope and returns nil: a caddyhttp.Error would make Caddy send
// an empty body, which Xano clients cannot read.
func (a *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if a.Browser != nil && a.serveBrowser(w, r) {
		return nil // the login page, its form or the page logout
	}
	ep := endpoint(r.URL.Path)
	if ep == "" {
		return next.ServeHTTP(w, r)
	}
	if a.CORS.Handle(w, r) {
		return nil // a preflight, answered
	}
	if IsPreflight(r) {
		return next.ServeHTTP(w, r) // CORS is left to other handlers
	}
	var e *Error
	switch {
	case ep == "signup" && r.Method == http.MethodPost:
		e = a.signup(w, r)
	case ep == "login" && r.Method == http.MethodPost:
		e = a.login(w, r)
	case ep == "me" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		e = a.me(w, r)
	case ep == "refresh" && r.Method == http.MethodPost:
		e = a.refresh(w, r)
	case ep == "logout" && r.Method == http.MethodPost:
		e = a.logout(w, r)
	case ep == "password" && r.Method == http.MethodPost:
		e = a.changePassword(w, r)
	default:
		e = errNotLocated
	}
	if e != nil {
		WriteError(w, e)
	}
	return nil
}

// inputs resolves the request's data source and reads its inputs, the
// first step of every endpoint that takes a body.
func (a *Auth) inputs(w http.ResponseWriter, r *http.Request) (string, Input, *Error) {
	ds, e := a.Svc.dataSource(r)
	if e != nil {
		return "", nil, e
	}
	in, e := ParseInput(w, r, a.MaxBody)
	return ds, in, e
}

// tokenResponse is the body of a successful signup or login.
type tokenResponse struct {
	AuthToken    string `json:"authToken"`
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

func (a *Auth) table() *Table { return a.Svc.Tables[a.Table] }

func (a *Auth) signup(w http.ResponseWriter, r *http.Request) *Error {
	t := a.table()
	log := a.Svc.Logger.With(zap.String("endpoint", "signup"), zap.String("table", t.Name))
	if !t.SignupOpen {
		log.Info("signup refused: closed")
		return accessDenied(MsgSignupClosed)
	}
	ds, in, e := a.inputs(w, r)
	if e != nil {
		return e
	}

	// Inputs are checked in Xano's declared order: name (and the other
	// fields), email, password.
	fields := make(map[string]any, len(t.Defaults)+len(t.Fields))
	for k, v := range t.Defaults {
		fields[k] = v
	}
	for _, f := range t.Fields {
		s, present, e := in.Text(f)
		if e != nil {
			return e
		}
		if !present {
			continue
		}
		if utf8.RuneCountInString(s) > MaxFieldLength {
			return inputError(f, "Input exceeds maximum length of "+strconv.Itoa(MaxFieldLength)+" characters")
		}
		fields[f] = s
	}
	email, e := in.Email()
	if e != nil {
		return e
	}
	pw, e := in.RequiredText("password")
	if e != nil {
		return e
	}
	if err := t.Policy.Check(pw); err != nil {
		return inputError("password", err.Error())
	}

	if e := a.allow(LimitSignup, r); e != nil {
		return e // before the lookup, which would tell whether email is taken
	}
	realm := store.Realm{DataSource: ds, Table: t.Name}
	// Cheap early answer for a taken email, so a signup flood on known
	// addresses costs no hashing; CreateUser stays the authority.
	if _, err := a.Svc.Store.UserByEmail(r.Context(), realm, email); err == nil {
		log.Info("signup refused: email in use")
		return accessDenied(MsgAccountInUse)
	} else if !errors.Is(err, store.ErrNotFound) {
		return a.fatal(log, "reading user", err)
	}
	hash, err := a.Svc.Hasher.Hash(r.Context(), pw)
	if err != nil {
		return a.hashFailure(log, err)
	}
	u := &store.User{Email: email, Fields: fields, PasswordHash: hash}
	p, err := a.Svc.signupSession(r.Context(), t, ds, u)
	if errors.Is(err, store.ErrEmailTaken) {
		log.Info("signup refused: email in use")
		return accessDenied(MsgAccountInUse)
	}
	if err != nil {
		return a.fatal(log, "creating user", err)
	}
	log.Info("signup", zap.Int64("user_id", u.ID), zap.String("ds", ds))
	return a.sendSession(w, r, t, p)
}

func (a *Auth) login(w http.ResponseWriter, r *http.Request) *Error {
	ds, in, e := a.inputs(w, r)
	if e != nil {
		return e
	}
	p, e := a.logIn(r, ds, in)
	if e != nil {
		return e
	}
	return a.sendSession(w, r, a.table(), p)
}

// logIn checks the email and password of in for data source ds, under
// the login limits, and starts a session: the one login of the JSON
// endpoint and the login page. It writes nothing; the caller answers.
func (a *Auth) logIn(r *http.Request, ds string, in Input) (tokenPair, *Error) {
	t := a.table()
	log := a.Svc.Logger.With(zap.String("endpoint", "login"), zap.String("table", t.Name))
	email, e := in.Email()
	if e != nil {
		return tokenPair{}, e
	}
	pw, e := in.RequiredText("password")
	if e != nil {
		return tokenPair{}, e
	}

	realm := store.Realm{DataSource: ds, Table: t.Name}
	limit := a.loginLimit(r, realm, email)
	if e := limit.reserve(); e != nil {
		return tokenPair{}, e // before any hashing: a limited client costs nothing
	}
	// From here the attempt counts as a failure unless it is refunded
	// (never evaluated) or succeeds.
	u, err := a.Svc.Store.UserByEmail(r.Context(), realm, email)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same hashing work as for a real account, so neither
		// the answer nor its timing tells whether the email exists.
		if err := a.Svc.Hasher.VerifyDummy(r.Context(), pw); err != nil {
			limit.refund() // ErrBusy: nothing was hashed
			return tokenPair{}, a.hashFailure(log, err)
		}
		log.Info("login failed")
		return tokenPair{}, accessDenied(MsgInvalidCredentials)
	}
	if err != nil {
		limit.refund()
		return tokenPair{}, a.fatal(log, "reading user", err)
	}
	ok, rehash, err := limit.verify(r.Context(), a.Svc.Hasher, u.PasswordHash, pw)
	if errors.Is(err, password.ErrBusy) || ctxErr(r.Context()) {
		return tokenPair{}, a.hashFailure(log, err)
	}
	if err != nil {
		// An unreadable stored hash is the operator's problem, not the
		// user's: log it, and answer as for a wrong password.
		log.Error("stored password hash is unusable", zap.Int64("user_id", u.ID), zap.Error(err))
	}
	if !ok {
		log.Info("login failed", zap.Int64("user_id", u.ID))
		return tokenPair{}, accessDenied(MsgInvalidCredentials)
	}
	checked := u.PasswordHash
	if rehash {
		checked = a.upgradeHash(r, log, realm, u, pw)
	}
	p, err := a.Svc.loginSession(r.Context(), t, ds, u, checked, pw)
	if errors.Is(err, errPasswordChanged) {
		log.Info("login refused: the password changed while it was checked", zap.Int64("user_id", u.ID))
		return tokenPair{}, accessDenied(MsgInvalidCredentials)
	}
	if errors.Is(err, password.ErrBusy) || ctxErr(r.Context()) {
		return tokenPair{}, a.hashFailure(log, err)
	}
	if err != nil {
		return tokenPair{}, a.fatal(log, "starting session", err)
	}
	log.Info("login", zap.Int64("user_id", u.ID), zap.String("ds", ds))
	return p, nil
}

// upgradeHash replaces an imported (bcrypt) or outdated hash after a
// successful login, unless the password changed since it was read, and
// returns the user's hash as it now stands. Failure only costs the
// upgrade, not the login.
func (a *Auth) upgradeHash(r *http.Request, log *zap.Logger, realm store.Realm, u *store.User, pw string) string {
	hash, err := a.Svc.Hasher.Hash(r.Context(), pw)
	if err == nil {
		_, err = a.Svc.swapHash(r.Context(), realm, u.ID, u.PasswordHash, hash)
	}
	switch {
	case errors.Is(err, errPasswordChanged):
		log.Info("password hash upgrade skipped: the password changed meanwhile", zap.Int64("user_id", u.ID))
		return u.PasswordHash
	case err != nil:
		log.Warn("password hash upgrade failed", zap.Int64("user_id", u.ID), zap.Error(err))
		return u.PasswordHash
	}
	log.Info("password hash upgraded", zap.Int64("user_id", u.ID))
	return hash
}

func (a *Auth) me(w http.ResponseWriter, r *http.Request) *Error {
	t := a.table()
	log := a.Svc.Logger.With(zap.String("endpoint", "me"), zap.String("table", t.Name))
	c, e := a.Svc.authenticate(r, nil, []string{t.Name})
	if e != nil {
		return e
	}
	if c == nil {
		return unauthorized(MsgAuthRequired)
	}
	u, err := a.Svc.Store.UserByID(r.Context(), store.Realm{DataSource: c.DS, Table: c.Table}, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(MsgInvalidToken) // the user was deleted
	}
	if err != nil {
		return a.fatal(log, "reading user", err)
	}
	body, err := renderUser(t, u)
	if err != nil {
		return a.fatal(log, "rendering user", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// sendSession answers with a new session's tokens (and cookie).
func (a *Auth) sendSession(w http.ResponseWriter, r *http.Request, t *Table, p tokenPair) *Error {
	a.setSessionCookie(w, r, p.Access, t.TokenTTL)
	return a.sendPair(w, p)
}

func (a *Auth) hashFailure(log *zap.Logger, err error) *Error {
	log.Warn("password hashing unavailable", zap.Error(err))
	return errBusy
}

// fatal logs the cause and answers with a generic 500: internals are for
// the operator's log, not the client.
func (a *Auth) fatal(log *zap.Logger, what string, err error) *Error {
	log.Error(what, zap.Error(err))
	return errFatal
}

// Interface guards
var _ caddyhttp.MiddlewareHandler = (*Auth)(nil)
