package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/password"
)

// slowHashing makes argon2id slow enough (4 MiB, one at a time) that
// guesses released at once are all in flight together, as they are
// against the real parameters, while a CPU stays free to admit them; the
// users must be signed up after it, since Verify uses the parameters of
// the stored hash.
func (f *fixture) slowHashing() {
	f.svc.Hasher = password.NewHasher(password.Params{Memory: 4096, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, 1, 30*time.Second)
}

// parallel serves every request at the same moment and returns the
// answers in order.
func parallel(t *testing.T, h *Auth, reqs []*http.Request) []response {
	t.Helper()
	out := make([]response, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range reqs {
		r, _ = withReplacer(r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			w := httptest.NewRecorder()
			errs[i] = h.ServeHTTP(w, r, &nextRecorder{})
			out[i] = response{Status: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// evaluatedGuesses counts the 403 Invalid Credentials answers, and checks
// that every other answer is the 429 of a limit.
func evaluatedGuesses(t *testing.T, rs []response) int {
	t.Helper()
	n := 0
	for _, r := range rs {
		if r.Status == http.StatusForbidden {
			wantError(t, r, 403, CodeAccessDenied, MsgInvalidCredentials, "")
			n++
			continue
		}
		wantLimited(t, r, 17*time.Minute)
	}
	return n
}

// TestParallelGuessesReserved: guesses in flight count. 60 wrong
// passwords for one account from one address, released at once, get at
// most login_account (10) evaluated answers and hashes; spread over six
// emails (unknown ones count too), at most login_ip (20) in total.
func TestParallelGuessesReserved(t *testing.T) {
	f := newFixture(t)
	f.slowHashing()
	f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{20, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	guesses := func(ip string, emails ...string) []*http.Request {
		reqs := make([]*http.Request, 60)
		for i := range reqs {
			reqs[i] = from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": emails[i%len(emails)], "password": "guess1234"}), ip)
		}
		return reqs
	}

	before := f.svc.Hasher.Computations()
	if n := evaluatedGuesses(t, parallel(t, f.auth("user"), guesses("198.51.100.7", "ann@example.com"))); n > 10 || n == 0 {
		t.Fatalf("one account: %d of 60 parallel guesses evaluated, want 1..10", n)
	}
	if n := f.svc.Hasher.Computations() - before; n > 10 {
		t.Fatalf("one account: %d hashes, want at most 10", n)
	}

	before = f.svc.Hasher.Computations()
	rs := parallel(t, f.auth("user"), guesses("203.0.113.9", "ann@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com", "f@example.com"))
	if n := evaluatedGuesses(t, rs); n > 20 || n == 0 {
		t.Fatalf("six emails: %d of 60 parallel guesses evaluated, want 1..20", n)
	}
	if n := f.svc.Hasher.Computations() - before; n > 20 {
		t.Fatalf("six emails: %d hashes, want at most 20", n)
	}
}

// TestParallelOldPasswordGuessesReserved: a stolen access token guessing
// the old password in parallel is held to login_account as well.
func TestParallelOldPasswordGuessesReserved(t *testing.T) {
	f := newFixture(t)
	f.slowHashing()
	tok := f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{20, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	reqs := make([]*http.Request, 60)
	for i := range reqs {
		r := from(jsonReq("POST", "/api:x/auth/password", map[string]any{"old_password": "guess1234", "new_password": "newpass456"}), "198.51.100.7")
		r.Header.Set("Authorization", "Bearer "+tok)
		reqs[i] = r
	}
	if n := evaluatedGuesses(t, parallel(t, f.auth("user"), reqs)); n > 10 || n == 0 {
		t.Fatalf("%d of 60 parallel old-password guesses evaluated, want 1..10", n)
	}
}

// TestRefusedAttemptCostsNothing: an attempt the account limit refuses
// gives back the reservation it had taken of the address's limit, so
// hammering one blocked account does not use up the address's budget.
func TestRefusedAttemptCostsNothing(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{3, 5 * time.Minute}, &LimitSpec{1, 15 * time.Minute}, nil, nil)
	const ip = "198.51.100.7"
	wantError(t, f.loginFrom(t, ip, "ann@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	for range 5 {
		wantLimited(t, f.loginFrom(t, ip, "ann@example.com", "guess1234"), 17*time.Minute)
	}
	// The address has one failure: two more are evaluated, then 429.
	wantError(t, f.loginFrom(t, ip, "bob@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantError(t, f.loginFrom(t, ip, "carl@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantLimited(t, f.loginFrom(t, ip, "dave@example.com", "guess1234"), 6*time.Minute)
}

// TestUnhashedAttemptIsRefunded: an attempt whose hash never ran (503
// ErrBusy: no slot, here because its client went away between the user
// lookup and the hash) is no guess and gives its reservations back; so
// does one the store failed.
func TestUnhashedAttemptIsRefunded(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	hs := hooked(f)
	f.withLimits(t, &LimitSpec{1, 5 * time.Minute}, &LimitSpec{1, 15 * time.Minute}, nil, nil)
	const ip = "198.51.100.7"
	before := f.svc.Hasher.Computations()
	for _, email := range []string{"ann@example.com", "nobody@example.com"} {
		ctx, cancel := context.WithCancel(context.Background())
		hs.afterUserByEmail = cancel
		r := from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": "guess1234"}), ip).WithContext(ctx)
		if resp, _ := serve(t, f.auth("user"), r); resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s, hash never ran: %d %s", email, resp.Status, resp.Body)
		}
	}
	// The store fails (the request was cancelled before the lookup).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "ann@example.com", "password": "guess1234"}), ip).WithContext(ctx)
	if resp, _ := serve(t, f.auth("user"), r); resp.Status != http.StatusInternalServerError {
		t.Fatalf("store failure: %d %s", resp.Status, resp.Body)
	}
	if n := f.svc.Hasher.Computations() - before; n != 0 {
		t.Fatalf("%d hashes ran, want none", n)
	}
	wantError(t, f.loginFrom(t, ip, "ann@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantLimited(t, f.loginFrom(t, ip, "ann@example.com", "guess1234"), 17*time.Minute)
}

// TestSuccessRefundsOnlyItself: a success takes back its own reservation
// of the address's limit (it is no failure) and nothing more: the
// failures before it still count.
func TestSuccessRefundsOnlyItself(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "eve@example.com", "secret123")
	f.withLimits(t, &LimitSpec{3, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	const ip = "198.51.100.7"
	wantError(t, f.loginFrom(t, ip, "ann@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantError(t, f.loginFrom(t, ip, "bob@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	for range 3 {
		if resp := f.loginFrom(t, ip, "eve@example.com", "secret123"); resp.Status != 200 {
			t.Fatalf("eve: %d %s", resp.Status, resp.Body)
		}
	}
	wantError(t, f.loginFrom(t, ip, "carl@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantLimited(t, f.loginFrom(t, ip, "eve@example.com", "secret123"), 6*time.Minute)
}

// TestMixedParallelLimits: one address interleaves successful
// logins to its own account with wrong guesses at a victim and at unknown
// emails, all at once and in several waves; successes must never buy
// extra evaluated guesses.
func TestMixedParallelLimits(t *testing.T) {
	f := newFixture(t)
	f.slowHashing()
	f.signup(t, "victim@example.com", "secret123")
	f.signup(t, "mallory@example.com", "mallory123")
	f.withLimits(t, &LimitSpec{20, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	victim, total := 0, 0
	for wave := range 5 {
		var reqs []*http.Request
		for i := range 90 {
			email, pw := "victim@example.com", "guess1234"
			switch i % 3 {
			case 1:
				email, pw = "mallory@example.com", "mallory123"
			case 2:
				email = "nobody" + strconv.Itoa(wave*100+i) + "@example.com"
			}
			reqs = append(reqs, from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": pw}), "198.51.100.7"))
		}
		for i, r := range parallel(t, f.auth("user"), reqs) {
			if r.Status == http.StatusForbidden {
				total++
				if i%3 == 0 {
					victim++
				}
			}
		}
		f.clock = f.clock.Add(time.Second)
	}
	if victim > 10 || total > 20 {
		t.Errorf("evaluated: %d on the victim (limit 10), %d in all (limit 20)", victim, total)
	}
}
