package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// withLimits gives the fixture rate limits; a nil spec leaves one off.
func (f *fixture) withLimits(t *testing.T, loginIP, loginAccount, signupIP, refreshIP *LimitSpec) {
	t.Helper()
	l, err := NewLimits(loginIP, loginAccount, signupIP, refreshIP, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Limits = l
}

func from(r *http.Request, ip string) *http.Request {
	r.RemoteAddr = ip + ":40000"
	return r
}

func (f *fixture) loginFrom(t *testing.T, ip, email, pw string) response {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": pw}), ip))
	return resp
}

func (f *fixture) signupFrom(t *testing.T, ip, email, pw string) response {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), from(jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": email, "password": pw}), ip))
	return resp
}

// wantLimited checks a 429 in the envelope with a Retry-After in whole
// seconds within (0, max], and returns it.
func wantLimited(t *testing.T, resp response, maxWait time.Duration) int {
	t.Helper()
	wantError(t, resp, http.StatusTooManyRequests, CodeTooManyRequests, MsgTooManyAttempts, "")
	ra := resp.Header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxWait {
		t.Fatalf("Retry-After %q, want whole seconds in 1..%v", ra, maxWait.Seconds())
	}
	return n
}

func TestLoginIPLockoutAnswers429WithoutHashing(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{3, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	const attacker, owner = "198.51.100.7", "203.0.113.9"

	// Failures on two accounts, known and unknown: all count for the IP.
	for _, email := range []string{"ann@example.com", "nobody@example.com", "ann@example.com"} {
		wantError(t, f.loginFrom(t, attacker, email, "wrong1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	}
	before := f.svc.Hasher.Computations()
	for _, c := range []struct{ email, pw string }{
		{"ann@example.com", "wrong1234"},
		{"ann@example.com", "secret123"}, // even the right password: the IP is blocked
		{"other@example.com", "whatever1"},
	} {
		wantLimited(t, f.loginFrom(t, attacker, c.email, c.pw), 5*time.Minute+5*time.Minute/8+time.Second)
	}
	if n := f.svc.Hasher.Computations() - before; n != 0 {
		t.Fatalf("limited logins ran %d hash computations, want 0", n)
	}
	// The owner, from elsewhere, is not locked out.
	if resp := f.loginFrom(t, owner, "ann@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("owner from another IP: %d %s", resp.Status, resp.Body)
	}
	// Input errors are not failures and are answered as before.
	resp, _ := serve(t, f.auth("user"), from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "ann@example.com"}), owner))
	wantError(t, resp, 400, CodeInputError, "Missing param: password", "password")
}

func TestAccountLimitDoesNotLockOutTheOwner(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.signup(t, "bob@example.com", "secret123")
	f.withLimits(t, &LimitSpec{100, 5 * time.Minute}, &LimitSpec{3, 15 * time.Minute}, nil, nil)
	const attacker, owner = "198.51.100.7", "203.0.113.9"

	for range 3 {
		wantError(t, f.loginFrom(t, attacker, "ANN@example.com ", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	}
	before := f.svc.Hasher.Computations()
	wantLimited(t, f.loginFrom(t, attacker, "ann@example.com", "guess1234"), 15*time.Minute+15*time.Minute/8+time.Second)
	if f.svc.Hasher.Computations() != before {
		t.Fatal("account-limited login was hashed")
	}
	// The attacker's block is on (ann, attacker) only.
	wantError(t, f.loginFrom(t, attacker, "bob@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	// The right password from another IP works, and the owner's own typos
	// are judged on their own count, not the attacker's.
	wantError(t, f.loginFrom(t, owner, "ann@example.com", "typo12345"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	if resp := f.loginFrom(t, owner, "ann@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("owner: %d %s", resp.Status, resp.Body)
	}
	// Another data source is another account.
	r := from(jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "ann@example.com", "password": "guess1234"}), attacker)
	r.Header.Set("X-Data-Source", "test")
	resp, _ := serve(t, f.auth("user"), r)
	wantError(t, resp, 403, CodeAccessDenied, MsgInvalidCredentials, "")
}

// TestSuccessResetsOnlyItsPair: a success clears the (account, IP) count,
// never the IP's count, or an attacker could log in to an account of its
// own between guesses to keep guessing forever.
func TestSuccessResetsOnlyItsPair(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.signup(t, "eve@example.com", "secret123")
	f.withLimits(t, &LimitSpec{4, 5 * time.Minute}, &LimitSpec{2, 15 * time.Minute}, nil, nil)
	const ip = "198.51.100.7"

	// The owner mistypes once, then logs in: the pair starts over.
	f.loginFrom(t, ip, "ann@example.com", "typo12345")
	if resp := f.loginFrom(t, ip, "ann@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	f.loginFrom(t, ip, "ann@example.com", "typo12345")
	if resp := f.loginFrom(t, ip, "ann@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("pair not reset by a success: %d %s", resp.Status, resp.Body)
	}
	// Two failures so far for the IP; eve's own login clears nothing of it.
	f.loginFrom(t, ip, "bob@example.com", "guess1234")
	if resp := f.loginFrom(t, ip, "eve@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("eve: %d", resp.Status)
	}
	f.loginFrom(t, ip, "carl@example.com", "guess1234") // 4th failure of the IP
	wantLimited(t, f.loginFrom(t, ip, "eve@example.com", "secret123"), 6*time.Minute)
}

func TestLimitsResetAfterWindow(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	f.withLimits(t, &LimitSpec{2, 5 * time.Minute}, &LimitSpec{10, 15 * time.Minute}, nil, nil)
	const ip = "198.51.100.7"
	start := f.clock
	for range 2 {
		f.loginFrom(t, ip, "ann@example.com", "guess1234")
	}
	f.clock = start.Add(time.Minute)
	n := wantLimited(t, f.loginFrom(t, ip, "ann@example.com", "secret123"), 5*time.Minute)
	// Retry-After is rounded up: one second earlier the block still holds,
	// at Retry-After it is gone.
	f.clock = start.Add(time.Minute + time.Duration(n-1)*time.Second)
	wantLimited(t, f.loginFrom(t, ip, "ann@example.com", "secret123"), 5*time.Minute)
	f.clock = start.Add(time.Minute + time.Duration(n)*time.Second)
	if resp := f.loginFrom(t, ip, "ann@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("still limited after Retry-After: %d %s", resp.Status, resp.Body)
	}
	if elapsed := f.clock.Sub(start); elapsed < 5*time.Minute || elapsed > 5*time.Minute+5*time.Minute/8+time.Second {
		t.Fatalf("block lasted %v, want the 5m window (+ at most one slot)", elapsed)
	}
}

func TestSignupIPLimit(t *testing.T) {
	f := newFixture(t)
	f.withLimits(t, nil, nil, &LimitSpec{2, time.Hour}, nil)
	const ip, other = "198.51.100.7", "203.0.113.9"

	// Input errors do not count.
	wantError(t, f.signupFrom(t, ip, "a@example.com", "short"), 400, CodeInputError,
		"Input does not meet minimum length requirement of 8 characters", "password")
	if resp := f.signupFrom(t, ip, "a@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("signup 1: %d %s", resp.Status, resp.Body)
	}
	// A taken email counts too: the limit also slows email enumeration.
	wantError(t, f.signupFrom(t, ip, "a@example.com", "secret123"), 403, CodeAccessDenied, MsgAccountInUse, "")
	before := f.svc.Hasher.Computations()
	wantLimited(t, f.signupFrom(t, ip, "b@example.com", "secret123"), time.Hour+time.Hour/8+time.Second)
	if f.svc.Hasher.Computations() != before {
		t.Fatal("limited signup was hashed")
	}
	if resp := f.signupFrom(t, other, "b@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("signup from another IP: %d %s", resp.Status, resp.Body)
	}
	f.clock = f.clock.Add(time.Hour + time.Hour/8)
	if resp := f.signupFrom(t, ip, "c@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("signup after the window: %d %s", resp.Status, resp.Body)
	}
}

func TestRefreshIPLimit(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	_, rt := f.login(t, "ann@example.com", "secret123")
	f.withLimits(t, nil, nil, nil, &LimitSpec{2, time.Minute})
	// Garbage counts too: the limit is on requests.
	if resp := f.refresh(t, "garbage"); resp.Status != 401 {
		t.Fatalf("garbage: %d", resp.Status)
	}
	resp := f.refresh(t, rt)
	if resp.Status != 200 {
		t.Fatalf("refresh: %d %s", resp.Status, resp.Body)
	}
	wantLimited(t, f.refresh(t, resp.json(t)["refreshToken"].(string)), time.Minute+time.Minute/8+time.Second)
}

func TestNoLimitsWhenNil(t *testing.T) {
	f := newFixture(t) // Limits nil
	f.signup(t, "ann@example.com", "secret123")
	for range 30 {
		wantError(t, f.loginFrom(t, "198.51.100.7", "ann@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	}
	// A Limits with every limiter off limits nothing either.
	f.withLimits(t, nil, nil, nil, nil)
	wantError(t, f.loginFrom(t, "198.51.100.7", "ann@example.com", "guess1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	if resp := f.signupFrom(t, "198.51.100.7", "b@example.com", "secret123"); resp.Status != 200 {
		t.Fatalf("signup: %d", resp.Status)
	}
}

func TestClientIP(t *testing.T) {
	withVar := func(r *http.Request, ip string) *http.Request {
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
		return r.WithContext(ctx)
	}
	for _, c := range []struct {
		name   string
		remote string
		varIP  string
		xff    string
		want   string
	}{
		{"remote addr", "192.0.2.1:1234", "", "", "192.0.2.1"},
		{"caddy's client ip wins", "10.0.0.1:1234", "198.51.100.7", "", "198.51.100.7"},
		{"X-Forwarded-For ignored", "192.0.2.1:1234", "", "203.0.113.5", "192.0.2.1"},
		{"IPv6 per /64", "[2001:db8:1:2:3:4:5:6]:443", "", "", "2001:db8:1:2::/64"},
		{"IPv6 var per /64", "10.0.0.1:1", "2001:db8:1:2:ffff::1", "", "2001:db8:1:2::/64"},
		{"IPv4-mapped", "[::ffff:192.0.2.1]:1", "", "", "192.0.2.1"},
		{"zone dropped", "[fe80::1%eth0]:1", "", "", "fe80::/64"},
		{"no port", "192.0.2.1", "", "", "192.0.2.1"},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.varIP != "" {
			r = withVar(r, c.varIP)
		}
		if got := ClientIP(r); got != c.want {
			t.Errorf("%s: ClientIP = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Nanosecond: "1", time.Second: "1", time.Second + 1: "2", 90 * time.Second: "90", 299*time.Second + 500*time.Millisecond: "300",
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestDefaultLimits(t *testing.T) {
	l := DefaultLimits()
	for _, c := range []struct {
		name string
		got  interface {
			Limit() int
			Window() time.Duration
		}
		want LimitSpec
	}{
		{"login_ip", l.LoginIP, LimitSpec{20, 5 * time.Minute}},
		{"login_account", l.LoginAccount, LimitSpec{10, 15 * time.Minute}},
		{"signup_ip", l.SignupIP, LimitSpec{10, time.Hour}},
		{"refresh_ip", l.RefreshIP, LimitSpec{60, time.Minute}},
	} {
		if c.got.Limit() != c.want.Events || c.got.Window() != c.want.Window {
			t.Errorf("%s: %d per %v, want %d per %v", c.name, c.got.Limit(), c.got.Window(), c.want.Events, c.want.Window)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.Start(ctx) // janitors end with ctx
	cancel()
	(*Limits)(nil).Start(context.Background())
}
