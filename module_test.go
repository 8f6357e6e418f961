package xanoauth

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2"
	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// TestProvisionHashConcurrencyBusy: by default hashing yields to token
// traffic; hash_concurrency_busy = hash_concurrency turns that off, and a
// larger value is refused.
func TestProvisionHashConcurrencyBusy(t *testing.T) {
	for _, c := range []struct {
		busy      int
		wantYield bool
		wantErr   string
	}{
		{0, true, ""},
		{1, true, ""},
		{2, false, ""},
		{3, false, "exceeds hash_concurrency"},
		{-1, false, "must not be negative"},
	} {
		app := &App{Storage: &StorageConfig{Path: filepath.Join(t.TempDir(), "a.db")},
			HashConcurrency: 2, HashConcurrencyBusy: c.busy}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := app.Provision(ctx)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("busy %d: error %v, want one mentioning %q", c.busy, err, c.wantErr)
			}
		} else if err != nil {
			t.Errorf("busy %d: %v", c.busy, err)
		} else {
			h := app.Service().Hasher
			h.Foreground()
			if got := h.Yielding(); got != c.wantYield {
				t.Errorf("busy %d: Yielding() = %v with token traffic, want %v", c.busy, got, c.wantYield)
			}
		}
		cancel()
		_ = app.Cleanup()
	}
}

// TestCleanupReleasesHashMemory: a replaced or stopped config does not keep
// its hasher's argon2 memory (NewHasher's dummy hash leaves one slot's).
func TestCleanupReleasesHashMemory(t *testing.T) {
	app := &App{Storage: &StorageConfig{Path: filepath.Join(t.TempDir(), "a.db")}, HashConcurrency: 2}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h := app.Service().Hasher
	if got, want := h.KeptMemory(), h.MemoryBound()/2; got != want {
		t.Fatalf("after Provision: KeptMemory() = %d, want one slot's %d", got, want)
	}
	if err := app.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := h.KeptMemory(); got != 0 {
		t.Fatalf("after Cleanup: KeptMemory() = %d, want 0", got)
	}
}

// TestPruneKeepsRevocationsThroughLeeway: with a leeway, a token is
// accepted for that long after its exp, so its revocation must last as
// long; the sweep's prune keeps it until then.
func TestPruneKeepsRevocationsThroughLeeway(t *testing.T) {
	app := &App{Storage: &StorageConfig{Path: filepath.Join(t.TempDir(), "a.db")}, Leeway: caddy.Duration(5 * time.Second)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	const exp = 1_700_000_000
	st := app.Service().Store
	if err := st.RevokeSession(ctx, "s", exp); err != nil {
		t.Fatal(err)
	}
	revoked := func() bool { return st.IsRevoked(store.Realm{}, 0, "s", 0) }
	app.prune(time.Unix(exp+4, 0))
	if !revoked() {
		t.Fatal("revocation dropped while its token is still accepted under the leeway")
	}
	app.prune(time.Unix(exp+5, 0))
	if revoked() {
		t.Fatal("revocation kept after its token's exp plus leeway")
	}
}

// TestLongestTokenLifetimeRemembered: shortening token_ttl leaves tokens
// of the old lifetime valid until their exp, so the app remembers the
// longest lifetime per table across restarts, for cutoffs and key
// retirement; lengthening it takes effect at once. Only configs that ran
// count: one Caddy provisioned and abandoned never minted a token.
func TestLongestTokenLifetimeRemembered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	run := func(ttl time.Duration, start bool) (keys time.Duration) {
		t.Helper()
		app := &App{Storage: &StorageConfig{Path: path},
			Tables: map[string]*TableConfig{"user": {TokenTTL: caddy.Duration(ttl)}}}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		if err := app.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer app.Cleanup()
		if start {
			if err := app.Start(); err != nil {
				t.Fatal(err)
			}
			defer app.Stop()
		}
		if got := app.Service().Tables["user"].MaxTokenTTL(); got != app.maxTokenLifetime() {
			t.Errorf("table's longest lifetime %v, keys retire after %v", got, app.maxTokenLifetime())
		}
		return app.maxTokenLifetime()
	}
	for _, c := range []struct {
		ttl   time.Duration
		start bool
		want  time.Duration
	}{
		{48 * time.Hour, true, 48 * time.Hour},
		{time.Hour, true, 48 * time.Hour},
		{72 * time.Hour, true, 72 * time.Hour},
		{time.Hour, true, 72 * time.Hour},
		{8760 * time.Hour, false, 8760 * time.Hour}, // its own tables count while it lives
		{time.Hour, true, 72 * time.Hour},           // but it left nothing behind
	} {
		if keys := run(c.ttl, c.start); keys != c.want {
			t.Errorf("token_ttl %v (started %v): keys retire after %v; want %v", c.ttl, c.start, keys, c.want)
		}
	}
}

// TestProvisionRefusesImpossibleConfig: JSON configs bypass the
// Caddyfile's checks, so Provision refuses values that would make every
// token or every signup fail, and AuthHandler those CORS origins no
// browser ever sends.
func TestProvisionRefusesImpossibleConfig(t *testing.T) {
	n := func(v int) *int { return &v }
	for _, c := range []struct {
		name    string
		app     App
		wantErr string
	}{
		{"negative leeway", App{Leeway: caddy.Duration(-30 * time.Second)}, "leeway"},
		{"negative sweep_interval", App{SweepInterval: caddy.Duration(-time.Second)}, "sweep_interval"},
		{"min_length over max_length", App{Tables: map[string]*TableConfig{"user": {Password: &PasswordPolicy{MinLength: n(12), MaxLength: n(8)}}}}, "max_length is 8"},
		{"letters and digits over max_length", App{Tables: map[string]*TableConfig{"user": {Password: &PasswordPolicy{MinLetters: n(6), MinDigits: n(6), MaxLength: n(10)}}}}, "needs 12"},
		{"min_length over the default max_length", App{Tables: map[string]*TableConfig{"user": {Password: &PasswordPolicy{MinLength: n(2000)}}}}, "max_length is 1024"},
	} {
		app := c.app
		app.Storage = &StorageConfig{Path: filepath.Join(t.TempDir(), "a.db")}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := app.Provision(ctx)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.wantErr)
		}
		_ = app.Cleanup()
		cancel()
	}
	for _, o := range []string{"*", "https://app.example.com/", "app.example.com", "https://App.example.com", "https://app.example.com?x"} {
		if err := (&AuthHandler{CORSOrigins: []string{o}}).Validate(); err == nil {
			t.Errorf("cors origin %q accepted", o)
		}
	}
	for _, o := range []string{"https://app.example.com", "http://localhost:5173", "http://[::1]:8080",
		"capacitor://localhost", "ionic://localhost", "chrome-extension://abcdefghijklmnopabcdefghijklmnop"} {
		if err := (&AuthHandler{CORSOrigins: []string{o}}).Validate(); err != nil {
			t.Errorf("cors origin %q: %v", o, err)
		}
	}
}

// TestHashImplementationLogged: one line per process names the argon2
// code path, however many configs are provisioned.
func TestHashImplementationLogged(t *testing.T) {
	hashImplementationLogged = sync.Once{}
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	logHashImplementation(log)
	logHashImplementation(log) // a reload
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d lines, want 1", len(entries))
	}
	if got := entries[0].ContextMap()["argon2"]; got != password.Implementation() || got == "" {
		t.Errorf("argon2 = %v, want %q", got, password.Implementation())
	}
}

// TestErrorsNameTheModuleOnce: Caddy prefixes a module's provision and
// validate errors with its ID; ours must not say it again
// (`provision http.handlers.xano_auth: xano_auth: unknown table`).
func TestErrorsNameTheModuleOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	for _, c := range []struct{ handler, module string }{
		{`{"handler":"xano_auth","table":"nope"}`, "http.handlers.xano_auth"},
		{`{"handler":"xano_guard","tables":["nope"]}`, "http.handlers.xano_guard"},
		{`{"handler":"xano_guard","ignore_invalid":true}`, "http.handlers.xano_guard"},
	} {
		cfg := `{"admin":{"disabled":true},"apps":{"xano":{"storage":{"type":"bbolt","path":"` + db + `"}},` +
			`"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + c.handler + `]}]}}}}}`
		var parsed caddy.Config
		if err := json.Unmarshal([]byte(cfg), &parsed); err != nil {
			t.Fatal(err)
		}
		err := caddy.Validate(&parsed)
		if err == nil {
			t.Errorf("%s: accepted", c.handler)
			continue
		}
		short := strings.TrimPrefix(c.module, "http.handlers.")
		if n := strings.Count(err.Error(), c.module); n != 1 || strings.Contains(err.Error(), " "+short+": ") {
			t.Errorf("%s: the module names itself again: %v", c.handler, err)
		}
	}
}

// TestJSONRefusesWhatTheCaddyfileRefuses: limits that the Caddyfile
// parser enforces hold for hand-written JSON too.
func TestJSONRefusesWhatTheCaddyfileRefuses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	for name, c := range map[string]struct{ storage, handler string }{
		"max_body_size over 1 GiB": {`{"type":"bbolt","path":"` + db + `"}`, `{"handler":"xano_auth","max_body_size":2147483648}`},
		"negative lock_timeout":    {`{"type":"bbolt","path":"` + db + `","lock_timeout":-1}`, `{"handler":"xano_auth"}`},
	} {
		cfg := `{"admin":{"disabled":true},"apps":{"xano":{"storage":` + c.storage + `},` +
			`"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + c.handler + `]}]}}}}}`
		var parsed caddy.Config
		if err := json.Unmarshal([]byte(cfg), &parsed); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&parsed); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
