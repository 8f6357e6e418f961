package handlers

import (
	"context"
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/xanoauth/caddy-xanoauth/store"
)

// hookStore runs a test's function at one precise point of a request, so
// that a race between two requests can be played in a chosen order. Each
// hook runs once.
type hookStore struct {
	*store.Bolt
	afterUserByEmail func()
	afterUserByID    func()
	beforeUpdateUser func()
}

func once(fn *func()) {
	if f := *fn; f != nil {
		*fn = nil
		f()
	}
}

func (h *hookStore) UserByEmail(ctx context.Context, r store.Realm, email string) (*store.User, error) {
	u, err := h.Bolt.UserByEmail(ctx, r, email)
	once(&h.afterUserByEmail)
	return u, err
}

func (h *hookStore) UserByID(ctx context.Context, r store.Realm, id int64) (*store.User, error) {
	u, err := h.Bolt.UserByID(ctx, r, id)
	once(&h.afterUserByID)
	return u, err
}

func (h *hookStore) UpdateUser(ctx context.Context, r store.Realm, id int64, fn func(*store.User) error) error {
	once(&h.beforeUpdateUser)
	return h.Bolt.UpdateUser(ctx, r, id, fn)
}

func hooked(f *fixture) *hookStore {
	hs := &hookStore{Bolt: f.store}
	f.svc.Store = hs
	return hs
}

func (f *fixture) changePassword(t *testing.T, access, oldPw, newPw string) response {
	t.Helper()
	r := jsonReq("POST", "/api:x/auth/password", map[string]any{"old_password": oldPw, "new_password": newPw})
	r.Header.Set("Authorization", "Bearer "+access)
	resp, _ := serve(t, f.auth("user"), r)
	return resp
}

func (f *fixture) loginStatus(t *testing.T, email, pw string) int {
	t.Helper()
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": email, "password": pw}))
	return resp.Status
}

// racingChange signs up email (password oldpass123) on a hooked refresh
// fixture, logs its owner in, and returns the owner's token and a function
// that changes the password to newpass456 as the owner, for a hook to run
// in the middle of another request.
func racingChange(t *testing.T, email string) (f *fixture, hs *hookStore, owner string, change func()) {
	t.Helper()
	f = refreshFixture(t)
	hs = hooked(f)
	f.signup(t, email, "oldpass123")
	owner, _ = f.login(t, email, "oldpass123")
	change = func() {
		if resp := f.changePassword(t, owner, "oldpass123", "newpass456"); resp.Status != 200 {
			t.Fatalf("change: %d %s", resp.Status, resp.Body)
		}
	}
	return f, hs, owner, change
}

// A login that checked the old password while the owner changed it gets
// nothing that outlives the change, whichever way the two interleave.
func TestLoginRacingPasswordChange(t *testing.T) {
	t.Run("change commits before the login re-reads", func(t *testing.T) {
		f, hs, _, change := racingChange(t, "v@example.com")
		hs.afterUserByEmail = change
		resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "v@example.com", "password": "oldpass123"}))
		wantError(t, resp, http.StatusForbidden, "ERROR_CODE_ACCESS_DENIED", MsgInvalidCredentials, "")
		// The refused login stored its session after the change's cutoff
		// had listed the user's: it must have ended it itself, so a
		// logout everywhere now finds the owner's session alone.
		if n, err := f.svc.RevokeUser(context.Background(), f.svc.Tables["user"], "live", 1, ""); err != nil || n != 1 {
			t.Errorf("stored sessions still live after the refused login: %d %v; want 1 (the owner's)", n, err)
		}
	})
	t.Run("change commits after the login re-read", func(t *testing.T) {
		f, hs, owner, change := racingChange(t, "w@example.com")
		hs.afterUserByID = change
		access, rt := f.login(t, "w@example.com", "oldpass123") // checked in time
		if got := f.me(t, access); got != http.StatusUnauthorized {
			t.Errorf("its access token after the change: %d, want 401", got)
		}
		if resp := f.refresh(t, rt); resp.Status == http.StatusOK {
			t.Errorf("its refresh token after the change: %d %s", resp.Status, resp.Body)
		}
		if got := f.me(t, owner); got != http.StatusOK {
			t.Errorf("the changing session: %d, want 200", got)
		}
	})
}

// A hash upgrade (bcrypt → argon2id) at login never writes the password it
// checked over one that was changed meanwhile.
func TestHashUpgradeKeepsConcurrentPasswordChange(t *testing.T) {
	f := newFixture(t)
	hs := hooked(f)
	ctx := context.Background()
	realm := store.Realm{DataSource: "live", Table: "user"}
	h, err := bcrypt.GenerateFromPassword([]byte("oldpass123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "imp@example.com", Fields: map[string]any{"name": "Imp"}, PasswordHash: string(h)}
	if err := f.store.CreateUser(ctx, realm, u); err != nil {
		t.Fatal(err)
	}
	owner, _, err := f.svc.mintAccess(f.svc.Tables["user"], "live", u, "owner", f.clock, f.svc.accessIAT(realm, u.ID, f.clock))
	if err != nil {
		t.Fatal(err)
	}
	hs.beforeUpdateUser = func() { // the upgrade's write
		if resp := f.changePassword(t, owner, "oldpass123", "newpass456"); resp.Status != 200 {
			t.Fatalf("change: %d %s", resp.Status, resp.Body)
		}
	}
	if got := f.loginStatus(t, "imp@example.com", "oldpass123"); got != http.StatusForbidden {
		t.Errorf("login that checked the old password: %d, want 403", got)
	}
	if got := f.loginStatus(t, "imp@example.com", "newpass456"); got != http.StatusOK {
		t.Errorf("new password: %d, want 200 (the change was undone)", got)
	}
	if got := f.loginStatus(t, "imp@example.com", "oldpass123"); got != http.StatusForbidden {
		t.Errorf("old password: %d, want 403", got)
	}
}

// A password change that checked the old password while an administrator
// reset it is refused: the reset stands, and so does its logout.
func TestPasswordChangeRacingAdminReset(t *testing.T) {
	f := newFixture(t)
	hs := hooked(f)
	f.signup(t, "c@example.com", "oldpass123")
	stolen := func() string { a, _ := f.login(t, "c@example.com", "oldpass123"); return a }()
	f.clock = f.clock.Add(10e9)
	hs.beforeUpdateUser = func() { // the change's write
		if _, err := f.svc.AdminUpsert(context.Background(), "live", "user", "c@example.com", "adminreset1", nil, false); err != nil {
			t.Fatal(err)
		}
	}
	resp := f.changePassword(t, stolen, "oldpass123", "attacker99")
	wantError(t, resp, http.StatusForbidden, "ERROR_CODE_ACCESS_DENIED", MsgInvalidCredentials, "")
	if got := f.me(t, stolen); got != http.StatusUnauthorized {
		t.Errorf("token the reset revoked: %d, want 401", got)
	}
	if got := f.loginStatus(t, "c@example.com", "adminreset1"); got != http.StatusOK {
		t.Errorf("the reset password: %d, want 200", got)
	}
	if got := f.loginStatus(t, "c@example.com", "attacker99"); got != http.StatusForbidden {
		t.Errorf("the racing change's password: %d, want 403", got)
	}
}

// importBcrypt stores a user with a bcrypt hash, as an import from
// elsewhere would: their first login upgrades it to argon2id.
func importBcrypt(t *testing.T, f *fixture, email, pw string) *store.User {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: email, Fields: map[string]any{"name": "Imp"}, PasswordHash: string(h)}
	if err := f.store.CreateUser(context.Background(), store.Realm{DataSource: "live", Table: "user"}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHashUpgradeIsNotAPasswordChange: another login's upgrade of the hash
// changes the hash, not the password, so a login or a password change that
// checked the same password against the old hash goes ahead.
func TestHashUpgradeIsNotAPasswordChange(t *testing.T) {
	t.Run("two logins", func(t *testing.T) {
		f := newFixture(t)
		hs := hooked(f)
		importBcrypt(t, f, "imp@example.com", "oldpass123")
		hs.afterUserByEmail = func() { // the other login runs, and upgrades
			if got := f.loginStatus(t, "imp@example.com", "oldpass123"); got != http.StatusOK {
				t.Errorf("the other login: %d", got)
			}
		}
		if got := f.loginStatus(t, "imp@example.com", "oldpass123"); got != http.StatusOK {
			t.Errorf("login that checked the bcrypt hash: %d, want 200", got)
		}
	})
	t.Run("a login and a password change", func(t *testing.T) {
		f := newFixture(t)
		hs := hooked(f)
		u := importBcrypt(t, f, "imp2@example.com", "oldpass123")
		owner, _, err := f.svc.mintAccess(f.svc.Tables["user"], "live", u, "owner", f.clock, f.clock.Unix())
		if err != nil {
			t.Fatal(err)
		}
		hs.beforeUpdateUser = func() { // the change's write; a login upgrades first
			if got := f.loginStatus(t, "imp2@example.com", "oldpass123"); got != http.StatusOK {
				t.Errorf("login: %d", got)
			}
		}
		if resp := f.changePassword(t, owner, "oldpass123", "newpass456"); resp.Status != http.StatusOK {
			t.Fatalf("change: %d %s, want 200", resp.Status, resp.Body)
		}
		if got := f.loginStatus(t, "imp2@example.com", "newpass456"); got != http.StatusOK {
			t.Errorf("new password: %d, want 200", got)
		}
	})
}
