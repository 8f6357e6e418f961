package password

import (
	"context"
	"sync"
	"testing"
)

// warmSlots verifies on every slot of h at once, so that each keeps warm
// argon2 memory: a benchmark of steady-state logins then does not time the
// first hash of a slot, which faults its memory in.
func warmSlots(tb testing.TB, h *Hasher, encoded, pw string) {
	tb.Helper()
	var wg sync.WaitGroup
	for range cap(h.sem) {
		wg.Go(func() {
			if ok, _, err := h.Verify(context.Background(), encoded, pw); !ok || err != nil {
				tb.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if n := len(h.mem); n != cap(h.sem) {
		tb.Logf("%d of %d slots warm", n, cap(h.sem))
	}
}
