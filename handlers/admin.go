package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xanoauth/caddy-xanoauth/store"
)

// AdminInputError is an operator request that cannot be carried out as
// given.
type AdminInputError struct{ Msg string }

func (e *AdminInputError) Error() string { return e.Msg }

// AdminUpsert creates (create=true) or updates a user on behalf of the
// operator. Unlike signup it may set extras and works on closed tables;
// the password policy and the field limits still apply. On update, an
// empty password keeps the current one, and a new one logs the user out
// everywhere.
func (s *Service) AdminUpsert(ctx context.Context, ds, table, rawEmail, pw string, fields map[string]any, create bool) (*store.User, error) {
	t, ok := s.Tables[table]
	if !ok {
		return nil, &AdminInputError{fmt.Sprintf("unknown table %q", table)}
	}
	if !slices.Contains(s.DataSources, ds) {
		return nil, &AdminInputError{fmt.Sprintf("unknown data source %q", ds)}
	}
	email, e := normalizeEmail(rawEmail)
	if e != nil {
		return nil, &AdminInputError{"email: " + e.Message}
	}
	for k, v := range fields {
		if !slices.Contains(t.Fields, k) && !slices.Contains(t.Extras, k) {
			return nil, &AdminInputError{fmt.Sprintf("field %q is not declared for table %q", k, table)}
		}
		text, isText := v.(string)
		if !isText {
			return nil, &AdminInputError{fmt.Sprintf("field %q must be text", k)}
		}
		// Signup's limits: an extra is minted into every token, and one
		// too long would make every token of the user too long to verify.
		if !utf8.ValidString(text) || strings.IndexByte(text, 0) >= 0 {
			return nil, &AdminInputError{fmt.Sprintf("field %q must be valid UTF-8 without NUL", k)}
		}
		if utf8.RuneCountInString(text) > MaxFieldLength {
			return nil, &AdminInputError{fmt.Sprintf("field %q exceeds the maximum length of %d characters", k, MaxFieldLength)}
		}
	}
	var hash string
	if pw != "" || create {
		if err := t.Policy.Check(pw); err != nil {
			return nil, &AdminInputError{"password: " + err.Error()}
		}
		var err error
		if hash, err = s.Hasher.Hash(ctx, pw); err != nil {
			return nil, err
		}
	}
	realm := store.Realm{DataSource: ds, Table: table}
	if create {
		all := make(map[string]any, len(t.Defaults)+len(fields))
		for k, v := range t.Defaults {
			all[k] = v
		}
		for k, v := range fields {
			all[k] = v
		}
		u := &store.User{Email: email, Fields: all, PasswordHash: hash}
		if err := s.Store.CreateUser(ctx, realm, u); err != nil {
			return nil, err
		}
		return u, nil
	}
	u, err := s.Store.UserByEmail(ctx, realm, email)
	if err != nil {
		return nil, err
	}
	err = s.Store.UpdateUser(ctx, realm, u.ID, func(su *store.User) error {
		for k, v := range fields {
			su.Fields[k] = v
		}
		if hash != "" {
			su.PasswordHash = hash
		}
		u = su
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A password the operator sets is a reset: whoever held the old one
	// (often the reason for the reset) must not keep its sessions.
	if hash != "" {
		if _, err := s.RevokeUser(ctx, t, ds, u.ID, ""); err != nil {
			return nil, fmt.Errorf("password saved, but revoking the user's sessions failed: %w", err)
		}
	}
	return u, nil
}
