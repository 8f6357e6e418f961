package xanoauth

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestCaddyfileAdaptGolden adapts each testdata/adapt/*.caddyfiletest with
// Caddy's own adapter and compares the JSON with the one below its
// "----------" line, as Caddy keeps its adapt fixtures: a renamed JSON
// field, a changed default that the Caddyfile writes, or a directive order
// that moved fails here. Configs and autosaves with the old JSON exist.
// XANOAUTH_UPDATE_GOLDEN=1 rewrites the expected halves.
func TestCaddyfileAdaptGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddyfiletest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	const sep = "\n----------\n"
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(b), sep)
			if !ok {
				t.Fatalf("no %q line", strings.TrimSpace(sep))
			}
			out, warns, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in+"\n"), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := pretty.String() + "\n"
			if os.Getenv("XANOAUTH_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(f, []byte(in+sep+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("adapted JSON differs from the fixture (XANOAUTH_UPDATE_GOLDEN=1 rewrites it once the change is meant)\ngot:\n%s", got)
			}
		})
	}
}
