package handlers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/xanoauth/caddy-xanoauth/store"
)

// slowRevokeStore runs before each RevokeUserSessions what may commit
// while a RevokeUser that has read its clock waits for the bolt write
// lock (a group commit's fsync, another writer).
type slowRevokeStore struct {
	store.Store
	before func()
}

func (s *slowRevokeStore) RevokeUserSessions(ctx context.Context, realm store.Realm, id int64, c store.Cutoff) (int, error) {
	if s.before != nil {
		b := s.before
		s.before = nil
		b()
	}
	return s.Store.RevokeUserSessions(ctx, realm, id, c)
}

// TestLogoutEverywhereRacingRefresh: a refresh that commits in the second
// after the one a log-out-everywhere read as its cutoff mints an access
// token (iat = cutoff+1) of a session the logout then marks revoked. That
// token must not keep working for its whole lifetime.
func TestLogoutEverywhereRacingRefresh(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	access, rt := f.login(t, "ann@example.com", "secret123")
	var racer string
	f.svc.Store = &slowRevokeStore{Store: f.store, before: func() {
		f.clock = f.clock.Add(time.Second)
		resp := f.refresh(t, rt)
		if resp.Status != 200 {
			t.Fatalf("racing refresh: %d %s", resp.Status, resp.Body)
		}
		racer = resp.json(t)["authToken"].(string)
	}}
	f.logout(t, access, map[string]any{"all": "true"})
	if racer == "" {
		t.Fatal("no racing refresh")
	}
	if f.me(t, access) != http.StatusUnauthorized {
		t.Fatal("logged-out token still works")
	}
	if got := f.me(t, racer); got != http.StatusUnauthorized {
		t.Errorf("access token of a session logged out everywhere: /auth/me %d", got)
	}
	f.clock = f.clock.Add(30 * time.Minute)
	if got := f.guarded(t, racer); got != http.StatusUnauthorized {
		t.Errorf("30 minutes on, the guard still lets it in: %d", got)
	}
}

// TestStoredSessionBoundDropsLiveBeforeRevoked: logged-out sessions stay
// stored until their access token has expired, and count towards
// store.MaxUserSessions; past the bound, the logged-out ones go first, not
// the user's one live session (their long-lived device, refreshing all
// along).
func TestStoredSessionBoundDropsLiveBeforeRevoked(t *testing.T) {
	f := refreshFixture(t)
	f.logout(t, f.signup(t, "ann@example.com", "secret123"), map[string]any{})
	f.clock = f.clock.Add(time.Second)
	_, mainRT := f.login(t, "ann@example.com", "secret123")
	f.clock = f.clock.Add(time.Second)
	for range store.MaxUserSessions - 2 {
		access, _ := f.login(t, "ann@example.com", "secret123")
		f.logout(t, access, map[string]any{})
	}
	keep, _ := f.login(t, "ann@example.com", "secret123")
	f.login(t, "ann@example.com", "secret123")
	if f.me(t, keep) != 200 {
		t.Fatal("folded into a log-out-everywhere: the test is wrong")
	}
	if resp := f.refresh(t, mainRT); resp.Status != 200 {
		t.Errorf("the live session's refresh token: %d %s (99 logged-out sessions were there to drop instead)", resp.Status, resp.Body)
	}
}

// TestPasswordChangeRacingRefresh: the same race on a password change: a
// thief's session refreshing while the owner changes the password keeps a
// working access token of the session the change revoked.
func TestPasswordChangeRacingRefresh(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	owner, _ := f.login(t, "ann@example.com", "secret123")
	_, thiefRT := f.login(t, "ann@example.com", "secret123")
	var thief string
	f.svc.Store = &slowRevokeStore{Store: f.store, before: func() {
		f.clock = f.clock.Add(time.Second)
		resp := f.refresh(t, thiefRT)
		if resp.Status != 200 {
			t.Fatalf("racing refresh: %d %s", resp.Status, resp.Body)
		}
		thief = resp.json(t)["authToken"].(string)
	}}
	if resp := f.changePassword(t, owner, "secret123", "newpass456"); resp.Status != 200 {
		t.Fatalf("password change: %d %s", resp.Status, resp.Body)
	}
	if got := f.me(t, thief); got != http.StatusUnauthorized {
		t.Errorf("thief's access token after the password change revoked its session: %d", got)
	}
}
