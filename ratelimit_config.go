package xanoauth

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/ratelimit"
)

// RateLimitConfig configures the rate limits of the auth endpoints. Every
// limit is on by default; each is "at most Events per Window" in a sliding
// window (see package ratelimit), checked before any password hashing, and
// answered with 429 ERROR_CODE_TOO_MANY_REQUESTS and a Retry-After header.
// Client addresses are Caddy's client IP, so behind a proxy configure the
// server's trusted_proxies; IPv6 addresses count per /64.
type RateLimitConfig struct {
	// Off turns every limit off.
	Off bool `json:"off,omitempty"`

	// LoginIP limits failed logins per client address, whatever the
	// account. An attempt counts from its admission, before its password
	// is hashed, and is given back if it succeeds, so parallel attempts
	// cannot exceed it. Default: 20 per 5m.
	LoginIP *RateLimit `json:"login_ip,omitempty"`

	// LoginAccount limits failed logins per account (email, table and
	// data source) and client address, counted from admission like
	// LoginIP. It is per address so that strangers failing on purpose
	// cannot lock the owner out. Default: 10 per 15m.
	LoginAccount *RateLimit `json:"login_account,omitempty"`

	// SignupIP limits signups per client address, counting those that
	// pass input validation (including those refused because the email is
	// taken). Default: 10 per 1h.
	SignupIP *RateLimit `json:"signup_ip,omitempty"`

	// RefreshIP limits refresh requests per client address. Default: 60
	// per 1m.
	RefreshIP *RateLimit `json:"refresh_ip,omitempty"`

	// MaxKeys bounds the client addresses (or account and address pairs)
	// each limit tracks; at the bound the least recently counted is
	// forgotten. A key costs about 150 bytes. Default: 100000.
	MaxKeys int `json:"max_keys,omitempty"`
}

// RateLimit is one limit: at most Events per Window.
type RateLimit struct {
	// Off turns this limit off.
	Off bool `json:"off,omitempty"`
	// Events allowed per window; at least 1.
	Events int `json:"events,omitempty"`
	// Window length; at least 1s.
	Window caddy.Duration `json:"window,omitempty"`
}

// limits builds the handlers' limits: the defaults when rc is nil, none
// when it is off. Each limiter comes from limiterPool, so that its counts
// survive `caddy reload`; the returned keys are what the config must
// release when it is cleaned up (releaseLimiters), also on error.
func (rc *RateLimitConfig) limits() (*handlers.Limits, []string, error) {
	if rc == nil {
		rc = new(RateLimitConfig)
	}
	if rc.Off {
		return nil, nil, nil
	}
	if rc.MaxKeys < 0 {
		return nil, nil, fmt.Errorf("rate_limit: max_keys cannot be negative")
	}
	spec := func(name string, rl *RateLimit, def handlers.LimitSpec) (*handlers.LimitSpec, error) {
		if rl == nil {
			return &def, nil
		}
		if rl.Off {
			return nil, nil
		}
		if rl.Events < 1 {
			return nil, fmt.Errorf("rate_limit %s: events must be at least 1", name)
		}
		if time.Duration(rl.Window) < time.Second {
			return nil, fmt.Errorf("rate_limit %s: window must be at least 1s", name)
		}
		return &handlers.LimitSpec{Events: rl.Events, Window: time.Duration(rl.Window)}, nil
	}
	l := new(handlers.Limits)
	var keys []string
	for _, x := range []struct {
		name string
		cfg  *RateLimit
		def  handlers.LimitSpec
		dst  **ratelimit.Limiter
	}{
		{"login_ip", rc.LoginIP, handlers.DefaultLoginIP, &l.LoginIP},
		{"login_account", rc.LoginAccount, handlers.DefaultLoginAccount, &l.LoginAccount},
		{"signup_ip", rc.SignupIP, handlers.DefaultSignupIP, &l.SignupIP},
		{"refresh_ip", rc.RefreshIP, handlers.DefaultRefreshIP, &l.RefreshIP},
	} {
		sp, err := spec(x.name, x.cfg, x.def)
		if err == nil && sp != nil {
			var key string
			*x.dst, key, err = pooledLimiterFor(x.name, *sp, rc.MaxKeys)
			if key != "" {
				keys = append(keys, key)
			}
		}
		if err != nil {
			releaseLimiters(keys)
			return nil, nil, err
		}
	}
	return l, keys, nil
}

// limiterPool shares the rate limiters across config reloads, keyed by
// limit and settings. Caddy provisions the new config before it cleans up
// the old one, so a reload that keeps a limit's settings keeps its
// counts: setups that reload often (caddy-docker-proxy reloads on every
// container event) do not hand an attacker a fresh budget each time. A
// limit whose settings change starts afresh.
var limiterPool = caddy.NewUsagePool()

// pooledLimiter is a limiter with its janitor, which runs as long as some
// config uses the limiter.
type pooledLimiter struct {
	rl   *ratelimit.Limiter
	stop context.CancelFunc
}

func (p pooledLimiter) Destruct() error {
	p.stop()
	return nil
}

// pooledLimiterFor returns the shared limiter of limit name with spec and
// the pool key it was acquired under.
func pooledLimiterFor(name string, spec handlers.LimitSpec, maxKeys int) (*ratelimit.Limiter, string, error) {
	key := fmt.Sprintf("%s/%d/%s/%d", name, spec.Events, spec.Window, maxKeys)
	val, _, err := limiterPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		rl, err := ratelimit.New(spec.Events, spec.Window, maxKeys)
		if err != nil {
			return nil, fmt.Errorf("rate_limit %s: %v", name, err)
		}
		ctx, stop := context.WithCancel(context.Background())
		rl.Start(ctx)
		return pooledLimiter{rl, stop}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return val.(pooledLimiter).rl, key, nil
}

// releaseLimiters gives back limiters acquired by limits.
func releaseLimiters(keys []string) {
	for _, k := range keys {
		_, _ = limiterPool.Delete(k)
	}
}
