package handlers

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func (f *fixture) logout(t *testing.T, access string, body map[string]any) {
	t.Helper()
	r := jsonReq("POST", "/api:x/auth/logout", body)
	if access != "" {
		r.Header.Set("Authorization", "Bearer "+access)
	}
	resp, _ := serve(t, f.auth("user"), r)
	if resp.Status != 200 || string(resp.Body) != "{}" {
		t.Fatalf("logout: %d %s", resp.Status, resp.Body)
	}
}

func (f *fixture) revokedCount(t *testing.T) int {
	t.Helper()
	n, err := f.store.RevokedCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLoginLogoutLoopFoldsRevocations: one user logging in and out in a
// loop leaves at most MaxSessionRevocations sid records per token
// lifetime. Past that, a logout logs the user out everywhere (one merged
// cutoff, however often): every earlier token is revoked, the user can
// log in again, and once the window has passed logouts are single again.
func TestLoginLogoutLoopFoldsRevocations(t *testing.T) {
	f := newFixture(t) // refresh off: a logout's sid record is all it stores
	other := f.signup(t, "ann@example.com", "secret123")
	var unlogged string // a token of the last cycle before the fold, never logged out
	for i := range MaxSessionRevocations + 50 {
		if i == MaxSessionRevocations {
			unlogged, _ = f.login(t, "ann@example.com", "secret123")
		}
		tok, _ := f.login(t, "ann@example.com", "secret123")
		f.logout(t, tok, map[string]any{})
		if f.me(t, tok) != http.StatusUnauthorized {
			t.Fatalf("cycle %d: logged-out token still works", i)
		}
		if n := f.revokedCount(t); n > MaxSessionRevocations {
			t.Fatalf("cycle %d: %d revoked-sid records, want at most %d", i, n, MaxSessionRevocations)
		}
		if i == MaxSessionRevocations-1 {
			if f.me(t, other) != 200 {
				t.Fatal("another session was logged out before the limit")
			}
			if n := f.revokedCount(t); n != MaxSessionRevocations {
				t.Fatalf("%d records after %d single logouts", n, MaxSessionRevocations)
			}
		}
	}
	for name, tok := range map[string]string{"signup": other, "last before the fold": unlogged} {
		if f.me(t, tok) != http.StatusUnauthorized || f.guarded(t, tok) != http.StatusUnauthorized {
			t.Fatalf("%s token survived the fold", name)
		}
	}
	fresh, _ := f.login(t, "ann@example.com", "secret123")
	if f.me(t, fresh) != 200 {
		t.Fatal("login after the fold does not work")
	}

	// A token lifetime (and a slot) later the counts have gone, and so
	// have the records once pruned: a logout ends its session only.
	f.clock = f.clock.Add(time.Hour + time.Hour/8 + time.Second)
	if _, err := f.store.Prune(context.Background(), f.clock); err != nil {
		t.Fatal(err)
	}
	keep, _ := f.login(t, "ann@example.com", "secret123")
	tok, _ := f.login(t, "ann@example.com", "secret123")
	f.logout(t, tok, map[string]any{})
	if f.me(t, keep) != 200 || f.me(t, tok) != http.StatusUnauthorized {
		t.Fatal("after the window a logout still logs out everywhere")
	}
	if n := f.revokedCount(t); n != 1 {
		t.Fatalf("%d records after the window and one logout, want 1", n)
	}
}

// TestRefreshLogoutsCountOnce: with refresh on, logouts by refresh token
// count towards the fold too, a session logged out with both its tokens
// counts once, and a replayed refresh token of a session logged out
// already counts nothing (whoever kept a dead one must not be able to
// log the user out everywhere).
func TestRefreshLogoutsCountOnce(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	other, _ := f.login(t, "ann@example.com", "secret123")

	dead := ""
	for i := range MaxSessionRevocations {
		access, rt := f.login(t, "ann@example.com", "secret123")
		switch i % 2 {
		case 0:
			f.logout(t, "", map[string]any{"refreshToken": rt})
		case 1:
			f.logout(t, access, map[string]any{"refreshToken": rt})
		}
		dead = rt
	}
	for range 20 {
		f.logout(t, "", map[string]any{"refreshToken": dead})
	}
	if f.me(t, other) != 200 {
		t.Fatalf("%d distinct logouts and replays folded already", MaxSessionRevocations)
	}
	_, rt := f.login(t, "ann@example.com", "secret123")
	f.logout(t, "", map[string]any{"refreshToken": rt})
	if f.me(t, other) != http.StatusUnauthorized {
		t.Fatal("the logout past the limit did not log out everywhere")
	}
	if resp := f.refresh(t, rt); resp.Status != http.StatusUnauthorized {
		t.Fatalf("refresh token of the folded logout: %d", resp.Status)
	}
}

// TestRefreshOnLoginLogoutLoopBounded: with refresh_ttl on, the fold's
// log-out-everywhere revokes the stored sessions with its cutoff alone,
// so a login+logout loop leaves no more than MaxSessionRevocations
// records (store.MaxUserSessions bounds the stored sessions themselves:
// TestStoredSessionsPerUserBounded).
func TestRefreshOnLoginLogoutLoopBounded(t *testing.T) {
	f := refreshFixture(t)
	f.signup(t, "ann@example.com", "secret123")
	const cycles = 3 * MaxSessionRevocations
	for range cycles {
		access, _ := f.login(t, "ann@example.com", "secret123")
		f.logout(t, access, map[string]any{})
	}
	if n := f.revokedCount(t); n > MaxSessionRevocations {
		t.Errorf("%d login+logout cycles left %d revoked-sid records (bound %d)", cycles, n, MaxSessionRevocations)
	}
}
