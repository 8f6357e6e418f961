package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/password"
)

// BenchmarkLoginParallel runs whole logins through the handler (input
// parsing, user lookup, argon2id verify with the default parameters,
// minting; with refresh off, as here, a login stores nothing) from 2 ×
// GOMAXPROCS goroutines, as bench/run.sh does over HTTP. ns/op is wall time
// per login; compare it with ./password's BenchmarkVerifyDefaultParallel,
// the hash alone on every CPU: the difference is what a login costs beyond
// its hash.
func BenchmarkLoginParallel(b *testing.B) {
	f := newFixture(b)
	f.svc.Hasher = password.NewHasher(password.DefaultParams, runtime.GOMAXPROCS(0), 0)
	a := f.auth("user")
	if w := serveBench(a, benchPost("/api:x/auth/signup")); w.Code != 200 {
		b.Fatalf("signup: %d %s", w.Code, w.Body)
	}
	login := func() bool {
		if w := serveBench(a, benchPost("/api:x/auth/login")); w.Code != 200 {
			b.Errorf("login: %d %s", w.Code, w.Body)
			return false
		}
		return true
	}
	// One login per hash slot at once, so that every slot keeps warm argon2
	// memory and the timing does not include a slot's first hash.
	var warm sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		warm.Go(func() { login() })
	}
	warm.Wait()
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !login() {
				return
			}
		}
	})
}

// benchPost is the benchmark user's credentials posted as JSON to path.
func benchPost(path string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(`{"email":"bench@example.com","password":"secret123"}`))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serveBench serves r with a, without testing.T (RunParallel's goroutines
// must not call t.Fatal).
func serveBench(a *Auth, r *http.Request) *httptest.ResponseRecorder {
	r, _ = withReplacer(r)
	w := httptest.NewRecorder()
	if err := a.ServeHTTP(w, r, &nextRecorder{}); err != nil {
		w.Code = 599
		w.Body.WriteString(err.Error())
	}
	return w
}

// BenchmarkVerifyThenSync shows what a durable write (a signup's, or a
// login's with refresh on) costs the hashing around it: 4 goroutines, one
// hash slot per CPU, each verifying and then waiting as long as two
// fdatasync calls (a bbolt commit's) take, either in fdatasync itself or in
// time.Sleep. A goroutine
// in a system call keeps its P until the runtime's monitor takes it back, so
// a hash that is ready waits for the disk; a sleeping goroutine gives its P
// up at once. "none" is the baseline. docs/performance.md: where a login's
// time goes.
func BenchmarkVerifyThenSync(b *testing.B) {
	h, encoded := benchHash(b, runtime.NumCPU())
	ctx := context.Background()
	writePage := pageWriter(b)
	syncs := func(i int) {
		f := writePage(i)
		_ = f.Sync() // fdatasync is not in package os; on ext4 the cost is alike
		_ = f.Sync()
	}
	var warm sync.WaitGroup
	for range runtime.NumCPU() { // every hash slot's memory, faulted in
		warm.Go(func() { _, _, _ = h.Verify(ctx, encoded, "benchmark password 1") })
	}
	warm.Wait()
	start := time.Now()
	for i := range 50 {
		syncs(i)
	}
	syncTime := time.Since(start) / 50
	for _, c := range []struct {
		name  string
		after func(i int)
	}{
		{"none", func(int) {}},
		{"sleep", func(int) { time.Sleep(syncTime) }},
		{"fsync", syncs},
	} {
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if ok, _, err := h.Verify(ctx, encoded, "benchmark password 1"); !ok || err != nil {
							b.Errorf("Verify = %v, %v", ok, err)
							return
						}
						c.after(int(i))
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(syncTime.Microseconds()), "µs-sync")
		})
	}
}

// BenchmarkVerifyBesideSync tells whether a machine's syncs cost the CPUs
// that hash, apart from the P their goroutine holds (BenchmarkVerifyThenSync):
// one goroutine verifies (ns/op) while another does, for the whole
// measurement, nothing ("idle"), pure computation ("spin") or page writes
// each followed by a sync ("sync"). With GOMAXPROCS >= 2 each has a P of its
// own, so where a sync only waits for the disk the three take the same
// time. On the PVM guest of docs/performance.md's figures "sync" made a verify 1.1–1.7×
// as long and "spin" did not slow it: the disk's interrupts all go to one
// CPU (/proc/interrupts), and a verify there pays for every sync, from
// whichever CPU. The OS picks the threads' CPUs, so the figure moves
// between runs. bg-ops/s counts the other goroutine's loops (syncs, for
// "sync").
func BenchmarkVerifyBesideSync(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2: the other goroutine would share the verify's P")
	}
	h, encoded := benchHash(b, 1)
	ctx := context.Background()
	writePage := pageWriter(b)
	var sink atomic.Uint64
	for _, c := range []struct {
		name string
		step func(i int)
	}{
		{"idle", func(int) { time.Sleep(time.Millisecond) }},
		{"spin", func(i int) {
			x := uint64(i)
			for range 100_000 {
				x = x*6364136223846793005 + 1442695040888963407
			}
			sink.Add(x)
		}},
		{"sync", func(i int) { _ = writePage(i).Sync() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var stop atomic.Bool
			loops := make(chan int)
			go func() {
				n := 0
				for ; !stop.Load(); n++ {
					c.step(n)
				}
				loops <- n
			}()
			for b.Loop() {
				if ok, _, err := h.Verify(ctx, encoded, "benchmark password 1"); !ok || err != nil {
					b.Fatalf("Verify = %v, %v", ok, err)
				}
			}
			stop.Store(true)
			b.ReportMetric(float64(<-loops)/b.Elapsed().Seconds(), "bg-ops/s")
		})
	}
}

// benchHash returns a Hasher with the default parameters and slots hash
// slots, and the hash of "benchmark password 1".
func benchHash(b *testing.B, slots int) (*password.Hasher, string) {
	h := password.NewHasher(password.DefaultParams, slots, 0)
	encoded, err := h.Hash(context.Background(), "benchmark password 1")
	if err != nil {
		b.Fatal(err)
	}
	return h, encoded
}

// pageWriter returns a function that writes the i-th of 256 pages of a
// file (closed when b ends) and returns the file, for the caller to sync.
// The file is written whole first, so that the syncs need no block
// allocation.
func pageWriter(b *testing.B) func(i int) *os.File {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if _, err := f.Write(make([]byte, 256*4096)); err != nil {
		b.Fatal(err)
	}
	page := make([]byte, 4096)
	return func(i int) *os.File {
		_, _ = f.WriteAt(page, int64(i%256)*4096)
		return f
	}
}
