package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1700000000, 0)

func mustNew(t testing.TB, limit int, window time.Duration, maxKeys int) *Limiter {
	t.Helper()
	l, err := New(limit, window, maxKeys)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		limit  int
		window time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, time.Microsecond}} {
		if _, err := New(c.limit, c.window, 0); err == nil {
			t.Errorf("New(%d, %v) accepted", c.limit, c.window)
		}
	}
}

func TestAllowAtMostNPerWindow(t *testing.T) {
	l := mustNew(t, 3, time.Minute, 0)
	for i := range 3 {
		if ok, _ := l.Allow("k", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("event %d refused", i+1)
		}
	}
	ok, retry := l.Allow("k", t0.Add(10*time.Second))
	if ok {
		t.Fatal("4th event in the window allowed")
	}
	// The first event (at t0) leaves the window 60s later, at most one
	// slot (7.5s) later than that.
	if retry < 50*time.Second || retry > 50*time.Second+time.Minute/Granularity {
		t.Fatalf("retryAfter %v, want 50s..57.5s", retry)
	}
	// Refused events are not counted, other keys are independent.
	if ok, _ := l.Allow("other", t0.Add(10*time.Second)); !ok {
		t.Fatal("another key was limited")
	}
	// Just before retryAfter: still refused; at retryAfter: allowed.
	at := t0.Add(10 * time.Second).Add(retry)
	if ok, _ := l.Allow("k", at.Add(-time.Millisecond)); ok {
		t.Fatal("allowed before retryAfter")
	}
	if ok, _ := l.Allow("k", at); !ok {
		t.Fatal("refused at retryAfter")
	}
}

// TestSlidingNotFixed: a fixed window would reset at its boundary and allow
// 2N events in a short span around it; the sliding window must not.
func TestSlidingNotFixed(t *testing.T) {
	l := mustNew(t, 10, time.Minute, 0)
	start := t0.Truncate(time.Minute).Add(59 * time.Second)
	for i := range 10 {
		if ok, _ := l.Allow("k", start.Add(time.Duration(i)*time.Millisecond)); !ok {
			t.Fatalf("event %d refused", i)
		}
	}
	// Two seconds later a fixed one-minute window would be fresh.
	if ok, _ := l.Allow("k", start.Add(2*time.Second)); ok {
		t.Fatal("limit reset at a fixed boundary")
	}
}

// TestNeverMoreThanNInAnyWindow drives random event times through Allow and
// checks the guarantee with an exact log of the accepted events.
func TestNeverMoreThanNInAnyWindow(t *testing.T) {
	const n, w = 5, 10 * time.Second
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		l := mustNew(t, n, w, 0)
		now := t0
		var accepted []time.Time
		for range 400 {
			now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			if ok, _ := l.Allow("k", now); ok {
				accepted = append(accepted, now)
			}
		}
		for i := range accepted {
			in := 0
			for j := i; j < len(accepted) && accepted[j].Sub(accepted[i]) <= w; j++ {
				in++
			}
			if in > n {
				t.Fatalf("round %d: %d events within %v from %v", round, in, w, accepted[i])
			}
		}
		if len(accepted) < 400/10 {
			t.Fatalf("round %d: only %d of 400 events accepted: limiter too strict", round, len(accepted))
		}
	}
}

func TestBlockedAddReset(t *testing.T) {
	l := mustNew(t, 2, 5*time.Minute, 0)
	if b, _ := l.Blocked("ip", t0); b {
		t.Fatal("unknown key blocked")
	}
	l.Add("ip", t0)
	if b, _ := l.Blocked("ip", t0); b {
		t.Fatal("blocked after 1 of 2")
	}
	// Blocked never counts.
	for range 10 {
		l.Blocked("ip", t0)
	}
	l.Add("ip", t0.Add(time.Second))
	b, retry := l.Blocked("ip", t0.Add(2*time.Second))
	if !b || retry <= 0 || retry > 5*time.Minute+5*time.Minute/Granularity {
		t.Fatalf("Blocked = %v, %v after 2 of 2", b, retry)
	}
	// Add counts even past the limit, and Allow refuses.
	l.Add("ip", t0.Add(3*time.Second))
	if ok, _ := l.Allow("ip", t0.Add(3*time.Second)); ok {
		t.Fatal("Allow passed a blocked key")
	}
	l.Reset("ip")
	if b, _ := l.Blocked("ip", t0.Add(3*time.Second)); b {
		t.Fatal("blocked after Reset")
	}
	if l.Len() != 0 {
		t.Fatalf("Len %d after Reset", l.Len())
	}
}

// TestWindowExpiry uses an injected clock: events are forgotten no earlier
// than one window and no later than one window plus one slot.
func TestWindowExpiry(t *testing.T) {
	const w = 15 * time.Minute
	l := mustNew(t, 10, w, 0)
	for i := range 10 {
		l.Add("acct", t0.Add(time.Duration(i)*time.Millisecond))
	}
	last := t0.Add(9 * time.Millisecond)
	if b, _ := l.Blocked("acct", last.Add(w)); !b {
		t.Fatal("forgotten before a full window")
	}
	if b, _ := l.Blocked("acct", last.Add(w+w/Granularity+time.Millisecond)); b {
		t.Fatal("still blocked a window and a slot later")
	}
	// Prune drops it once expired, not before.
	if n := l.Prune(last.Add(w)); n != 0 {
		t.Fatalf("pruned %d live keys", n)
	}
	if n := l.Prune(last.Add(w + w/Granularity + time.Millisecond)); n != 1 || l.Len() != 0 {
		t.Fatalf("pruned %d, %d left", n, l.Len())
	}
}

func TestClockGoingBackwards(t *testing.T) {
	l := mustNew(t, 2, time.Minute, 0)
	l.Add("k", t0.Add(time.Minute))
	l.Add("k", t0) // an earlier clock read, counted late: still counts
	if b, _ := l.Blocked("k", t0.Add(30*time.Second)); !b {
		t.Fatal("out-of-order event lost")
	}
	before1970 := time.Unix(-100, 0)
	l2 := mustNew(t, 1, time.Minute, 0)
	l2.Add("k", before1970)
	if b, retry := l2.Blocked("k", before1970); !b || retry <= 0 || retry > time.Minute+time.Minute/Granularity {
		t.Fatalf("negative times: %v %v", b, retry)
	}
}

// TestMemoryBound sprays more keys than the bound: the limiter keeps at
// most MaxKeys, drops the least recently counted, and its heap stays within
// the documented size.
func TestMemoryBound(t *testing.T) {
	const maxKeys = 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := mustNew(t, 5, time.Hour, maxKeys)
	for i := range 5 * maxKeys {
		l.Add(fmt.Sprintf("203.0.%d.%d", i/256, i%256), t0.Add(time.Duration(i)*time.Millisecond))
		if l.Len() > maxKeys {
			t.Fatalf("%d keys tracked, bound %d", l.Len(), maxKeys)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.Len() != maxKeys {
		t.Fatalf("Len %d, want %d", l.Len(), maxKeys)
	}
	if got := l.Evictions(); got != 4*maxKeys {
		t.Fatalf("%d evictions, want %d", got, 4*maxKeys)
	}
	// The newest keys survive, the oldest were dropped.
	last := 5*maxKeys - 1
	if b, _ := l.Blocked(fmt.Sprintf("203.0.%d.%d", last/256, last%256), t0); b {
		t.Fatal("unexpected block")
	}
	l.mu.Lock()
	_, oldKept := l.entries["203.0.0.0"]
	_, newKept := l.entries[fmt.Sprintf("203.0.%d.%d", last/256, last%256)]
	l.mu.Unlock()
	if oldKept || !newKept {
		t.Fatalf("eviction order: oldest kept %v, newest kept %v", oldKept, newKept)
	}
	perKey := float64(after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc)) / maxKeys
	t.Logf("≈ %.0f bytes per tracked key (keys of ~11 bytes)", perKey)
	if perKey > 250 {
		t.Fatalf("%.0f bytes per key, documented ≈150 + key length", perKey)
	}
	runtime.KeepAlive(l)
}

// TestConcurrent hammers one limiter from many goroutines (run with -race):
// across all of them, exactly limit events per key get through.
func TestConcurrent(t *testing.T) {
	const limit, keys, workers = 50, 20, 32
	l := mustNew(t, limit, time.Hour, 0)
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (w + i) % keys
				key := fmt.Sprintf("k%d", k)
				now := t0.Add(time.Duration(i) * time.Millisecond)
				switch i % 4 {
				case 0, 1:
					if ok, _ := l.Allow(key, now); ok {
						allowed[k].Add(1)
					}
				case 2:
					l.Blocked(key, now)
				case 3:
					l.Prune(now)
					_ = l.Len()
				}
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		if n := allowed[k].Load(); n != limit {
			t.Errorf("key %d: %d allowed, want exactly %d", k, n, limit)
		}
	}
}

func TestJanitorPrunesAndStops(t *testing.T) {
	l := mustNew(t, 1, time.Millisecond*8, 0) // slot 1ms: janitor period 1s
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	l.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	l.Add("k", t0)
	ctx, cancel := context.WithCancel(context.Background())
	l.Start(ctx)
	clock.Store(t0.Add(time.Hour).UnixNano())
	deadline := time.Now().Add(5 * time.Second)
	for l.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l.Len() != 0 {
		t.Fatal("janitor did not prune an expired key")
	}
	cancel()
	// After cancel the janitor is gone: a new expired key stays.
	time.Sleep(100 * time.Millisecond)
	l.Add("k2", t0)
	time.Sleep(1500 * time.Millisecond)
	if l.Len() != 1 {
		t.Fatal("janitor still running after its context ended")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := mustNew(b, 1<<30, time.Minute, 0)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now()
		for pb.Next() {
			l.Allow(fmt.Sprint(i%1000), now)
			i++
		}
	})
}

func TestReserveUndo(t *testing.T) {
	l := mustNew(t, 2, time.Minute, 0)
	a, ok, _ := l.Reserve("k", t0)
	if !ok {
		t.Fatal("first reservation refused")
	}
	if _, ok, _ := l.Reserve("k", t0.Add(time.Second)); !ok {
		t.Fatal("second reservation refused")
	}
	r, ok, retry := l.Reserve("k", t0.Add(2*time.Second))
	if ok || retry <= 0 || r != (Reservation{}) {
		t.Fatalf("third reservation: ok %v, retry %v, %+v", ok, retry, r)
	}
	if !l.Undo(&a) {
		t.Fatal("Undo of a live reservation did nothing")
	}
	if a != (Reservation{}) {
		t.Fatal("Undo left the reservation set")
	}
	// Undoing twice, or the zero Reservation, removes nothing more.
	if l.Undo(&a) || l.Undo(&Reservation{}) {
		t.Fatal("a spent or zero reservation undid something")
	}
	if _, ok, _ := l.Reserve("k", t0.Add(3*time.Second)); !ok {
		t.Fatal("the undone event still counts")
	}
	if b, _ := l.Blocked("k", t0.Add(3*time.Second)); !b {
		t.Fatal("Undo removed more than its own event")
	}
}

// TestUndoNeverRemovesAnotherEvent: a reservation whose count is gone
// (its key Reset, its slot out of the ring, its key evicted) undoes
// nothing, even when the key holds other events counted at the same time.
func TestUndoNeverRemovesAnotherEvent(t *testing.T) {
	l := mustNew(t, 1, time.Minute, 0)
	r, _, _ := l.Reserve("k", t0)
	l.Reset("k")
	l.Add("k", t0) // same key, same time, another event
	if l.Undo(&r) {
		t.Fatal("Undo after Reset removed a later event")
	}
	if b, _ := l.Blocked("k", t0); !b {
		t.Fatal("the later event was lost")
	}

	l = mustNew(t, 1, time.Minute, 0)
	r, _, _ = l.Reserve("k", t0)
	l.Add("k", t0.Add(2*time.Minute)) // t0's slot has left the ring
	if l.Undo(&r) {
		t.Fatal("Undo of a forgotten event removed another")
	}
	if b, _ := l.Blocked("k", t0.Add(2*time.Minute)); !b {
		t.Fatal("the later event was lost")
	}

	l = mustNew(t, 1, time.Minute, 1)
	r, _, _ = l.Reserve("k", t0)
	l.Add("other", t0) // evicts k at the bound of one key
	l.Add("k", t0)
	if l.Undo(&r) {
		t.Fatal("Undo after eviction removed a later event")
	}
	if b, _ := l.Blocked("k", t0); !b {
		t.Fatal("the later event was lost")
	}

	// A reservation of another limiter undoes nothing here.
	other := mustNew(t, 1, time.Minute, 0)
	r, _, _ = other.Reserve("k", t0)
	if l.Undo(&r) {
		t.Fatal("Undo of another limiter's reservation")
	}
}

// TestUndoLateClockRead: an event whose time is behind its key's newest
// slot is counted in that slot; Undo takes it from there, which an undo
// by key and time (the slot of its own time, empty here) would miss.
func TestUndoLateClockRead(t *testing.T) {
	l := mustNew(t, 2, time.Minute, 0)
	l.Add("k", t0.Add(50*time.Second))
	r, ok, _ := l.Reserve("k", t0)
	if !ok {
		t.Fatal("reservation refused")
	}
	if b, _ := l.Blocked("k", t0.Add(50*time.Second)); !b {
		t.Fatal("late event not counted")
	}
	if !l.Undo(&r) {
		t.Fatal("Undo of a late event did nothing")
	}
	if b, _ := l.Blocked("k", t0.Add(50*time.Second)); b {
		t.Fatal("late event still counted after Undo")
	}
	// The other event is intact and expires on its own time.
	if _, ok, _ := l.Reserve("k", t0.Add(50*time.Second)); !ok {
		t.Fatal("refused with one event of two")
	}
	if ok, _ := l.Allow("k", t0.Add(51*time.Second)); ok {
		t.Fatal("a third event allowed")
	}
}

// TestReserveUndoConcurrent: goroutines reserve at once and undo some of
// their reservations (run with -race). At no moment may more reservations
// stand than the limit, and at the end the limiter's count is exactly the
// reservations kept.
func TestReserveUndoConcurrent(t *testing.T) {
	const limit, workers = 20, 32
	l := mustNew(t, limit, time.Hour, 0)
	var standing, peak, kept atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 200 {
				r, ok, _ := l.Reserve("k", t0.Add(time.Duration(i)*time.Millisecond))
				if !ok {
					continue
				}
				n := standing.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if (w+i)%3 == 0 {
					kept.Add(1)
					continue
				}
				standing.Add(-1)
				if !l.Undo(&r) {
					t.Error("Undo of a live reservation failed")
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	// standing is raised after a Reserve succeeds and lowered before its
	// Undo, so it never exceeds the reservations the limiter holds: if it
	// passed the limit, so did the limiter.
	if p := peak.Load(); p > limit {
		t.Fatalf("%d reservations stood at once, limit %d", p, limit)
	}
	if k := kept.Load(); k != limit {
		t.Fatalf("%d reservations kept, want the limit %d (undone ones must free their place)", k, limit)
	}
	if b, _ := l.Blocked("k", t0.Add(time.Second)); !b {
		t.Fatal("not blocked with the limit kept")
	}
}
