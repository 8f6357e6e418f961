package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
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

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

var realmU = Realm{DataSource: "live", Table: "user"}

func TestRotateRefresh(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s := &Session{SID: "s1", Realm: realmU, UserID: 1, Created: now.Unix(), AccessExp: now.Unix() + 60, RefreshExp: now.Unix() + 3600}
	if err := b.CreateSession(ctx, s, &RefreshToken{Hash: hashOf("r1"), SID: "s1", Expires: now.Unix() + 3600}); err != nil {
		t.Fatal(err)
	}
	got, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r2"), Expires: now.Unix() + 7200}, now.Unix()+120, now, 5*time.Second)
	if err != nil || got.SID != "s1" || got.AccessExp != now.Unix()+120 || got.RefreshExp != now.Unix()+7200 {
		t.Fatalf("rotate: %+v %v", got, err)
	}
	// within grace: nothing changes
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r3"), Expires: now.Unix() + 7200}, now.Unix()+120, now.Add(4*time.Second), 5*time.Second); !errors.Is(err, ErrRefreshInGrace) {
		t.Fatalf("in grace: %v", err)
	}
	if b.IsRevoked("s1") {
		t.Fatal("revoked within grace")
	}
	if _, err := b.RefreshTokenByHash(ctx, hashOf("r3")); !errors.Is(err, ErrNotFound) {
		t.Fatal("grace refresh stored a token")
	}
	// after grace: the family is revoked, and r2 dies with it
	if _, err := b.RotateRefresh(ctx, hashOf("r1"), &RefreshToken{Hash: hashOf("r4"), Expires: now.Unix() + 7200}, now.Unix()+120, now.Add(6*time.Second), 5*time.Second); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if !b.IsRevoked("s1") {
		t.Fatal("reuse did not revoke the session")
	}
	if _, err := b.RotateRefresh(ctx, hashOf("r2"), &RefreshToken{Hash: hashOf("r5"), Expires: now.Unix() + 7200}, now.Unix()+120, now.Add(7*time.Second), 5*time.Second); !errors.Is(err, ErrRevoked) {
		t.Fatalf("sibling after reuse: %v", err)
	}
	if _, err := b.RotateRefresh(ctx, hashOf("nope"), &RefreshToken{Hash: hashOf("r6")}, 0, now, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestRefreshExpiry(t *testing.T) {
	b, _ := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	_ = b.CreateSession(ctx, &Session{SID: "s", Realm: realmU, UserID: 1, AccessExp: now.Unix() + 10, RefreshExp: now.Unix() + 100},
		&RefreshToken{Hash: hashOf("r"), SID: "s", Expires: now.Unix() + 100})
	if _, err := b.RotateRefresh(ctx, hashOf("r"), &RefreshToken{Hash: hashOf("r2"), Expires: now.Unix() + 200}, 0, now.Add(100*time.Second), time.Second); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestRevocationsSurviveRestartAndPrune(t *testing.T) {
	b, path := openSessions(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	for i := 1; i <= 3; i++ {
		sid := fmt.Sprintf("s%d", i)
		if err := b.CreateSession(ctx, &Session{SID: sid, Realm: realmU, UserID: 7, AccessExp: now.Unix() + int64(i)*100}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.CreateSession(ctx, &Session{SID: "other", Realm: realmU, UserID: 8, AccessExp: now.Unix() + 100}, nil)
	n, err := b.RevokeUserSessions(ctx, realmU, 7, "s2")
	if err != nil || n != 2 {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	if !b.IsRevoked("s1") || b.IsRevoked("s2") || !b.IsRevoked("s3") || b.IsRevoked("other") {
		t.Fatal("wrong sessions revoked")
	}
	if err := b.RevokeSession(ctx, "other", 0); err != nil || !b.IsRevoked("other") {
		t.Fatalf("revoke one: %v", err)
	}
	// a sid without a stored session is still revoked, until the given time
	if err := b.RevokeSession(ctx, "ghost", now.Unix()+500); err != nil || !b.IsRevoked("ghost") {
		t.Fatalf("revoke unknown: %v", err)
	}
	b.Close()
	b2, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if !b2.IsRevoked("s1") || !b2.IsRevoked("s3") || !b2.IsRevoked("other") || !b2.IsRevoked("ghost") || b2.IsRevoked("s2") {
		t.Fatal("revocations lost on restart")
	}
	// s1 and "other" expire at +100: pruned at +150; s3 (+300) stays
	if _, err := b2.Prune(ctx, now.Add(150*time.Second)); err != nil {
		t.Fatal(err)
	}
	if b2.IsRevoked("s1") || b2.IsRevoked("other") || !b2.IsRevoked("s3") || !b2.IsRevoked("ghost") {
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
			_, err := b.RotateRefresh(ctx, hashOf("r"), &RefreshToken{Hash: hashOf(fmt.Sprint("n", i)), Expires: now.Unix() + 600}, now.Unix()+60, now, 10*time.Second)
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
	if wins != 1 || grace != 19 || b.IsRevoked("c") {
		t.Fatalf("wins %d grace %d revoked %v", wins, grace, b.IsRevoked("c"))
	}
}
