package store

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Logging a user out everywhere cannot list the sessions it ends: a
// session with refresh off is not stored (its login writes nothing, so
// that a login costs one password hash and no fsync). Instead the user
// gets a cutoff: every access token of theirs issued at or before it is
// revoked, stored session or not.
//
//	user_cutoffs    realm key + 0x00 + 8-byte user id → JSON Cutoff
var bucketUserCutoffs = []byte("user_cutoffs")

// Cutoff is a log-out-everywhere of one user.
type Cutoff struct {
	// Before is in unix seconds: tokens whose iat is at or before it are
	// revoked. iat has whole seconds, so a token issued later in the same
	// second would fall under it too; minting avoids that by issuing such
	// a token with iat Before+1 (IssuedAfter).
	Before int64 `json:"before"`
	// Except is the session that survives (the one that changed the
	// password), or empty.
	Except string `json:"except,omitempty"`
	// Until is in unix seconds: once no token issued at or before Before
	// can be valid any more, Prune drops the cutoff.
	Until int64 `json:"until"`
}

// revokes reports whether c revokes a token of session sid issued at iat.
func (c Cutoff) revokes(sid string, iat int64) bool {
	return iat <= c.Before && (c.Except == "" || sid != c.Except)
}

// merge combines an older cutoff of the same user with c, the newer
// one: c supersedes it. Tokens minted since old have iat old.Before+1 or
// later (IssuedAt), so c reaches at least that far, whatever the clock
// says (two cutoffs in one second, or a clock stepped back), and the
// session old spared is spared no longer unless c spares it too.
func (c Cutoff) merge(old Cutoff) Cutoff {
	c.Before = max(c.Before, old.Before+1)
	c.Until = max(c.Until, old.Until)
	return c
}

// storedCutoff is a bucket value: the cutoff with the user it belongs to,
// so that loading needs no decoding of keys.
type storedCutoff struct {
	Realm  Realm `json:"realm"`
	UserID int64 `json:"user_id"`
	Cutoff
}

type userRef struct {
	realm Realm
	id    int64
}

func cutoffKey(realm Realm, userID int64) []byte { return userSessionPrefix(realm, userID) }

// cutoffSet is the in-memory mirror of the user_cutoffs bucket, read on
// every guarded request. n lets that read skip the lock while no cutoff
// exists, which is the usual state.
type cutoffSet struct {
	n  atomic.Int64
	mu sync.RWMutex
	m  map[userRef]Cutoff
}

func (s *cutoffSet) get(realm Realm, userID int64) (Cutoff, bool) {
	if s.n.Load() == 0 {
		return Cutoff{}, false
	}
	s.mu.RLock()
	c, ok := s.m[userRef{realm, userID}]
	s.mu.RUnlock()
	return c, ok
}

func (s *cutoffSet) set(realm Realm, userID int64, c Cutoff) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[userRef]Cutoff{}
	}
	s.m[userRef{realm, userID}] = c
	s.n.Store(int64(len(s.m)))
	s.mu.Unlock()
}

// dropExpired forgets the cutoffs that ended by unix.
func (s *cutoffSet) dropExpired(unix int64) {
	s.mu.Lock()
	for k, c := range s.m {
		if c.Until <= unix {
			delete(s.m, k)
		}
	}
	s.n.Store(int64(len(s.m)))
	s.mu.Unlock()
}

// putCutoffInTx merges c into the user's stored cutoff and returns what
// was stored; the caller updates the memory set after the commit.
func putCutoffInTx(tx *bolt.Tx, realm Realm, userID int64, c Cutoff) (Cutoff, error) {
	bk := tx.Bucket(bucketUserCutoffs)
	key := cutoffKey(realm, userID)
	if v := bk.Get(key); v != nil {
		var old storedCutoff
		if err := json.Unmarshal(v, &old); err == nil {
			c = c.merge(old.Cutoff)
		}
	}
	return c, putJSON(bk, key, storedCutoff{realm, userID, c})
}

// loadCutoffs fills the memory set from the bucket.
func (b *Bolt) loadCutoffs() error {
	return b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUserCutoffs).ForEach(func(k, v []byte) error {
			var sc storedCutoff
			if json.Unmarshal(v, &sc) != nil {
				return nil
			}
			b.cutoffs.set(sc.Realm, sc.UserID, sc.Cutoff)
			return nil
		})
	})
}
