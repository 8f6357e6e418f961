package handlers

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/xanoauth/caddy-xanoauth/password"
)

// BenchmarkLoginParallel runs whole logins through the handler (input
// parsing, user lookup, argon2id verify with the default parameters, the
// session's durable write, minting) from 2 × GOMAXPROCS goroutines, as
// bench/run.sh does over HTTP. ns/op is wall time per login; compare it
// with ./password's BenchmarkVerifyDefaultParallel, the hash alone on every
// CPU: the difference is what a login costs beyond its hash.
func BenchmarkLoginParallel(b *testing.B) {
	f := newFixture(b)
	f.svc.Hasher = password.NewHasher(password.DefaultParams, runtime.GOMAXPROCS(0), 0)
	a := f.auth("user")
	signup := httptest.NewRequest("POST", "/api:x/auth/signup", strings.NewReader(`{"email":"bench@example.com","password":"secret123"}`))
	signup.Header.Set("Content-Type", "application/json")
	if w := serveBench(a, signup); w.Code != 200 {
		b.Fatalf("signup: %d %s", w.Code, w.Body)
	}
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "/api:x/auth/login", strings.NewReader(`{"email":"bench@example.com","password":"secret123"}`))
			r.Header.Set("Content-Type", "application/json")
			if w := serveBench(a, r); w.Code != 200 {
				b.Errorf("login: %d %s", w.Code, w.Body)
				return
			}
		}
	})
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
