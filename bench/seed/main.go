// Command seed fills a xanoauth bbolt file with N users for scale
// measurements. It bypasses hashing: every user gets the same precomputed
// argon2id hash of -password, so logins still cost one real verify.
//
//	go run ./bench/seed -db /tmp/scale.db -n 1000000
//
// Users are bench1@example.com … benchN@example.com in (live, user).
// Inserts go through Store.CreateUser from many goroutines, so bbolt's
// group commit batches them exactly as it batches concurrent signups.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/store"
)

func main() {
	path := flag.String("db", "", "bbolt file to create or extend")
	n := flag.Int("n", 1000, "number of users")
	pw := flag.String("password", "secret123", "password of every user")
	workers := flag.Int("workers", 512, "concurrent inserters")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "seed: -db is required")
		os.Exit(2)
	}
	db, err := store.OpenBolt(*path, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
	defer db.Close()
	hash, err := password.NewHasher(password.DefaultParams, 1, 0).Hash(context.Background(), *pw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
	realm := store.Realm{DataSource: "live", Table: "user"}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(*n) {
					return
				}
				u := &store.User{Email: fmt.Sprintf("bench%d@example.com", i), Fields: map[string]any{"name": "Bench"}, PasswordHash: hash}
				if err := db.CreateUser(context.Background(), realm, u); err != nil && err != store.ErrEmailTaken {
					fmt.Fprintln(os.Stderr, "seed:", err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	count, _ := db.CountUsers(context.Background(), realm)
	fmt.Printf("{\"users\":%d,\"seconds\":%.1f}\n", count, time.Since(start).Seconds())
}
