// Package integration runs Caddy in-process with the plugin, configured from
// Caddyfiles, and talks to it over 127.0.0.1 as a real client would.
package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/xanoauth/caddy-xanoauth"
)

// dataHome is Caddy's data directory for this test run (XDG_DATA_HOME), so
// that the zero-config default location is observable and disposable.
var dataHome string

func TestMain(m *testing.M) {
	// Re-executed as a plain Caddy (see TestSecondProcessFailsFast).
	if os.Getenv("XANOAUTH_TEST_RUN_CADDY") == "1" {
		caddycmd.Main()
		return
	}
	dir, err := os.MkdirTemp("", "xanoauth-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dataHome = filepath.Join(dir, "data")
	os.Setenv("XDG_DATA_HOME", dataHome)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
