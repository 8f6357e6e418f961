package argon2

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// upstreamFiles are the SHA-256 sums of golang.org/x/crypto/argon2's files
// at v0.58.0, the version this copy was made from. verbatim: the copy here
// is byte-for-byte upstream's.
var upstreamFiles = map[string]struct {
	sum      string
	verbatim bool
}{
	"argon2.go":         {"3675c69f8a2efbd5ae4d35d00f5679113b50ec32f3fe6482c669ef7b401a38d5", false},
	"blake2b.go":        {"00b7ed36b3569e067ce4e34c92b44914e98a26f3666a2cf01b6785cc4b8201e6", true},
	"blamka_amd64.go":   {"3f579a886e71b212df75178fef7876aa2b3ea059db0baab44cd3fb4239edca12", true},
	"blamka_amd64.s":    {"34956c458ac293db0748178d62e110ac45837063e535a813c8a253c3fe50729f", true},
	"blamka_generic.go": {"168ed535967c760875407a802f810d76cf527f6c1bb111612dbc81c66fcaf34c", false},
	"blamka_ref.go":     {"5ee521fdb6238d46888482d6cac64f825816d52a649b894447890c80450c657a", false},
	"blamka_loong64.go": {"f656d6f7de87592eff8e9502f395e947d6b3e103ffcb820d34c0dcf5a22c3c96", false},
	"blamka_loong64.s":  {"36c96607033dd21fbff85ff1ef4b473825d944e7043738f799f2584993d2c6b4", false},
}

// TestUpstreamUnchanged fails when the golang.org/x/crypto in go.mod has an
// argon2 that differs from the one this package was copied from (a bump
// that brings argon2 fixes must bring them here too: copy the new files and
// re-apply the changes the package doc lists, then update the sums), and
// when a file kept verbatim has drifted from upstream's.
func TestUpstreamUnchanged(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "golang.org/x/crypto").Output()
	if err != nil {
		t.Fatalf("locating golang.org/x/crypto with go list: %v", err)
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	upstream := filepath.Join(dir, "argon2")
	entries, err := os.ReadDir(upstream)
	if err != nil {
		t.Fatalf("x/crypto %s: %v", version, err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, "_test.go") || !(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".s")) {
			continue
		}
		seen[name] = true
		want, ok := upstreamFiles[name]
		if !ok {
			t.Errorf("x/crypto %s has a new argon2 file %s: review it for this copy", version, name)
			continue
		}
		content, err := os.ReadFile(filepath.Join(upstream, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		if hex.EncodeToString(sum[:]) != want.sum {
			t.Errorf("x/crypto %s changed argon2/%s since v0.58.0: review the change for this copy", version, name)
			continue
		}
		if want.verbatim {
			ours, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, content) {
				t.Errorf("%s differs from x/crypto's, but is meant to be a verbatim copy", name)
			}
		}
	}
	for name := range upstreamFiles {
		if !seen[name] {
			t.Errorf("x/crypto %s no longer has argon2/%s: review the change for this copy", version, name)
		}
	}
}
