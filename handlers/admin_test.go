package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xanoauth/caddy-xanoauth/store"
)

func TestAdminUpsert(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// the operator may create users on a closed table and set extras
	u, err := f.svc.AdminUpsert(ctx, "live", "user", " Boss@Example.com", "secret123", map[string]any{"name": "Boss", "role": "admin"}, true)
	if err != nil || u.ID != 1 || u.Email != "boss@example.com" {
		t.Fatalf("create: %+v %v", u, err)
	}
	if _, err := f.svc.AdminUpsert(ctx, "live", "admin", "root@example.com", "secret123", nil, true); err != nil {
		t.Fatalf("closed table: %v", err)
	}
	resp, _ := serve(t, f.auth("user"), jsonReq("POST", "/api:x/auth/login", map[string]any{"email": "boss@example.com", "password": "secret123"}))
	c, err := f.svc.Keys().Verify(resp.json(t)["authToken"].(string), f.clock, 0)
	if err != nil || c.Extras["role"] != "admin" {
		t.Fatalf("extras not in token: %+v %v", c, err)
	}
	// update: demote, keep password, and the sessions
	before, _ := f.login(t, "boss@example.com", "secret123")
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "boss@example.com", "", map[string]any{"role": "member"}, false); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.UserByID(ctx, store.Realm{DataSource: "live", Table: "user"}, 1)
	if got.Fields["role"] != "member" || got.Fields["name"] != "Boss" {
		t.Fatalf("update: %+v", got.Fields)
	}
	if f.me(t, before) != 200 {
		t.Fatal("an update without a password ended the user's sessions")
	}
	f.login(t, "boss@example.com", "secret123")
	// a new password is a reset: every session of the user ends
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "boss@example.com", "resetpass1", nil, false); err != nil {
		t.Fatal(err)
	}
	if f.me(t, before) != 401 {
		t.Fatal("a session survived the operator's password reset")
	}
	after, _ := f.login(t, "boss@example.com", "resetpass1")
	if f.me(t, after) != 200 {
		t.Fatal("a login after the reset was refused")
	}

	var bad *AdminInputError
	for name, call := range map[string]func() error{
		"unknown table": func() error {
			_, err := f.svc.AdminUpsert(ctx, "live", "nope", "a@b.co", "secret123", nil, true)
			return err
		},
		"unknown ds": func() error {
			_, err := f.svc.AdminUpsert(ctx, "prod", "user", "a@b.co", "secret123", nil, true)
			return err
		},
		"bad email": func() error {
			_, err := f.svc.AdminUpsert(ctx, "live", "user", "nope", "secret123", nil, true)
			return err
		},
		"weak password": func() error {
			_, err := f.svc.AdminUpsert(ctx, "live", "user", "a@b.co", "short", nil, true)
			return err
		},
		"undeclared": func() error {
			_, err := f.svc.AdminUpsert(ctx, "live", "user", "a@b.co", "secret123", map[string]any{"x": "1"}, true)
			return err
		},
		"non-text field": func() error {
			_, err := f.svc.AdminUpsert(ctx, "live", "user", "a@b.co", "secret123", map[string]any{"role": 1}, true)
			return err
		},
	} {
		if err := call(); !errors.As(err, &bad) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "boss@example.com", "secret123", nil, true); !errors.Is(err, store.ErrEmailTaken) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "ghost@example.com", "", nil, false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
}

// TestAdminUpsertFieldLimits: the operator's fields meet signup's limits:
// an extra is minted into every token, and one too long would make every
// token of the user too long to verify.
func TestAdminUpsertFieldLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := strings.Repeat("x", MaxFieldLength+1)
	for _, fields := range []map[string]any{
		{"name": long},
		{"role": long},
		{"name": "a\x00b"},
		{"role": "\xff"},
	} {
		_, err := f.svc.AdminUpsert(ctx, "live", "user", "big@example.com", "secret123", fields, true)
		var in *AdminInputError
		if !errors.As(err, &in) {
			t.Errorf("create with %q: %v, want an input error", fields, err)
		}
	}
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "ok@example.com", "secret123", map[string]any{"role": strings.Repeat("é", MaxFieldLength)}, true); err != nil {
		t.Errorf("create with a field at the limit: %v", err)
	}
	if _, err := f.svc.AdminUpsert(ctx, "live", "user", "ok@example.com", "", map[string]any{"role": long}, false); err == nil {
		t.Error("update with a field over the limit accepted")
	}
}
