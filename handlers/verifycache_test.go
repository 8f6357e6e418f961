package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func TestVerifyCacheHonoursExpiryAndKeys(t *testing.T) {
	f := newFixture(t)
	tok := f.signup(t, "cache@example.com", "secret123")
	c1, err := f.svc.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if f.svc.cache.len() != 1 {
		t.Fatalf("verified token not cached (%d entries)", f.svc.cache.len())
	}
	c2, err := f.svc.verify(tok)
	if err != nil || c2.SID != c1.SID || c2.ID != c1.ID {
		t.Fatalf("cached verify: %+v %v", c2, err)
	}
	// exact expiry still holds for a cached token
	f.clock = time.Unix(c1.Expiry-1, 0)
	if _, err := f.svc.verify(tok); err != nil {
		t.Fatalf("refused a second before exp: %v", err)
	}
	f.clock = time.Unix(c1.Expiry, 0)
	if _, err := f.svc.verify(tok); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("cached token at exp: %v", err)
	}
	// a new key ring without the old key refuses the cached token
	f.clock = time.Unix(c1.IssuedAt, 0)
	k, _ := token.GenerateKey()
	ring, _ := token.NewRing(k)
	f.svc.SetKeys(ring)
	if _, err := f.svc.verify(tok); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("cached token after a key change: %v", err)
	}
	// failures are never cached
	before := f.svc.cache.len()
	for i := 0; i < 100; i++ {
		_, _ = f.svc.verify(fmt.Sprintf("junk%d", i))
	}
	if f.svc.cache.len() != before {
		t.Fatal("failed verifications were cached")
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	c := newVerifyCache()
	ring := &token.Ring{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25000; i++ {
				tok := fmt.Sprintf("tok-%d-%d", g, i)
				c.put(tok, ring, token.Claims{ID: int64(i), Expiry: 1 << 40})
				c.get(tok, ring, time.Unix(0, 0), 0)
			}
		}(g)
	}
	wg.Wait()
	if n := c.len(); n > verifyCacheSize || n < verifyCacheSize/2 {
		t.Fatalf("cache holds %d entries after 100k inserts (bound %d)", n, verifyCacheSize)
	}
}

func benchToken(b *testing.B) (*fixture, string) {
	f := newFixture(b)
	f.clock = time.Now()
	tok, err := f.svc.Keys().Mint(token.Claims{ID: 1, Table: "user", DS: "live", SID: "s", Extras: map[string]any{"role": "member"},
		IssuedAt: f.clock.Unix(), Expiry: f.clock.Add(time.Hour).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	return f, tok
}

func BenchmarkVerifyUncached(b *testing.B) {
	f, tok := benchToken(b)
	ring := f.svc.Keys()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Verify(tok, f.clock, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	f, tok := benchToken(b)
	if _, err := f.svc.verify(tok); err != nil { // warm: measure hits only
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGuardServeHTTP(b *testing.B) {
	f, tok := benchToken(b)
	g := &Guard{Svc: f.svc, Tables: []string{"user"}, Headers: map[string]string{"X-User-Id": "id"}}
	if err := g.Init(); err != nil {
		b.Fatal(err)
	}
	next := &nextRecorder{}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/members/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r, _ = withReplacer(r)
		w := httptest.NewRecorder()
		if err := g.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusTeapot {
			b.Fatalf("%v %d", err, w.Code)
		}
	}
}

func BenchmarkParseInput(b *testing.B) {
	form := url.Values{"email": {"ann@example.com"}, "password": {"secret123"}, "name": {"Ann"}}.Encode()
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("email", "ann@example.com")
	_ = mw.WriteField("password", "secret123")
	_ = mw.Close()
	cases := []struct{ name, ct, body string }{
		{"json", "application/json", `{"email":"ann@example.com","password":"secret123","name":"Ann"}`},
		{"urlencoded", "application/x-www-form-urlencoded", form},
		{"multipart", mw.FormDataContentType(), mp.String()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/api:x/auth/login", strings.NewReader(c.body))
				r.Header.Set("Content-Type", c.ct)
				if _, e := ParseInput(httptest.NewRecorder(), r, 0); e != nil {
					b.Fatal(e)
				}
			}
		})
	}
}

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
	sh, h := f.svc.cache.slot(tok)
	if sh.m[h].ring != old {
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
	if sh.m[h].ring != rotated {
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
	sh, _ := c.slot(tok)
	for _, e := range sh.m {
		p := uintptr(unsafe.Pointer(unsafe.StringData(e.tok)))
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

// TestVerifyCacheCollisionIsAMiss: entries are found by a 64-bit hash of
// the token; should two tokens ever share one, the entry's own copy of the
// token decides, and the other token is a miss, never the first one's
// claims.
func TestVerifyCacheCollisionIsAMiss(t *testing.T) {
	c := newVerifyCache()
	c.put("token.of.user.one.x", nil, token.Claims{ID: 1, Expiry: 1 << 40})
	shA, hA := c.slot("token.of.user.one.x")
	shB, hB := c.slot("token.of.user.two.x")
	// Forge the collision: user one's entry under user two's key.
	shB.m[hB] = shA.m[hA]
	if got, ok := c.get("token.of.user.two.x", nil, time.Unix(1, 0), 0); ok {
		t.Fatalf("a colliding token got another token's claims: %+v", got)
	}
	if got, ok := c.get("token.of.user.one.x", nil, time.Unix(1, 0), 0); !ok || got.ID != 1 {
		t.Fatalf("the token itself: %+v, %v", got, ok)
	}
}
