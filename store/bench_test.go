package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The store's share of each endpoint: login reads a user by email
// (BenchmarkUserByEmail) and writes a session; auth/me reads a user by id;
// every guarded request asks IsRevoked. Signup is BenchmarkCreateUserParallel.

func seedUsers(b *testing.B, db *Bolt, n int) {
	b.Helper()
	var wg sync.WaitGroup
	// Concurrent creation lets the group commit put the setup into a few
	// commits; sequential calls would each pay for an fsync.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.CreateUser(context.Background(), live, &User{Email: fmt.Sprintf("u%d@x", i), PasswordHash: "h"}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkUserByID(b *testing.B) {
	db, _ := openTemp(b)
	const users = 1000
	seedUsers(b, db, users)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := db.UserByID(ctx, live, int64(i%users+1)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCreateSessionParallel is the write of every login, with as many
// concurrent logins as a busy server hashes at once.
func BenchmarkCreateSessionParallel(b *testing.B) {
	db, _ := openTemp(b)
	ctx := context.Background()
	var n atomic.Int64
	now := time.Now().Unix()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			s := &Session{SID: fmt.Sprintf("%032x", i), Realm: live, UserID: i%1000 + 1, Created: now, AccessExp: now + 86400}
			if err := db.CreateSession(ctx, s, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIsRevokedParallel is the revocation check every authenticated
// request makes after the token cache, with 100 revoked sessions on
// record and, in the second case, 100 other users logged out everywhere
// (without any, the cutoff check is one atomic load).
func BenchmarkIsRevokedParallel(b *testing.B) {
	for _, cutoffs := range []int{0, 100} {
		b.Run(fmt.Sprintf("cutoffs=%d", cutoffs), func(b *testing.B) {
			db, _ := openTemp(b)
			ctx := context.Background()
			now := time.Now().Unix()
			until := now + 3600
			realm := Realm{DataSource: "live", Table: "user"}
			for i := range 100 {
				if err := db.RevokeSession(ctx, fmt.Sprintf("revoked%d", i), until); err != nil {
					b.Fatal(err)
				}
			}
			for i := range cutoffs {
				if _, err := db.RevokeUserSessions(ctx, realm, int64(i+2), Cutoff{Before: now, Until: until}); err != nil {
					b.Fatal(err)
				}
			}
			iat := now - 10
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if db.IsRevoked(realm, 1, "0123456789abcdef0123456789abcdef", iat) {
						b.Error("live session reported revoked")
						return
					}
				}
			})
		})
	}
}
