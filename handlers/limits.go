package handlers

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/ratelimit"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// MsgTooManyAttempts is the message of a rate-limited request (429, our
// decision; documented in the README).
const MsgTooManyAttempts = "Too many attempts. Please try again later."

// Default rate limits (documented in the README's Security section).
var (
	DefaultLoginIP      = LimitSpec{Events: 20, Window: 5 * time.Minute}
	DefaultLoginAccount = LimitSpec{Events: 10, Window: 15 * time.Minute}
	DefaultSignupIP     = LimitSpec{Events: 10, Window: time.Hour}
	DefaultRefreshIP    = LimitSpec{Events: 60, Window: time.Minute}
)

// LimitSpec is one limit: at most Events per Window.
type LimitSpec struct {
	Events int
	Window time.Duration
}

// Limits are the rate limits of the auth endpoints. Every check happens
// before any password hashing, so a limited client costs no hashing work.
// A nil *Limits, or a nil limiter in it, limits nothing.
//
// Failed logins are limited twice, and neither limit can lock the rightful
// user out from another address:
//
//   - LoginIP counts failures per client address, whatever the account: one
//     address guessing across many accounts is stopped.
//   - LoginAccount counts failures per (account, client address) pair: one
//     address hammering one account is stopped sooner, while the same
//     account from any other address is unaffected, so a stranger cannot
//     deny the owner their login by failing on purpose.
//
// A success resets only its own (account, address) pair, never the
// per-address count: otherwise an attacker could clear its count by logging
// in to an account of its own between guesses.
//
// Client addresses are Caddy's client IP (which honours trusted_proxies),
// and IPv6 addresses count per /64, the block one subscriber usually gets.
type Limits struct {
	// LoginIP counts failed logins per client address.
	LoginIP *ratelimit.Limiter
	// LoginAccount counts failed logins per (data source, table, email,
	// client address).
	LoginAccount *ratelimit.Limiter
	// SignupIP counts signups per client address that passed input
	// validation (whether or not the email was free).
	SignupIP *ratelimit.Limiter
	// RefreshIP counts refresh requests per client address.
	RefreshIP *ratelimit.Limiter
}

// NewLimits builds limits from specs; a nil spec leaves that limit off.
// maxKeys bounds the keys each limiter tracks (ratelimit.DefaultMaxKeys
// when <= 0).
func NewLimits(loginIP, loginAccount, signupIP, refreshIP *LimitSpec, maxKeys int) (*Limits, error) {
	l := new(Limits)
	for _, x := range []struct {
		spec *LimitSpec
		dst  **ratelimit.Limiter
	}{{loginIP, &l.LoginIP}, {loginAccount, &l.LoginAccount}, {signupIP, &l.SignupIP}, {refreshIP, &l.RefreshIP}} {
		if x.spec == nil {
			continue
		}
		rl, err := ratelimit.New(x.spec.Events, x.spec.Window, maxKeys)
		if err != nil {
			return nil, err
		}
		*x.dst = rl
	}
	return l, nil
}

// DefaultLimits returns the limits with their default values.
func DefaultLimits() *Limits {
	l, err := NewLimits(&DefaultLoginIP, &DefaultLoginAccount, &DefaultSignupIP, &DefaultRefreshIP, 0)
	if err != nil {
		panic(err) // the defaults are valid
	}
	return l
}

// Start runs the limiters' janitors until ctx ends (the config's lifetime).
func (l *Limits) Start(ctx context.Context) {
	if l == nil {
		return
	}
	for _, rl := range []*ratelimit.Limiter{l.LoginIP, l.LoginAccount, l.SignupIP, l.RefreshIP} {
		if rl != nil {
			rl.Start(ctx)
		}
	}
}

// LimitKind names a per-address limit that counts every request (not only
// failures), for Auth.allow.
type LimitKind string

// The limits Auth.allow knows.
const (
	LimitSignup  LimitKind = "signup_ip"
	LimitRefresh LimitKind = "refresh_ip"
)

// allow counts one request of kind from r's client address and returns a
// 429 error past the limit (the request is then not counted). Call it
// before any expensive work; it returns nil when limits are off. A new
// endpoint gets its own LimitKind, a Limits field and a config line.
func (a *Auth) allow(kind LimitKind, r *http.Request) *Error {
	l := a.Svc.Limits
	if l == nil {
		return nil
	}
	var rl *ratelimit.Limiter
	switch kind {
	case LimitSignup:
		rl = l.SignupIP
	case LimitRefresh:
		rl = l.RefreshIP
	}
	if rl == nil {
		return nil
	}
	ip := ClientIP(r)
	if ok, retry := rl.Allow(ip, a.Svc.now()); !ok {
		a.Svc.Logger.Info("rate limited", zap.String("limit", string(kind)),
			zap.String("client", ip), zap.String("table", a.Table))
		return tooManyRequests(retry)
	}
	return nil
}

// loginLimit is the rate-limit state of one login attempt.
type loginLimit struct {
	svc     *Service
	ip      string
	account string // key of the (account, address) pair
}

// loginLimit prepares the limit checks of a login for email in realm.
func (a *Auth) loginLimit(r *http.Request, realm store.Realm, email string) loginLimit {
	ll := loginLimit{svc: a.Svc}
	if a.Svc.Limits == nil {
		return ll
	}
	ll.ip = ClientIP(r)
	// Hashed: the key has a fixed size whatever the email's, and the
	// limiter's memory holds no email addresses.
	sum := sha256.Sum256([]byte(realm.DataSource + "\x00" + realm.Table + "\x00" + email + "\x00" + ll.ip))
	ll.account = string(sum[:16])
	return ll
}

// check answers 429 if the address, or the address on this account, has
// failed too often. It counts nothing.
func (ll loginLimit) check() *Error {
	l := ll.svc.Limits
	if l == nil {
		return nil
	}
	now := ll.svc.now()
	for _, x := range []struct {
		rl   *ratelimit.Limiter
		key  string
		name string
	}{{l.LoginIP, ll.ip, "login_ip"}, {l.LoginAccount, ll.account, "login_account"}} {
		if x.rl == nil {
			continue
		}
		if blocked, retry := x.rl.Blocked(x.key, now); blocked {
			ll.svc.Logger.Info("rate limited", zap.String("limit", x.name), zap.String("client", ll.ip))
			return tooManyRequests(retry)
		}
	}
	return nil
}

// failed counts a failed login (wrong password or unknown account).
func (ll loginLimit) failed() {
	l := ll.svc.Limits
	if l == nil {
		return
	}
	now := ll.svc.now()
	if l.LoginIP != nil {
		l.LoginIP.Add(ll.ip, now)
	}
	if l.LoginAccount != nil {
		l.LoginAccount.Add(ll.account, now)
	}
}

// succeeded forgets the failures of this (account, address) pair only.
func (ll loginLimit) succeeded() {
	if l := ll.svc.Limits; l != nil && l.LoginAccount != nil {
		l.LoginAccount.Reset(ll.account)
	}
}

func tooManyRequests(retry time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests,
		Message: MsgTooManyAttempts, RetryAfter: retry}
}

// retryAfterSeconds renders d for a Retry-After header: whole seconds,
// rounded up (a client retrying early would only be refused again), at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// ClientIP returns the key rate limits use for r's client: Caddy's client
// IP variable, which honours the server's trusted_proxies (a raw
// X-Forwarded-For would let anyone pick their own address), else the
// connection's remote address. IPv6 addresses are reduced to their /64.
func ClientIP(r *http.Request) string {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if s == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		s = host
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	addr = addr.Unmap()
	if addr.Is6() {
		if p, err := addr.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}
