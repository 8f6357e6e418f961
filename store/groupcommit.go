package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many writes share one commit (bbolt's Batch uses the
// same default), so that one transaction never grows without limit.
const maxGroup = 1000

// groupCommit runs the writes of signups and stored sessions so that those
// arriving while a commit is being written and fsynced share the next
// commit.
//
// bbolt's db.Batch instead waits MaxBatchDelay for company before every
// commit: with the 2 ms we used, a lone login or signup waited 4 ms for a
// commit that takes under 1 ms, and under load a batch held only what
// arrived in its 2 ms window. Here a write with no commit in flight
// commits at once, in its caller's goroutine, and a write that finds one
// in flight waits for it and goes into the next, with everything else that
// queued meanwhile: the busier the disk, the larger the groups.
//
// Like Batch, a commit runs each queued function in one transaction, and
// if one fails it rolls back, gives that function its own transaction (so
// its error is its own) and retries the others: a function may run more
// than once and must not change anything outside tx until it returns nil
// from a committed transaction.
type groupCommit struct {
	db *bolt.DB

	mu sync.Mutex
	// queue holds the writes waiting for the next commit.
	queue []*groupWrite
	// busy is true while some goroutine commits: the one whose write
	// found it false, until the queue is empty.
	busy bool
}

type groupWrite struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a write transaction shared with other writes and
// returns once that transaction is durable (or failed).
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.busy {
		g.mu.Unlock()
		return <-w.done
	}
	g.busy = true
	g.mu.Unlock()

	// This caller leads: it commits the queue (its own write and whatever
	// joined it) and hands anything queued during that commit to another
	// goroutine, so that its own answer does not wait for later writes.
	g.commitNext()
	if g.more() {
		go g.drain()
	}
	return <-w.done
}

// drain commits until the queue is empty.
func (g *groupCommit) drain() {
	for {
		g.commitNext()
		if !g.more() {
			return
		}
	}
}

// more reports whether writes are queued; if none are, the committing
// goroutine stops and the next write leads.
func (g *groupCommit) more() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.busy = false
		return false
	}
	return true
}

// commitNext takes up to maxGroup queued writes and commits them.
func (g *groupCommit) commitNext() {
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	writes := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil // let the old array go
	}
	g.mu.Unlock()
	g.commit(writes)
}

func (g *groupCommit) commit(writes []*groupWrite) {
	for len(writes) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range writes {
				if err := runWrite(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			// Success, or a failed commit: the same answer for all.
			for _, w := range writes {
				w.done <- err
			}
			return
		}
		w := writes[failed]
		if len(writes) == 1 {
			w.done <- err
			return
		}
		w.done <- g.db.Update(func(tx *bolt.Tx) error { return runWrite(w.fn, tx) })
		writes = append(writes[:failed:failed], writes[failed+1:]...)
	}
}

// runWrite calls fn, turning a panic into an error: the goroutine that
// commits for everyone must not die with one caller's bug, and that
// caller still gets a failure.
func runWrite(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in a write transaction: %v", p)
		}
	}()
	return fn(tx)
}
