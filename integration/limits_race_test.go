package integration

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// limitsRaceConfig has the default login limits, spelled out so that the
// numbers the tests assert are visible here.
func limitsRaceConfig(dbPath string) string {
	return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		rate_limit {
			login_ip 20 5m
			login_account 10 15m
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	respond "not found" 404
}`, globals, dbPath)
}

const (
	invalidCredentials = `{"code":"ERROR_CODE_ACCESS_DENIED","message":"Invalid Credentials.","payload":""}`
	tooManyAttempts    = `{"code":"ERROR_CODE_TOO_MANY_REQUESTS","message":"Too many attempts. Please try again later.","payload":""}`
)

// burst posts every body to path at the same moment: each request is
// built and its goroutine parked before a channel releases them all, and
// the client opens as many connections as there are requests, so that no
// request waits for another's answer.
func burst(t *testing.T, path string, bodies []string) []result {
	t.Helper()
	n := len(bodies)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, MaxConnsPerHost: n, MaxIdleConnsPerHost: n,
	}}
	defer client.CloseIdleConnections()
	out := make([]result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out[i] = result{resp.StatusCode, resp.Header, string(b)}
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

// tallyGuesses counts the evaluated answers (403 Invalid Credentials) and
// checks that every other answer is a 429 with a usable Retry-After.
func tallyGuesses(t *testing.T, rs []result) (evaluated int) {
	t.Helper()
	for i, r := range rs {
		switch {
		case r.status == 403 && r.body == invalidCredentials:
			evaluated++
		case r.status == 429 && r.body == tooManyAttempts:
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("request %d: 429 with Retry-After %q", i, r.header.Get("Retry-After"))
			}
		default:
			t.Errorf("request %d: %d %s", i, r.status, r.body)
		}
	}
	return evaluated
}

// TestParallelGuessesOneAccount: 60 wrong passwords for one account from
// one address, all in flight at once. The limits count an attempt when it
// is admitted, before its password is hashed, so no more than
// login_account (10) of them get an answer that evaluated the password;
// the others are refused with 429 without any hashing. Counting after the
// hash let 37 of 60 through.
func TestParallelGuessesOneAccount(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(limitsRaceConfig(filepath.Join(t.TempDir(), "x.db")), "caddyfile")
	if r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "victim@example.com", "password": "secret123"}); r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}

	bodies := make([]string, 60)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"email":"victim@example.com","password":"guess%04d"}`, i)
	}
	evaluated := tallyGuesses(t, burst(t, "/api:x/auth/login", bodies))
	if evaluated > 10 || evaluated == 0 {
		t.Fatalf("%d of 60 parallel guesses were evaluated, want 1..10 (login_account 10)", evaluated)
	}
	// The owner, from the same address, is refused as well: the account
	// limit holds for this (account, address) pair.
	if r := do(t, "POST", "/api:x/auth/login", map[string]string{"email": "victim@example.com", "password": "secret123"}); r.status != 429 {
		t.Fatalf("login after the burst: %d %s", r.status, r.body)
	}
}

// TestParallelGuessesAcrossAccounts: 60 wrong passwords spread over 6
// emails (one real, five unknown: unknown emails fail like wrong
// passwords) from one address, all at once: login_ip (20) bounds the
// evaluated answers in total, and login_account (10) each email's.
func TestParallelGuessesAcrossAccounts(t *testing.T) {
	tester := caddytest.NewTester(t)
	tester.InitServer(limitsRaceConfig(filepath.Join(t.TempDir(), "x.db")), "caddyfile")
	if r := do(t, "POST", "/api:x/auth/signup", map[string]string{"email": "real@example.com", "password": "secret123"}); r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}

	emails := []string{"real@example.com", "ghost1@example.com", "ghost2@example.com", "ghost3@example.com", "ghost4@example.com", "ghost5@example.com"}
	bodies := make([]string, 60)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"email":%q,"password":"guess%04d"}`, emails[i%len(emails)], i)
	}
	rs := burst(t, "/api:x/auth/login", bodies)
	evaluated := tallyGuesses(t, rs)
	if evaluated > 20 || evaluated == 0 {
		t.Fatalf("%d of 60 parallel guesses were evaluated, want 1..20 (login_ip 20)", evaluated)
	}
	perEmail := map[string]int{}
	for i, r := range rs {
		if r.status == 403 {
			perEmail[emails[i%len(emails)]]++
		}
	}
	for e, n := range perEmail {
		if n > 10 {
			t.Errorf("%s: %d evaluated, want at most 10 (login_account 10)", e, n)
		}
	}
}

// revocationConfig has refresh off (sessions are not stored: a logout's
// sid record is the only thing it adds) and login limits raised out of
// the way of a login loop.
func revocationConfig(dbPath string) string {
	return fmt.Sprintf(`{
	%s
	xano {
		storage bbolt %s
		rate_limit {
			login_ip 10000 1m
			login_account 10000 1m
		}
	}
}
http://localhost:9080 {
	xano_auth /api:*
	respond "not found" 404
}`, globals, dbPath)
}

// TestLoginLogoutLoopStaysBounded: one account logging in and out in a
// loop must not grow the revocation set without bound. Past
// handlers.MaxSessionRevocations single-session logouts within a token
// lifetime, a logout becomes a log-out-everywhere (one merged cutoff per
// user), so the bbolt file holds at most that many sid records, every
// earlier token of the user is revoked, and the user can still log in.
func TestLoginLogoutLoopStaysBounded(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "x.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(revocationConfig(dbPath), "caddyfile")
	creds := map[string]string{"email": "loop@example.com", "password": "secret123"}
	r := do(t, "POST", "/api:x/auth/signup", creds)
	if r.status != 200 {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	other := r.field(t, "authToken") // another device, never logged out
	me := func(tok string) int {
		return do(t, "GET", "/api:x/auth/me", nil, "Authorization", "Bearer "+tok).status
	}

	const cycles = handlers.MaxSessionRevocations + 10
	for i := range cycles {
		r := do(t, "POST", "/api:x/auth/login", creds)
		if r.status != 200 {
			t.Fatalf("login %d: %d %s", i, r.status, r.body)
		}
		tok := r.field(t, "authToken")
		if r := do(t, "POST", "/api:x/auth/logout", map[string]string{}, "Authorization", "Bearer "+tok); r.status != 200 || r.body != "{}" {
			t.Fatalf("logout %d: %d %s", i, r.status, r.body)
		}
		if s := me(tok); s != 401 {
			t.Fatalf("token of logout %d still works: %d", i, s)
		}
		if i == handlers.MaxSessionRevocations-1 && me(other) != 200 {
			t.Fatal("the other device was logged out before the limit")
		}
	}
	if s := me(other); s != 401 {
		t.Fatalf("after %d logouts the other device's token: %d, want 401 (folded into a log-out-everywhere)", cycles, s)
	}
	r = do(t, "POST", "/api:x/auth/login", creds)
	if r.status != 200 || me(r.field(t, "authToken")) != 200 {
		t.Fatalf("login after the fold: %d %s", r.status, r.body)
	}

	// Close the database (a config without xano), then count its records.
	if err := loadCaddyfile(fmt.Sprintf("{\n%s\n}\nhttp://localhost:9080 {\n\trespond \"down\"\n}\n", globals)); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenBolt(dbPath, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.RevokedCount()
	if err != nil {
		t.Fatal(err)
	}
	if n > handlers.MaxSessionRevocations {
		t.Fatalf("%d revoked-session records after %d login+logout cycles, want at most %d", n, cycles, handlers.MaxSessionRevocations)
	}
}
