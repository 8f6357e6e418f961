// Package xanoauth is a Caddy v2 plugin that serves Xano's authentication
// API (signup, login, auth/me) from the Caddy process and guards any route
// with the same tokens.
//
// It registers the `xano` app, which owns the user store and the token
// keys, and two HTTP handlers: `xano_auth` serves the endpoints and
// `xano_guard` protects routes. With no configuration at all the app stores
// users in a bbolt file under Caddy's data directory and generates a key
// once, persisting it there.
package xanoauth

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/ratelimit"
	"github.com/xanoauth/caddy-xanoauth/store"
)

func init() {
	caddy.RegisterModule(App{})
	caddy.RegisterModule(AuthHandler{})
	caddy.RegisterModule(GuardHandler{})
}

// Defaults, also documented in docs/configuration.md.
const (
	DefaultTable      = "user"
	DefaultDataSource = "live"
	DefaultTokenTTL   = 24 * time.Hour // Xano's default
	defaultLockWait   = 2 * time.Second
)

// App is the `xano` app: it owns the user store, the token keys and the
// table policies that the xano_auth and xano_guard handlers share. Handlers
// reach it with ctx.App("xano"), so a config without a `xano` global option
// still gets a working default.
type App struct {
	// Storage selects where users live. Default: a bbolt file at
	// `{caddy data dir}/xano/auth.db`.
	Storage *StorageConfig `json:"storage,omitempty"`

	// Keys are 256-bit token keys, newest first: the first encrypts new
	// tokens, all of them decrypt. Each is 64 hex digits or base64 of 32
	// bytes. Use {env.*} or {file.*} placeholders (resolved at provision)
	// rather than writing a key into the config. Default: a key generated
	// once and persisted in the store.
	Keys []string `json:"keys,omitempty"`

	// DataSources are the accepted values of the X-Data-Source request
	// header; the first is used when a request sends none. Each data
	// source has its own users. Default: ["live"].
	DataSources []string `json:"data_sources,omitempty"`

	// Tables are the auth tables by name. Default: one table `user` with
	// open signup, field `name` and a 24h token lifetime.
	Tables map[string]*TableConfig `json:"tables,omitempty"`

	// Leeway is the clock skew tolerated when checking a token's exp and
	// nbf. Default: 0 (exact).
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// HashConcurrency bounds how many password hashes run at once, so that
	// a login storm cannot starve guarded traffic. Default: the number of
	// CPUs.
	HashConcurrency int `json:"hash_concurrency,omitempty"`

	// HashConcurrencyBusy bounds the password hashes that start while
	// requests with valid tokens are being served (any in the last
	// 100 ms): Go preempts a running hash only every ~10 ms, so hashing on
	// every CPU makes those requests wait. Set it to HashConcurrency to let
	// logins use every slot regardless. Default: half of HashConcurrency,
	// at least 1.
	HashConcurrencyBusy int `json:"hash_concurrency_busy,omitempty"`

	// SweepInterval is how often expired sessions, refresh tokens,
	// revocations and retired keys are pruned. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// RateLimit configures the rate limits of failed logins, signups and
	// refreshes (see RateLimitConfig). Default: every limit on with its
	// default value.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`

	svc     *handlers.Service
	poolKey string // set only once the store handle was acquired
	// limiterKeys are the rate limiters this config acquired from
	// limiterPool.
	limiterKeys []string
	logger      *zap.Logger
	ctx         caddy.Context
	clock       func() time.Time // nil: time.Now
	configKeys  *configuredKeys  // nil when the keys are generated
}

// StorageConfig configures the user store.
type StorageConfig struct {
	// Type of store; only "bbolt" so far.
	Type string `json:"type,omitempty"`
	// Path of the bbolt file; {env.*} placeholders are allowed. Default:
	// `{caddy data dir}/xano/auth.db`.
	Path string `json:"path,omitempty"`
	// LockTimeout bounds the wait for bbolt's file lock, after which a
	// second process using the same file fails with a clear error.
	// Default: 2s.
	LockTimeout caddy.Duration `json:"lock_timeout,omitempty"`
}

// TableConfig is one auth table's policy.
type TableConfig struct {
	// Fields users may set at signup besides email and password, in the
	// order auth/me lists them. Default: ["name"].
	Fields []string `json:"fields,omitempty"`
	// Extras are record fields sealed into the token (readable by the
	// guard's `require` rules without a store lookup). They are
	// privileged: user input never sets them; new records get Defaults.
	Extras []string `json:"extras,omitempty"`
	// Defaults are the values new records get for fields and extras that
	// the signup did not set.
	Defaults map[string]string `json:"defaults,omitempty"`
	// TokenTTL is the access token lifetime. Default: 24h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// Signup is "open" (default) or "closed" (403 on auth/signup).
	Signup string `json:"signup,omitempty"`
	// Password is the password policy. Default: Xano's (8 characters, 1
	// letter, 1 digit).
	Password *PasswordPolicy `json:"password,omitempty"`
	// RefreshTTL turns on refresh tokens: login and signup also answer
	// `refreshToken`, exchanged at …/auth/refresh for a new pair. Each
	// refresh extends the session by this much. Default: 0 (off, as on
	// Xano).
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`
	// RefreshGrace is how long a spent refresh token still returns the
	// pair it was exchanged for (two tabs refreshing at once); after that,
	// presenting it again revokes the whole session. Default: 10s.
	RefreshGrace caddy.Duration `json:"refresh_grace,omitempty"`
}

// PasswordPolicy overrides parts of the default password policy; an
// omitted field keeps its default.
type PasswordPolicy struct {
	// MinLength in characters. Default: 8.
	MinLength *int `json:"min_length,omitempty"`
	// MinLetters required. Default: 1.
	MinLetters *int `json:"min_letters,omitempty"`
	// MinDigits required. Default: 1.
	MinDigits *int `json:"min_digits,omitempty"`
	// MaxLength in bytes, bounding hashing cost. Default: 1024.
	MaxLength *int `json:"max_length,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "xano",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens the store, loads the keys and builds the shared service.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	if len(a.DataSources) == 0 {
		a.DataSources = []string{DefaultDataSource}
	}
	if len(a.Tables) == 0 {
		a.Tables = map[string]*TableConfig{DefaultTable: {}}
	}
	if a.Storage == nil {
		a.Storage = new(StorageConfig)
	}
	if a.Storage.Type == "" {
		a.Storage.Type = "bbolt"
	}
	if err := a.validateConfig(); err != nil {
		return err
	}
	tables := make(map[string]*handlers.Table, len(a.Tables))
	for name, tc := range a.Tables {
		tables[name] = tc.build(name)
	}
	limits, limiterKeys, err := a.RateLimit.limits()
	if err != nil {
		return err
	}
	a.limiterKeys = limiterKeys

	repl := caddy.NewReplacer()
	st, err := a.openStore(repl)
	if err != nil {
		return err
	}
	if err := loadTokenLifetimes(ctx, st, tables); err != nil {
		return err
	}
	logHashImplementation(a.logger)
	// The counters that bound each user's revocation records survive a
	// reload like the rate limits: a reload must not reset the bound.
	counters := make(map[string]*ratelimit.Limiter, len(tables))
	for name, t := range tables {
		spec := handlers.LimitSpec{Events: handlers.MaxSessionRevocations, Window: handlers.RevocationWindow(t)}
		rl, key, err := pooledLimiterFor("revocations "+a.poolKey+" "+name, spec, 0)
		if err != nil {
			return err
		}
		a.limiterKeys = append(a.limiterKeys, key)
		counters[name] = rl
	}
	a.svc = &handlers.Service{
		RevocationCounters: counters,
		Store:              st,
		Hasher:             a.newHasher(),
		Logger:             a.logger,
		Tables:             tables,
		DataSources:        a.DataSources,
		Leeway:             time.Duration(a.Leeway),
		Limits:             limits,
	}
	ring, err := a.loadKeys(ctx, repl, st)
	if err != nil {
		return err
	}
	a.svc.SetKeys(ring)
	return nil
}

func (a *App) newHasher() *password.Hasher {
	h := password.NewHasher(password.DefaultParams, a.HashConcurrency, 0)
	h.LimitWhileBusy(a.HashConcurrencyBusy)
	return h
}

func (a *App) validateConfig() error {
	if a.HashConcurrency < 0 || a.HashConcurrencyBusy < 0 {
		return fmt.Errorf("hash_concurrency and hash_concurrency_busy must not be negative")
	}
	if a.HashConcurrency > 0 && a.HashConcurrencyBusy > a.HashConcurrency {
		return fmt.Errorf("hash_concurrency_busy %d exceeds hash_concurrency %d", a.HashConcurrencyBusy, a.HashConcurrency)
	}
	if a.Leeway < 0 {
		// A negative leeway would refuse every fresh token as not yet
		// valid.
		return fmt.Errorf("leeway cannot be negative")
	}
	if a.SweepInterval < 0 {
		return fmt.Errorf("sweep_interval cannot be negative")
	}
	if a.Storage.LockTimeout < 0 {
		return fmt.Errorf("storage lock_timeout cannot be negative")
	}
	if a.Storage.Type != "bbolt" {
		return fmt.Errorf("storage type %q is not supported (want bbolt)", a.Storage.Type)
	}
	for _, ds := range a.DataSources {
		if ds == "" || strings.ContainsAny(ds, "/ ") {
			return fmt.Errorf("invalid data source name %q", ds)
		}
	}
	for name, tc := range a.Tables {
		if tc == nil {
			return fmt.Errorf("table %q: empty configuration", name)
		}
		if err := tc.validate(name); err != nil {
			return fmt.Errorf("table %q: %v", name, err)
		}
	}
	return nil
}

// Validate is a no-op: everything is checked during Provision, which must
// open the store anyway.
func (a *App) Validate() error { return nil }

// Start implements caddy.App: it starts the sweeper, which lives exactly
// as long as this config (its context ends when the config is unloaded).
func (a *App) Start() error {
	// Only a config that runs mints tokens: its lifetimes count from now.
	if err := recordTokenLifetimes(a.ctx, a.svc.Store, a.svc.Tables); err != nil {
		return err
	}
	a.recordSigning()
	a.warnAppendingProxies()
	go a.sweep(a.sweepInterval())
	return nil
}

func (a *App) sweepInterval() time.Duration {
	if d := time.Duration(a.SweepInterval); d > 0 {
		return d
	}
	return time.Minute
}

// recordSigning records that this config's configured signing key signs
// now (keys.go); a failure costs at most an early retirement of that key
// later, so it is logged and not returned.
func (a *App) recordSigning() {
	if a.configKeys == nil {
		return
	}
	if _, err := a.recordSigningKey(context.Background(), a.now(), false); err != nil {
		a.logger.Error("recording the signing key", zap.Error(err))
	}
}

// sweep prunes expired session state and retired keys until the config's
// context ends.
func (a *App) sweep(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			a.prune(now)
			if err := a.refreshKeys(a.ctx, now); err != nil && a.ctx.Err() == nil {
				a.logger.Error("pruning retired keys", zap.Error(err))
			}
		}
	}
}

// prune drops the session state that no token can need at now. A token
// is accepted until its exp plus the leeway, so its revocation is kept
// that long too: the store prunes as of now minus the leeway.
func (a *App) prune(now time.Time) {
	n, err := a.svc.Store.Prune(a.ctx, now.Add(-time.Duration(a.Leeway)))
	if err != nil && a.ctx.Err() == nil {
		a.logger.Error("pruning expired sessions", zap.Error(err))
	} else if n > 0 {
		a.logger.Debug("pruned expired sessions", zap.Int("entries", n))
	}
}

// Stop implements caddy.App: the configured signing key signed until now.
// The store is released in Cleanup.
func (a *App) Stop() error {
	a.recordSigning()
	return nil
}

// Service returns the state shared by the handlers.
func (a *App) Service() *handlers.Service { return a.svc }

// Cleanup releases the password hasher's kept memory and the store handle,
// if this config acquired one. Caddy calls Cleanup after a failed Provision
// too, and releasing a handle that another (still running) config holds
// would close its database.
func (a *App) Cleanup() error {
	if a.svc != nil && a.svc.Hasher != nil {
		// Otherwise its kept argon2 memory (19 MiB per hashing slot)
		// would outlive this config by up to a minute.
		a.svc.Hasher.Release()
	}
	releaseLimiters(a.limiterKeys)
	a.limiterKeys = nil
	if a.poolKey == "" {
		return nil
	}
	key := a.poolKey
	a.poolKey = ""
	deleted, err := dbPool.Delete(key)
	if deleted && a.logger != nil {
		a.logger.Debug("closed user database", zap.String("path", key))
	}
	return err
}

// dbPool shares open bbolt databases across config reloads, keyed by
// absolute path: Caddy provisions the new config before it cleans up the
// old one, and bbolt's exclusive file lock would make the new config wait
// for the old one forever.
var dbPool = caddy.NewUsagePool()

type pooledDB struct{ *store.Bolt }

func (p pooledDB) Destruct() error { return p.Close() }

func (a *App) openStore(repl *caddy.Replacer) (store.Store, error) {
	path, err := repl.ReplaceOrErr(a.Storage.Path, true, true)
	if err != nil {
		return nil, fmt.Errorf("storage path: %v", err)
	}
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "xano", "auth.db")
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storage path: %v", err)
	}
	wait := time.Duration(a.Storage.LockTimeout)
	if wait <= 0 {
		wait = defaultLockWait
	}
	val, _, err := dbPool.LoadOrNew(path, func() (caddy.Destructor, error) {
		db, err := store.OpenBolt(path, wait)
		if err != nil {
			return nil, err
		}
		return pooledDB{db}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening user database: %w", err)
	}
	a.poolKey = path
	a.logger.Info("user database ready", zap.String("path", path))
	return val.(pooledDB).Bolt, nil
}

func (tc *TableConfig) validate(name string) error {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return fmt.Errorf("invalid table name")
	}
	reserved := map[string]bool{"id": true, "created_at": true, "email": true, "password": true}
	seen := map[string]bool{}
	for _, f := range append(append([]string{}, tc.Fields...), tc.Extras...) {
		if f == "" || reserved[f] {
			return fmt.Errorf("field name %q is reserved or empty", f)
		}
		if seen[f] {
			// A field both user-settable and an extra would let anyone
			// sign up with a privilege; and a repeat is a typo.
			return fmt.Errorf("field %q is listed twice (a field cannot be both user-settable and an extra)", f)
		}
		seen[f] = true
	}
	for f := range tc.Defaults {
		if !seen[f] && !(len(tc.Fields) == 0 && f == "name") {
			return fmt.Errorf("default for undeclared field %q", f)
		}
	}
	switch tc.Signup {
	case "", "open", "closed":
	default:
		return fmt.Errorf("signup must be open or closed, not %q", tc.Signup)
	}
	if tc.TokenTTL < 0 || (tc.TokenTTL > 0 && time.Duration(tc.TokenTTL) < time.Second) {
		return fmt.Errorf("token_ttl must be at least 1s")
	}
	if tc.RefreshTTL < 0 || (tc.RefreshTTL > 0 && time.Duration(tc.RefreshTTL) < time.Second) {
		return fmt.Errorf("refresh_ttl must be at least 1s")
	}
	if tc.RefreshGrace < 0 {
		return fmt.Errorf("refresh_grace cannot be negative")
	}
	if p := tc.Password; p != nil {
		for _, v := range []*int{p.MinLength, p.MinLetters, p.MinDigits, p.MaxLength} {
			if v != nil && *v < 0 {
				return fmt.Errorf("password policy values cannot be negative")
			}
		}
		// No password could pass an unsatisfiable policy: every signup
		// would be refused.
		if err := tc.build(name).Policy.Satisfiable(); err != nil {
			return err
		}
	}
	return nil
}

// build turns the config into the handlers' table, applying defaults.
func (tc *TableConfig) build(name string) *handlers.Table {
	t := &handlers.Table{
		Name:       name,
		Fields:     tc.Fields,
		Extras:     tc.Extras,
		TokenTTL:   time.Duration(tc.TokenTTL),
		SignupOpen: tc.Signup != "closed",
		Policy:     password.DefaultPolicy,
	}
	if len(t.Fields) == 0 {
		t.Fields = []string{"name"}
	}
	if t.TokenTTL == 0 {
		t.TokenTTL = DefaultTokenTTL
	}
	t.RefreshTTL = time.Duration(tc.RefreshTTL)
	t.RefreshGrace = time.Duration(tc.RefreshGrace)
	if t.RefreshGrace == 0 {
		t.RefreshGrace = handlers.DefaultRefreshGrace
	}
	if len(tc.Defaults) > 0 {
		t.Defaults = make(map[string]any, len(tc.Defaults))
		for k, v := range tc.Defaults {
			t.Defaults[k] = v
		}
	}
	if p := tc.Password; p != nil {
		set := func(dst *int, v *int) {
			if v != nil {
				*dst = *v
			}
		}
		set(&t.Policy.MinLength, p.MinLength)
		set(&t.Policy.MinLetters, p.MinLetters)
		set(&t.Policy.MinDigits, p.MinDigits)
		set(&t.Policy.MaxLength, p.MaxLength)
	}
	return t
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// hashImplementationLogged makes the argon2 code path one line per process,
// not one per reload.
var hashImplementationLogged sync.Once

func logHashImplementation(log *zap.Logger) {
	hashImplementationLogged.Do(func() {
		impl := zap.String("argon2", password.Implementation())
		if password.ImplementationSuspect() {
			log.Warn("password hashing falls back to x/crypto's code: the AVX2 code failed its self-test on this CPU", impl)
			return
		}
		log.Info("password hashing", impl)
	})
}
