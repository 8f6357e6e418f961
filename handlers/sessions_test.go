package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/store"
)

// countingStore counts the session writes a request causes.
type countingStore struct {
	store.Store
	rotations, reads atomic.Int64
}

func (c *countingStore) RotateRefresh(ctx context.Context, h []byte, n *store.RefreshToken, iat, e int64, now time.Time, g time.Duration) (*store.Session, error) {
	c.rotations.Add(1)
	return c.Store.RotateRefresh(ctx, h, n, iat, e, now, g)
}

func (c *countingStore) RefreshTokenByHash(ctx context.Context, h []byte) (*store.RefreshToken, error) {
	c.reads.Add(1)
	return c.Store.RefreshTokenByHash(ctx, h)
}

func refreshFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.svc.Tables["user"].RefreshTTL = 24 * time.Hour
	f.svc.Tables["user"].RefreshGrace = 5 * time.Second
	return f
}

func (f *fixture) login(t *testing.T, email, pw string) (access, refresh string) {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": pw}))
	if resp.Status != 200 {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	b := resp.json(t)
	r, _ := b["refreshToken"].(string)
	return b["authToken"].(string), r
}

func (f *fixture) refresh(t *testing.T, rt string) response {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
	return resp
}

func (f *fixture) me(t *testing.T, access string) int {
	t.Helper()
	r := httptest.NewRequest("GET", "/api:x/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+access)
	resp, _ := serve(t, f.auth("user"), r)
	return resp.Status
}

func (f *fixture) guarded(t *testing.T, access string) int {
	t.Helper()
	g := &Guard{Svc: f.svc, Tables: []string{"user"}}
	if err := g.Init(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/members/", nil)
	r.Header.Set("Authorization", "Bearer "+access)
	resp, _ := serve(t, g, r)
	return resp.Status
}

func TestRefreshOffByDefault(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "off@example.com", "secret123")
	access, refresh := f.login(t, "off@example.com", "secret123")
	if access == "" || refresh != "" {
		t.Fatalf("refresh token issued with refresh off: %q", refresh)
	}
	resp := f.refresh(t, "x")
	wantError(t, resp, 404, CodeNotFound, MsgNotLocated, "")
}

func TestRefreshRotationGraceAndReuse(t *testing.T) {
	f := refreshFixture(t)
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "rot@example.com", "password": "secret123"}))
	if resp.json(t)["refreshToken"] == nil {
		t.Fatalf("signup without refreshToken: %s", resp.Body)
	}
	access1, rt1 := f.login(t, "rot@example.com", "secret123")

	f.clock = f.clock.Add(time.Minute)
	r := f.refresh(t, rt1)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	access2, rt2 := r.json(t)["authToken"].(string), r.json(t)["refreshToken"].(string)
	if access2 == access1 || rt2 == rt1 || rt2 == "" {
		t.Fatal("refresh did not rotate")
	}
	// a second tab within the grace window gets the very same pair
	f.clock = f.clock.Add(4 * time.Second)
	again := f.refresh(t, rt1)
	if again.Status != 200 || again.json(t)["refreshToken"] != rt2 || again.json(t)["authToken"] != access2 {
		t.Fatalf("grace refresh: %d %s", again.Status, again.Body)
	}
	if f.me(t, access2) != 200 || f.me(t, access1) != 200 {
		t.Fatal("tokens of the live session refused")
	}
	// after the window the spent token is reuse: the whole family dies
	f.clock = f.clock.Add(2 * time.Second)
	wantError(t, f.refresh(t, rt1), 401, CodeUnauthorized, MsgInvalidRefresh, "")
	for _, tok := range []string{access1, access2} {
		if f.me(t, tok) != 401 || f.guarded(t, tok) != 401 {
			t.Fatal("access token of a revoked family still works")
		}
	}
	wantError(t, f.refresh(t, rt2), 401, CodeUnauthorized, MsgInvalidRefresh, "")
}

// TestRefreshGraceChecksThePair: within the grace window a spent refresh
// token gets its pair again only while that pair holds: not once its
// session was logged out, and not through another table's or data
// source's endpoint.
func TestRefreshGraceChecksThePair(t *testing.T) {
	f := refreshFixture(t)
	f.svc.Tables["admin"].RefreshTTL = 24 * time.Hour
	f.signup(t, "grace@example.com", "secret123")
	_, rt := f.login(t, "grace@example.com", "secret123")
	r := f.refresh(t, rt)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	access := r.json(t)["authToken"].(string)

	resp, _ := serve(t, f.auth("admin"), jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
	wantError(t, resp, 401, CodeUnauthorized, MsgInvalidRefresh, "")
	other := jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt})
	other.Header.Set("X-Data-Source", "test")
	resp, _ = serve(t, f.auth("user"), other)
	wantError(t, resp, 401, CodeUnauthorized, MsgOtherDataSource, "")

	out := jsonReq("POST", "/api:x/auth/logout", map[string]any{})
	out.Header.Set("Authorization", "Bearer "+access)
	if resp, _ := serve(t, f.auth("user"), out); resp.Status != 200 {
		t.Fatalf("logout: %d %s", resp.Status, resp.Body)
	}
	wantError(t, f.refresh(t, rt), 401, CodeUnauthorized, MsgInvalidRefresh, "")
}

func TestConcurrentRefreshSamePair(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "tabs@example.com", "secret123")
	_, rt := f.login(t, "tabs@example.com", "secret123")
	var wg sync.WaitGroup
	results := make([]response, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := httptest.NewRecorder()
			r, _ := withReplacer(jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
			_ = f.auth("user").ServeHTTP(w, r, &nextRecorder{})
			results[i] = response{Status: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
		}(i)
	}
	wg.Wait()
	first := results[0].json(t)["refreshToken"]
	for _, r := range results {
		if r.Status != 200 || r.json(t)["refreshToken"] != first {
			t.Fatalf("tabs got different answers: %d %s vs %v", r.Status, r.Body, first)
		}
	}
}

func TestRefreshGarbageAndExpiry(t *testing.T) {
	f := refreshFixture(t)
	cs := &countingStore{Store: f.svc.Store}
	f.svc.Store = cs
	for _, junk := range []string{"short", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		wantError(t, f.refresh(t, junk), 401, CodeUnauthorized, MsgInvalidRefresh, "")
	}
	if cs.rotations.Load() != 0 || cs.reads.Load() != 1 {
		t.Fatalf("garbage caused %d rotations, %d reads (want 0 and 1: only the well-formed one is looked up)", cs.rotations.Load(), cs.reads.Load())
	}
	wantError(t, f.refresh(t, ""), 400, CodeInputError, "Missing param: refreshToken", "refreshToken")

	f.signup(t, "exp@example.com", "secret123")
	_, rt := f.login(t, "exp@example.com", "secret123")
	f.clock = f.clock.Add(24*time.Hour + time.Second)
	wantError(t, f.refresh(t, rt), 401, CodeUnauthorized, MsgRefreshExpired, "")
}

func TestLogout(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "out@example.com", "secret123")
	a1, r1 := f.login(t, "out@example.com", "secret123")
	a2, r2 := f.login(t, "out@example.com", "secret123")

	req := jsonReq("POST", "/api:x/auth/logout", map[string]any{})
	req.Header.Set("Authorization", "Bearer "+a1)
	resp, _ := serve(t, f.auth("user"), req)
	if resp.Status != 200 || string(resp.Body) != "{}" {
		t.Fatalf("logout: %d %s", resp.Status, resp.Body)
	}
	if f.me(t, a1) != 401 || f.guarded(t, a1) != 401 {
		t.Fatal("logged-out token still works")
	}
	wantError(t, f.refresh(t, r1), 401, CodeUnauthorized, MsgInvalidRefresh, "")
	if f.me(t, a2) != 200 {
		t.Fatal("logout ended another session")
	}

	// log out everywhere with only a refresh token
	a3, _ := f.login(t, "out@example.com", "secret123")
	resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/logout", map[string]any{"refreshToken": r2, "all": true}))
	if resp.Status != 200 {
		t.Fatalf("logout all: %d %s", resp.Status, resp.Body)
	}
	if f.me(t, a2) != 401 || f.me(t, a3) != 401 {
		t.Fatal("logout all left a session alive")
	}
	resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/logout", map[string]any{}))
	wantError(t, resp, 401, CodeUnauthorized, MsgAuthRequired, "")
}

func TestChangePassword(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "pw@example.com", "secret123")
	mine, _ := f.login(t, "pw@example.com", "secret123")
	other, otherRT := f.login(t, "pw@example.com", "secret123")

	change := func(body map[string]any, tok string) response {
		r := jsonReq("POST", "/api:x/auth/password", body)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, _ := serve(t, f.auth("user"), r)
		return resp
	}
	wantError(t, change(map[string]any{"old_password": "secret123", "new_password": "n3w"}, ""), 401, CodeUnauthorized, MsgAuthRequired, "")
	wantError(t, change(map[string]any{"old_password": "wrong1234", "new_password": "newsecret1"}, mine), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	wantError(t, change(map[string]any{"old_password": "secret123", "new_password": "short1"}, mine), 400, CodeInputError, "Input does not meet minimum length requirement of 8 characters", "new_password")
	wantError(t, change(map[string]any{"old_password": "secret123"}, mine), 400, CodeInputError, "Missing param: new_password", "new_password")
	if f.me(t, other) != 200 {
		t.Fatal("failed changes revoked sessions")
	}
	if r := change(map[string]any{"old_password": "secret123", "new_password": "newsecret1"}, mine); r.Status != 200 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if f.me(t, mine) != 200 {
		t.Fatal("the changing session was revoked")
	}
	if f.me(t, other) != 401 || f.refresh(t, otherRT).Status != 401 {
		t.Fatal("other session survived a password change")
	}
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "pw@example.com", "password": "secret123"}))
	wantError(t, resp, 403, CodeAccessDenied, MsgInvalidCredentials, "")
	f.login(t, "pw@example.com", "newsecret1")
}

func TestSessionEndpointsWrongMethod(t *testing.T) {
	f := refreshFixture(t)
	for _, p := range []string{"/api:x/auth/refresh", "/api:x/auth/logout", "/api:x/auth/password"} {
		resp, next := serve(t, f.auth("user"), httptest.NewRequest(http.MethodGet, p, nil))
		if next.called {
			t.Fatalf("%s passed on", p)
		}
		wantError(t, resp, 404, CodeNotFound, MsgNotLocated, "")
	}
}

func TestAPILogoutWithSessionCookie(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "cookie@example.com", "secret123")
	a := f.auth("user")
	a.Browser = &Browser{}
	resp, _ := serve(t, a, jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "cookie@example.com", "password": "secret123"}))
	var session *http.Cookie
	for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
		if c.Name == DefaultCookieName {
			session = c
		}
	}
	if session == nil || session.Value == "" {
		t.Fatalf("login set no session cookie: %v", resp.Header)
	}
	// a browser logs out with nothing but its cookie
	r := jsonReq("POST", "/api:x/auth/logout", map[string]any{})
	r.AddCookie(session)
	resp, _ = serve(t, a, r)
	if resp.Status != 200 {
		t.Fatalf("cookie logout: %d %s", resp.Status, resp.Body)
	}
	if c := cookiesOf(resp)[DefaultCookieName]; c == nil || c.MaxAge >= 0 {
		t.Fatalf("logout did not clear the cookie: %v", resp.Header["Set-Cookie"])
	}
	if f.me(t, session.Value) != 401 {
		t.Fatal("session of the cookie survived logout")
	}
}

// A stolen access token must not allow unlimited guesses at the password.
func TestChangePasswordIsRateLimited(t *testing.T) {
	f := refreshFixture(t)
	f.withLimits(t, nil, &LimitSpec{Events: 2, Window: time.Minute}, nil, nil)
	f.signup(t, "guess@example.com", "secret123")
	tok, _ := f.login(t, "guess@example.com", "secret123")
	try := func(old string) response {
		r := jsonReq("POST", "/api:x/auth/password", map[string]any{"old_password": old, "new_password": "newsecret1"})
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := serve(t, f.auth("user"), r)
		return resp
	}
	for i := 0; i < 2; i++ {
		wantError(t, try("wrong1234"), 403, CodeAccessDenied, MsgInvalidCredentials, "")
	}
	if resp := try("secret123"); resp.Status != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third guess: %d %s", resp.Status, resp.Body)
	}
}

// writeStore counts the writes that create users and sessions, fails
// those that create sessions when failSessions is set and those that
// create users alone when failUsers is.
type writeStore struct {
	store.Store
	users, sessions, userSessions, updates atomic.Int64
	failSessions, failUsers                bool
}

var errDiskFull = errors.New("disk full")

// CreateUser fails only with failUsers: with refresh on, a signup that
// wrote the user and then failed to write its session would leave the
// user behind, which the tests catch.
func (s *writeStore) CreateUser(ctx context.Context, r store.Realm, u *store.User) error {
	s.users.Add(1)
	if s.failUsers {
		return errDiskFull
	}
	return s.Store.CreateUser(ctx, r, u)
}

func (s *writeStore) CreateSession(ctx context.Context, sess *store.Session, rt *store.RefreshToken) error {
	s.sessions.Add(1)
	if s.failSessions {
		return errDiskFull
	}
	return s.Store.CreateSession(ctx, sess, rt)
}

func (s *writeStore) CreateUserSession(ctx context.Context, r store.Realm, u *store.User, sess *store.Session, rt *store.RefreshToken) error {
	s.userSessions.Add(1)
	if s.failSessions {
		return errDiskFull
	}
	return s.Store.CreateUserSession(ctx, r, u, sess, rt)
}

func (s *writeStore) UpdateUser(ctx context.Context, r store.Realm, id int64, fn func(*store.User) error) error {
	s.updates.Add(1)
	return s.Store.UpdateUser(ctx, r, id, fn)
}

// counts returns CreateUser, CreateSession, CreateUserSession and
// UpdateUser calls so far.
func (s *writeStore) counts() [4]int64 {
	return [4]int64{s.users.Load(), s.sessions.Load(), s.userSessions.Load(), s.updates.Load()}
}

// TestSignupIsOneWrite: a signup is one transaction (one fsync). With
// refresh on it stores the user and the session, which belongs to the new
// user; with refresh off only the user, the session living in its token.
// Either way the tokens work.
func TestSignupIsOneWrite(t *testing.T) {
	for _, refresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("refresh=%v", refresh), func(t *testing.T) {
			f := newFixture(t)
			want := [4]int64{1, 0, 0, 0}
			if refresh {
				f = refreshFixture(t)
				want = [4]int64{0, 0, 1, 0}
			}
			ws := &writeStore{Store: f.store}
			f.svc.Store = ws
			resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "one@example.com", "password": "secret123"}))
			if resp.Status != 200 {
				t.Fatalf("signup: %d %s", resp.Status, resp.Body)
			}
			if got := ws.counts(); got != want {
				t.Fatalf("signup wrote CreateUser, CreateSession, CreateUserSession, UpdateUser %v times; want %v", got, want)
			}
			body := resp.json(t)
			access := body["authToken"].(string)
			c, err := f.svc.Keys().Verify(access, f.clock, 0)
			if err != nil {
				t.Fatal(err)
			}
			u, uerr := f.store.UserByEmail(context.Background(), store.Realm{DataSource: "live", Table: "user"}, "one@example.com")
			if uerr != nil || c.ID != u.ID {
				t.Fatalf("user %+v (%v), token claims %+v", u, uerr, c)
			}
			sess, err := f.store.SessionBySID(context.Background(), c.SID)
			if !refresh {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("session stored with refresh off: %+v, %v", sess, err)
				}
			} else if err != nil || sess.UserID != u.ID || sess.AccessExp != c.Expiry {
				t.Fatalf("session %+v (%v) of user %+v, token claims %+v", sess, err, u, c)
			}
			if got := f.me(t, access); got != 200 {
				t.Fatalf("auth/me with the signup's token: %d", got)
			}
			if refresh {
				if resp := f.refresh(t, body["refreshToken"].(string)); resp.Status != 200 {
					t.Fatalf("refresh with the signup's refresh token: %d %s", resp.Status, resp.Body)
				}
			}
		})
	}
}

// TestLoginWritesNothingWithoutRefresh: a login costs its password hash
// and, with refresh off, no write at all; with refresh on it stores its
// session (the refresh token has to be found again).
func TestLoginWritesNothingWithoutRefresh(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		t.Run(fmt.Sprintf("refresh=%v", refresh), func(t *testing.T) {
			f := newFixture(t)
			want := [4]int64{}
			if refresh {
				f = refreshFixture(t)
				want = [4]int64{0, 1, 0, 0}
			}
			f.signup(t, "quiet@example.com", "secret123")
			ws := &writeStore{Store: f.store}
			f.svc.Store = ws
			access, _ := f.login(t, "quiet@example.com", "secret123")
			if got := ws.counts(); got != want {
				t.Fatalf("login wrote CreateUser, CreateSession, CreateUserSession, UpdateUser %v times; want %v", got, want)
			}
			if f.me(t, access) != 200 || f.guarded(t, access) != http.StatusTeapot {
				t.Fatal("the login's token is refused")
			}
		})
	}
}

// TestSignupWriteFailureLeavesNoUser: when the store cannot write, the
// client gets Xano's 500 envelope (no internals) and the email stays free,
// so retrying the signup later works.
func TestSignupWriteFailureLeavesNoUser(t *testing.T) {
	for _, refresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("refresh=%v", refresh), func(t *testing.T) {
			f := newFixture(t)
			ws := &writeStore{Store: f.store, failUsers: true}
			if refresh {
				f = refreshFixture(t)
				ws = &writeStore{Store: f.store, failSessions: true}
			}
			f.svc.Store = ws
			req := func() response {
				resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "retry@example.com", "password": "secret123"}))
				return resp
			}
			resp := req()
			if resp.Status != 500 || strings.Contains(string(resp.Body), "disk") {
				t.Fatalf("failed write: %d %s", resp.Status, resp.Body)
			}
			if _, err := f.store.UserByEmail(context.Background(), store.Realm{DataSource: "live", Table: "user"}, "retry@example.com"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a failed signup left its user behind: %v", err)
			}
			ws.failSessions, ws.failUsers = false, false
			if resp := req(); resp.Status != 200 {
				t.Fatalf("retried signup: %d %s", resp.Status, resp.Body)
			}
		})
	}
}

// TestRevokeWithoutRefresh: sessions with refresh off are not stored, and
// still end: one by logout, all by logout everywhere and by a password
// change (which spares the session that made it). A login in the same
// second as the cutoff (the fixture's clock stands still) is not born
// revoked.
func TestRevokeWithoutRefresh(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "nr@example.com", "secret123")
	f.signup(t, "bystander@example.com", "secret123")
	bystander, _ := f.login(t, "bystander@example.com", "secret123")
	a1, _ := f.login(t, "nr@example.com", "secret123")
	a2, _ := f.login(t, "nr@example.com", "secret123")
	post := func(path string, body map[string]any, tok string) response {
		t.Helper()
		r := jsonReq("POST", path, body)
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := serve(t, f.auth("user"), r)
		if resp.Status != 200 {
			t.Fatalf("%s: %d %s", path, resp.Status, resp.Body)
		}
		return resp
	}
	status := func(tok string) int { // the guard passes with next's 418
		me, g := f.me(t, tok), f.guarded(t, tok)
		if g == http.StatusTeapot {
			g = 200
		}
		if me != g {
			t.Fatalf("auth/me says %d, the guard %d", me, g)
		}
		return me
	}

	post("/api:x/auth/logout", map[string]any{}, a1)
	if status(a1) != 401 || status(a2) != 200 {
		t.Fatal("logout of one unstored session")
	}

	a3, _ := f.login(t, "nr@example.com", "secret123")
	post("/api:x/auth/logout", map[string]any{"all": true}, a3)
	if status(a2) != 401 || status(a3) != 401 || status(bystander) != 200 {
		t.Fatal("logout everywhere")
	}
	a4, _ := f.login(t, "nr@example.com", "secret123")
	if status(a4) != 200 {
		t.Fatal("a login in the second of a logout everywhere was born revoked")
	}

	a5, _ := f.login(t, "nr@example.com", "secret123")
	post("/api:x/auth/password", map[string]any{"old_password": "secret123", "new_password": "newsecret1"}, a4)
	if status(a4) != 200 || status(a5) != 401 {
		t.Fatal("password change: the changing session must survive, the other not")
	}
	a6, _ := f.login(t, "nr@example.com", "newsecret1")
	if status(a6) != 200 || status(bystander) != 200 {
		t.Fatal("a login after the password change, or another user, was revoked")
	}
	f.clock = f.clock.Add(time.Hour)
	if status(a4) != 401 || status(a6) != 401 {
		t.Fatal("tokens outlived their exp")
	}
}

// TestCutoffOutlivesShortenedTokenTTL: a token minted under a longer
// token_ttl keeps its exp; a logout everywhere after the lifetime was
// shortened must be remembered until then, not for the new lifetime.
func TestCutoffOutlivesShortenedTokenTTL(t *testing.T) {
	f := newFixture(t)
	tbl := f.svc.Tables["user"]
	tbl.TokenTTL = 48 * time.Hour
	f.signup(t, "long@example.com", "secret123")
	long, _ := f.login(t, "long@example.com", "secret123")
	tbl.TokenTTL, tbl.LongestTokenTTL = time.Hour, 48*time.Hour
	short, _ := f.login(t, "long@example.com", "secret123")
	r := jsonReq("POST", "/api:x/auth/logout", map[string]any{"all": true})
	r.Header.Set("Authorization", "Bearer "+short)
	if resp, _ := serve(t, f.auth("user"), r); resp.Status != 200 {
		t.Fatalf("logout everywhere: %d %s", resp.Status, resp.Body)
	}
	f.clock = f.clock.Add(2 * time.Hour)
	if _, err := f.store.Prune(context.Background(), f.clock); err != nil {
		t.Fatal(err)
	}
	if got := f.me(t, long); got != 401 {
		t.Fatalf("a token of the longer lifetime came back after the cutoff was pruned: %d", got)
	}
}

// TestLogoutWithDeadAccessToken: an expired or revoked access token does
// not stop a logout. The refresh token sent beside it still ends its
// session, and a dead session cookie is cleared even though the answer is
// the token's 401.
func TestLogoutWithDeadAccessToken(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "late@example.com", "secret123")
	access, rt := f.login(t, "late@example.com", "secret123")
	f.clock = f.clock.Add(time.Hour + time.Second) // access expired, refresh alive
	req := jsonReq("POST", "/api:x/auth/logout", map[string]any{"refreshToken": rt})
	req.Header.Set("Authorization", "Bearer "+access)
	if resp, _ := serve(t, f.auth("user"), req); resp.Status != 200 {
		t.Fatalf("logout with an expired access token and a live refresh token: %d %s", resp.Status, resp.Body)
	}
	wantError(t, f.refresh(t, rt), 401, CodeUnauthorized, MsgInvalidRefresh, "")

	// A cookie session revoked elsewhere: its logout clears the cookie.
	a := f.auth("user")
	a.Browser = &Browser{}
	resp, _ := serve(t, a, jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "late@example.com", "password": "secret123"}))
	session := cookiesOf(resp)[DefaultCookieName]
	if session == nil {
		t.Fatal("login set no session cookie")
	}
	other, _ := f.login(t, "late@example.com", "secret123")
	r := jsonReq("POST", "/api:x/auth/logout", map[string]any{"all": true})
	r.Header.Set("Authorization", "Bearer "+other)
	if resp, _ := serve(t, a, r); resp.Status != 200 {
		t.Fatalf("logout everywhere: %d %s", resp.Status, resp.Body)
	}
	r = jsonReq("POST", "/api:x/auth/logout", map[string]any{})
	r.AddCookie(session)
	resp, _ = serve(t, a, r)
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("logout with a revoked cookie: %d %s, want 401", resp.Status, resp.Body)
	}
	if c := cookiesOf(resp)[DefaultCookieName]; c == nil || c.MaxAge >= 0 {
		t.Errorf("dead session cookie not cleared: Set-Cookie %q", resp.Header.Values("Set-Cookie"))
	}
}

// TestLogoutRefreshTokenOfOtherDataSource: logout refuses a refresh token
// of another data source as /auth/refresh does (MsgOtherDataSource).
func TestLogoutRefreshTokenOfOtherDataSource(t *testing.T) {
	f := refreshFixture(t)
	// user in data source "test"
	su := jsonReq("POST", "/api:x/auth/signup", map[string]any{"email": "ds@example.com", "password": "secret123"})
	su.Header.Set("X-Data-Source", "test")
	resp, _ := serve(t, f.auth("user"), su)
	if resp.Status != 200 {
		t.Fatalf("signup: %d %s", resp.Status, resp.Body)
	}
	access := resp.json(t)["authToken"].(string)
	rt := resp.json(t)["refreshToken"].(string)

	// refresh at live: refused as another data source
	resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
	wantError(t, resp, 401, CodeUnauthorized, MsgOtherDataSource, "")

	// logout at live (no X-Data-Source) with only that refresh token
	resp, _ = serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/logout", map[string]any{"refreshToken": rt}))
	wantError(t, resp, 401, CodeUnauthorized, MsgOtherDataSource, "")
	r := httptest.NewRequest("GET", "/api:x/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+access)
	r.Header.Set("X-Data-Source", "test")
	if me, _ := serve(t, f.auth("user"), r); me.Status != 200 {
		t.Fatalf("the test session after a refused logout at live: %d", me.Status)
	}
	// at its own data source it works
	out := jsonReq("POST", "/api:x/auth/logout", map[string]any{"refreshToken": rt})
	out.Header.Set("X-Data-Source", "test")
	if resp, _ := serve(t, f.auth("user"), out); resp.Status != 200 {
		t.Fatalf("logout at test: %d %s", resp.Status, resp.Body)
	}
}

// TestRefreshReuseAfterExpiry: each refresh extends the session, so it
// outlives its first refresh token; a spent one presented after its own
// expiry is a reuse all the same and ends the session.
func TestRefreshReuseAfterExpiry(t *testing.T) {
	f := refreshFixture(t)
	f.svc.Tables["user"].RefreshTTL = time.Hour
	f.signup(t, "exp2@example.com", "secret123")
	_, rt0 := f.login(t, "exp2@example.com", "secret123")
	// "attacker" refreshes with rt0, and keeps refreshing
	f.clock = f.clock.Add(time.Minute)
	r := f.refresh(t, rt0)
	rt := r.json(t)["refreshToken"].(string)
	for i := 0; i < 3; i++ {
		f.clock = f.clock.Add(40 * time.Minute)
		r = f.refresh(t, rt)
		if r.Status != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.Status, r.Body)
		}
		rt = r.json(t)["refreshToken"].(string)
	}
	access := r.json(t)["authToken"].(string)
	// the victim comes back with the spent rt0 (now also expired)
	wantError(t, f.refresh(t, rt0), 401, CodeUnauthorized, MsgInvalidRefresh, "")
	if f.me(t, access) == 200 {
		t.Fatalf("reuse of a spent (expired) refresh token left the family alive")
	}
}

// TestGraceRefreshSetsCookie: a refresh answered from the grace window
// sets the session cookie as the first answer did (its answer may never
// have reached the browser).
func TestGraceRefreshSetsCookie(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ck@example.com", "secret123")
	_, rt := f.login(t, "ck@example.com", "secret123")
	a := f.browserAuth(SessionCookie{}, nil)
	r1, _ := serve(t, a, jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
	if r1.Status != 200 || cookiesOf(r1)["xano_auth"] == nil {
		t.Fatalf("first refresh: %d cookies %v", r1.Status, r1.Header["Set-Cookie"])
	}
	r2, _ := serve(t, a, jsonReq("POST", "/api:x/auth/refresh", map[string]any{"refreshToken": rt}))
	if r2.Status != 200 {
		t.Fatalf("grace refresh: %d %s", r2.Status, r2.Body)
	}
	if cookiesOf(r2)["xano_auth"] == nil {
		t.Fatalf("grace refresh answered the pair but set no session cookie: %v", r2.Header)
	}
}
