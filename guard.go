package xanoauth

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

// GuardHandler lets a request continue only with a valid token (or
// anonymously, when optional). Tokens are looked up as Xano does: with
// `X-Xano-Authorization-Only: true` only X-Xano-Authorization is read;
// otherwise X-Xano-Authorization, then `Authorization: Bearer`, then the
// `authtoken` query parameter, then the configured cookies, then the
// session cookie of xano_auth (unless ignore_session_cookie). What else it
// does (Cache-Control, preflights, one data source, CSRF of cookie
// requests, identity headers) is in docs/guard.md.
//
// After a successful check it sets these placeholders:
//
//	{http.auth.user.id}            the user id
//	{http.auth.user.table}         the token's table
//	{http.auth.user.ds}            the token's data source
//	{http.auth.user.extras.<key>}  each extra sealed in the token
//
// On an anonymous pass (optional mode) they are empty strings.
type GuardHandler struct {
	// Tables whose tokens are accepted. Default: ["user"].
	Tables []string `json:"tables,omitempty"`

	// Optional lets requests without a token through anonymously, like a
	// public Xano endpoint. An invalid token is still rejected unless
	// IgnoreInvalid is set. Default: off (a token is required).
	Optional bool `json:"optional,omitempty"`

	// IgnoreInvalid, with Optional, treats an invalid or expired token as
	// no token. Default: off.
	IgnoreInvalid bool `json:"ignore_invalid,omitempty"`

	// Require lists conditions on the token that must all hold; a request
	// that fails one is answered 403.
	Require []RequireRule `json:"require,omitempty"`

	// Cookies are read for the token, in order, after the headers and the
	// query string: e.g. "ww-auth-access-token" (WeWeb) or "AuthToken"
	// (the Xano JS SDK). The session cookie of xano_auth, "xano_auth", is
	// read last unless IgnoreSessionCookie is set, so a login page needs
	// no guard configuration.
	Cookies []string `json:"cookies,omitempty"`

	// IgnoreSessionCookie leaves the session cookie "xano_auth" unread on
	// this route: only headers, ?authtoken= and the listed Cookies carry
	// a token. For an API that must see bearer tokens only. Default: off.
	IgnoreSessionCookie bool `json:"ignore_session_cookie,omitempty"`

	// DataSources are the data sources whose tokens pass. Default: only
	// the xano app's default data source (the first of its
	// data_sources), so that a user who signed up in a second one (test,
	// staging) is never taken for the live user with the same id. A guard
	// that accepts several and forwards the id in a header must forward
	// the data source too.
	DataSources []string `json:"data_sources,omitempty"`

	// Cache is the Cache-Control of every response to a request that
	// passed with a token: "private" (the default) sends
	// "private, no-cache", so that no shared cache stores it and a
	// browser asks again (running the guard) each time, replacing what
	// the upstream sent unless that was no-store; "no_store" sends
	// "no-store"; "off" leaves the upstream's header as it is.
	Cache string `json:"cache,omitempty"`

	// Preflight decides CORS preflights (OPTIONS with
	// Access-Control-Request-Method), which any client can send without a
	// token: "answer" (the default) has a guard that requires a token
	// answer them itself, 204 without CORS grants; "forward" passes them
	// to the upstream as anonymous requests, for an upstream that answers
	// CORS itself and routes on the method. An optional guard always
	// forwards them.
	Preflight string `json:"preflight,omitempty"`

	// CSRFOff turns off the cross-site request protection: by default,
	// when the token came from a cookie, a request with an unsafe method
	// (POST, PUT, PATCH, DELETE, ...) is refused with 403 unless the
	// browser says it comes from this origin (Sec-Fetch-Site, Origin) or
	// from one of CSRFOrigins. Default: on.
	CSRFOff bool `json:"csrf_off,omitempty"`

	// CSRFOrigins are other origins (scheme://host[:port]) whose pages may
	// send unsafe requests with the cookie, e.g. an admin front end on a
	// sibling subdomain.
	CSRFOrigins []string `json:"csrf_origins,omitempty"`

	// Headers maps request header names to token claims (id, table, ds or
	// extras.<key>). The guard deletes these headers from every incoming
	// request and sets them from a verified token, so an upstream can
	// trust them.
	Headers map[string]string `json:"headers,omitempty"`

	// Redirect sends browser navigations (GET/HEAD wanting HTML, not
	// fetch/XHR) without a valid token to this login page, a path or an
	// http(s) URL, with ?return=<the requested path and query>; API
	// requests still get the 401 envelope. Default: none (always 401).
	Redirect string `json:"redirect,omitempty"`

	h *handlers.Guard
}

// RequireRule is one condition: the claim (id, table, ds or extras.<key>)
// must equal one of the values.
type RequireRule struct {
	// Claim is id, table, ds or extras.<key>.
	Claim string `json:"claim"`
	// Values are the accepted values; any one matches.
	Values []string `json:"values"`
}

// CaddyModule returns the Caddy module information.
func (GuardHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.xano_guard",
		New: func() caddy.Module { return new(GuardHandler) },
	}
}

// Provision fetches the xano app and builds the guard.
func (gh *GuardHandler) Provision(ctx caddy.Context) error {
	if len(gh.Tables) == 0 {
		gh.Tables = []string{DefaultTable}
	}
	app, err := xanoApp(ctx)
	if err != nil {
		return err
	}
	rules := make([]handlers.Rule, len(gh.Require))
	for i, r := range gh.Require {
		rules[i] = handlers.Rule{Claim: r.Claim, Values: r.Values}
	}
	cache, err := cacheMode(gh.Cache)
	if err != nil {
		return err
	}
	cookies := gh.Cookies
	if !gh.IgnoreSessionCookie {
		cookies = guardCookies(gh.Cookies)
	}
	gh.h = &handlers.Guard{
		Svc:              app.Service(),
		Tables:           gh.Tables,
		Optional:         gh.Optional,
		IgnoreInvalid:    gh.IgnoreInvalid,
		Require:          rules,
		Cookies:          cookies,
		Headers:          gh.Headers,
		Redirect:         gh.Redirect,
		DataSources:      gh.DataSources,
		Cache:            cache,
		ForwardPreflight: gh.Preflight == "forward",
		CSRFOff:          gh.CSRFOff,
		CSRFOrigins:      gh.CSRFOrigins,
	}
	return gh.h.Init()
}

// cacheMode maps the cache option to the guard's mode.
func cacheMode(s string) (handlers.CacheMode, error) {
	switch s {
	case "", "private":
		return handlers.CachePrivate, nil
	case "no_store":
		return handlers.CacheNoStore, nil
	case "off":
		return handlers.CacheOff, nil
	}
	return 0, fmt.Errorf("cache %q: want private, no_store or off", s)
}

// Validate checks the configuration.
func (gh *GuardHandler) Validate() error {
	if gh.IgnoreInvalid && !gh.Optional {
		return fmt.Errorf("ignore_invalid only makes sense with optional")
	}
	if gh.Preflight != "" && gh.Preflight != "answer" && gh.Preflight != "forward" {
		return fmt.Errorf("preflight %q: want answer or forward", gh.Preflight)
	}
	if gh.Redirect != "" {
		if err := handlers.CheckLoginURL(gh.Redirect); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (gh *GuardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return gh.h.ServeHTTP(w, r, next)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*GuardHandler)(nil)
	_ caddy.Validator             = (*GuardHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*GuardHandler)(nil)
)
