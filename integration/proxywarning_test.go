package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestWarnsAboutAppendingProxies: rate limits on, proxies trusted for
// X-Forwarded-For, strict mode off: clients behind an appending proxy
// choose their address, and the operator is told at start; with
// trusted_proxies_strict, not.
func TestWarnsAboutAppendingProxies(t *testing.T) {
	const warning = "rate limits count client addresses that clients can choose"
	for _, strict := range []bool{false, true} {
		dir := t.TempDir()
		logFile := filepath.Join(dir, "caddy.log")
		strictLine := ""
		if strict {
			strictLine = "trusted_proxies_strict"
		}
		tester := caddytest.NewTester(t)
		tester.InitServer(fmt.Sprintf(`{
	%s
	log {
		output file %s
		level WARN
	}
	servers {
		trusted_proxies static 10.0.0.0/8
		%s
	}
	xano {
		storage bbolt %s
	}
}
http://localhost:9080 {
	xano_auth /api:*
}`, globals, logFile, strictLine, filepath.Join(dir, "w.db")), "caddyfile")
		var logged string
		for range 50 { // the app starts before InitServer returns; the file may lag
			b, _ := os.ReadFile(logFile)
			logged = string(b)
			if strings.Contains(logged, warning) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := strings.Contains(logged, warning); got == strict {
			t.Errorf("strict=%v: warned=%v; log: %s", strict, got, logged)
		}
	}
}
