// Package handlers holds the HTTP behaviour of xanoauth: the Xano auth
// endpoints, the route guard, input parsing and the Xano error envelope. It
// knows nothing of Caddy's module system; the root package wires it in.
package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/ratelimit"
	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

// Limits on single inputs, so that one request cannot store or hash an
// arbitrarily large value. Passwords are limited by their Policy.
const (
	MaxEmailLength = 254  // bytes, RFC 5321's path limit
	MaxFieldLength = 1024 // characters, for name and declared fields
)

// Table is one auth table's policy: which fields users may set, which fields
// are sealed into tokens as extras, and how long tokens live.
type Table struct {
	Name string
	// Fields users may set at signup besides email and password, in the
	// order responses list them ("name" by default).
	Fields []string
	// Extras are privileged record fields sealed into tokens. User input
	// never sets them; they come from Defaults or the operator.
	Extras []string
	// Defaults are values new records get for fields and extras not sent.
	Defaults map[string]any
	TokenTTL time.Duration
	// LongestTokenTTL is the longest TokenTTL the table has had (the app
	// keeps it in the store; 0 means TokenTTL): tokens keep the exp they
	// were minted with, so what must outlive every token of the table
	// (a log-out-everywhere) lasts this long (MaxTokenTTL).
	LongestTokenTTL time.Duration
	SignupOpen      bool
	Policy          password.Policy
	// RefreshTTL turns refresh tokens on (0: off, as on Xano); each
	// refresh extends the session by this much.
	RefreshTTL time.Duration
	// RefreshGrace is how long a spent refresh token still returns the
	// pair it was exchanged for, instead of counting as reuse.
	RefreshGrace time.Duration
}

// MaxTokenTTL is the longest lifetime a valid token of t can have.
func (t *Table) MaxTokenTTL() time.Duration { return max(t.TokenTTL, t.LongestTokenTTL) }

// Service is the state every handler shares: the store, the key ring, the
// hasher and the table policies. The xano app builds one per config.
type Service struct {
	Store  store.Store
	Hasher *password.Hasher
	Logger *zap.Logger
	Tables map[string]*Table
	// DataSources lists the accepted X-Data-Source values; the first is
	// the default for requests that send none.
	DataSources []string
	// Leeway is the clock skew tolerated on exp and nbf (0: exact).
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Limits are the endpoints' rate limits; nil limits nothing.
	Limits *Limits

	keys      atomic.Pointer[token.Ring]
	sessions  sessions
	cacheOnce sync.Once
	cache     *verifyCache
	// RevocationCounters are the tables' counters of single-session
	// revocations per user (revokeSession), made with
	// NewRevocationCounter; the app takes them from a pool so that they
	// survive a reload. A table without one gets its own on first use.
	RevocationCounters map[string]*ratelimit.Limiter

	// revocations bounds each user's single-session revocation records
	// (revokeSession). It is on even when Limits is nil: it bounds
	// storage, not request rates, and `rate_limit off` must not unbound
	// it.
	revocations revocationCounts
}

// SetKeys installs the key ring; the newest key signs from then on.
func (s *Service) SetKeys(r *token.Ring) { s.keys.Store(r) }

// Keys returns the current key ring.
func (s *Service) Keys() *token.Ring { return s.keys.Load() }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// dataSource resolves the request's data source from X-Data-Source, as Xano
// does. Only configured data sources are accepted so that a client cannot
// create realms by inventing header values.
func (s *Service) dataSource(r *http.Request) (string, *Error) {
	ds := strings.TrimSpace(header(r, hdrDataSource))
	if ds == "" {
		return s.DataSources[0], nil
	}
	for _, known := range s.DataSources {
		if ds == known {
			return ds, nil
		}
	}
	return "", inputError("", MsgUnknownDataSource)
}

func extrasOf(t *Table, u *store.User) map[string]any {
	if len(t.Extras) == 0 {
		return nil
	}
	ex := make(map[string]any, len(t.Extras))
	for _, k := range t.Extras {
		if v, ok := u.Fields[k]; ok && v != nil {
			ex[k] = v
		}
	}
	return ex
}

// authenticate finds and verifies the request's token. It answers
// (nil, nil) when the request carries no token at all, so that callers can
// tell anonymous requests from bad tokens. tables lists the tables whose
// tokens are acceptable here.
func (s *Service) authenticate(r *http.Request, cookies []string, tables []string) (*token.Claims, *Error) {
	raw, found := ExtractToken(r, cookies)
	if !found {
		return nil, nil
	}
	ds, derr := s.dataSource(r)
	if derr != nil {
		return nil, derr
	}
	return s.checkToken(raw, ds, tables)
}

// checkToken verifies the access token raw for a request of data source
// ds to an endpoint that accepts the tokens of tables: valid, not revoked,
// of that data source and one of those tables.
func (s *Service) checkToken(raw, ds string, tables []string) (*token.Claims, *Error) {
	c, err := s.verify(raw)
	if err != nil {
		if errors.Is(err, token.ErrExpired) {
			return nil, unauthorized(MsgTokenExpired)
		}
		return nil, unauthorized(MsgInvalidToken)
	}
	// Revocation is checked on every request, after any cache: logout
	// must take effect on the very next request.
	if s.Store.IsRevoked(store.Realm{DataSource: c.DS, Table: c.Table}, c.ID, c.SID, c.IssuedAt) {
		return nil, unauthorized(MsgInvalidToken)
	}
	if c.DS != ds {
		return nil, unauthorized(MsgOtherDataSource)
	}
	for _, t := range tables {
		if c.Table == t {
			return &c, nil
		}
	}
	return nil, unauthorized(MsgInvalidToken)
}

// The headers read on every guarded request, in canonical form
// (TestHeaderNamesCanonical), so that header() can index the map directly:
// Header.Get canonicalises its argument byte by byte on every call, which
// was a fifth of the guard's own time.
const (
	hdrXanoAuth      = "X-Xano-Authorization"
	hdrXanoAuthOnly  = "X-Xano-Authorization-Only"
	hdrAuthorization = "Authorization"
	hdrDataSource    = "X-Data-Source"
)

// header is r.Header.Get for a name already in canonical form.
func header(r *http.Request, canonical string) string {
	if v := r.Header[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ExtractToken finds the request's token in Xano's order: when
// X-Xano-Authorization-Only is true only X-Xano-Authorization counts (so that
// Authorization can carry other credentials to the upstream); otherwise
// X-Xano-Authorization, then Authorization: Bearer, then ?authtoken=, then
// the given cookies.
func ExtractToken(r *http.Request, cookies []string) (string, bool) {
	raw, _, found := findToken(r, cookies)
	return raw, found
}

// bearer strips a case-insensitive "Bearer " scheme. bareOK accepts a value
// without a scheme (X-Xano-Authorization and cookies carry bare tokens).
func bearer(v string, bareOK bool) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
		return v, v != ""
	}
	if bareOK && v != "" && !strings.ContainsRune(v, ' ') {
		return v, true
	}
	return "", false
}

// normalizeEmail trims and lower-cases an email as Xano does, and checks it
// is a plain address.
func normalizeEmail(s string) (string, *Error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", missingParam("email")
	}
	if len(s) > MaxEmailLength {
		return "", inputError("email", MsgInvalidEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", inputError("email", MsgInvalidEmail)
	}
	return s, nil
}

// renderUser writes the record as Xano shows it: id, created_at, name,
// email, then the other declared fields and the extras. The password hash
// is never part of it.
func renderUser(t *Table, u *store.User) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
		return nil
	}
	field := func(k string) any {
		if v, ok := u.Fields[k]; ok {
			return v
		}
		return ""
	}
	if err := write("id", u.ID); err != nil {
		return nil, err
	}
	if err := write("created_at", u.CreatedAt); err != nil {
		return nil, err
	}
	seen := map[string]bool{"id": true, "created_at": true, "email": true}
	// Email follows name, as on Xano; without a name field it comes first.
	emailDone := !slices.Contains(t.Fields, "name")
	if emailDone {
		if err := write("email", u.Email); err != nil {
			return nil, err
		}
	}
	for _, k := range append(append([]string{}, t.Fields...), t.Extras...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := write(k, field(k)); err != nil {
			return nil, err
		}
		if k == "name" && !emailDone {
			if err := write("email", u.Email); err != nil {
				return nil, err
			}
			emailDone = true
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ctxErr maps a cancelled request to no response at all: the client is gone.
func ctxErr(ctx context.Context) bool { return ctx.Err() != nil }
