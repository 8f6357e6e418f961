package password

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestKeptMemoryBounded: however many hashes run, a Hasher creates at most
// one argon2 working memory per slot and keeps at most that many, so
// MemoryBound holds for kept memory too; and it does reuse them.
func TestKeptMemoryBounded(t *testing.T) {
	const slots, workers, each = 2, 8, 5
	h := NewHasher(testParams, slots, 0)
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if ok, _, err := h.Verify(context.Background(), encoded, "pw"); !ok || err != nil {
					t.Errorf("Verify = %v, %v", ok, err)
				}
				if err := h.VerifyDummy(context.Background(), "pw"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := h.memCreate.Load(); n > slots {
		t.Errorf("created %d argon2 memories for %d slots", n, slots)
	}
	if n := len(h.mem); n < 1 || n > slots {
		t.Errorf("keeps %d argon2 memories, want 1..%d", n, slots)
	}
	if got, want := h.KeptMemory(), uint64(len(h.mem))*uint64(testParams.Memory)*1024; got != want || got > h.MemoryBound() {
		t.Errorf("KeptMemory() = %d, want %d (MemoryBound %d)", got, want, h.MemoryBound())
	}
	for range len(h.mem) {
		m := <-h.mem
		if m.Size() != uint64(testParams.Memory)*1024 {
			t.Errorf("kept memory of %d bytes, want %d", m.Size(), testParams.Memory*1024)
		}
	}
}

// TestForeignMemoryNotKept: verifying a stored hash with a larger memory
// cost than the Hasher's works, but its memory is not kept.
func TestForeignMemoryNotKept(t *testing.T) {
	big := testParams
	big.Memory = 256
	encoded, err := NewHasher(big, 1, 0).Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(testParams, 1, 0)
	if ok, rehash, err := h.Verify(context.Background(), encoded, "pw"); !ok || !rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if n := len(h.mem); n != 0 {
		t.Fatalf("keeps %d memories after a larger foreign hash, want 0", n)
	}
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.mem); n != 1 || (<-h.mem).Size() != uint64(testParams.Memory)*1024 {
		t.Fatalf("after an own hash: keeps %d memories, want 1 of the own size", n)
	}
}

// waitNoMemory waits (bounded) for h to drop its kept memory.
func waitNoMemory(t *testing.T, h *Hasher, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); len(h.mem) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still keeps %d memories after %v", len(h.mem), within)
		}
	}
}

// TestIdleMemoryDropped: kept memory goes once no hash ended for memIdle,
// not while hashes keep coming, and a hash after that keeps memory again
// (and schedules its drop again).
func TestIdleMemoryDropped(t *testing.T) {
	h := newHasher(testParams, 1, 0, 200*time.Millisecond)
	ctx := context.Background()
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		if _, err := h.Hash(ctx, "pw"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if len(h.mem) != 1 {
			t.Fatalf("dropped kept memory %v into steady hashing", time.Since(start))
		}
	}
	waitNoMemory(t, h, 2*time.Second)

	created := h.memCreate.Load()
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if h.memCreate.Load() != created+1 || len(h.mem) != 1 {
		t.Fatalf("after the drop: created %d more, keeps %d; want 1 and 1", h.memCreate.Load()-created, len(h.mem))
	}
	waitNoMemory(t, h, 2*time.Second)
}

// TestRelease: Release drops kept memory at once and keeps none after,
// while hashing goes on working.
func TestRelease(t *testing.T) {
	h := NewHasher(testParams, 2, 0)
	if len(h.mem) != 1 {
		t.Fatalf("NewHasher keeps %d memories, want its dummy hash's 1", len(h.mem))
	}
	h.Release()
	if len(h.mem) != 0 || h.KeptMemory() != 0 {
		t.Fatalf("keeps %d memories (KeptMemory %d) after Release", len(h.mem), h.KeptMemory())
	}
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(context.Background(), encoded, "pw"); !ok || err != nil {
		t.Fatalf("Verify after Release = %v, %v", ok, err)
	}
	if len(h.mem) != 0 {
		t.Fatalf("keeps %d memories after hashing past Release", len(h.mem))
	}
}
