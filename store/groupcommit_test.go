package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketTest = []byte("groupcommit_test")

// holdCommit starts a write that blocks inside its transaction until the
// returned release is called, so that the writes a test queues meanwhile
// wait for the next commit. It returns once the write holds the commit.
func holdCommit(t *testing.T, g *groupCommit) (release func(), done <-chan error) {
	t.Helper()
	holding, unblock := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- g.update(func(tx *bolt.Tx) error {
			close(holding)
			<-unblock
			_, err := tx.CreateBucketIfNotExists(bucketTest)
			return err
		})
	}()
	<-holding
	return func() { close(unblock) }, errc
}

// waitQueued waits (bounded) until n writes wait for the next commit.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	for range 5000 {
		g.mu.Lock()
		queued := len(g.queue)
		g.mu.Unlock()
		if queued == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d writes did not queue", n)
}

// TestGroupCommitGroups: writes arriving during a commit share the next
// one transaction, and every one of them is in the database afterwards.
func TestGroupCommitGroups(t *testing.T) {
	db, _ := openTemp(t)
	g := db.writes
	release, first := holdCommit(t, g)

	const n = 20
	txids := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = g.update(func(tx *bolt.Tx) error {
				txids[i] = tx.ID()
				return tx.Bucket(bucketTest).Put(fmt.Appendf(nil, "k%02d", i), []byte("v"))
			})
		})
	}
	waitQueued(t, g, n)
	release()
	if err := <-first; err != nil {
		t.Fatalf("held write: %v", err)
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("write %d: %v", i, errs[i])
		}
		if txids[i] != txids[0] {
			t.Fatalf("write %d committed in tx %d, write 0 in tx %d: the queued writes were not grouped", i, txids[i], txids[0])
		}
	}
	checkKeys(t, db, n, -1)
}

// TestGroupCommitFailureIsolated: a failing write in a group gets its own
// error and leaves nothing behind; the others still commit.
func TestGroupCommitFailureIsolated(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			db, _ := openTemp(t)
			g := db.writes
			release, first := holdCommit(t, g)

			const n, bad = 6, 3
			boom := errors.New("boom")
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = g.update(func(tx *bolt.Tx) error {
						if err := tx.Bucket(bucketTest).Put(fmt.Appendf(nil, "k%02d", i), []byte("v")); err != nil {
							return err
						}
						if i == bad {
							if mode == "panic" {
								panic("write bug")
							}
							return boom
						}
						return nil
					})
				})
				// One at a time, so that the failing write sits between others.
				waitQueued(t, g, i+1)
			}
			release()
			if err := <-first; err != nil {
				t.Fatalf("held write: %v", err)
			}
			wg.Wait()
			for i := range n {
				switch {
				case i == bad && mode == "error" && !errors.Is(errs[i], boom):
					t.Fatalf("failing write got %v, want its own error", errs[i])
				case i == bad && mode == "panic" && (errs[i] == nil || !strings.Contains(errs[i].Error(), "panic")):
					t.Fatalf("panicking write got %v, want an error", errs[i])
				case i != bad && errs[i] != nil:
					t.Fatalf("write %d failed with its group: %v", i, errs[i])
				}
			}
			checkKeys(t, db, n, bad)

			// The committer survived: the next write goes through.
			if err := g.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTest).Put([]byte("after"), nil) }); err != nil {
				t.Fatalf("write after the failure: %v", err)
			}
		})
	}
}

// checkKeys checks that keys k00..k(n-1) exist, except missing (-1: none).
func checkKeys(t *testing.T, db *Bolt, n, missing int) {
	t.Helper()
	err := db.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTest)
		for i := range n {
			got := b.Get(fmt.Appendf(nil, "k%02d", i)) != nil
			if got != (i != missing) {
				return fmt.Errorf("key %d present = %v", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCreateSessionAlone is one login's write with no other writes
// around: a commit and its fsyncs, with no waiting for company.
func BenchmarkCreateSessionAlone(b *testing.B) {
	db, _ := openTemp(b)
	now := time.Now().Unix()
	i := 0
	for b.Loop() {
		i++
		s := &Session{SID: fmt.Sprintf("%032x", i), Realm: live, UserID: 1, Created: now, AccessExp: now + 86400}
		if err := db.CreateSession(b.Context(), s, nil); err != nil {
			b.Fatal(err)
		}
	}
}
