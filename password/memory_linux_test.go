package password

import (
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// rss is this process's resident memory in bytes (VmRSS).
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestDroppedMemoryReturned: memory the Hasher stops keeping goes back to
// the operating system at once, not when the garbage collector gets to it
// (argon2.Memory.Free; with the collector off here, nothing else would
// return it): on Release, and after a hash that is not kept.
func TestDroppedMemoryReturned(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const size = int64(19456) << 10
	h := NewHasher(DefaultParams, 1, 0) // keeps its dummy hash's memory
	before := rss(t)
	h.Release()
	if freed := before - rss(t); freed < size*3/4 {
		t.Fatalf("Release returned %d KiB, want about %d", freed>>10, size>>10)
	}
	before = rss(t)
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	if grown := rss(t) - before; grown > size/4 {
		t.Fatalf("a hash past Release left %d KiB resident", grown>>10)
	}
}
