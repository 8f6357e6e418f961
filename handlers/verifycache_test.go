package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

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
