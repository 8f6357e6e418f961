package xanoauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/token"
)

// provisionApp provisions a real app on a temp bbolt file with a fake clock.
func provisionApp(t *testing.T, path string, keys []string, clock *time.Time) *App {
	t.Helper()
	ttl := caddy.Duration(time.Hour)
	app := &App{
		Storage: &StorageConfig{Path: path},
		Keys:    keys,
		Tables:  map[string]*TableConfig{"user": {TokenTTL: ttl}},
		clock:   func() time.Time { return *clock },
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(func() {
		cancel()
		_ = app.Cleanup()
	})
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return app
}

func mintAt(t *testing.T, app *App, now time.Time) string {
	t.Helper()
	tok, err := app.svc.Keys().Mint(token.Claims{ID: 1, Table: "user", DS: "live", SID: "s", IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGeneratedKeyPersistsAndRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	now := time.Unix(1_700_000_000, 0)
	app := provisionApp(t, path, nil, &now)
	old := mintAt(t, app, now)
	_ = app.Cleanup()

	// same key after a restart
	app = provisionApp(t, path, nil, &now)
	if _, err := app.svc.Keys().Verify(old, now, 0); err != nil {
		t.Fatalf("key not persisted: %v", err)
	}

	// rotation: new tokens use the new key, old ones keep verifying
	n, err := app.RotateKeys(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	fresh := mintAt(t, app, now)
	for _, tok := range []string{old, fresh} {
		if _, err := app.svc.Keys().Verify(tok, now, 0); err != nil {
			t.Fatalf("token refused after rotation: %v", err)
		}
	}

	// before the longest lifetime has passed the old key stays
	now = now.Add(59 * time.Minute)
	if err := app.refreshKeys(context.Background(), now); err != nil || app.svc.Keys().Len() != 2 {
		t.Fatalf("old key dropped early: %v %d", err, app.svc.Keys().Len())
	}
	// after it, the old key is dropped and its tokens refused
	now = now.Add(2 * time.Minute)
	if err := app.refreshKeys(context.Background(), now); err != nil || app.svc.Keys().Len() != 1 {
		t.Fatalf("old key kept: %v %d", err, app.svc.Keys().Len())
	}
	t0 := now.Add(-61 * time.Minute) // when both tokens were minted
	if _, err := app.svc.Keys().Verify(old, t0, 0); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("token of a dropped key: %v", err)
	}
	if _, err := app.svc.Keys().Verify(fresh, t0, 0); err != nil {
		t.Fatalf("new key's token refused: %v", err)
	}
	// and a restart agrees
	_ = app.Cleanup()
	app = provisionApp(t, path, nil, &now)
	if app.svc.Keys().Len() != 1 {
		t.Fatalf("restart resurrected a dropped key: %d", app.svc.Keys().Len())
	}
}

func TestConfiguredKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	k1 := hex.EncodeToString(make([]byte, 32))
	k2b := make([]byte, 32)
	k2b[0] = 1
	k2 := hex.EncodeToString(k2b)
	now := time.Unix(1_700_000_000, 0)

	app := provisionApp(t, path, []string{k1}, &now)
	old := mintAt(t, app, now)
	if _, err := app.RotateKeys(context.Background()); err == nil {
		t.Fatal("admin rotation allowed with configured keys")
	}
	_ = app.Cleanup()

	// the operator puts a new key first: old tokens still verify
	now = now.Add(time.Minute)
	app = provisionApp(t, path, []string{k2, k1}, &now)
	if _, err := app.svc.Keys().Verify(old, now, 0); err != nil {
		t.Fatalf("old token refused right after config rotation: %v", err)
	}
	_ = app.Cleanup()

	// once the longest token lifetime has passed, k1 no longer verifies
	now = now.Add(61 * time.Minute)
	app = provisionApp(t, path, []string{k2, k1}, &now)
	if app.svc.Keys().Len() != 1 {
		t.Fatalf("expired configured key still in the ring (%d keys)", app.svc.Keys().Len())
	}
}

// hexKey returns a distinct 256-bit key, in hex.
func hexKey(n byte) string {
	k := make([]byte, 32)
	k[0] = n
	return hex.EncodeToString(k)
}

// TestConfiguredKeySurvivesAbandonedReload: Caddy provisions a new config
// before it knows whether it will run. A reload that puts k2 first and is
// then abandoned (another module fails) leaves the running config signing
// with k1, so the next reload that does put k2 first must keep k1 until
// the tokens k1 signed since have expired.
func TestConfiguredKeySurvivesAbandonedReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	k1, k2 := hexKey(1), hexKey(2)
	t0 := time.Unix(1_700_000_000, 0)
	runningNow := t0
	running := provisionApp(t, path, []string{k1}, &runningNow)
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}

	abandonedNow := t0.Add(time.Minute)
	abandoned := provisionApp(t, path, []string{k2, k1}, &abandonedNow)
	_ = abandoned.Cleanup()

	// The running config goes on signing with k1 for two hours (token_ttl
	// 1h), sweeping, and is stopped by the reload that replaces it.
	for runningNow = t0; runningNow.Before(t0.Add(2 * time.Hour)); runningNow = runningNow.Add(time.Minute) {
		if err := running.refreshKeys(context.Background(), runningNow); err != nil {
			t.Fatal(err)
		}
	}
	tok := mintAt(t, running, runningNow)
	reloadNow := runningNow.Add(time.Second)
	reloaded := provisionApp(t, path, []string{k2, k1}, &reloadNow)
	runningNow = reloadNow
	if err := running.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := reloaded.svc.Keys().Verify(tok, reloadNow, 0); err != nil {
		t.Fatalf("a token k1 signed a second before the reload: %v", err)
	}

	// k1 goes once the last token it signed has expired, plus one sweep
	// interval (1m by default), at a sweep of the config that runs.
	retire := reloadNow.Add(time.Hour + time.Minute)
	if err := reloaded.refreshKeys(context.Background(), retire.Add(-time.Second)); err != nil || reloaded.svc.Keys().Len() != 2 {
		t.Fatalf("k1 dropped before its tokens expired: %v, %d keys", err, reloaded.svc.Keys().Len())
	}
	if err := reloaded.refreshKeys(context.Background(), retire); err != nil || reloaded.svc.Keys().Len() != 1 {
		t.Fatalf("k1 kept after its tokens expired: %v, %d keys", err, reloaded.svc.Keys().Len())
	}
}

// TestConfiguredKeyRetiredWhileRunning: a configured key that is no
// longer first stops verifying on time without a reload, even a token
// someone mints with it later (a leaked key).
func TestConfiguredKeyRetiredWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	k1, k2 := hexKey(1), hexKey(2)
	now := time.Unix(1_700_000_000, 0)
	old := provisionApp(t, path, []string{k1}, &now)
	_ = old.Stop()
	_ = old.Cleanup()
	app := provisionApp(t, path, []string{k2, k1}, &now)
	if app.svc.Keys().Len() != 2 {
		t.Fatalf("k1 not verifying right after the rotation: %d keys", app.svc.Keys().Len())
	}
	later := now.Add(3 * time.Hour)
	if err := app.refreshKeys(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(k1)
	leaked, err := token.NewRing(raw)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := leaked.Mint(token.Claims{ID: 1, Table: "user", DS: "live", SID: "x",
		IssuedAt: later.Unix(), NotBefore: later.Unix(), Expiry: later.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.svc.Keys().Verify(forged, later, 0); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("a token of the retired key k1: %v (ring of %d keys)", err, app.svc.Keys().Len())
	}
	if _, err := app.svc.Keys().Verify(mintAt(t, app, later), later, 0); err != nil {
		t.Fatalf("the signing key's token: %v", err)
	}
}

// TestConfiguredKeyStateFromEarlierVersions: versions before the signing
// record stored only when a key was first seen and when it stopped being
// first. A key they saw first may have signed until the upgrade, so a
// rotation at the upgrade keeps it for a token lifetime; a key they saw
// demoted keeps the time they recorded.
func TestConfiguredKeyStateFromEarlierVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	k1, k2, k3 := hexKey(1), hexKey(2), hexKey(3)
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	app := provisionApp(t, path, []string{k1}, &now)
	fp := func(k string) string {
		raw, _ := hex.DecodeString(k)
		sum := sha256.Sum256(raw)
		return hex.EncodeToString(sum[:8])
	}
	legacy := fmt.Sprintf(`{%q:{"first_seen":%d},%q:{"first_seen":%d,"demoted":%d}}`,
		fp(k1), t0.Unix(), fp(k3), t0.Unix(), t0.Unix())
	if _, err := app.svc.Store.MetaUpdate(context.Background(), configKeysMetaName, func([]byte) ([]byte, error) {
		return []byte(legacy), nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = app.Cleanup()

	now = t0.Add(10 * 24 * time.Hour)
	app = provisionApp(t, path, []string{k2, k1, k3}, &now)
	if app.svc.Keys().Len() != 2 {
		t.Fatalf("after the upgrade: %d keys, want k2 and k1 (k3 was demoted ten days ago)", app.svc.Keys().Len())
	}
	if err := app.refreshKeys(context.Background(), now.Add(time.Hour+time.Minute)); err != nil || app.svc.Keys().Len() != 1 {
		t.Fatalf("k1 a token lifetime after the upgrade: %v, %d keys", err, app.svc.Keys().Len())
	}
}

func TestDecodeKey(t *testing.T) {
	for _, ok := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		if _, err := decodeKey(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "short", "zz00000000000000000000000000000000000000000000000000000000000000", "AAAA"} {
		if _, err := decodeKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
