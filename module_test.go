package xanoauth

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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
