// Package store persists xanoauth's users and metadata (signing keys and
// the like). Store is the interface the auth handlers program against;
// Bolt is the embedded bbolt implementation. Keeping the interface narrow
// lets another backend (e.g. PostgreSQL) slot in without touching the
// handlers, and this package deliberately imports nothing from Caddy or the
// rest of the module so the dependency only ever points handlers → store.
package store

import (
	"context"
	"errors"
)

// Realm is one user namespace: (data source, table). Users of different
// realms never see each other: ids, emails and counts are all per realm,
// mirroring how Xano keeps one user table per data source.
type Realm struct{ DataSource, Table string }

// User is one record.
type User struct {
	// ID is sequential per realm, starting at 1; CreateUser assigns it
	// (any value set by the caller is ignored).
	ID int64
	// CreatedAt is in ms since the epoch; CreateUser sets it when zero.
	CreatedAt int64
	// Email is already normalised by the caller (trimmed, lower-cased);
	// the store compares it byte for byte and keeps it unique per realm.
	Email string
	// Fields holds every other field (name, declared fields, extras).
	// Values must be JSON-compatible. Users read back from the store have
	// a non-nil map whose numbers are json.Number (not float64), so large
	// integers survive exactly.
	Fields map[string]any
	// PasswordHash never leaves the store except to the password
	// verifier; it is never put into an error message.
	PasswordHash string
}

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound means the requested user does not exist in the realm.
	ErrNotFound = errors.New("not found")
	// ErrEmailTaken means a user with that email already exists in the
	// realm; CreateUser returns it unwrapped.
	ErrEmailTaken = errors.New("email already in use")
	// ErrLocked means another process holds the database file's exclusive
	// lock, typically a second Caddy started instead of `caddy reload`.
	ErrLocked = errors.New("database is locked by another process")
)

// Store is the persistence the auth handlers need. Implementations are safe
// for concurrent use.
type Store interface {
	// CreateUser inserts u, enforcing email uniqueness inside the same
	// write transaction. On success u.ID (and u.CreatedAt if it was 0) are
	// set and the write is durable (fsynced) before it returns; on failure
	// u is left unchanged. ErrEmailTaken if the email exists in the realm.
	CreateUser(ctx context.Context, realm Realm, u *User) error
	// UserByEmail returns the user with that (normalised) email, or
	// ErrNotFound.
	UserByEmail(ctx context.Context, realm Realm, email string) (*User, error)
	// UserByID returns the user with that id, or ErrNotFound.
	UserByID(ctx context.Context, realm Realm, id int64) (*User, error)
	// UpdateUser applies fn to the stored user inside one write
	// transaction and saves the result, so read-modify-write cycles (e.g.
	// rehashing a password) cannot lose concurrent updates. fn must not
	// change ID or Email (an error is returned and nothing is saved if it
	// did); an error from fn aborts the update and is returned unchanged.
	// ErrNotFound if absent.
	UpdateUser(ctx context.Context, realm Realm, id int64, fn func(*User) error) error
	// MetaGet returns the value stored under name, or nil if absent.
	MetaGet(ctx context.Context, name string) ([]byte, error)
	// MetaGetOrInit returns the value stored under name; if absent it
	// stores and returns init()'s value, atomically (one write
	// transaction), so concurrent callers — even across a reload — all
	// get the same value. An error from init is returned and nothing is
	// stored.
	MetaGetOrInit(ctx context.Context, name string, init func() ([]byte, error)) ([]byte, error)
	// MetaPut overwrites a meta value.
	MetaPut(ctx context.Context, name string, value []byte) error
	// MetaUpdate replaces the value under name with fn(old) atomically
	// (old is nil when absent).
	MetaUpdate(ctx context.Context, name string, fn func(old []byte) ([]byte, error)) ([]byte, error)
	// CountUsers returns the number of users in realm.
	CountUsers(ctx context.Context, realm Realm) (int, error)
	// Close releases the store (and, for Bolt, its file lock).
	Close() error

	Sessions
}
