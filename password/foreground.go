package password

import (
	"context"
	"sync/atomic"
	"time"
)

// Hashing and the requests it must not starve share the processors. Go
// preempts a running goroutine only about every 10 ms, so when every
// processor is busy with an argon2id hash (10–25 ms), a guarded request that
// needs 50 µs waits for the next preemption: with hashing at one slot per
// CPU, a login storm cut guarded throughput on 2 CPUs to a tenth and
// multiplied its p99 latency by 7 (bench/run.sh). One slot per CPU is still
// right for a login burst on an otherwise idle server, which should use
// every core.
//
// So a Hasher yields to foreground traffic: while a request reported with
// Foreground was seen within foregroundWindow, at most half its slots (at
// least one; LimitWhileBusy changes that) hash, and the rest of the hashes
// wait, within the same maxWait, for one of those. Hashes already running
// finish; the limit applies to hashes that start.
const foregroundWindow = 100 * time.Millisecond

// monoEpoch anchors monotonic(): time.Since reads the monotonic clock, so
// a wall-clock step cannot switch yielding on or off.
var monoEpoch = time.Now()

func monotonic() int64 { return int64(time.Since(monoEpoch)) }

type foreground struct {
	// last is monotonic() at the latest Foreground call, refreshed at
	// most once a millisecond so that concurrent callers mostly read it.
	last atomic.Int64
	// slots bounds the hashes running while foreground traffic is active;
	// nil when that bound would be the Hasher's own (one slot).
	slots chan struct{}
}

func (fg *foreground) init(concurrency, busy int) {
	fg.last.Store(-int64(foregroundWindow)) // inactive at start
	if busy <= 0 {
		busy = max(1, concurrency/2)
	}
	fg.slots = nil
	if busy < concurrency {
		fg.slots = make(chan struct{}, busy)
	}
}

// LimitWhileBusy sets how many hashes may start while foreground traffic
// is active: n <= 0 means half of the slots (at least one), the default;
// n >= the Hasher's concurrency turns yielding off. It must be called
// before h is first used, since the slots are not swapped atomically.
func (h *Hasher) LimitWhileBusy(n int) {
	h.fg.init(cap(h.sem), n)
}

// Foreground reports a request that should not wait behind password
// hashing (xanoauth reports every request whose token verified). For the
// next 100 ms at most the busy limit of h's slots hash (LimitWhileBusy). It
// costs a monotonic clock read and an atomic load, plus an atomic store at
// most once a millisecond.
func (h *Hasher) Foreground() {
	now := monotonic()
	if now-h.fg.last.Load() > int64(time.Millisecond) {
		h.fg.last.Store(now)
	}
}

// Yielding reports whether foreground traffic currently limits h to its
// busy limit.
func (h *Hasher) Yielding() bool { return h.fg.slots != nil && h.foregroundActive() }

func (h *Hasher) foregroundActive() bool {
	return monotonic()-h.fg.last.Load() < int64(foregroundWindow)
}

// yield runs after compute took one of h's slots. A hash takes a
// foreground slot whenever one is free, so that running hashes are counted
// when foreground traffic starts; without a free one it runs only while no
// foreground traffic is active, and otherwise waits for one until start +
// h.maxWait or the end of ctx (ErrBusy). The returned func releases what
// was taken.
func (h *Hasher) yield(ctx context.Context, start time.Time) (func(), error) {
	slots := h.fg.slots
	if slots == nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	if !h.foregroundActive() {
		return func() {}, nil
	}
	t := time.NewTimer(h.maxWait - time.Since(start))
	defer t.Stop()
	// Foreground traffic may stop while we wait: look again now and then.
	tick := time.NewTicker(foregroundWindow / 10)
	defer tick.Stop()
	for {
		select {
		case slots <- struct{}{}:
			return func() { <-slots }, nil
		case <-tick.C:
			if !h.foregroundActive() {
				return func() {}, nil
			}
		case <-t.C:
			return nil, ErrBusy
		case <-ctx.Done():
			return nil, ErrBusy
		}
	}
}
