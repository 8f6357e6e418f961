package xanoauth

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

// AuthHandler serves Xano's auth endpoints for one table: POST
// …/auth/signup, POST …/auth/login and GET …/auth/me, matched by path
// suffix under the handler's matcher (so /api:abc123/auth/login works as on
// Xano). Other paths pass to the next handler.
type AuthHandler struct {
	// Table whose users these endpoints sign up and log in. Default: user.
	Table string `json:"table,omitempty"`

	// MaxBodySize limits request bodies in bytes; larger ones are refused
	// with 413. Default: 65536.
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// AccessToken also returns the token as `accessToken` next to
	// `authToken` (some front ends read that name). Default: off.
	AccessToken bool `json:"access_token,omitempty"`

	// CORSOrigins restricts which origins may call the endpoints from a
	// browser. Default: any origin, with credentials, as on Xano.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// DisableCORS leaves CORS headers and preflights to other handlers.
	DisableCORS bool `json:"disable_cors,omitempty"`

	// Cookie makes login and signup also set the token in an HttpOnly
	// session cookie, for browser navigation (see browser.go). Default:
	// off, unless LoginPage is set.
	Cookie *CookieConfig `json:"cookie,omitempty"`

	// LoginPage serves a built-in (or templated) login page with a logout
	// page, using the session cookie. Default: off.
	LoginPage *LoginPageConfig `json:"login_page,omitempty"`

	h *handlers.Auth
}

// CaddyModule returns the Caddy module information.
func (AuthHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.xano_auth",
		New: func() caddy.Module { return new(AuthHandler) },
	}
}

// Provision fetches the xano app (provisioning a default one if the config
// has none) and builds the endpoint handler.
func (ah *AuthHandler) Provision(ctx caddy.Context) error {
	if ah.Table == "" {
		ah.Table = DefaultTable
	}
	if ah.MaxBodySize == 0 {
		ah.MaxBodySize = handlers.DefaultMaxBody
	}
	app, err := xanoApp(ctx)
	if err != nil {
		return err
	}
	svc := app.Service()
	if _, ok := svc.Tables[ah.Table]; !ok {
		return fmt.Errorf("unknown table %q (declare it in the xano global option)", ah.Table)
	}
	ah.h = &handlers.Auth{
		Svc:               svc,
		Table:             ah.Table,
		MaxBody:           ah.MaxBodySize,
		MirrorAccessToken: ah.AccessToken,
		CORS:              handlers.CORS{Origins: ah.CORSOrigins, Disabled: ah.DisableCORS},
	}
	if ah.h.Browser, err = ah.browser(); err != nil {
		return err
	}
	return nil
}

// Validate checks the configuration.
func (ah *AuthHandler) Validate() error {
	if ah.MaxBodySize < 0 || ah.MaxBodySize > 1<<30 {
		return fmt.Errorf("max_body_size %d: want at most 1 GiB (1073741824), and not negative", ah.MaxBodySize)
	}
	for _, o := range ah.CORSOrigins {
		if err := handlers.CheckOrigin(o); err != nil {
			return fmt.Errorf("cors: %v", err)
		}
	}
	if err := ah.validateBrowser(); err != nil {
		return err
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (ah *AuthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return ah.h.ServeHTTP(w, r, next)
}

// xanoApp returns the config's xano app.
func xanoApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("xano")
	if err != nil {
		return nil, err
	}
	app, ok := v.(*App)
	if !ok || app.svc == nil {
		return nil, fmt.Errorf("xano app is not provisioned")
	}
	return app, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*AuthHandler)(nil)
	_ caddy.Validator             = (*AuthHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*AuthHandler)(nil)
)
