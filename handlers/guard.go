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
	// DataSources are the data sources whose tokens pass; empty: only the
	// service's default one (the first), so that a user of a second data
	// source (test, staging) is never taken for a live user of the same id.
	DataSources []string
	// Cache decides the Cache-Control of responses to requests that passed
	// with a token (guardcache.go).
	Cache CacheMode
	// ForwardPreflight passes CORS preflights on to the next handler, as
	// anonymous requests; otherwise a guard that requires a token answers
	// them itself (answerPreflight).
	ForwardPreflight bool
	// CSRFOff turns off the refusal of unsafe methods whose token came from
	// a cookie and whose request came from another origin (guardcsrf.go).
	CSRFOff bool
	// CSRFOrigins are other origins whose pages may send such requests.
	CSRFOrigins []string

	// identity lists the canonical names of Headers, scrubbed from the
	// client's request (guardidentity.go).
	identity []string

	extraKeys []string
	// extraPlaceholders[i] is the placeholder of extraKeys[i], built once.
	extraPlaceholders []string
	// loginPage is Redirect when that is a plain path on this site, which
	// passes the guard as anonymous (isLoginPage); empty otherwise.
	loginPage string
}

// Rule is one `require` condition: the claim named by Claim ("id",
// "table", "ds" or "extras.<key>") must equal one of Values. It mirrors
// the root's RequireRule, names included.
type Rule struct {
	Claim  string
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
	if len(g.DataSources) == 0 {
		g.DataSources = g.Svc.DataSources[:1]
	}
	for _, ds := range g.DataSources {
		if !slices.Contains(g.Svc.DataSources, ds) {
			return fmt.Errorf("data_source %q is not one of the xano app's data_sources %v", ds, g.Svc.DataSources)
		}
	}
	for _, r := range g.Require {
		if err := g.checkClaimName(r.Claim); err != nil {
			return fmt.Errorf("require: %v", err)
		}
		if len(r.Values) == 0 {
			return fmt.Errorf("require %s: no values", r.Claim)
		}
	}
	if err := g.checkIDsDistinct(); err != nil {
		return err
	}
	if len(g.Require) > 0 && g.Optional {
		// Anonymous requests would pass while a signed-in user who fails
		// the rule is refused: the rule would keep out only those it is
		// meant to let in.
		return fmt.Errorf("require cannot be combined with optional: anonymous requests would pass the rule that signed-in users fail")
	}
	g.identity = g.identity[:0]
	for h, claim := range g.Headers {
		if err := g.checkClaimName(claim); err != nil {
			return fmt.Errorf("header %s: %v", h, err)
		}
		name := http.CanonicalHeaderKey(h)
		if slices.Contains(g.identity, name) {
			// JSON keys differ by case where header names do not: which
			// claim would be sent depends on map order.
			return fmt.Errorf("header %s: given twice (header names ignore case)", h)
		}
		g.identity = append(g.identity, name)
	}
	slices.Sort(g.identity)
	for _, o := range g.CSRFOrigins {
		if err := CheckOrigin(o); err != nil {
			return fmt.Errorf("csrf: %v", err)
		}
	}
	return nil
}

// checkIDsDistinct refuses a guard that would let ids of different tables
// or data sources be confused. Ids count per table and per data source:
// user 1 of "test", where anyone may sign up, is not user 1 of "live". An
// upstream that gets the id alone from a guard that accepts several could
// not tell them apart, and a rule on the id alone would let both in.
func (g *Guard) checkIDsDistinct() error {
	headers := map[string]bool{}
	for _, claim := range g.Headers {
		headers[claim] = true
	}
	rules := map[string]bool{}
	for _, r := range g.Require {
		rules[r.Claim] = true
	}
	for _, x := range []struct {
		claim, what, header string
		accepted            []string
	}{
		{"table", "tables", "X-User-Table", g.Tables},
		{"ds", "data sources", "X-User-Ds", g.DataSources},
	} {
		if len(x.accepted) < 2 {
			continue
		}
		if headers["id"] && !headers[x.claim] {
			return fmt.Errorf("header with claim id: this guard accepts the tokens of %s %v, whose ids overlap; also forward the %s (header %s %s)", x.what, x.accepted, x.claim, x.header, x.claim)
		}
		if rules["id"] && !rules[x.claim] {
			return fmt.Errorf("require id: this guard accepts the tokens of %s %v, whose ids overlap; add a rule on %s (require %s <name>)", x.what, x.accepted, x.claim, x.claim)
		}
	}
	return nil
}

// checkClaimName validates a claim of require or header: an extra must be
// one that a table of this guard declares, or its placeholder would never
// be set, and the rule always fail or the header never be sent.
func (g *Guard) checkClaimName(name string) error {
	switch {
	case name == "id", name == "table", name == "ds":
		return nil
	case strings.HasPrefix(name, "extras.") && len(name) > len("extras."):
		k := strings.TrimPrefix(name, "extras.")
		if !slices.Contains(g.extraKeys, k) {
			return fmt.Errorf("claim %q: no table of this guard (%s) declares the extra %q", name, strings.Join(g.Tables, ", "), k)
		}
		return nil
	}
	return fmt.Errorf("unknown claim %q (want id, table, ds or extras.<key>)", name)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Scrub before anything else: a forged identity header must not
	// survive any path through this handler (cf. GHSA-7r4p-vjf4-gxv4),
	// the preflight's included.
	g.scrubIdentity(r)
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if IsPreflight(r) {
		if !g.ForwardPreflight && !g.Optional {
			// Any client can send one: a guard that requires a token
			// must not hand a request without one to an upstream that
			// may not look at the method.
			answerPreflight(w)
			return nil
		}
		// Browsers send preflights without credentials, so one passes
		// as anonymous: an upstream that answers it finds empty
		// placeholders, never the literal {http.auth.user.id}.
		g.setPlaceholders(repl, nil)
		return next.ServeHTTP(w, r)
	}

	c, fromCookie, e := g.authenticate(r)
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
	if fromCookie && !g.CSRFOff && !g.cookieRequestOK(r) {
		WriteError(w, accessDenied(MsgCrossSiteCookie))
		return nil
	}
	for _, rule := range g.Require {
		v, ok := claimValue(c, rule.Claim)
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
	return next.ServeHTTP(g.cacheWriter(w), r)
}

// authenticate finds the request's token as Xano does and verifies it: of
// one of the guard's tables and data sources, and of the data source the
// request names. fromCookie tells whether a cookie carried it, which a
// browser sends on requests that other sites' pages make. (nil, false,
// nil) is a request without a token.
func (g *Guard) authenticate(r *http.Request) (c *token.Claims, fromCookie bool, e *Error) {
	raw, fromCookie, found := findToken(r, g.Cookies)
	if !found {
		return nil, false, nil
	}
	ds, e := g.Svc.dataSource(r)
	if e != nil {
		return nil, fromCookie, e
	}
	c, e = g.Svc.checkToken(raw, ds, g.Tables)
	if e == nil && !slices.Contains(g.DataSources, c.DS) {
		return nil, fromCookie, unauthorized(MsgOtherDataSource)
	}
	return c, fromCookie, e
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

// findToken is ExtractToken that also tells whether the token came from a
// cookie.
func findToken(r *http.Request, cookies []string) (raw string, fromCookie, found bool) {
	xano := header(r, hdrXanoAuth)
	if only := strings.TrimSpace(header(r, hdrXanoAuthOnly)); strings.EqualFold(only, "true") || only == "1" {
		raw, found = bearer(xano, true)
		return raw, false, found
	}
	if t, ok := bearer(xano, true); ok {
		return t, false, true
	}
	if t, ok := bearer(header(r, hdrAuthorization), false); ok {
		return t, false, true
	}
	if r.URL.RawQuery != "" {
		if t := strings.TrimSpace(r.URL.Query().Get("authtoken")); t != "" {
			return t, false, true
		}
	}
	for _, name := range cookies {
		if c, err := r.Cookie(name); err == nil {
			if t, ok := bearer(c.Value, true); ok {
				return t, true, true
			}
		}
	}
	return "", false, false
}

// answerPreflight is a guard's answer to a CORS preflight: 204 without
// any Access-Control-Allow-* header, so that a browser sends no
// cross-origin request that needs one; same-origin pages send no
// preflights. A route called from other origins answers CORS in the
// upstream (preflight forward) or in Caddy before the guard.
func answerPreflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}
