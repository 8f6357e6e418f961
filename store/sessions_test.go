package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openSessions(t *testing.T) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

// reopen closes b and opens its file again, as a restart would.
func reopen(t *testing.T, b *Bolt, path string) *Bolt {
	t.Helper()
	b.Close()
	b2, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	return b2
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

var realmU = Realm{DataSource: "live", Table: "user"}

// sidRevoked asks IsRevoked about sid alone: no cutoff exists for user 0.
func sidRevoked(b *Bolt, sid string) bool { return b.IsRevoked(Realm{}, 0, sid, 0) }

func TestRotateRefresh(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s := &Session{SID: "s1", Realm: realmU, UserID: 1, Created: now.Unix(), AccessExp: now.Unix() + 60, RefreshExp: now.Unix() + 3600}
	if err := b.CreateSession(ctx, s, &RefreshToken{Hash: hashOf("r1"), SID: "s1", Expires: now.Unix() + 3600}); err != nil {
		t.Fatal(err)
	}
	got, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r2"), Expires: now.Unix() + 7200}, 0, now.Unix()+120, now, 5*time.Second)
	if err != nil || got.SID != "s1" || got.AccessExp != now.Unix()+120 || got.RefreshExp != now.Unix()+7200 {
		t.Fatalf("rotate: %+v %v", got, err)
	}
	// within grace: nothing changes
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r3"), Expires: now.Unix() + 7200}, 0, now.Unix()+120, now.Add(4*time.Second), 5*time.Second); !errors.Is(err, ErrRefreshInGrace) {
		t.Fatalf("in grace: %v", err)
	}
	if sidRevoked(b, "s1") {
		t.Fatal("revoked within grace")
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("r3")); !errors.Is(err, ErrNotFound) {
		t.Fatal("grace refresh stored a token")
	}
	// after grace: the family is revoked, and r2 dies with it
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r4"), Expires: now.Unix() + 7200}, 0, now.Unix()+120, now.Add(6*time.Second), 5*time.Second); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if !sidRevoked(b, "s1") {
		t.Fatal("reuse did not revoke the session")
	}
	if _, err := b.RotateRefresh(ctx, hashOf("r2"), &RefreshToken{Hash: hashOf("r5"), Expires: now.Unix() + 7200}, 0, now.Unix()+120, now.Add(7*time.Second), 5*time.Second); !errors.Is(err, ErrRevoked) {
		t.Fatalf("sibling after reuse: %v", err)
	}
	if _, err := b.RotateRefresh(ctx, hashOf("nope"), &RefreshToken{Hash: hashOf("r6")}, 0, 0, now, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestRefreshExpiry(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	_ = b.CreateSession(ctx, &Session{SID: "s", Realm: realmU, UserID: 1, AccessExp: now.Unix() + 10, RefreshExp: now.Unix() + 100},
		&RefreshToken{Hash: hashOf("r"), SID: "s", Expires: now.Unix() + 100})
	if _, err := b.RotateRefresh(ctx, hashOf("r"), &RefreshToken{Hash: hashOf("r2"), Expires: now.Unix() + 200}, 0, 0, now.Add(100*time.Second), time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

// TestSpentTokenOutlivesItsExpiry: a spent refresh token stays while its
// session can still be refreshed (each refresh extends it), through
// Prune, so that its reuse after its own expiry still ends the session;
// once the session cannot be refreshed any more it goes.
func TestSpentTokenOutlivesItsExpiry(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	if err := b.CreateSession(ctx, &Session{SID: "s", Realm: realmU, UserID: 1, AccessExp: now.Unix() + 10, RefreshExp: now.Unix() + 100},
		&RefreshToken{Hash: hashOf("r1"), SID: "s", Expires: now.Unix() + 100}); err != nil {
		t.Fatal(err)
	}
	// r1 is spent at +50; r2 extends the session to +250.
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r2"), Expires: now.Unix() + 250}, 0, now.Unix()+60, now.Add(50*time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	later := now.Add(150 * time.Second) // r1 expired, the session not
	if _, err := b.Prune(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r3"), Expires: later.Unix() + 200}, 0, later.Unix()+60, later, time.Second); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("reuse of a spent token after its expiry: %v, want ErrRefreshReused", err)
	}
	if !sidRevoked(b, "s") {
		t.Fatal("session not revoked by the reuse")
	}
	// Past the session's own refresh_exp, the spent token is pruned.
	if _, err := b.Prune(ctx, now.Add(300*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("r1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("spent token kept after its session ended: %v", err)
	}
}

func TestRevocationsSurviveRestartAndPrune(t *testing.T) {
	b, path := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	for i := 1; i <= 3; i++ {
		sid := fmt.Sprintf("s%d", i)
		if err := b.CreateSession(ctx, &Session{SID: sid, Realm: realmU, UserID: 7, IssuedAt: now.Unix(), AccessExp: now.Unix() + int64(i)*100}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.CreateSession(ctx, &Session{SID: "other", Realm: realmU, UserID: 8, AccessExp: now.Unix() + 100}, nil)
	n, err := b.RevokeUserSessions(ctx, realmU, 7, Cutoff{Before: now.Unix(), Except: "s2", Until: now.Unix() + 300})
	if err != nil || n != 2 {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	// s1 and s3 are revoked by the cutoff, which covers their tokens (all
	// issued before it), with no record of their sids.
	user7 := func(b *Bolt, sid string) bool { return b.IsRevoked(realmU, 7, sid, now.Unix()) }
	if !user7(b, "s1") || user7(b, "s2") || !user7(b, "s3") || sidRevoked(b, "other") {
		t.Fatal("wrong sessions revoked")
	}
	if sidRevoked(b, "s1") || sidRevoked(b, "s3") {
		t.Fatal("a log-out-everywhere wrote a record per session: a login+logout loop would grow them")
	}
	for _, sid := range []string{"s1", "s3"} {
		if s, err := b.SessionBySID(ctx, sid); err != nil || !s.Revoked {
			t.Fatalf("session %s not marked revoked (its refresh tokens would still work): %+v %v", sid, s, err)
		}
	}
	if err := b.RevokeSession(ctx, "other", 0); err != nil || !sidRevoked(b, "other") {
		t.Fatalf("revoke one: %v", err)
	}
	// a sid without a stored session is still revoked, until the given time
	if err := b.RevokeSession(ctx, "ghost", now.Unix()+500); err != nil || !sidRevoked(b, "ghost") {
		t.Fatalf("revoke unknown: %v", err)
	}
	b2 := reopen(t, b, path)
	if !user7(b2, "s1") || !user7(b2, "s3") || !sidRevoked(b2, "other") || !sidRevoked(b2, "ghost") || user7(b2, "s2") {
		t.Fatal("revocations lost on restart")
	}
	// "other" expires at +100: its record is pruned at +150; the cutoff
	// (+300) still covers s3, and the ghost's record (+500) stays.
	if _, err := b2.Prune(ctx, now.Add(150*time.Second)); err != nil {
		t.Fatal(err)
	}
	if sidRevoked(b2, "other") || !user7(b2, "s3") || !sidRevoked(b2, "ghost") {
		t.Fatal("prune dropped the wrong revocations")
	}
	if _, err := b2.SessionBySID(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("expired session not pruned")
	}
	if _, err := b2.SessionBySID(ctx, "s3"); err != nil {
		t.Fatal("live session pruned")
	}
}

func TestConcurrentRotateOnlyOneWins(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Now()
	_ = b.CreateSession(ctx, &Session{SID: "c", Realm: realmU, UserID: 1, AccessExp: now.Unix() + 60},
		&RefreshToken{Hash: hashOf("r"), SID: "c", Expires: now.Unix() + 600})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, grace := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := b.RotateRefresh(ctx, hashOf("r"), &RefreshToken{Hash: hashOf(fmt.Sprint("n", i)), Expires: now.Unix() + 600}, 0, now.Unix()+60, now, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrRefreshInGrace):
				grace++
			default:
				t.Errorf("unexpected %v", err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 || grace != 19 || sidRevoked(b, "c") {
		t.Fatalf("wins %d grace %d revoked %v", wins, grace, sidRevoked(b, "c"))
	}
}

// TestCreateUserSession: a signup's user and session land in one durable
// transaction, the session indexed under the new id; a refused signup
// leaves neither behind.
func TestCreateUserSession(t *testing.T) {
	b, path := openSessions(t)
	ctx := context.Background()
	mk := func(email, sid string) (*User, *Session, *RefreshToken) {
		return &User{Email: email, PasswordHash: "h"},
			&Session{SID: sid, Realm: realmU, Created: 1, AccessExp: 2_000_000_000, RefreshExp: 2_000_000_000},
			&RefreshToken{Hash: hashOf("rt-" + sid), SID: sid, Expires: 2_000_000_000}
	}
	if err := b.CreateUser(ctx, realmU, &User{Email: "first@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	u, s, rt := mk("new@example.com", "sid-new")
	if err := b.CreateUserSession(ctx, realmU, u, s, rt); err != nil {
		t.Fatal(err)
	}
	if u.ID != 2 || s.UserID != 2 {
		t.Fatalf("ids: user %d, session's user %d; want 2 and 2", u.ID, s.UserID)
	}

	// Refused: the email is taken. Neither the session nor u changes.
	dup, ds, drt := mk("new@example.com", "sid-dup")
	if err := b.CreateUserSession(ctx, realmU, dup, ds, drt); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
	}
	if dup.ID != 0 || ds.UserID != 0 {
		t.Fatalf("refused signup changed its arguments: user %d, session's user %d", dup.ID, ds.UserID)
	}
	// Refused: inconsistent arguments.
	other, osess, _ := mk("other@example.com", "sid-other")
	osess.Realm = Realm{DataSource: "test", Table: "user"}
	if err := b.CreateUserSession(ctx, realmU, other, osess, nil); err == nil {
		t.Fatal("session of another realm accepted")
	}
	other, osess, ort := mk("other@example.com", "sid-other")
	ort.SID = "elsewhere"
	if err := b.CreateUserSession(ctx, realmU, other, osess, ort); err == nil {
		t.Fatal("refresh token of another session accepted")
	}
	if _, err := b.UserByEmail(ctx, realmU, "other@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused signup left its user: %v", err)
	}

	// Durable and complete after a restart: the session, its refresh token
	// and the per-user index that revoking all sessions walks.
	b2 := reopen(t, b, path)
	if got, err := b2.SessionBySID(ctx, "sid-new"); err != nil || got.UserID != 2 || got.Realm != realmU {
		t.Fatalf("session after restart: %+v, %v", got, err)
	}
	if got, err := b2.RefreshTokenByHash(ctx, hashOf("rt-sid-new")); err != nil || got.SID != "sid-new" {
		t.Fatalf("refresh token after restart: %+v, %v", got, err)
	}
	if _, err := b2.SessionBySID(ctx, "sid-dup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session of the refused signup: %v", err)
	}
	if n, err := b2.RevokeUserSessions(ctx, realmU, 2, Cutoff{Before: time.Now().Unix(), Until: time.Now().Unix() + 60}); err != nil || n != 1 || !b2.IsRevoked(realmU, 2, "sid-new", time.Now().Unix()-1) {
		t.Fatalf("revoking the new user's sessions: %d, %v", n, err)
	}
}

// TestCreateUserSessionConcurrent: signups racing for one email through
// the group commit: one wins, with its session; the others leave nothing.
func TestCreateUserSessionConcurrent(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("u%d@example.com", i%4) // 4 emails, 4 contenders each
			s := &Session{SID: fmt.Sprintf("s%d", i), Realm: realmU, AccessExp: 2_000_000_000}
			errs[i] = b.CreateUserSession(ctx, realmU, &User{Email: email, PasswordHash: "h"}, s, nil)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		sess, serr := b.SessionBySID(ctx, fmt.Sprintf("s%d", i))
		switch {
		case err == nil:
			won++
			u, uerr := b.UserByEmail(ctx, realmU, fmt.Sprintf("u%d@example.com", i%4))
			if serr != nil || uerr != nil || sess.UserID != u.ID {
				t.Errorf("winner %d: session %+v (%v), user %+v (%v)", i, sess, serr, u, uerr)
			}
		case errors.Is(err, ErrEmailTaken):
			if !errors.Is(serr, ErrNotFound) {
				t.Errorf("loser %d left its session: %v", i, serr)
			}
		default:
			t.Errorf("signup %d: %v", i, err)
		}
	}
	if won != 4 {
		t.Fatalf("%d signups won, want 4 (one per email)", won)
	}
}

// TestCutoffRevokesUnstoredSessions: logging a user out everywhere revokes
// the access tokens of sessions that were never stored, by their iat, and
// spares the session it was asked to; the cutoff survives a restart and
// is pruned once no token it covers can be valid.
func TestCutoffRevokesUnstoredSessions(t *testing.T) {
	b, path := openSessions(t)
	ctx := context.Background()
	const T = 1_700_000_000
	realmA := Realm{DataSource: "test", Table: "user"}
	if n, err := b.RevokeUserSessions(ctx, realmU, 7, Cutoff{Before: T, Except: "keep", Until: T + 100}); err != nil || n != 0 {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	type tc struct {
		realm Realm
		user  int64
		sid   string
		iat   int64
		want  bool
	}
	check := func(b *Bolt, when string, cases []tc) {
		t.Helper()
		for _, c := range cases {
			if got := b.IsRevoked(c.realm, c.user, c.sid, c.iat); got != c.want {
				t.Errorf("%s: IsRevoked(%v, %d, %q, T%+d) = %v", when, c.realm, c.user, c.sid, c.iat-T, got)
			}
		}
	}
	first := []tc{
		{realmU, 7, "x", T - 50, true},
		{realmU, 7, "x", T, true}, // the cutoff's own second
		{realmU, 7, "x", T + 1, false},
		{realmU, 7, "keep", T, false},
		{realmU, 8, "x", T, false},
		{realmA, 7, "x", T, false},
	}
	check(b, "first cutoff", first)

	// The same id in another realm is another user, with its own cutoff.
	if _, err := b.RevokeUserSessions(ctx, realmA, 7, Cutoff{Before: T - 20, Until: T + 30}); err != nil {
		t.Fatal(err)
	}
	check(b, "another realm", []tc{
		{realmA, 7, "keep", T - 20, true},
		{realmA, 7, "x", T - 19, false},
		{realmU, 7, "x", T, true},
		{realmU, 7, "keep", T, false},
	})

	// New tokens are never born revoked.
	for _, c := range []struct{ user, now, want int64 }{{7, T, T + 1}, {7, T - 3, T + 1}, {7, T + 5, T + 5}, {8, T, T}} {
		if got := b.IssuedAt(realmU, c.user, c.now); got != c.want {
			t.Errorf("IssuedAt(user %d, T%+d) = T%+d, want T%+d", c.user, c.now-T, got-T, c.want-T)
		}
	}

	// A newer cutoff supersedes the older one, and reaches past the
	// tokens minted since: a second cutoff in the same second revokes the
	// token the first one's IssuedAt gave iat T+1, and so does one whose
	// clock stepped back. Until never shrinks.
	if _, err := b.RevokeUserSessions(ctx, realmU, 7, Cutoff{Before: T + 10, Until: T + 50}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Cutoff{{Before: T, Except: "a", Until: T + 50}, {Before: T, Except: "b", Until: T + 50}} {
		if _, err := b.RevokeUserSessions(ctx, realmU, 9, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.IssuedAt(realmU, 9, T); got != T+2 {
		t.Errorf("IssuedAt after two cutoffs in one second = T%+d, want T+2", got-T)
	}
	if _, err := b.RevokeUserSessions(ctx, realmU, 10, Cutoff{Before: T + 10, Until: T + 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RevokeUserSessions(ctx, realmU, 10, Cutoff{Before: T + 5, Except: "c", Until: T + 50}); err != nil {
		t.Fatal(err)
	}
	later := []tc{
		{realmU, 7, "keep", T, true},
		{realmU, 7, "x", T + 10, true},
		{realmU, 7, "x", T + 11, false},
		{realmU, 9, "a", T, true},
		{realmU, 9, "x", T + 1, true},
		// A later cutoff that spares a session does not bring back what
		// an earlier one revoked of it.
		{realmU, 9, "b", T, true},
		{realmU, 9, "b", T + 1, false},
		{realmU, 9, "x", T + 2, false},
		{realmU, 10, "x", T + 11, true},
		{realmU, 10, "c", T + 10, true},
		{realmU, 10, "c", T + 11, false},
		{realmU, 10, "x", T + 12, false},
	}
	check(b, "later cutoffs", later)

	b2 := reopen(t, b, path)
	check(b2, "after restart", later)

	// User 9's cutoff ends at T+50, user 7's at T+100 (the first Until).
	if _, err := b2.Prune(ctx, time.Unix(T+50, 0)); err != nil {
		t.Fatal(err)
	}
	check(b2, "pruned at T+50", []tc{{realmU, 7, "x", T, true}, {realmU, 9, "a", T, false}, {realmA, 7, "x", T - 20, false}})
	if _, err := b2.Prune(ctx, time.Unix(T+100, 0)); err != nil {
		t.Fatal(err)
	}
	b3 := reopen(t, b2, path)
	check(b3, "pruned at T+100, restarted", []tc{{realmU, 7, "x", T, false}})
	if got := b3.IssuedAt(realmU, 7, T); got != T {
		t.Errorf("IssuedAt after the cutoff was pruned = T%+d", got-T)
	}
}

// TestCutoffSetConcurrent: readers never lock the cutoff set, so under
// -race this checks that writers publish new maps instead of changing the
// ones readers hold, and that the count stays right.
func TestCutoffSetConcurrent(t *testing.T) {
	var s cutoffSet
	realms := []Realm{{"live", "user"}, {"test", "user"}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if c, ok := s.get(realms[i%2], i%200); ok && c.Until == 0 {
					t.Error("a cutoff without Until")
					return
				}
			}
		}()
	}
	for i := int64(0); i < 400; i++ {
		s.set(realms[i%2], i%200, Cutoff{Before: i, Until: 100 + i})
	}
	s.dropExpired(300)
	close(stop)
	// An older cutoff arriving late does not replace a newer one.
	s.set(realms[1], 199, Cutoff{Before: 1, Until: 1000})
	if c, _ := s.get(realms[1], 199); c.Before != 399 {
		t.Fatalf("a late, older cutoff replaced the newer one: %+v", c)
	}
	wg.Wait()
	// ids 0..199 in two realms, each set twice with Until 100+i and 100+i+200
	// for the second set: only the second sets (i 200..399, Until 300..499)
	// remain, minus Until 300 (i = 200).
	if got := s.n.Load(); got != 199 {
		t.Fatalf("count %d, want 199", got)
	}
	n := 0
	for i := range s.shards {
		if m := s.shards[i].Load(); m != nil {
			for _, l := range *m {
				n += len(l)
			}
		}
	}
	if n != 199 {
		t.Fatalf("%d entries, want 199", n)
	}
}

// TestStoredSessionsPerUserBounded: a user has at most MaxUserSessions
// stored sessions; a new one drops the oldest, whose refresh tokens are
// refused and pruned. Other users are untouched.
func TestStoredSessionsPerUserBounded(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	create := func(user int64, i int) {
		sid := fmt.Sprintf("u%d-%03d", user, i)
		err := b.CreateSession(ctx, &Session{SID: sid, Realm: realmU, UserID: user, Created: now.Unix() + int64(i),
			AccessExp: now.Unix() + 60, RefreshExp: now.Unix() + 3600},
			&RefreshToken{Hash: hashOf("rt-" + sid), SID: sid, Expires: now.Unix() + 3600})
		if err != nil {
			t.Fatal(err)
		}
	}
	create(8, 0)
	const extra = 5
	for i := range MaxUserSessions + extra {
		create(7, i)
	}
	count := func(user int64) int {
		n := 0
		_ = b.db.View(func(tx *bolt.Tx) error {
			prefix := userSessionPrefix(realmU, user)
			c := tx.Bucket(bucketUserSessions).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
			return nil
		})
		return n
	}
	if n := count(7); n != MaxUserSessions {
		t.Fatalf("%d stored sessions, want %d", n, MaxUserSessions)
	}
	for i := range extra {
		sid := fmt.Sprintf("u7-%03d", i)
		if _, err := b.SessionBySID(ctx, sid); !errors.Is(err, ErrNotFound) {
			t.Fatalf("oldest session %s kept: %v", sid, err)
		}
		if _, err := b.RotateRefresh(ctx, hashOf("rt-"+sid), &RefreshToken{Hash: hashOf("next-" + sid), Expires: now.Unix() + 7200}, 0,
			now.Unix()+120, now, time.Second); err == nil {
			t.Fatalf("refresh token of dropped session %s still works", sid)
		}
	}
	if _, err := b.SessionBySID(ctx, fmt.Sprintf("u7-%03d", extra)); err != nil {
		t.Fatalf("a newer session dropped: %v", err)
	}
	if count(8) != 1 {
		t.Fatal("another user's session dropped")
	}
	if _, err := b.Prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("rt-u7-000")); !errors.Is(err, ErrNotFound) {
		t.Errorf("refresh token of a dropped session not pruned: %v", err)
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf(fmt.Sprintf("rt-u7-%03d", extra))); err != nil {
		t.Errorf("refresh token of a kept session pruned: %v", err)
	}
}

// TestRevokedSessionsPrunedAtAccessExp: a revoked stored session, and its
// refresh tokens, go once its access token has expired, not at its
// refresh expiry (weeks later): they can only be refused.
func TestRevokedSessionsPrunedAtAccessExp(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	for _, sid := range []string{"gone", "kept"} {
		if err := b.CreateSession(ctx, &Session{SID: sid, Realm: realmU, UserID: 1, Created: now.Unix(), AccessExp: now.Unix() + 60, RefreshExp: now.Unix() + 30*86400},
			&RefreshToken{Hash: hashOf("rt-" + sid), SID: sid, Expires: now.Unix() + 30*86400}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.RevokeSession(ctx, "gone", now.Unix()+60); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prune(ctx, now.Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SessionBySID(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked session kept past its access exp: %v", err)
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("rt-gone")); !errors.Is(err, ErrNotFound) {
		t.Errorf("refresh token of a revoked session kept: %v", err)
	}
	if _, err := b.SessionBySID(ctx, "kept"); err != nil {
		t.Errorf("live session pruned: %v", err)
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("rt-kept")); err != nil {
		t.Errorf("live refresh token pruned: %v", err)
	}
}

// TestRevokeUserSessionsCoversRefreshAfterCutoffTime: a log-out-everywhere
// whose cutoff time (Before) was read a second before a concurrent refresh
// committed — RevokeUser reads the clock, then waits for the bolt write
// lock, or the clock stepped back — revokes the stored session, yet the
// access token that refresh minted (iat = Before+1) must be refused too.
// The session's IssuedAt, newer than the cutoff, makes the revocation
// write the session's record.
func TestRevokeUserSessionsCoversRefreshAfterCutoffTime(t *testing.T) {
	b, path := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	if err := b.CreateSession(ctx, &Session{SID: "s", Realm: realmU, UserID: 1, Created: now.Unix(), IssuedAt: now.Unix(),
		AccessExp: now.Unix() + 60, RefreshExp: now.Unix() + 3600},
		&RefreshToken{Hash: hashOf("r1"), SID: "s", Expires: now.Unix() + 3600}); err != nil {
		t.Fatal(err)
	}
	// the refresh: its access token has iat now+1, exp now+61
	refreshAt := now.Add(time.Second)
	iat := b.IssuedAt(realmU, 1, refreshAt.Unix())
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r2"), Expires: refreshAt.Unix() + 3600},
		iat, refreshAt.Unix()+60, refreshAt, time.Second); err != nil {
		t.Fatal(err)
	}
	// the log-out-everywhere that read its clock at now
	n, err := b.RevokeUserSessions(ctx, realmU, 1, Cutoff{Before: now.Unix(), Until: now.Unix() + 60})
	if err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if s, _ := b.SessionBySID(ctx, "s"); s == nil || !s.Revoked {
		t.Fatalf("session not revoked: %+v", s)
	}
	if !b.IsRevoked(realmU, 1, "s", iat) {
		t.Error("the revoked session's newest access token still verifies (IsRevoked false)")
	}
	b2 := reopen(t, b, path)
	if !b2.IsRevoked(realmU, 1, "s", iat) {
		t.Error("after a restart, the revoked session's newest access token still verifies")
	}
}
