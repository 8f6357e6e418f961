package store

import (
	"encoding/json"
	"maps"
	"slices"
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
//	user_cutoffs    realm key + 0x00 + 8-byte user id → JSON storedCutoff
var bucketUserCutoffs = []byte("user_cutoffs")

// Cutoff is a log-out-everywhere of one user.
type Cutoff struct {
	// Before is in unix seconds: tokens whose iat is at or before it are
	// revoked. iat has whole seconds, so a token issued later in the same
	// second would fall under it too; minting avoids that by issuing such
	// a token with iat Before+1 (IssuedAt).
	Before int64 `json:"before"`
	// Except is the session that survives (the one that changed the
	// password), or empty.
	Except string `json:"except,omitempty"`
	// ExceptBefore is in unix seconds: tokens of the Except session
	// issued at or before it are revoked all the same, because an earlier
	// cutoff that did not spare that session had revoked them (merge).
	ExceptBefore int64 `json:"except_before,omitempty"`
	// Until is in unix seconds: once no token issued at or before Before
	// can be valid any more, Prune drops the cutoff.
	Until int64 `json:"until"`
}

// revokes reports whether c revokes a token of session sid issued at iat.
func (c Cutoff) revokes(sid string, iat int64) bool {
	if iat > c.Before {
		return false
	}
	return c.Except == "" || sid != c.Except || iat <= c.ExceptBefore
}

// merge combines an older cutoff of the same user with c, the newer one,
// so that the result revokes everything either revokes: a revocation is
// never undone. Tokens minted since old have iat old.Before+1 or later
// (IssuedAt), so c reaches at least that far, whatever the clock says
// (two cutoffs in one second, or a clock stepped back). The session old
// spared is spared no longer unless c spares it too; the session c spares
// keeps what old revoked of it (all its tokens up to old.Before, unless
// old spared it as well), so that a password change that authenticated
// before an administrator logged the user out everywhere cannot bring
// its session back.
func (c Cutoff) merge(old Cutoff) Cutoff {
	if c.Except != "" {
		spared := old.Before
		if old.Except == c.Except {
			spared = old.ExceptBefore
		}
		c.ExceptBefore = max(c.ExceptBefore, spared)
	}
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

func cutoffKey(realm Realm, userID int64) []byte { return userSessionPrefix(realm, userID) }

// realmCutoff is one entry of a cutoffSet's per-id list: ids repeat only
// across realms, so the list almost always holds one.
type realmCutoff struct {
	realm Realm
	c     Cutoff
}

// cutoffSet is the in-memory mirror of the user_cutoffs bucket, read on
// every guarded request. Reads take no lock: each shard is an immutable
// map behind an atomic pointer, and a write (a rare event: a password
// change, a logout everywhere) copies its shard. A read-locked map would
// make every request write the lock's shared counter, which is what two
// CPUs checking the same user contend on (BenchmarkIsRevokedParallel).
// The maps are keyed by user id alone because hashing an int64 is several
// times cheaper than hashing a key that holds the realm's two strings.
// n lets a read skip the lookup while no cutoff exists, the usual state.
type cutoffSet struct {
	n      atomic.Int64
	mu     sync.Mutex // serialises writers
	shards [cutoffShards]atomic.Pointer[map[int64][]realmCutoff]
}

// cutoffShards bounds the copy a write makes to 1/64 of the cutoffs.
const cutoffShards = 64

func (s *cutoffSet) shard(userID int64) *atomic.Pointer[map[int64][]realmCutoff] {
	return &s.shards[uint64(userID)%cutoffShards]
}

func (s *cutoffSet) get(realm Realm, userID int64) (Cutoff, bool) {
	if s.n.Load() == 0 {
		return Cutoff{}, false
	}
	m := s.shard(userID).Load()
	if m == nil {
		return Cutoff{}, false
	}
	for _, e := range (*m)[userID] {
		if e.realm == realm {
			return e.c, true
		}
	}
	return Cutoff{}, false
}

// set stores c as the cutoff of user userID of realm, unless the set
// holds a newer one: two revocations of one user commit in order, but may
// reach here in the other, and each stored cutoff reaches further than
// the one before (merge), so the larger Before is the newer. The entry
// lists are copied too, never changed in place: readers may hold the old
// ones.
func (s *cutoffSet) set(realm Realm, userID int64, c Cutoff) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shard(userID)
	var cur map[int64][]realmCutoff
	if p := sh.Load(); p != nil {
		cur = *p
	}
	list := make([]realmCutoff, 0, len(cur[userID])+1)
	for _, e := range cur[userID] {
		switch {
		case e.realm != realm:
			list = append(list, e)
		case e.c.Before > c.Before:
			return
		}
	}
	if len(list) == len(cur[userID]) {
		s.n.Add(1)
	}
	next := make(map[int64][]realmCutoff, len(cur)+1)
	maps.Copy(next, cur)
	next[userID] = append(list, realmCutoff{realm, c})
	sh.Store(&next)
}

// dropExpired forgets the cutoffs that ended by unix.
func (s *cutoffSet) dropExpired(unix int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.shards {
		old := s.shards[i].Load()
		if old == nil || !anyEnded(*old, unix) {
			continue
		}
		next := make(map[int64][]realmCutoff, len(*old))
		for id, list := range *old {
			kept := slices.DeleteFunc(slices.Clone(list), func(e realmCutoff) bool { return e.c.Until <= unix })
			s.n.Add(int64(len(kept) - len(list)))
			if len(kept) > 0 {
				next[id] = kept
			}
		}
		s.shards[i].Store(&next)
	}
}

func anyEnded(m map[int64][]realmCutoff, unix int64) bool {
	for _, list := range m {
		for _, e := range list {
			if e.c.Until <= unix {
				return true
			}
		}
	}
	return false
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
