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
// `authtoken` query parameter, then the configured cookies.
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
	// always read last, so a login page needs no guard configuration.
	Cookies []string `json:"cookies,omitempty"`

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
		rules[i] = handlers.Rule{Field: r.Claim, Values: r.Values}
	}
	gh.h = &handlers.Guard{
		Svc:           app.Service(),
		Tables:        gh.Tables,
		Optional:      gh.Optional,
		IgnoreInvalid: gh.IgnoreInvalid,
		Require:       rules,
		Cookies:       guardCookies(gh.Cookies),
		Headers:       gh.Headers,
		Redirect:      gh.Redirect,
	}
	if err := gh.h.Init(); err != nil {
		return fmt.Errorf("xano_guard: %v", err)
	}
	return nil
}

// Validate checks the configuration.
func (gh *GuardHandler) Validate() error {
	if gh.IgnoreInvalid && !gh.Optional {
		return fmt.Errorf("xano_guard: ignore_invalid only makes sense with optional")
	}
	if gh.Redirect != "" {
		if err := handlers.CheckLoginURL(gh.Redirect); err != nil {
			return fmt.Errorf("xano_guard: %v", err)
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
