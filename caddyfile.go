package xanoauth

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/handlers"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("xano", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("xano_auth", parseAuth)
	httpcaddyfile.RegisterHandlerDirective("xano_guard", parseGuard)
	// Both run before basic_auth and every handler that serves content, and
	// xano_auth runs before xano_guard, so that a broad guard never covers
	// the login endpoint by accident. Users need no `order` line.
	httpcaddyfile.RegisterDirectiveOrder("xano_auth", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("xano_guard", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption parses the `xano` global option:
//
//	xano {
//		storage bbolt <path> {
//			lock_timeout <duration>
//		}
//		key <key>
//		data_sources <name...>
//		leeway <duration>
//		hash_concurrency <n>
//		hash_concurrency_busy <n>
//		sweep_interval <duration>
//		rate_limit off | {
//			login_ip|login_account|signup_ip|refresh_ip <events> <window> | off
//			max_keys <n>
//			off
//		}
//		table <name> {
//			fields <name...>
//			extras <name...>
//			default <field> <value>
//			token_ttl <duration>
//			refresh_ttl <duration>
//			refresh_grace <duration>
//			signup open|closed
//			password {
//				min_length <n>
//				min_letters <n>
//				min_digits <n>
//				max_length <n>
//			}
//		}
//	}
//
// `key` may repeat (newest first); `table` and `default` may repeat with
// different names; every other sub-directive may appear once.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		// Caddy would keep only the last block, silently dropping the
		// other's settings (a `signup closed`, say).
		return nil, d.Err("the xano global option is given twice: merge the blocks into one")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "xano", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the `xano` global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt != "key" && opt != "table" {
			if seen[opt] {
				return d.Errf("duplicate xano option %q", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "storage":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("usage: storage bbolt [<path>]")
			}
			a.Storage = &StorageConfig{Type: args[0]}
			if len(args) == 2 {
				a.Storage.Path = args[1]
			}
			sub := map[string]bool{}
			for d.NextBlock(1) {
				so := d.Val()
				if sub[so] {
					return d.Errf("duplicate storage option %q", so)
				}
				sub[so] = true
				switch so {
				case "lock_timeout":
					dur, err := parsePositiveDuration(d, "lock_timeout")
					if err != nil {
						return err
					}
					a.Storage.LockTimeout = dur
				default:
					return d.Errf("unknown storage option %q", so)
				}
			}
		case "key":
			var k string
			if !d.AllArgs(&k) {
				return d.ArgErr()
			}
			a.Keys = append(a.Keys, k)
		case "data_sources":
			a.DataSources = d.RemainingArgs()
			if len(a.DataSources) == 0 {
				return d.ArgErr()
			}
		case "leeway":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			a.Leeway = dur
		case "sweep_interval":
			dur, err := parsePositiveDuration(d, "sweep_interval")
			if err != nil {
				return err
			}
			a.SweepInterval = dur
		case "hash_concurrency":
			n, err := parseInt(d)
			if err != nil {
				return err
			}
			a.HashConcurrency = n
		case "hash_concurrency_busy":
			n, err := parseInt(d)
			if err != nil {
				return err
			}
			a.HashConcurrencyBusy = n
		case "table":
			if err := a.parseTable(d); err != nil {
				return err
			}
		case "rate_limit":
			if err := a.parseRateLimit(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown xano option %q", opt)
		}
	}
	return nil
}

func (a *App) parseTable(d *caddyfile.Dispenser) error {
	var name string
	if !d.NextArg() {
		return d.ArgErr()
	}
	name = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if a.Tables == nil {
		a.Tables = map[string]*TableConfig{}
	}
	if _, dup := a.Tables[name]; dup {
		return d.Errf("duplicate table %q", name)
	}
	tc := new(TableConfig)
	a.Tables[name] = tc
	seen := map[string]bool{}
	for d.NextBlock(1) {
		opt := d.Val()
		if opt != "default" {
			if seen[opt] {
				return d.Errf("duplicate table option %q", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "fields":
			tc.Fields = d.RemainingArgs()
			if len(tc.Fields) == 0 {
				return d.ArgErr()
			}
		case "extras":
			tc.Extras = d.RemainingArgs()
			if len(tc.Extras) == 0 {
				return d.ArgErr()
			}
		case "default":
			var field, value string
			if !d.AllArgs(&field, &value) {
				return d.ArgErr()
			}
			if tc.Defaults == nil {
				tc.Defaults = map[string]string{}
			}
			if _, dup := tc.Defaults[field]; dup {
				return d.Errf("duplicate default for %q", field)
			}
			tc.Defaults[field] = value
		case "token_ttl":
			dur, err := parsePositiveDuration(d, "token_ttl")
			if err != nil {
				return err
			}
			tc.TokenTTL = dur
		case "refresh_ttl":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			tc.RefreshTTL = dur
		case "refresh_grace":
			dur, err := parsePositiveDuration(d, "refresh_grace")
			if err != nil {
				return err
			}
			tc.RefreshGrace = dur
		case "signup":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			if v != "open" && v != "closed" {
				return d.Errf("signup must be open or closed, not %q", v)
			}
			tc.Signup = v
		case "password":
			if d.NextArg() {
				return d.ArgErr()
			}
			tc.Password = new(PasswordPolicy)
			sub := map[string]bool{}
			for d.NextBlock(2) {
				po := d.Val()
				if sub[po] {
					return d.Errf("duplicate password option %q", po)
				}
				sub[po] = true
				n, err := parseInt(d)
				if err != nil {
					return err
				}
				switch po {
				case "min_length":
					tc.Password.MinLength = &n
				case "min_letters":
					tc.Password.MinLetters = &n
				case "min_digits":
					tc.Password.MinDigits = &n
				case "max_length":
					tc.Password.MaxLength = &n
				default:
					return d.Errf("unknown password option %q", po)
				}
			}
		default:
			return d.Errf("unknown table option %q", opt)
		}
	}
	return nil
}

// parseAuth parses the xano_auth directive:
//
//	xano_auth [<matcher>] {
//		table <name>
//		max_body <size>
//		access_token
//		cors off|<origin...>
//		cookie [<name>] {
//			same_site strict|lax|none
//			secure on|off|auto
//			domain <domain>
//			path <path>
//		}
//		login_page [<path>]
//		logout_page <path>
//		login_template <file>
//	}
func parseAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	ah := new(AuthHandler)
	err := ah.UnmarshalCaddyfile(h.Dispenser)
	return ah, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (ah *AuthHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("duplicate xano_auth option %q", opt)
		}
		seen[opt] = true
		switch opt {
		case "table":
			if !d.AllArgs(&ah.Table) {
				return d.ArgErr()
			}
		case "max_body":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 || n > 1<<30 {
				return d.Errf("max_body: invalid size %q", s)
			}
			ah.MaxBodySize = int64(n)
		case "access_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			ah.AccessToken = true
		case "cors":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if len(args) == 1 && args[0] == "off" {
				ah.DisableCORS = true
				break
			}
			for _, o := range args {
				if err := handlers.CheckOrigin(o); err != nil {
					return d.Errf("cors: %v", err)
				}
			}
			ah.CORSOrigins = args
		case "cookie", "login_page", "logout_page", "login_template":
			if err := ah.parseBrowserOption(d, opt); err != nil {
				return err
			}
		default:
			return d.Errf("unknown xano_auth option %q", opt)
		}
	}
	return nil
}

// parseGuard parses the xano_guard directive:
//
//	xano_guard [<matcher>] {
//		table <name...>
//		optional [ignore_invalid]
//		require <claim> <value...>
//		cookie <name...>
//		header <field> <claim>
//		redirect <login-url>
//		data_source <name...>
//		session_cookie off
//		cache private|no_store|off
//		preflight answer|forward
//		csrf off|<origin...>
//	}
//
// `require`, `cookie`, `header` and `csrf <origin...>` may repeat; claims
// are id, table, ds or extras.<key>.
func parseGuard(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	gh := new(GuardHandler)
	err := gh.UnmarshalCaddyfile(h.Dispenser)
	return gh, err
}

// UnmarshalCaddyfile sets up the guard from Caddyfile tokens.
func (gh *GuardHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "table" || opt == "optional" || opt == "data_source" || opt == "session_cookie" || opt == "cache" || opt == "preflight" {
			if seen[opt] {
				return d.Errf("duplicate xano_guard option %q", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "table":
			gh.Tables = d.RemainingArgs()
			if len(gh.Tables) == 0 {
				return d.ArgErr()
			}
		case "optional":
			gh.Optional = true
			if d.NextArg() {
				if d.Val() != "ignore_invalid" {
					return d.Errf("optional: unknown argument %q (want ignore_invalid)", d.Val())
				}
				gh.IgnoreInvalid = true
				if d.NextArg() {
					return d.ArgErr()
				}
			}
		case "require":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("usage: require <claim> <value...>")
			}
			gh.Require = append(gh.Require, RequireRule{Claim: args[0], Values: args[1:]})
		case "cookie":
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.ArgErr()
			}
			gh.Cookies = append(gh.Cookies, names...)
		case "header":
			var field, claim string
			if !d.AllArgs(&field, &claim) {
				return d.ArgErr()
			}
			if gh.Headers == nil {
				gh.Headers = map[string]string{}
			}
			for h := range gh.Headers {
				if http.CanonicalHeaderKey(h) == http.CanonicalHeaderKey(field) {
					return d.Errf("duplicate header %q (header names ignore case)", field)
				}
			}
			gh.Headers[field] = claim
		case "redirect":
			if err := gh.parseRedirect(d); err != nil {
				return err
			}
		case "data_source":
			gh.DataSources = d.RemainingArgs()
			if len(gh.DataSources) == 0 {
				return d.ArgErr()
			}
		case "session_cookie":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			if v != "off" {
				return d.Errf("session_cookie: unknown argument %q (want off)", v)
			}
			gh.IgnoreSessionCookie = true
		case "cache":
			if !d.AllArgs(&gh.Cache) {
				return d.ArgErr()
			}
			if _, err := cacheMode(gh.Cache); err != nil {
				return d.Err(err.Error())
			}
		case "preflight":
			if !d.AllArgs(&gh.Preflight) {
				return d.ArgErr()
			}
			if gh.Preflight != "answer" && gh.Preflight != "forward" {
				return d.Errf("preflight: unknown argument %q (want answer or forward)", gh.Preflight)
			}
		case "csrf":
			args := d.RemainingArgs()
			switch {
			case len(args) == 0:
				return d.ArgErr()
			case len(args) == 1 && args[0] == "off":
				if gh.CSRFOff || len(gh.CSRFOrigins) > 0 {
					return d.Err("csrf off cannot be combined with other csrf lines")
				}
				gh.CSRFOff = true
			default:
				if gh.CSRFOff {
					return d.Err("csrf off cannot be combined with other csrf lines")
				}
				for _, o := range args {
					if err := handlers.CheckOrigin(o); err != nil {
						return d.Errf("csrf: %v", err)
					}
				}
				gh.CSRFOrigins = append(gh.CSRFOrigins, args...)
			}
		default:
			return d.Errf("unknown xano_guard option %q", opt)
		}
	}
	return nil
}

func parseDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	var s string
	if !d.AllArgs(&s) {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return 0, d.Errf("invalid duration %q", s)
	}
	return caddy.Duration(dur), nil
}

// parsePositiveDuration is parseDuration for options where 0 would mean
// the default: written out, it is a mistake.
func parsePositiveDuration(d *caddyfile.Dispenser, opt string) (caddy.Duration, error) {
	dur, err := parseDuration(d)
	if err == nil && dur == 0 {
		return 0, d.Errf("%s must be positive (0 would mean the default)", opt)
	}
	return dur, err
}

func parseInt(d *caddyfile.Dispenser) (int, error) {
	var s string
	if !d.AllArgs(&s) {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, d.Errf("invalid number %q", s)
	}
	return n, nil
}

// parseRateLimit parses the `rate_limit` block of the xano global option:
//
//	rate_limit off
//	rate_limit {
//		login_ip      <events> <window> | off    # default 20 5m
//		login_account <events> <window> | off    # default 10 15m
//		signup_ip     <events> <window> | off    # default 10 1h
//		refresh_ip    <events> <window> | off    # default 60 1m
//		max_keys      <n>                        # default 100000
//		off
//	}
//
// Limits not named keep their defaults. Each sub-directive may appear once.
func (a *App) parseRateLimit(d *caddyfile.Dispenser) error {
	rc := new(RateLimitConfig)
	a.RateLimit = rc
	if d.NextArg() {
		if d.Val() != "off" {
			return d.Errf("rate_limit: unknown argument %q (want off or a block)", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		rc.Off = true
		if d.NextBlock(1) {
			return d.Err("rate_limit off takes no block")
		}
		return nil
	}
	seen := map[string]bool{}
	for d.NextBlock(1) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("duplicate rate_limit option %q", opt)
		}
		seen[opt] = true
		switch opt {
		case "login_ip", "login_account", "signup_ip", "refresh_ip":
			rl, err := parseOneRateLimit(d, opt)
			if err != nil {
				return err
			}
			switch opt {
			case "login_ip":
				rc.LoginIP = rl
			case "login_account":
				rc.LoginAccount = rl
			case "signup_ip":
				rc.SignupIP = rl
			case "refresh_ip":
				rc.RefreshIP = rl
			}
		case "max_keys":
			n, err := parseInt(d)
			if err != nil {
				return err
			}
			if n < 1 {
				return d.Errf("max_keys must be at least 1")
			}
			rc.MaxKeys = n
		case "off":
			if d.NextArg() {
				return d.ArgErr()
			}
			rc.Off = true
		default:
			return d.Errf("unknown rate_limit option %q", opt)
		}
	}
	return nil
}

// parseOneRateLimit parses `<events> <window>` or `off` for option name.
func parseOneRateLimit(d *caddyfile.Dispenser, name string) (*RateLimit, error) {
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "off":
		return &RateLimit{Off: true}, nil
	case len(args) != 2:
		return nil, d.Errf("usage: %s <events> <window> | off", name)
	}
	events, err := strconv.Atoi(args[0])
	if err != nil || events < 1 {
		return nil, d.Errf("%s: invalid number of events %q", name, args[0])
	}
	window, err := caddy.ParseDuration(args[1])
	if err != nil || window < time.Second {
		return nil, d.Errf("%s: invalid window %q (at least 1s)", name, args[1])
	}
	return &RateLimit{Events: events, Window: caddy.Duration(window)}, nil
}

// parseBrowserOption parses xano_auth's browser options:
//
//	cookie [<name>] {
//		same_site strict|lax|none
//		secure on|off|auto
//		domain <domain>
//		path <path>
//	}
//	login_page [<path>]
//	logout_page <path>
//	login_template <file>
func (ah *AuthHandler) parseBrowserOption(d *caddyfile.Dispenser, opt string) error {
	page := func() *LoginPageConfig {
		if ah.LoginPage == nil {
			ah.LoginPage = new(LoginPageConfig)
		}
		return ah.LoginPage
	}
	switch opt {
	case "cookie":
		ah.Cookie = new(CookieConfig)
		if d.NextArg() {
			ah.Cookie.Name = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		}
		seen := map[string]bool{}
		for d.NextBlock(1) {
			sub := d.Val()
			if seen[sub] {
				return d.Errf("duplicate cookie option %q", sub)
			}
			seen[sub] = true
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			switch sub {
			case "same_site":
				if v != "strict" && v != "lax" && v != "none" {
					return d.Errf("same_site must be strict, lax or none, not %q", v)
				}
				ah.Cookie.SameSite = v
			case "secure":
				if v != "on" && v != "off" && v != "auto" {
					return d.Errf("secure must be on, off or auto, not %q", v)
				}
				ah.Cookie.Secure = v
			case "domain":
				ah.Cookie.Domain = v
			case "path":
				if !strings.HasPrefix(v, "/") {
					return d.Errf("cookie path must start with /, not %q", v)
				}
				ah.Cookie.Path = v
			default:
				return d.Errf("unknown cookie option %q", sub)
			}
		}
	case "login_page":
		lp := page()
		if d.NextArg() {
			lp.Path = d.Val()
			if !handlers.SafeReturn(lp.Path) {
				return d.Errf("login_page must be a path starting with /, not %q", lp.Path)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		}
	case "logout_page":
		lp := page()
		if !d.AllArgs(&lp.LogoutPath) {
			return d.ArgErr()
		}
		if !handlers.SafeReturn(lp.LogoutPath) {
			return d.Errf("logout_page must be a path starting with /, not %q", lp.LogoutPath)
		}
	case "login_template":
		lp := page()
		if !d.AllArgs(&lp.Template) {
			return d.ArgErr()
		}
	}
	return nil
}

// parseRedirect parses xano_guard's `redirect <login-url>`.
func (gh *GuardHandler) parseRedirect(d *caddyfile.Dispenser) error {
	if gh.Redirect != "" {
		return d.Errf("duplicate xano_guard option %q", "redirect")
	}
	if !d.AllArgs(&gh.Redirect) {
		return d.ArgErr()
	}
	if err := handlers.CheckLoginURL(gh.Redirect); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*AuthHandler)(nil)
	_ caddyfile.Unmarshaler = (*GuardHandler)(nil)
)
