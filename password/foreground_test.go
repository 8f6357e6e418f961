package password

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/internal/argon2"
)

// gauge runs n computations on h, each blocking until release is closed,
// and reports the most that ran at once once `settle` has passed.
type gauge struct {
	running, peak atomic.Int32
	release       chan struct{}
	wg            sync.WaitGroup
	errs          chan error
}

func startComputations(h *Hasher, n int) *gauge {
	g := &gauge{release: make(chan struct{}), errs: make(chan error, n)}
	for range n {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.errs <- h.compute(context.Background(), func(*argon2.Memory) {
				r := g.running.Add(1)
				for {
					p := g.peak.Load()
					if r <= p || g.peak.CompareAndSwap(p, r) {
						break
					}
				}
				<-g.release
				g.running.Add(-1)
			})
		}()
	}
	return g
}

func (g *gauge) finish(t *testing.T) {
	t.Helper()
	close(g.release)
	g.wg.Wait()
	close(g.errs)
	for err := range g.errs {
		if err != nil {
			t.Errorf("compute: %v", err)
		}
	}
}

// waitRunning waits until want computations run (or a second passed).
func (g *gauge) waitRunning(want int32) int32 {
	deadline := time.Now().Add(time.Second)
	for g.running.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return g.running.Load()
}

// keepForeground reports foreground traffic every few milliseconds until
// the returned func is called, so that a slow test machine cannot let the
// 100 ms window lapse by accident.
func keepForeground(h *Hasher) (stop func()) {
	h.Foreground()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.Foreground()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func TestForegroundHalvesHashing(t *testing.T) {
	h := NewHasher(testParams, 4, 5*time.Second)

	// No foreground traffic: every slot hashes.
	g := startComputations(h, 4)
	if got := g.waitRunning(4); got != 4 {
		t.Fatalf("idle server: %d hashes ran at once, want 4", got)
	}
	g.finish(t)

	// Foreground traffic: at most half of the slots.
	stop := keepForeground(h)
	g = startComputations(h, 4)
	g.waitRunning(2)
	time.Sleep(30 * time.Millisecond) // time for a third to (wrongly) start
	p := g.peak.Load()
	stop()
	if p != 2 {
		t.Fatalf("with foreground traffic: %d hashes ran at once, want 2", p)
	}
	// Once the traffic stops, the waiting hashes start too.
	if got := g.waitRunning(4); got != 4 {
		t.Fatalf("after foreground traffic ended: %d hashes running, want 4", got)
	}
	g.finish(t)
}

func TestForegroundSmallConcurrency(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		h := NewHasher(testParams, n, 5*time.Second)
		stop := keepForeground(h)
		g := startComputations(h, n)
		if got := g.waitRunning(1); got != 1 {
			t.Errorf("concurrency %d with foreground traffic: %d hashes running, want 1", n, got)
		}
		time.Sleep(20 * time.Millisecond)
		p := g.peak.Load()
		stop()
		if p != 1 {
			t.Errorf("concurrency %d with foreground traffic: peak %d, want 1", n, p)
		}
		g.finish(t)
	}
}

func TestForegroundWaitIsBounded(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	h := NewHasher(testParams, 2, maxWait)
	// Keep the traffic going for longer than maxWait.
	stop := keepForeground(h)
	defer stop()
	g := startComputations(h, 1)
	g.waitRunning(1)
	defer g.finish(t)

	start := time.Now()
	_, err := h.Hash(context.Background(), "pw")
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash while the foreground slot is taken: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < maxWait || d > maxWait+5*time.Second {
		t.Errorf("gave up after %v, want about maxWait %v", d, maxWait)
	}
	// Nothing is left taken: both kinds of slot are free again after the
	// first computation ends.
	if n := len(h.sem); n != 1 {
		t.Errorf("%d slots taken, want 1 (the running computation)", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("cancelled context: %v, want ErrBusy", err)
	}
}

func TestForegroundSlotsReleased(t *testing.T) {
	h := NewHasher(testParams, 4, time.Second)
	h.Foreground()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "pw"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(h.sem) != 0 || len(h.fg.slots) != 0 {
		t.Errorf("slots still taken: %d, foreground %d", len(h.sem), len(h.fg.slots))
	}
}

// BenchmarkForeground is what every verified request pays.
func BenchmarkForeground(b *testing.B) {
	h := NewHasher(testParams, runtime.NumCPU(), 0)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Foreground()
		}
	})
}

// BenchmarkVerifyDefaultParallel verifies on every CPU at once: the login
// throughput the hardware allows (ns/op is wall time per verify with all
// CPUs busy). Concurrent argon2id hashes share memory bandwidth and cache,
// so this is usually well above BenchmarkVerifyDefault / CPUs.
func BenchmarkVerifyDefaultParallel(b *testing.B) {
	h := NewHasher(DefaultParams, runtime.GOMAXPROCS(0), 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "benchmark password 1")
	if err != nil {
		b.Fatal(err)
	}
	warmSlots(b, h, encoded, "benchmark password 1")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, encoded, "benchmark password 1"); err != nil || !ok {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
}

func TestLimitWhileBusy(t *testing.T) {
	for _, tc := range []struct{ concurrency, busy, want int }{
		{4, 0, 2},  // default: half
		{4, 3, 3},  // configured
		{4, 4, 4},  // = concurrency: no yielding
		{4, 9, 4},  // more than concurrency: no yielding
		{3, -1, 1}, // negative: the default
	} {
		h := NewHasher(testParams, tc.concurrency, 5*time.Second)
		h.LimitWhileBusy(tc.busy)
		stop := keepForeground(h)
		g := startComputations(h, tc.concurrency)
		g.waitRunning(int32(tc.want))
		time.Sleep(30 * time.Millisecond) // time for one more to (wrongly) start
		p := g.peak.Load()
		yielding := h.Yielding()
		stop()
		if p != int32(tc.want) {
			t.Errorf("concurrency %d, busy limit %d: %d hashes ran at once with foreground traffic, want %d",
				tc.concurrency, tc.busy, p, tc.want)
		}
		if want := tc.want < tc.concurrency; yielding != want {
			t.Errorf("concurrency %d, busy limit %d: Yielding() = %v with foreground traffic, want %v",
				tc.concurrency, tc.busy, yielding, want)
		}
		g.finish(t)
	}
}
