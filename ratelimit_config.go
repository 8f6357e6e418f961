package xanoauth

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/handlers"
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
// when it is off.
func (rc *RateLimitConfig) limits() (*handlers.Limits, error) {
	if rc == nil {
		rc = new(RateLimitConfig)
	}
	if rc.Off {
		return nil, nil
	}
	if rc.MaxKeys < 0 {
		return nil, fmt.Errorf("rate_limit: max_keys cannot be negative")
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
	loginIP, err := spec("login_ip", rc.LoginIP, handlers.DefaultLoginIP)
	if err != nil {
		return nil, err
	}
	loginAccount, err := spec("login_account", rc.LoginAccount, handlers.DefaultLoginAccount)
	if err != nil {
		return nil, err
	}
	signupIP, err := spec("signup_ip", rc.SignupIP, handlers.DefaultSignupIP)
	if err != nil {
		return nil, err
	}
	refreshIP, err := spec("refresh_ip", rc.RefreshIP, handlers.DefaultRefreshIP)
	if err != nil {
		return nil, err
	}
	l, err := handlers.NewLimits(loginIP, loginAccount, signupIP, refreshIP, rc.MaxKeys)
	if err != nil {
		return nil, fmt.Errorf("rate_limit: %v", err)
	}
	return l, nil
}
