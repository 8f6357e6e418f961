package xanoauth

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

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
