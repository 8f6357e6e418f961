// Package ratelimit counts events per key in a sliding window: at most N
// events per window W per key.
//
// # Algorithm
//
// Each key keeps Granularity+1 counters, one per sub-window ("slot") of
// length W/Granularity. An event is counted in the slot of its time and is
// forgotten when its slot has fully left the window. The check counts every
// slot that overlaps [now-W, now], so:
//
//   - the guarantee is exact in the safe direction: no window of length W
//     ever holds more than N accepted events (every event younger than W is
//     still counted);
//   - an event is forgotten between W and W·(1+1/Granularity) after it
//     happened, i.e. a blocked key waits at most W/Granularity longer than an
//     exact sliding log would make it wait.
//
// This was chosen over an exact log of timestamps (memory N×8 bytes per key,
// 480 bytes for 60 per minute) and over GCRA / token buckets (which let a
// burst of N through and then another event after W/N, i.e. N+1 in a
// window: not "at most N per W").
//
// # Outcomes known later
//
// To limit only some outcomes of an expensive step (failed logins) strictly,
// count each attempt before the step with Reserve, which checks and counts
// in one step, and Undo it once it turns out not to count. Checking before
// the step and counting after it would let every attempt in flight pass
// the check at once.
//
// # Memory bound
//
// A Limiter tracks at most MaxKeys keys (DefaultMaxKeys = 100,000). A key
// costs about 150 bytes plus its length (the entry, its map slot and its
// place in a recency list), so the default bound is roughly 15–20 MB per
// Limiter with short keys. When a new key arrives at the bound, the key
// counted least recently is dropped, expired or not: keeping memory bounded
// wins over remembering the oldest attacker. Expired keys are also pruned by
// Prune, which the janitor started by Start calls periodically.
//
// A Limiter is safe for concurrent use.
package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Granularity is the number of slots a window is split into. Larger values
// forget events closer to exactly W after they happened, at 4 bytes per
// slot per key.
const Granularity = 8

// ringSize is the number of slots a key keeps: the window spans
// Granularity slots, plus the partial slot at each end.
const ringSize = Granularity + 1

// DefaultMaxKeys is the key bound used when New is given none.
const DefaultMaxKeys = 100_000

// Limiter counts events per key; see the package documentation.
type Limiter struct {
	limit   int
	window  time.Duration
	slot    int64 // slot length in nanoseconds, ≥ 1
	maxKeys int

	// Now is the clock of the janitor (Start); nil means time.Now. The
	// other methods take the time as an argument.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	// A recency list: newest is the key counted most recently, oldest the
	// key counted least recently. Counting moves a key to the front, so
	// (times being nearly monotonic) the oldest end holds the keys that
	// expire first.
	newest, oldest *entry

	evictions atomic.Uint64
}

type entry struct {
	key    string
	head   int64 // index of the newest slot in counts
	counts [ringSize]uint32
	// prev is the more recently counted neighbour, next the less recent.
	prev, next *entry
}

// New returns a Limiter allowing at most limit events per window per key,
// tracking at most maxKeys keys (DefaultMaxKeys when maxKeys <= 0).
func New(limit int, window time.Duration, maxKeys int) (*Limiter, error) {
	if limit < 1 {
		return nil, errors.New("ratelimit: limit must be at least 1")
	}
	if window < time.Millisecond {
		return nil, errors.New("ratelimit: window must be at least 1ms")
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	// Round the slot up, so that Granularity slots always cover at least
	// the whole window and no event younger than window is forgotten.
	slot := (int64(window) + Granularity - 1) / Granularity
	return &Limiter{
		limit:   limit,
		window:  window,
		slot:    slot,
		maxKeys: maxKeys,
		entries: make(map[string]*entry),
	}, nil
}

// Limit returns the number of events allowed per window.
func (l *Limiter) Limit() int { return l.limit }

// Window returns the window length.
func (l *Limiter) Window() time.Duration { return l.window }

// Allow counts an event for key at now if key is below its limit, and
// reports whether it did. When it did not, retryAfter is how long until an
// event would be allowed again (if nothing else is counted meanwhile); a
// refused event is not counted.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	_, ok, retryAfter = l.Reserve(key, now)
	return ok, retryAfter
}

// Reservation is one event counted by Reserve, which Undo can take back.
// It names the key's entry and the slot the event went into, not the key
// and a time: a key that was Reset and counted again has a new entry, and
// an event whose time was behind its key's newest slot (a clock read just
// before another goroutine's) went into that newest slot, so only the
// entry and the slot say for sure which count is the event's. The zero
// Reservation holds nothing.
type Reservation struct {
	e    *entry
	slot int64
}

// Reserve is Allow for an event that may turn out not to count (a login
// attempt, counted as a failure before its outcome is known, so that
// attempts in flight count too): if it counted the event, r lets Undo take
// it back once it is known not to count. The check and the count are one
// step under the lock, so however calls interleave no window ever holds
// more than limit events that were not undone.
func (l *Limiter) Reserve(key string, now time.Time) (r Reservation, ok bool, retryAfter time.Duration) {
	idx := l.index(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e != nil {
		if n := e.count(idx); n >= l.limit {
			return Reservation{}, false, l.retryAfter(e, idx, n, now)
		}
	}
	e, counted := l.add(key, e, idx)
	if !counted {
		return Reservation{}, true, 0 // a saturated slot: nothing to undo
	}
	return Reservation{e: e, slot: e.head}, true, 0
}

// Undo takes back the event *r counted, and empties *r so that a second
// Undo does nothing. It removes that event's count and never another's:
// it does nothing (and reports false) if the key was Reset, pruned or
// evicted since (its count went with the entry), or if the event's slot
// has left the ring (it was forgotten already). The zero Reservation, or
// one of another Limiter, undoes nothing.
func (l *Limiter) Undo(r *Reservation) bool {
	e, slot := r.e, r.slot
	*r = Reservation{}
	if e == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries[e.key] != e || slot < e.head-Granularity {
		return false
	}
	c := &e.counts[mod(slot)]
	if *c == 0 {
		return false // not reached: the event is still in its slot
	}
	*c--
	return true
}

// Blocked reports whether key has reached its limit at now, without
// counting anything, and if so how long until it is below it again. With
// Add it limits only some outcomes, but loosely: events in flight between
// a Blocked and their Add are not counted yet, so concurrent callers can
// all pass Blocked at once. For a strict limit on outcomes, count up front
// with Reserve and Undo what did not count.
func (l *Limiter) Blocked(key string, now time.Time) (blocked bool, retryAfter time.Duration) {
	idx := l.index(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		return false, 0
	}
	if n := e.count(idx); n >= l.limit {
		return true, l.retryAfter(e, idx, n, now)
	}
	return false, 0
}

// Add counts an event for key at now, whatever its count. Counts saturate
// rather than wrap.
func (l *Limiter) Add(key string, now time.Time) {
	idx := l.index(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.add(key, l.entries[key], idx)
}

// Reset forgets key.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[key]; e != nil {
		l.remove(e)
	}
}

// Len returns the number of keys tracked, expired or not.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Evictions returns how many keys were dropped at the MaxKeys bound before
// they expired. A growing number means the bound is too small for the
// traffic (or someone is spraying keys).
func (l *Limiter) Evictions() uint64 { return l.evictions.Load() }

// Prune drops keys whose events have all left the window at now, and
// returns how many it dropped. It walks from the least recently counted
// key and stops at the first live one, so its cost is proportional to what
// it drops.
func (l *Limiter) Prune(now time.Time) int {
	idx := l.index(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for e := l.oldest; e != nil && e.expired(idx); e = l.oldest {
		l.remove(e)
		n++
	}
	return n
}

// Start runs a janitor that calls Prune periodically until ctx ends, so
// that expired keys do not wait for the MaxKeys bound to be dropped. The
// period is one slot (window/Granularity), at least 1s and at most 1m.
func (l *Limiter) Start(ctx context.Context) {
	period := time.Duration(l.slot)
	period = max(period, time.Second)
	period = min(period, time.Minute)
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.Prune(l.clock())
			}
		}
	}()
}

func (l *Limiter) clock() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// index returns the slot number of t.
func (l *Limiter) index(t time.Time) int64 {
	ns := t.UnixNano()
	i := ns / l.slot
	if ns < 0 && ns%l.slot != 0 {
		i-- // floor, for times before 1970
	}
	return i
}

// add counts one event in e (created for key if nil) at slot idx, and
// makes e the most recently counted key. It returns e, and whether it
// counted (false: the slot is saturated). The event goes into e's newest
// slot, which is idx unless idx is behind it. Called with l.mu held.
func (l *Limiter) add(key string, e *entry, idx int64) (*entry, bool) {
	if e == nil {
		for len(l.entries) >= l.maxKeys && l.oldest != nil {
			if !l.oldest.expired(idx) {
				l.evictions.Add(1)
			}
			l.remove(l.oldest)
		}
		e = &entry{key: key, head: idx}
		l.entries[key] = e
		l.pushFront(e)
	} else {
		l.moveToFront(e)
	}
	e.advance(idx)
	if c := &e.counts[mod(e.head)]; *c < ^uint32(0) {
		*c++
		return e, true
	}
	return e, false
}

// retryAfter returns how long from now until e's count at slot idx, which
// is n >= limit, drops below the limit: the oldest slots leave the window
// one by one, and enough of them must leave to shed n-limit+1 events.
func (l *Limiter) retryAfter(e *entry, idx int64, n int, now time.Time) time.Duration {
	excess := n - l.limit + 1
	hi := max(idx, e.head)
	for b := hi - Granularity; b <= e.head; b++ {
		excess -= int(e.counts[mod(b)])
		if excess <= 0 {
			// Slot b is counted until the slot Granularity after it
			// ends.
			at := (b + Granularity + 1) * l.slot
			return max(time.Duration(at-now.UnixNano()), time.Nanosecond)
		}
	}
	return l.window // not reached: the slots hold n events
}

// count returns the events e holds that are still in the window at slot
// idx. A time earlier than e's newest slot (a clock read just before
// another goroutine's) counts as that newest slot.
func (e *entry) count(idx int64) int {
	hi := max(idx, e.head)
	n := 0
	for b := hi - Granularity; b <= e.head; b++ {
		n += int(e.counts[mod(b)])
	}
	return n
}

// expired reports whether every event of e has left the window at idx.
func (e *entry) expired(idx int64) bool { return idx-e.head > Granularity }

// advance moves e's newest slot to idx, clearing the slots in between.
func (e *entry) advance(idx int64) {
	if idx <= e.head {
		return
	}
	if idx-e.head >= ringSize {
		e.counts = [ringSize]uint32{}
	} else {
		for b := e.head + 1; b <= idx; b++ {
			e.counts[mod(b)] = 0
		}
	}
	e.head = idx
}

func mod(b int64) int {
	m := int(b % ringSize)
	if m < 0 {
		m += ringSize
	}
	return m
}

// Recency list operations; called with l.mu held.

func (l *Limiter) pushFront(e *entry) {
	e.prev, e.next = nil, l.newest
	if l.newest != nil {
		l.newest.prev = e
	}
	l.newest = e
	if l.oldest == nil {
		l.oldest = e
	}
}

func (l *Limiter) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.newest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.oldest = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *Limiter) moveToFront(e *entry) {
	if l.newest == e {
		return
	}
	l.unlink(e)
	l.pushFront(e)
}

func (l *Limiter) remove(e *entry) {
	l.unlink(e)
	delete(l.entries, e.key)
}
