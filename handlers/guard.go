package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/token"
)

// Guard lets a request through only with a valid token of one of its
// tables (or anonymously, when Optional), and exposes the user to the rest
// of the route as placeholders:
//
//	{http.auth.user.id}            the user id
//	{http.auth.user.table}         the token's table
//	{http.auth.user.ds}            the token's data source
//	{http.auth.user.extras.<key>}  one extra sealed in the token
//
// On an anonymous pass they are set to empty strings, because Caddy leaves
// unknown placeholders as literal text and an upstream must never receive
// "{http.auth.user.id}" as a user id.
type Guard struct {
	Svc *Service
	// Tables whose tokens are accepted.
	Tables []string
	// Optional lets requests without a token through anonymously.
	Optional bool
	// IgnoreInvalid, with Optional, treats an invalid or expired token as
	// no token instead of rejecting the request.
	IgnoreInvalid bool
	// Require lists rules that must all hold (403 otherwise).
	Require []Rule
	// Cookies are read, in order, after the headers and ?authtoken=.
	Cookies []string
	// Headers maps request header names to claims ("id", "table", "ds",
	// "extras.<key>"); the guard deletes them from the client's request and
	// sets them from the token, so an upstream can trust them.
	Headers map[string]string
	// Redirect, when set, sends navigations without a valid token to this
	// login page (with ?return=) instead of answering 401 (redirect.go).
	Redirect string

	extraKeys []string
	// extraPlaceholders[i] is the placeholder of extraKeys[i], built once.
	extraPlaceholders []string
	// loginPage is Redirect when that is a plain path on this site, which
	// passes the guard as anonymous (isLoginPage); empty otherwise.
	loginPage string
}

// Rule is one `require` condition: the claim named by Field ("id", "table",
// "ds" or "extras.<key>") must equal one of Values.
type Rule struct {
	Field  string
	Values []string
}

// Init validates the guard against the service's tables and precomputes
// what every request needs, so that ServeHTTP does no setup work.
func (g *Guard) Init() error {
	if len(g.Tables) == 0 {
		return fmt.Errorf("guard needs at least one table")
	}
	g.extraKeys, g.extraPlaceholders = nil, nil
	g.loginPage = ""
	if strings.HasPrefix(g.Redirect, "/") && !strings.ContainsAny(g.Redirect, "?#") {
		g.loginPage = g.Redirect
	}
	for _, name := range g.Tables {
		t, ok := g.Svc.Tables[name]
		if !ok {
			return fmt.Errorf("unknown table %q", name)
		}
		for _, k := range t.Extras {
			if !slices.Contains(g.extraKeys, k) {
				g.extraKeys = append(g.extraKeys, k)
				g.extraPlaceholders = append(g.extraPlaceholders, extrasPlaceholder+k)
			}
		}
	}
	for _, r := range g.Require {
		if err := checkClaimName(r.Field); err != nil {
			return fmt.Errorf("require: %v", err)
		}
		if len(r.Values) == 0 {
			return fmt.Errorf("require %s: no values", r.Field)
		}
	}
	for h, claim := range g.Headers {
		if err := checkClaimName(claim); err != nil {
			return fmt.Errorf("header %s: %v", h, err)
		}
	}
	return nil
}

func checkClaimName(name string) error {
	switch {
	case name == "id", name == "table", name == "ds":
		return nil
	case strings.HasPrefix(name, "extras.") && len(name) > len("extras."):
		return nil
	}
	return fmt.Errorf("unknown claim %q (want id, table, ds or extras.<key>)", name)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Delete before anything else: a forged identity header must not
	// survive any path through this handler (cf. GHSA-7r4p-vjf4-gxv4),
	// the preflight's included.
	for h := range g.Headers {
		r.Header.Del(h)
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if IsPreflight(r) {
		// Browsers send preflights without credentials, so one passes
		// as anonymous: an upstream that answers it finds empty
		// placeholders, never the literal {http.auth.user.id}.
		g.setPlaceholders(repl, nil)
		return next.ServeHTTP(w, r)
	}

	c, e := g.Svc.authenticate(r, g.Cookies, g.Tables)
	if e != nil && e.Status == http.StatusUnauthorized && (g.Optional && g.IgnoreInvalid || g.isLoginPage(r)) {
		c, e = nil, nil
	}
	if e != nil {
		g.reject(w, r, e)
		return nil
	}
	if c == nil {
		if !g.Optional && !g.isLoginPage(r) {
			g.reject(w, r, unauthorized(MsgAuthRequired))
			return nil
		}
		g.setPlaceholders(repl, nil)
		return next.ServeHTTP(w, r)
	}
	for _, rule := range g.Require {
		v, ok := claimValue(c, rule.Field)
		if !ok || !slices.Contains(rule.Values, v) {
			WriteError(w, accessDenied(MsgAccessDenied))
			return nil
		}
	}
	g.setPlaceholders(repl, c)
	for h, claim := range g.Headers {
		if v, ok := claimValue(c, claim); ok {
			r.Header.Set(h, v)
		}
	}
	return next.ServeHTTP(w, r)
}

// setPlaceholders publishes c, or empty values for an anonymous request.
func (g *Guard) setPlaceholders(repl *caddy.Replacer, c *token.Claims) {
	if repl == nil {
		return
	}
	if c == nil {
		repl.Set("http.auth.user.id", "")
		repl.Set("http.auth.user.table", "")
		repl.Set("http.auth.user.ds", "")
		for _, p := range g.extraPlaceholders {
			repl.Set(p, "")
		}
		return
	}
	repl.Set("http.auth.user.id", strconv.FormatInt(c.ID, 10))
	repl.Set("http.auth.user.table", c.Table)
	repl.Set("http.auth.user.ds", c.DS)
	for i, k := range g.extraKeys {
		v := ""
		if x, ok := c.Extras[k]; ok {
			v = stringify(x)
		}
		repl.Set(g.extraPlaceholders[i], v)
	}
	// Extras the guard's tables do not declare (any longer) are published
	// too: the token carries them.
	for k, x := range c.Extras {
		if !slices.Contains(g.extraKeys, k) {
			repl.Set(extrasPlaceholder+k, stringify(x))
		}
	}
}

const extrasPlaceholder = "http.auth.user.extras."

// claimValue renders one claim as text for rules, headers and placeholders.
func claimValue(c *token.Claims, name string) (string, bool) {
	switch name {
	case "id":
		return strconv.FormatInt(c.ID, 10), true
	case "table":
		return c.Table, true
	case "ds":
		return c.DS, true
	}
	v, ok := c.Extras[strings.TrimPrefix(name, "extras.")]
	if !ok || v == nil {
		return "", false
	}
	return stringify(v), true
}

func stringify(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// Interface guards
var _ caddyhttp.MiddlewareHandler = (*Guard)(nil)
