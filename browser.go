package xanoauth

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

// Browser features: the session cookie and login page of xano_auth, and
// the redirect-to-login of xano_guard: their config types and validation.
// Their Caddyfile syntax is parsed with the rest, in caddyfile.go.

// CookieConfig configures the session cookie that xano_auth sets on login
// and signup and deletes on logout. The guard reads it from browser
// navigations, which cannot carry an Authorization header.
type CookieConfig struct {
	// Name of the cookie. Default: xano_auth (which xano_guard reads
	// without configuration; give the guard `cookie <name>` for another).
	Name string `json:"name,omitempty"`
	// SameSite is strict, lax or none. Default: lax (sent on top-level
	// navigations from other sites, never on their background requests).
	SameSite string `json:"same_site,omitempty"`
	// Secure is on, off or auto. Default: auto: Secure, except over plain
	// HTTP to localhost, *.localhost or a loopback address (development).
	Secure string `json:"secure,omitempty"`
	// Domain attribute. Default: none (host-only, the safest).
	Domain string `json:"domain,omitempty"`
	// Path attribute. Default: /.
	Path string `json:"path,omitempty"`
}

// LoginPageConfig configures the built-in login page.
type LoginPageConfig struct {
	// Path serves the page there (it must be within xano_auth's matcher).
	// Default: HTML-wanting GETs of …/auth/login.
	Path string `json:"path,omitempty"`
	// LogoutPath is the page logout: it revokes the cookie's session,
	// deletes the cookie and redirects to the login page. Default:
	// <path>/logout. Needs Path.
	LogoutPath string `json:"logout_path,omitempty"`
	// Template is a file with a Go html/template replacing the built-in
	// page; it receives handlers.PageData. Read once at provision.
	Template string `json:"template,omitempty"`
}

// browser builds the handlers' browser features, or nil when neither a
// cookie nor a login page is configured.
func (ah *AuthHandler) browser() (*handlers.Browser, error) {
	if ah.Cookie == nil && ah.LoginPage == nil {
		return nil, nil
	}
	b := new(handlers.Browser)
	if c := ah.Cookie; c != nil {
		b.Cookie = handlers.SessionCookie{Name: c.Name, Domain: c.Domain, Path: c.Path}
		b.Cookie.SameSite = map[string]http.SameSite{
			"": http.SameSiteLaxMode, "lax": http.SameSiteLaxMode,
			"strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode,
		}[c.SameSite]
		b.Cookie.Secure = map[string]handlers.SecureMode{
			"": handlers.SecureAuto, "auto": handlers.SecureAuto,
			"on": handlers.SecureOn, "off": handlers.SecureOff,
		}[c.Secure]
	}
	if lp := ah.LoginPage; lp != nil {
		b.Page = &handlers.LoginPage{Path: lp.Path, LogoutPath: lp.LogoutPath}
		if lp.Template != "" {
			file := caddy.NewReplacer().ReplaceKnown(lp.Template, "")
			text, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("login_template: %v", err)
			}
			if b.Page.Template, err = handlers.ParseLoginTemplate(file, string(text)); err != nil {
				return nil, fmt.Errorf("login_template: %v", err)
			}
		}
	}
	return b, nil
}

// validateBrowser checks the cookie and login page options.
func (ah *AuthHandler) validateBrowser() error {
	if c := ah.Cookie; c != nil {
		if c.Name != "" {
			if err := (&http.Cookie{Name: c.Name, Value: "x"}).Valid(); err != nil {
				return fmt.Errorf("cookie: invalid name %q", c.Name)
			}
		}
		switch c.SameSite {
		case "", "lax", "strict", "none":
		default:
			return fmt.Errorf("cookie: same_site must be strict, lax or none, not %q", c.SameSite)
		}
		switch c.Secure {
		case "", "auto", "on", "off":
		default:
			return fmt.Errorf("cookie: secure must be on, off or auto, not %q", c.Secure)
		}
		if c.SameSite == "none" && c.Secure == "off" {
			return fmt.Errorf("cookie: same_site none needs Secure (browsers drop it otherwise)")
		}
		if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
			return fmt.Errorf("cookie: path must start with /")
		}
		if strings.ContainsAny(c.Domain+c.Path, ";, \t\r\n") {
			return fmt.Errorf("cookie: invalid domain or path")
		}
	}
	if lp := ah.LoginPage; lp != nil {
		for _, p := range []string{lp.Path, lp.LogoutPath} {
			if p != "" && !handlers.SafeReturn(p) {
				return fmt.Errorf("login_page: %q is not a path on this site", p)
			}
		}
		if lp.LogoutPath != "" && lp.Path == "" {
			return fmt.Errorf("logout_page needs login_page <path>")
		}
		if lp.Path != "" && lp.LogoutPath == lp.Path {
			return fmt.Errorf("logout_page cannot be the login page")
		}
	}
	return nil
}

// guardCookies is the guard's cookie list: the configured ones, then the
// session cookie xano_auth sets by default, so that a login page and a
// guarded static area work together without configuration.
func guardCookies(configured []string) []string {
	for _, c := range configured {
		if c == handlers.DefaultCookieName {
			return configured
		}
	}
	return append(append([]string{}, configured...), handlers.DefaultCookieName)
}
