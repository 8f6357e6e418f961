package xanoauth

import (
	"context"
	"encoding/hex"
	"errors"
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
	if err := app.refreshStoredKeys(context.Background(), now); err != nil || app.svc.Keys().Len() != 2 {
		t.Fatalf("old key dropped early: %v %d", err, app.svc.Keys().Len())
	}
	// after it, the old key is dropped and its tokens refused
	now = now.Add(2 * time.Minute)
	if err := app.refreshStoredKeys(context.Background(), now); err != nil || app.svc.Keys().Len() != 1 {
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
