package handlers

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/ratelimit"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// MsgTooManyAttempts is the message of a rate-limited request (429, our
// decision; documented in docs/wire-contract.md).
const MsgTooManyAttempts = "Too many attempts. Please try again later."

// Default rate limits (documented in docs/security.md).
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
// Failed logins are limited by reservation: an attempt is counted as a
// failure when it is admitted, before its password is hashed, on both
// limits below at once (loginLimit.reserve), and given back only when it
// turns out not to be one: a success, or a hash that never ran (no free
// hashing slot, 503; a failed user lookup, 500). Attempts in flight
// therefore count, and however requests are timed no window of either
// limit ever lets more than its limit be evaluated (checking before the
// hash and counting after it let most of a burst of parallel guesses
// through).
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
// A success resets only its own (account, address) pair, and takes back
// only its own reservation of the per-address count, never an earlier
// failure: otherwise an attacker could clear its count by logging in to an
// account of its own between guesses.
//
// Client addresses are Caddy's client IP (which honours trusted_proxies),
// and IPv6 addresses count per /64, the block one subscriber usually gets.
type Limits struct {
	// LoginIP counts failed logins, and logins in flight, per client
	// address.
	LoginIP *ratelimit.Limiter
	// LoginAccount counts failed logins, and logins in flight, per (data
	// source, table, email, client address).
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

// loginLimit is the rate-limit state of one login attempt (or password
// change): its keys and, once reserve admitted it, its reservations.
type loginLimit struct {
	svc     *Service
	ip      string
	account string // key of the (account, address) pair
	// The attempt's counts, held from reserve until the outcome is known.
	ipSlot, accountSlot ratelimit.Reservation
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

// reserve admits the attempt, or answers 429 if the address, or the
// address on this account, has used up its failures. An admitted attempt
// counts as a failure from now on, before its password is hashed, so that
// attempts in flight count too (see Limits). It is counted on both limits
// or on neither: when the account limit refuses, the address's
// reservation is given back, so a refused attempt costs nothing. Call it
// once, before any lookup or hashing.
func (ll *loginLimit) reserve() *Error {
	l := ll.svc.Limits
	if l == nil {
		return nil
	}
	now := ll.svc.now()
	if l.LoginIP != nil {
		r, ok, retry := l.LoginIP.Reserve(ll.ip, now)
		if !ok {
			return ll.limited("login_ip", retry)
		}
		ll.ipSlot = r
	}
	if l.LoginAccount != nil {
		r, ok, retry := l.LoginAccount.Reserve(ll.account, now)
		if !ok {
			ll.refund()
			return ll.limited("login_account", retry)
		}
		ll.accountSlot = r
	}
	return nil
}

func (ll *loginLimit) limited(name string, retry time.Duration) *Error {
	ll.svc.Logger.Info("rate limited", zap.String("limit", name), zap.String("client", ll.ip))
	return tooManyRequests(retry)
}

// verify checks pw against hash for an attempt whose limits are reserved,
// and settles the reservation: a right password is no failure
// (succeeded), and a hash that never ran (password.ErrBusy: no slot was
// free) was no guess (refund). Anything else keeps the reservation as a
// failure, a cancelled request's included: the hash ran, and cancelling
// must not be a way to guess for free.
func (ll *loginLimit) verify(ctx context.Context, h *password.Hasher, hash, pw string) (ok, rehash bool, err error) {
	ok, rehash, err = h.Verify(ctx, hash, pw)
	switch {
	case errors.Is(err, password.ErrBusy):
		ll.refund()
		return false, false, err
	case ok:
		ll.succeeded()
	}
	return ok, rehash, err
}

// refund gives the attempt back to both limits: its password was never
// evaluated (no hashing slot was free, or the store failed), so it was no
// guess. A failure needs no call: its reservation simply stands.
func (ll *loginLimit) refund() {
	l := ll.svc.Limits
	if l == nil {
		return
	}
	if l.LoginIP != nil {
		l.LoginIP.Undo(&ll.ipSlot)
	}
	if l.LoginAccount != nil {
		l.LoginAccount.Undo(&ll.accountSlot)
	}
}

// succeeded records a right password: the (account, address) pair starts
// over, and the address's reservation is given back, since a success is
// no failure. Undo takes back this attempt's count only, so a success
// never removes an earlier failure of the address.
func (ll *loginLimit) succeeded() {
	l := ll.svc.Limits
	if l == nil {
		return
	}
	if l.LoginIP != nil {
		l.LoginIP.Undo(&ll.ipSlot)
	}
	if l.LoginAccount != nil {
		l.LoginAccount.Reset(ll.account)
		ll.accountSlot = ratelimit.Reservation{} // went with the reset
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
