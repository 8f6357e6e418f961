package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/xanoauth/caddy-xanoauth/password"
	"github.com/xanoauth/caddy-xanoauth/token"
)

func TestVerifyCacheHitIsVerify(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "hit@example.com", "secret123")
	want, err := f.svc.Keys().Verify(tok, f.clock, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want.Extras["role"] != "member" {
		t.Fatalf("fixture token lacks its extra: %+v", want)
	}
	for i := range 3 { // a miss, then hits
		got, err := f.svc.verify(tok)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("verify #%d = %+v, %v; want %+v", i, got, err, want)
		}
	}
	if n := f.svc.cache.len(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

func TestVerifyCacheRotationReverifies(t *testing.T) {
	f := newFixture(t)
	k0, _ := token.GenerateKey()
	old, _ := token.NewRing(k0)
	f.svc.SetKeys(old)
	tok := f.signup(t, "rot@example.com", "secret123")
	want := mustVerify(t, old, tok, f.clock)
	if _, err := f.svc.verify(tok); err != nil {
		t.Fatal(err)
	}
	sh := f.svc.cache.shard(tok)
	if sh.m[tok].ring != old {
		t.Fatal("entry not tied to the ring that verified it")
	}
	// Rotation: a new ring that still holds the old key. The token stays
	// valid, but only after being verified again under the new ring.
	k1, _ := token.GenerateKey()
	rotated, _ := token.NewRing(k1, k0)
	f.svc.SetKeys(rotated)
	got, err := f.svc.verify(tok)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("token of the previous key after rotation: %+v, %v", got, err)
	}
	if sh.m[tok].ring != rotated {
		t.Fatal("entry was not re-verified under the new ring")
	}
	if n := f.svc.cache.len(); n != 1 {
		t.Fatalf("%d entries after re-verifying one token, want 1", n)
	}
	// The old key dropped: the cached entry must not outlive it.
	only, _ := token.NewRing(k1)
	f.svc.SetKeys(only)
	if _, err := f.svc.verify(tok); err == nil {
		t.Fatal("token accepted after its key left the ring")
	}
}

func mustVerify(t *testing.T, r *token.Ring, tok string, now time.Time) token.Claims {
	t.Helper()
	c, err := r.Verify(tok, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyCacheCopiesKey(t *testing.T) {
	c := newVerifyCache()
	header := strings.Repeat("x", 1<<20) + "; tok=abc.def.ghi.jkl.mno"
	tok := header[len(header)-len("abc.def.ghi.jkl.mno"):]
	c.put(tok, nil, token.Claims{Expiry: 1 << 40})
	c.put(tok, nil, token.Claims{Expiry: 1 << 40}) // replacing must copy too
	lo := uintptr(unsafe.Pointer(unsafe.StringData(header)))
	for k := range c.shard(tok).m {
		p := uintptr(unsafe.Pointer(unsafe.StringData(k)))
		if p >= lo && p < lo+uintptr(len(header)) {
			t.Fatal("cache key points into the request's header")
		}
	}
}

// TestVerifyCacheConcurrent verifies many tokens from many goroutines while
// the key ring is swapped between two rings holding the same key, so hits,
// misses, re-verifications and evictions race (run with -race).
func TestVerifyCacheConcurrent(t *testing.T) {
	f := newFixture(t)
	k, _ := token.GenerateKey()
	ringA, _ := token.NewRing(k)
	ringB, _ := token.NewRing(k)
	f.svc.SetKeys(ringA)
	toks := make([]string, 64)
	for i := range toks {
		var err error
		toks[i], err = ringA.Mint(token.Claims{ID: int64(i + 1), Table: "user", DS: "live", SID: fmt.Sprint(i),
			Extras: map[string]any{"role": "member"}, IssuedAt: f.clock.Unix(), Expiry: f.clock.Unix() + 3600})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				f.svc.SetKeys(ringB)
			} else {
				f.svc.SetKeys(ringA)
			}
			runtime.Gosched()
		}
	}()
	var workers sync.WaitGroup
	for g := range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 2000 {
				n := (g*7 + i) % len(toks)
				c, err := f.svc.verify(toks[n])
				if err != nil || c.ID != int64(n+1) || c.Extras["role"] != "member" {
					t.Errorf("verify token %d: %+v %v", n, c, err)
					return
				}
			}
		}()
	}
	workers.Wait()
	close(stop)
	wg.Wait()
}

// TestVerifyCacheMemoryBound fills the cache to its bound and checks the
// heap it holds against the bound documented in verifycache.go. Entries are
// built as verify builds them (claims decoded from JSON, so Extras is a
// fresh map; the key a substring of a larger header), without paying for
// 65536 JWE decryptions.
func TestVerifyCacheMemoryBound(t *testing.T) {
	k, _ := token.GenerateKey()
	ring, _ := token.NewRing(k)
	tok, err := ring.Mint(token.Claims{ID: 123456, Table: "user", DS: "live", SID: fmt.Sprintf("%032x", 1),
		Extras: map[string]any{"role": "member"}, IssuedAt: 1700000000, NotBefore: 1700000000, Expiry: 1700086400})
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"id":123456,"table":"user","ds":"live","extras":{"role":"member"},"sid":"00000000000000000000000000000001","iat":1700000000,"nbf":1700000000,"exp":1700086400}`)
	c := newVerifyCache()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range verifyCacheSize * 5 / 4 { // past the bound: evictions too
		header := fmt.Sprintf("Bearer %08d%s", i, tok[8:])
		var claims token.Claims
		if err := json.Unmarshal(plain, &claims); err != nil {
			t.Fatal(err)
		}
		c.put(header[len("Bearer "):], ring, claims)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	n := c.len()
	if n > verifyCacheSize || n < verifyCacheSize*9/10 {
		t.Fatalf("%d entries after %d distinct tokens, bound %d", n, verifyCacheSize*5/4, verifyCacheSize)
	}
	held := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
	t.Logf("%d entries of %d-byte tokens hold %.1f MiB, %.0f bytes per entry", n, len(tok), held/(1<<20), held/float64(n))
	if held > 80<<20 {
		t.Errorf("a full cache holds %.1f MiB: update the bound documented in verifycache.go", held/(1<<20))
	}
	runtime.KeepAlive(c)
}

// BenchmarkGuardCached is the guard alone on a cached token: the request
// and response are reused, so the figure is what xano_guard adds to a
// request that Caddy has already parsed.
func BenchmarkGuardCached(b *testing.B) {
	f, tok := benchToken(b)
	g := &Guard{Svc: f.svc, Tables: []string{"user"}}
	if err := g.Init(); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/members/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r, _ = withReplacer(r)
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	b.ReportAllocs()
	for b.Loop() {
		if err := g.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusTeapot {
			b.Fatalf("%v %d", err, w.Code)
		}
	}
}

// TestVerifyReportsForeground: a verified token (cached or not) makes
// hashing yield half its slots; a junk token does not.
func TestVerifyReportsForeground(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "fg@example.com", "secret123")
	f.svc.Hasher = password.NewHasher(fastParams, 2, time.Second)
	if _, err := f.svc.verify("junk.junk.junk.junk.junk"); err == nil {
		t.Fatal("junk verified")
	}
	if f.svc.Hasher.Yielding() {
		t.Fatal("a junk token made hashing yield")
	}
	for range 2 { // a miss, then a hit, each with a hasher that never yielded
		f.svc.Hasher = password.NewHasher(fastParams, 2, time.Second)
		if _, err := f.svc.verify(tok); err != nil {
			t.Fatal(err)
		}
		if !f.svc.Hasher.Yielding() {
			t.Fatal("a verified token did not make hashing yield")
		}
	}
}
