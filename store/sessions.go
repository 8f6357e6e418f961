package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sessions layout (global buckets, next to meta):
//
//	sessions        sid → JSON Session
//	user_sessions   realm key + 0x00 + 8-byte user id + sid → empty (index for "log out everywhere")
//	refresh         SHA-256 of a refresh token → JSON RefreshToken (raw tokens are never stored)
//	revoked         sid → 8-byte unix time until which the revocation matters
//
// Only sessions with refresh on are stored (CreateSession): a refresh
// token has to be found again. A session with refresh off lives in its
// access token alone, and revoking it needs no record of it: RevokeSession
// takes the sid from the token, RevokeUserSessions a cutoff (cutoffs.go).
var (
	bucketSessions     = []byte("sessions")
	bucketUserSessions = []byte("user_sessions")
	bucketRefresh      = []byte("refresh")
	bucketRevoked      = []byte("revoked")
)

// Session is one login with refresh on: the sid sealed in its access
// tokens, and the family of refresh tokens that continue it.
type Session struct {
	SID    string `json:"sid"`
	Realm  Realm  `json:"realm"`
	UserID int64  `json:"user_id"`
	// Created is in unix seconds.
	Created int64 `json:"created"`
	// AccessExp is the exp of the newest access token of the session: a
	// revocation has to be remembered until then.
	AccessExp int64 `json:"access_exp"`
	// RefreshExp is the expiry of the newest refresh token (0: none).
	RefreshExp int64 `json:"refresh_exp,omitempty"`
	Revoked    bool  `json:"revoked,omitempty"`
	// IssuedAt is the iat of the newest access token of the session, in
	// unix seconds (0: unknown, a session stored before it was kept). A
	// log-out-everywhere whose cutoff covers it needs no record of the
	// session (RevokeUserSessions).
	IssuedAt int64 `json:"iat,omitempty"`
}

// RefreshToken is a stored refresh token, known only by its hash.
type RefreshToken struct {
	Hash []byte `json:"-"`
	SID  string `json:"sid"`
	// Expires is in unix seconds.
	Expires int64 `json:"expires"`
	// SpentAt is when the token was exchanged, in unix ms (0: unspent).
	SpentAt int64 `json:"spent_at,omitempty"`
}

// Refresh outcomes other than success.
var (
	ErrRevoked = errors.New("session revoked")
	ErrExpired = errors.New("expired")
	// ErrRefreshInGrace means the token was spent moments ago (within
	// the grace window): a concurrent refresh, not an attack.
	ErrRefreshInGrace = errors.New("refresh token spent within the grace window")
	// ErrRefreshReused means a spent token came back after the grace
	// window: the whole session has been revoked.
	ErrRefreshReused = errors.New("refresh token reused; session revoked")
)

// Sessions is the session part of Store.
type Sessions interface {
	// CreateSession stores s and, unless rt is nil, its first refresh
	// token, durably.
	CreateSession(ctx context.Context, s *Session, rt *RefreshToken) error
	// CreateUserSession creates u as CreateUser does and, in the same
	// durable transaction, its first session s (and rt unless nil), with
	// s.UserID set to u's new id: a signup costs one write, and no user is
	// left without the session its signup asked for. s.Realm must be
	// realm. On failure neither u nor s is changed.
	CreateUserSession(ctx context.Context, realm Realm, u *User, s *Session, rt *RefreshToken) error
	// SessionBySID returns the session, or ErrNotFound.
	SessionBySID(ctx context.Context, sid string) (*Session, error)
	// RefreshTokenByHash returns the stored token, or ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash []byte) (*RefreshToken, error)
	// RotateRefresh spends the token with oldHash and stores next in its
	// place, in one transaction, extending the session to accessExp. It
	// returns ErrNotFound, ErrExpired, ErrRevoked, ErrRefreshInGrace
	// (spent less than grace ago; nothing changes) or ErrRefreshReused
	// (spent earlier: the session is now revoked).
	// accessIAT and accessExp are the iat and exp of the access token
	// minted with next.
	RotateRefresh(ctx context.Context, oldHash []byte, next *RefreshToken, accessIAT, accessExp int64, now time.Time, grace time.Duration) (*Session, error)
	// RevokeSession revokes one session; revoking twice is not an error.
	// The revocation is kept at least until `until` (unix seconds, the
	// exp of the token that asked), also for a sid with no stored session.
	RevokeSession(ctx context.Context, sid string, until int64) error
	// RevokeUserSessions logs the user out everywhere: it revokes every
	// stored session of theirs except c.Except and records c, so that
	// every access token of theirs issued at or before c.Before is
	// revoked as well, stored session or not (a session with refresh off
	// is not stored). It returns how many stored sessions it revoked.
	RevokeUserSessions(ctx context.Context, realm Realm, userID int64, c Cutoff) (int, error)
	// IsRevoked reports whether an access token of session sid, issued at
	// iat (unix seconds) to user userID of realm, is revoked: its session
	// was, or a cutoff of the user's covers it. It is answered from
	// memory: it is on the guard's per-request path.
	IsRevoked(realm Realm, userID int64, sid string, iat int64) bool
	// IssuedAt is the iat to give a token of user userID of realm minted
	// at unix second now: now, or the second after the user's cutoff if
	// that is later, so that no new token is born revoked.
	IssuedAt(realm Realm, userID int64, now int64) int64
	// Prune deletes what has expired by now: spent or expired refresh
	// tokens, sessions whose tokens have all expired, and revocations
	// that no live token could need.
	Prune(ctx context.Context, now time.Time) (int, error)
}

// revokedSet is the in-memory mirror of the revoked bucket.
type revokedSet struct {
	mu  sync.RWMutex
	sid map[string]int64
}

func (r *revokedSet) has(sid string) bool {
	r.mu.RLock()
	_, ok := r.sid[sid]
	r.mu.RUnlock()
	return ok
}

func (r *revokedSet) add(sid string, until int64) {
	r.mu.Lock()
	if r.sid == nil {
		r.sid = map[string]int64{}
	}
	r.sid[sid] = until
	r.mu.Unlock()
}

func (r *revokedSet) drop(sids []string) {
	r.mu.Lock()
	for _, s := range sids {
		delete(r.sid, s)
	}
	r.mu.Unlock()
}

func (b *Bolt) loadRevoked() error {
	m := map[string]int64{}
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				m[string(k)] = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	b.revoked.mu.Lock()
	b.revoked.sid = m
	b.revoked.mu.Unlock()
	return err
}

func userSessionKey(realm Realm, userID int64, sid string) []byte {
	k := append(realmKey(realm), 0)
	k = append(k, idKey(userID)...)
	return append(k, sid...)
}

func userSessionPrefix(realm Realm, userID int64) []byte {
	return append(append(realmKey(realm), 0), idKey(userID)...)
}

func putJSON(bk *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return bk.Put(key, data)
}

func getSession(tx *bolt.Tx, sid string) (*Session, error) {
	data := tx.Bucket(bucketSessions).Get([]byte(sid))
	if data == nil {
		return nil, nil
	}
	var s Session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	return &s, nil
}

// CreateSession implements Sessions. Like CreateUser it is group-committed:
// concurrent logins with refresh on share one fsync.
func (b *Bolt) CreateSession(ctx context.Context, s *Session, rt *RefreshToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.SID == "" {
		return errors.New("creating session: empty sid")
	}
	err := b.writes.update(func(tx *bolt.Tx) error {
		if err := dropOldestSessions(tx, s.Realm, s.UserID, MaxUserSessions-1); err != nil {
			return err
		}
		return putSession(tx, s, rt)
	})
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
}

// MaxUserSessions bounds the stored sessions (logins with refresh on) a
// user has at once: a new one past it drops the oldest, whose refresh
// tokens then find no session. Without it, logins, which no limit counts
// when they succeed, would store sessions without bound, each kept until
// its refresh token expires.
const MaxUserSessions = 100

// dropOldestSessions deletes the user's oldest stored sessions until at
// most keep are left. A dropped session's refresh tokens are refused from
// then on (no session) and pruned with it; its access token is not
// revoked and runs out at its exp, as the oldest of more than
// MaxUserSessions devices would. The usual case, a user under the bound,
// reads index keys only.
func dropOldestSessions(tx *bolt.Tx, realm Realm, userID int64, keep int) error {
	prefix := userSessionPrefix(realm, userID)
	var sids []string
	cur := tx.Bucket(bucketUserSessions).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		sids = append(sids, string(k[len(prefix):]))
	}
	if len(sids) <= keep {
		return nil
	}
	sessions := make([]*Session, 0, len(sids))
	for _, sid := range sids {
		s, err := getSession(tx, sid)
		if err != nil {
			return err
		}
		if s == nil { // an index entry without its session: drop it too
			s = &Session{SID: sid, Realm: realm, UserID: userID}
		}
		sessions = append(sessions, s)
	}
	// Logged-out sessions go first (nothing of theirs can be refreshed),
	// then the oldest.
	slices.SortFunc(sessions, func(a, b *Session) int {
		if a.Revoked != b.Revoked {
			if a.Revoked {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.SID, b.SID))
	})
	for _, s := range sessions[:len(sessions)-keep] {
		if err := tx.Bucket(bucketSessions).Delete([]byte(s.SID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUserSessions).Delete(userSessionKey(realm, userID, s.SID)); err != nil {
			return err
		}
	}
	return nil
}

// putSession writes a new session, its index entry and its first refresh
// token (unless rt is nil).
func putSession(tx *bolt.Tx, s *Session, rt *RefreshToken) error {
	if err := putJSON(tx.Bucket(bucketSessions), []byte(s.SID), s); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUserSessions).Put(userSessionKey(s.Realm, s.UserID, s.SID), nil); err != nil {
		return err
	}
	if rt != nil {
		return putJSON(tx.Bucket(bucketRefresh), rt.Hash, rt)
	}
	return nil
}

// SessionBySID implements Sessions.
func (b *Bolt) SessionBySID(ctx context.Context, sid string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s *Session
	err := b.db.View(func(tx *bolt.Tx) (err error) {
		s, err = getSession(tx, sid)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, ErrNotFound
	}
	return s, nil
}

// RefreshTokenByHash implements Sessions.
func (b *Bolt) RefreshTokenByHash(ctx context.Context, hash []byte) (*RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rt *RefreshToken
	err := b.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketRefresh).Get(hash)
		if data == nil {
			return nil
		}
		rt = &RefreshToken{Hash: bytes.Clone(hash)}
		return json.Unmarshal(data, rt)
	})
	if err != nil {
		return nil, fmt.Errorf("reading refresh token: %w", err)
	}
	if rt == nil {
		return nil, ErrNotFound
	}
	return rt, nil
}

// revokeInTx marks s revoked and records it in the revoked bucket; the
// caller updates the memory set after the commit.
func revokeInTx(tx *bolt.Tx, s *Session) error {
	s.Revoked = true
	if err := putJSON(tx.Bucket(bucketSessions), []byte(s.SID), s); err != nil {
		return err
	}
	return tx.Bucket(bucketRevoked).Put([]byte(s.SID), idKey(s.AccessExp))
}

// RotateRefresh implements Sessions.
func (b *Bolt) RotateRefresh(ctx context.Context, oldHash []byte, next *RefreshToken, accessIAT, accessExp int64, now time.Time, grace time.Duration) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		sess    *Session
		outcome error // committed, but not a success
	)
	err := b.db.Update(func(tx *bolt.Tx) error {
		refresh := tx.Bucket(bucketRefresh)
		data := refresh.Get(oldHash)
		if data == nil {
			return ErrNotFound
		}
		var old RefreshToken
		if err := json.Unmarshal(data, &old); err != nil {
			return fmt.Errorf("decoding refresh token: %w", err)
		}
		s, err := getSession(tx, old.SID)
		if err != nil {
			return err
		}
		if s == nil || s.Revoked {
			return ErrRevoked
		}
		// Spent before expired: each refresh extends the session, so it
		// outlives its first tokens, and a spent one that comes back
		// after its own expiry is a reuse all the same.
		if old.SpentAt != 0 {
			if now.UnixMilli()-old.SpentAt <= grace.Milliseconds() {
				return ErrRefreshInGrace
			}
			// A spent token came back: whoever holds it stole it, or was
			// stolen from. Either way the family ends here.
			sess, outcome = s, ErrRefreshReused
			return revokeInTx(tx, s)
		}
		if old.Expires <= now.Unix() {
			return ErrExpired
		}
		old.SpentAt = now.UnixMilli()
		if err := putJSON(refresh, oldHash, old); err != nil {
			return err
		}
		next.SID = s.SID
		if err := putJSON(refresh, next.Hash, next); err != nil {
			return err
		}
		s.AccessExp = max(s.AccessExp, accessExp)
		s.IssuedAt = max(s.IssuedAt, accessIAT)
		s.RefreshExp = next.Expires
		sess = s
		return putJSON(tx.Bucket(bucketSessions), []byte(s.SID), s)
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		b.revoked.add(sess.SID, sess.AccessExp)
		return sess, outcome
	}
	return sess, nil
}

// RevokeSession implements Sessions.
func (b *Bolt) RevokeSession(ctx context.Context, sid string, until int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sid == "" {
		return errors.New("revoking session: empty sid")
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		s, err := getSession(tx, sid)
		if err != nil {
			return err
		}
		if s == nil {
			s = &Session{SID: sid}
		} else if err := revokeInTx(tx, s); err != nil {
			return err
		}
		if s.AccessExp > until {
			until = s.AccessExp
		}
		return tx.Bucket(bucketRevoked).Put([]byte(sid), idKey(until))
	})
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	b.revoked.add(sid, until)
	return nil
}

// RevokeUserSessions implements Sessions.
func (b *Bolt) RevokeUserSessions(ctx context.Context, realm Realm, userID int64, c Cutoff) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var (
		revoked []*Session
		stored  Cutoff
	)
	var recorded []*Session
	err := b.db.Update(func(tx *bolt.Tx) error {
		revoked, recorded = revoked[:0], recorded[:0]
		var err error
		if stored, err = putCutoffInTx(tx, realm, userID, c); err != nil {
			return err
		}
		prefix := userSessionPrefix(realm, userID)
		cur := tx.Bucket(bucketUserSessions).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			sid := string(k[len(prefix):])
			if sid == c.Except {
				continue
			}
			s, err := getSession(tx, sid)
			if err != nil {
				return err
			}
			if s == nil || s.Revoked {
				continue
			}
			if s.IssuedAt != 0 && stored.revokes(s.SID, s.IssuedAt) {
				// The cutoff covers every access token of the session
				// (a revoked session mints no more): marked revoked, so
				// that its refresh tokens are dead, with no record. A
				// record per session would let a login+logout loop
				// grow the revoked bucket without bound.
				s.Revoked = true
				err = putJSON(tx.Bucket(bucketSessions), []byte(s.SID), s)
			} else {
				// A token newer than the cutoff's clock read (a refresh
				// that committed while this waited for the lock, a
				// clock stepped back), or one of unknown age: the record
				// refuses it until it expires.
				err = revokeInTx(tx, s)
				recorded = append(recorded, s)
			}
			if err != nil {
				return err
			}
			revoked = append(revoked, s)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoking sessions: %w", err)
	}
	for _, s := range recorded {
		b.revoked.add(s.SID, s.AccessExp)
	}
	b.cutoffs.set(realm, userID, stored)
	return len(revoked), nil
}

// RevokedCount returns how many single-session revocations the revoked
// bucket holds, expired ones included until Prune drops them: the number a
// login+logout loop would grow (the memory set mirrors the bucket).
func (b *Bolt) RevokedCount() (int, error) {
	n := 0
	err := b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRevoked).Stats().KeyN
		return nil
	})
	return n, err
}

// IsRevoked implements Sessions.
func (b *Bolt) IsRevoked(realm Realm, userID int64, sid string, iat int64) bool {
	if b.revoked.has(sid) {
		return true
	}
	c, ok := b.cutoffs.get(realm, userID)
	return ok && c.revokes(sid, iat)
}

// IssuedAt implements Sessions.
func (b *Bolt) IssuedAt(realm Realm, userID int64, now int64) int64 {
	if c, ok := b.cutoffs.get(realm, userID); ok && now <= c.Before {
		return c.Before + 1
	}
	return now
}

// Prune implements Sessions.
func (b *Bolt) Prune(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	unix := now.Unix()
	n := 0
	var droppedRevocations []string
	err := b.db.Update(func(tx *bolt.Tx) error {
		n, droppedRevocations = 0, droppedRevocations[:0]
		// Refresh tokens: gone once expired, except a spent one, which is
		// kept while its session can still be refreshed, so that its
		// reuse is still detected (RotateRefresh).
		dead, err := deleteWhere(tx.Bucket(bucketRefresh), func(_, v []byte) bool {
			var rt RefreshToken
			if json.Unmarshal(v, &rt) != nil {
				return true
			}
			if rt.SpentAt == 0 && rt.Expires <= unix {
				return true
			}
			// A token whose session is gone (dropped past
			// MaxUserSessions, or pruned) or revoked can only be refused.
			s, err := getSession(tx, rt.SID)
			if err != nil {
				return false
			}
			return s == nil || s.Revoked || rt.SpentAt != 0 && s.RefreshExp <= unix
		})
		if err != nil {
			return err
		}
		n += len(dead)

		// Sessions: gone once neither an access nor a refresh token of
		// theirs can be valid any more (a revoked one's refresh tokens
		// never can); a revocation goes with them.
		var deadSessions []Session
		_, err = deleteWhere(tx.Bucket(bucketSessions), func(_, v []byte) bool {
			var s Session
			if json.Unmarshal(v, &s) != nil || s.AccessExp > unix || s.RefreshExp > unix && !s.Revoked {
				return false
			}
			deadSessions = append(deadSessions, s)
			return true
		})
		if err != nil {
			return err
		}
		for _, s := range deadSessions {
			if err := tx.Bucket(bucketUserSessions).Delete(userSessionKey(s.Realm, s.UserID, s.SID)); err != nil {
				return err
			}
		}
		n += len(deadSessions)

		dead, err = deleteWhere(tx.Bucket(bucketRevoked), func(_, v []byte) bool {
			return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= unix
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			droppedRevocations = append(droppedRevocations, string(k))
		}
		n += len(dead)

		dead, err = deleteWhere(tx.Bucket(bucketUserCutoffs), func(_, v []byte) bool {
			var sc storedCutoff
			return json.Unmarshal(v, &sc) != nil || sc.Until <= unix
		})
		n += len(dead)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	b.revoked.drop(droppedRevocations)
	b.cutoffs.dropExpired(unix)
	return n, nil
}

// deleteWhere deletes the entries of bk for which dead is true and returns
// their keys. The keys are collected first: a bucket must not change
// under ForEach.
func deleteWhere(bk *bolt.Bucket, dead func(k, v []byte) bool) ([][]byte, error) {
	var keys [][]byte
	err := bk.ForEach(func(k, v []byte) error {
		if dead(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := bk.Delete(k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// Interface guard
var _ Sessions = (*Bolt)(nil)
