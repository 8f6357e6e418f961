package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Layout of the bbolt file:
//
//	meta                          name → raw value (MetaGetOrInit, MetaPut)
//	realm/<ds>/<table>            one bucket per realm, created by its first signup
//	    users                     8-byte big-endian id → JSON record
//	    email                     email → 8-byte big-endian id
//
// Ids come from the users bucket's NextSequence: they start at 1 per realm
// and, being committed with the record, are never handed out twice.
// Big-endian keys keep the users bucket in id order for cursors. The email
// bucket is the uniqueness index; it is only ever written in the same
// transaction as the users bucket, so the two cannot disagree.
//
// <ds> and <table> are written verbatim except that "%" becomes "%25" and
// "/" becomes "%2F", so that ("a/b", "c") and ("a", "b/c") cannot share a
// bucket; ordinary names are unaffected.
//
// A record is the JSON object
//
//	{"id":1,"created_at":1700000000000,"email":"a@b.c","fields":{...},"password_hash":"..."}
//
// and is decoded with json.Decoder.UseNumber, so numbers inside "fields"
// come back as json.Number: integers such as 9007199254740993 would lose
// precision as float64, and the handlers re-emit them as JSON anyway. id
// and created_at are typed int64 fields and are unaffected.
var (
	bucketMeta  = []byte("meta")
	bucketUsers = []byte("users")
	bucketEmail = []byte("email")
)

// defaultLockTimeout is how long OpenBolt waits for the file lock when the
// caller passes <= 0: long enough to ride out an old instance closing
// during a restart, short enough that a misconfigured second Caddy fails
// fast with a readable error instead of hanging.
const defaultLockTimeout = 2 * time.Second

// Bolt is the embedded Store: a single bbolt file that only one process
// can open at a time. Every commit is fsynced (NoSync stays false) because
// losing a freshly created account or a signing key after a crash is worse
// than the latency of a sync; concurrent signups (and logins with refresh
// on, whose sessions are stored) share one commit (groupCommit) to keep
// that cost down.
type Bolt struct {
	db   *bolt.DB
	path string
	// writes group-commits the writes of signups and stored sessions.
	writes *groupCommit
	// revoked mirrors the revoked bucket in memory (sid → unix time after
	// which the entry is useless), so that the guard's per-request check
	// is a map lookup, never a transaction.
	revoked revokedSet
	// cutoffs mirrors the user_cutoffs bucket, for the same reason.
	cutoffs cutoffSet
}

// Interface guard: Bolt must keep satisfying Store.
var _ Store = (*Bolt)(nil)

// record is a user as stored. Fields is pre-encoded so CreateUser can
// marshal (and reject) the caller's map once, outside the write
// transaction, where a failure cannot force a batch to roll back.
type record struct {
	ID           int64           `json:"id"`
	CreatedAt    int64           `json:"created_at"`
	Email        string          `json:"email"`
	Fields       json.RawMessage `json:"fields"`
	PasswordHash string          `json:"password_hash"`
}

// OpenBolt opens the bbolt database at path, creating the file (mode 0600)
// and any missing parent folders (mode 0700) since both hold password
// hashes and signing keys. lockTimeout bounds the wait for bbolt's
// exclusive file lock (<= 0 means 2s); on timeout the error wraps ErrLocked
// and tells the operator which file is held and what to do about it.
func OpenBolt(path string, lockTimeout time.Duration) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("opening database: empty path")
	}
	if lockTimeout <= 0 {
		lockTimeout = defaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating database folder for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening database %s: %w: another process (usually another Caddy instance) holds it; to change the configuration of a running Caddy use `caddy reload` instead of starting a second one", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	// Creating the global buckets up front lets the methods assume they
	// exist.
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketSessions, bucketRefresh, bucketUserSessions, bucketRevoked, bucketUserCutoffs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising database %s: %w", path, err)
	}
	b := &Bolt{db: db, path: path, writes: &groupCommit{db: db}}
	err = b.loadRevoked()
	if err == nil {
		err = b.loadCutoffs()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("loading revocations from %s: %w", path, err)
	}
	return b, nil
}

// Path returns the database file's path, for log messages and for sharing
// one open Bolt between configurations that name the same file.
func (b *Bolt) Path() string { return b.path }

// Close closes the database and releases its file lock so that another
// instance (e.g. the next config after a reload) can open it.
func (b *Bolt) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("closing database %s: %w", b.path, err)
	}
	return nil
}

// nameEscaper makes realm bucket names injective; see the layout comment.
var nameEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// realmKey is the name of realm's top-level bucket.
func realmKey(r Realm) []byte {
	return []byte("realm/" + nameEscaper.Replace(r.DataSource) + "/" + nameEscaper.Replace(r.Table))
}

// idKey encodes id big-endian so keys sort numerically.
func idKey(id int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(id))
	return k
}

// realmDesc names a realm in error messages.
func realmDesc(r Realm) string { return r.DataSource + "/" + r.Table }

// readBuckets returns realm's users and email buckets, or nils when the
// realm has never had a user. It never creates anything, so lookups and
// updates of unknown realms do not leave empty buckets behind.
func readBuckets(tx *bolt.Tx, r Realm) (users, emails *bolt.Bucket) {
	rb := tx.Bucket(realmKey(r))
	if rb == nil {
		return nil, nil
	}
	return rb.Bucket(bucketUsers), rb.Bucket(bucketEmail)
}

// createBuckets returns realm's users and email buckets, creating them as
// needed; tx must be writable.
func createBuckets(tx *bolt.Tx, r Realm) (users, emails *bolt.Bucket, err error) {
	rb, err := tx.CreateBucketIfNotExists(realmKey(r))
	if err != nil {
		return nil, nil, err
	}
	if users, err = rb.CreateBucketIfNotExists(bucketUsers); err != nil {
		return nil, nil, err
	}
	if emails, err = rb.CreateBucketIfNotExists(bucketEmail); err != nil {
		return nil, nil, err
	}
	return users, emails, nil
}

// encodeFields marshals a Fields map, storing nil as {} so every record
// decodes to a non-nil map.
func encodeFields(f map[string]any) (json.RawMessage, error) {
	if f == nil {
		return json.RawMessage("{}"), nil
	}
	data, err := json.Marshal(f)
	if err != nil {
		// The json error names the offending type or value, never the
		// password hash, which is not part of f.
		return nil, fmt.Errorf("encoding fields: %w", err)
	}
	return data, nil
}

// validEmail rejects emails bbolt cannot use as keys, before any write
// transaction starts.
func validEmail(email string) error {
	switch {
	case email == "":
		return errors.New("email is required")
	case len(email) > bolt.MaxKeySize:
		return fmt.Errorf("email is longer than %d bytes", bolt.MaxKeySize)
	}
	return nil
}

// CreateUser implements Store.
//
// It is group-committed (groupCommit): concurrent signups share one fsync
// while each caller still returns only after the commit that contains its
// user. A group may run the function more than once (it rolls the whole
// group back and re-runs a failing write alone), so the
// function only reads its inputs and assigns id afresh on every run; u is
// touched only after success. A duplicate email fails inside the
// transaction, so two racing signups for one email cannot both succeed.
func (b *Bolt) CreateUser(ctx context.Context, realm Realm, u *User) error {
	return b.createUser(ctx, realm, u, nil, nil)
}

// CreateUserSession implements Sessions.
func (b *Bolt) CreateUserSession(ctx context.Context, realm Realm, u *User, s *Session, rt *RefreshToken) error {
	if s == nil || s.SID == "" {
		return errors.New("creating user session: no session id")
	}
	if s.Realm != realm {
		return fmt.Errorf("creating user session: session of %s for a user of %s", realmDesc(s.Realm), realmDesc(realm))
	}
	if rt != nil && rt.SID != s.SID {
		return errors.New("creating user session: refresh token of another session")
	}
	return b.createUser(ctx, realm, u, s, rt)
}

// createUser inserts u and, unless s is nil, its session s with s.UserID
// set to the new id (and rt), in one transaction.
func (b *Bolt) createUser(ctx context.Context, realm Realm, u *User, s *Session, rt *RefreshToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if u == nil {
		return errors.New("creating user: nil user")
	}
	if err := validEmail(u.Email); err != nil {
		return fmt.Errorf("creating user in %s: %w", realmDesc(realm), err)
	}
	fields, err := encodeFields(u.Fields)
	if err != nil {
		return fmt.Errorf("creating user in %s: %w", realmDesc(realm), err)
	}
	createdAt := u.CreatedAt
	if createdAt == 0 {
		createdAt = time.Now().UnixMilli()
	}
	email := []byte(u.Email)

	// Fast path: users are never deleted and emails never change, so an
	// email seen in a read transaction is taken for good. Answering here
	// keeps duplicates out of the group commit, where each failure would
	// roll back and re-run everyone else's writes.
	taken := false
	if err := b.db.View(func(tx *bolt.Tx) error {
		_, emails := readBuckets(tx, realm)
		taken = emails != nil && emails.Get(email) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("creating user in %s: %w", realmDesc(realm), err)
	}
	if taken {
		return ErrEmailTaken
	}

	var id int64
	err = b.writes.update(func(tx *bolt.Tx) error {
		id = 0
		users, emails, err := createBuckets(tx, realm)
		if err != nil {
			return err
		}
		if emails.Get(email) != nil {
			return ErrEmailTaken
		}
		seq, err := users.NextSequence()
		if err != nil {
			return err
		}
		data, err := json.Marshal(record{
			ID:           int64(seq),
			CreatedAt:    createdAt,
			Email:        u.Email,
			Fields:       fields,
			PasswordHash: u.PasswordHash,
		})
		if err != nil {
			return err
		}
		key := idKey(int64(seq))
		if err := users.Put(key, data); err != nil {
			return err
		}
		if err := emails.Put(email, key); err != nil {
			return err
		}
		if s != nil {
			// A copy: the group may run this function again, and s must not
			// change unless the transaction commits.
			sess := *s
			sess.UserID = int64(seq)
			if err := putSession(tx, &sess, rt); err != nil {
				return err
			}
		}
		id = int64(seq)
		return nil
	})
	if errors.Is(err, ErrEmailTaken) {
		return ErrEmailTaken // unwrapped, as documented
	}
	if err != nil {
		return fmt.Errorf("creating user in %s: %w", realmDesc(realm), err)
	}
	u.ID = id
	u.CreatedAt = createdAt
	if s != nil {
		s.UserID = id
	}
	return nil
}

// UserByEmail implements Store.
func (b *Bolt) UserByEmail(ctx context.Context, realm Realm, email string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *User
	err := b.db.View(func(tx *bolt.Tx) error {
		users, emails := readBuckets(tx, realm)
		if users == nil || emails == nil || email == "" {
			return nil
		}
		key := emails.Get([]byte(email))
		if key == nil {
			return nil
		}
		var err error
		u, err = decode(users.Get(key))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading user by email in %s: %w", realmDesc(realm), err)
	}
	if u == nil {
		return nil, ErrNotFound
	}
	return u, nil
}

// UserByID implements Store.
func (b *Bolt) UserByID(ctx context.Context, realm Realm, id int64) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *User
	err := b.db.View(func(tx *bolt.Tx) error {
		users, _ := readBuckets(tx, realm)
		if users == nil {
			return nil
		}
		var err error
		u, err = decode(users.Get(idKey(id)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading user %d in %s: %w", id, realmDesc(realm), err)
	}
	if u == nil {
		return nil, ErrNotFound
	}
	return u, nil
}

// UpdateUser implements Store. It uses db.Update rather than the group
// commit: fn is the caller's code and may not be safe to run twice.
func (b *Bolt) UpdateUser(ctx context.Context, realm Realm, id int64, fn func(*User) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	err := b.db.Update(func(tx *bolt.Tx) error {
		users, _ := readBuckets(tx, realm)
		if users == nil {
			return ErrNotFound
		}
		key := idKey(id)
		u, err := decode(users.Get(key))
		if err != nil {
			return err
		}
		if u == nil {
			return ErrNotFound
		}
		email := u.Email
		if err := fn(u); err != nil {
			fnErr = err
			return err
		}
		if u.ID != id {
			return errors.New("the id cannot be changed")
		}
		if u.Email != email {
			return errors.New("the email cannot be changed")
		}
		fields, err := encodeFields(u.Fields)
		if err != nil {
			return err
		}
		data, err := json.Marshal(record{
			ID:           u.ID,
			CreatedAt:    u.CreatedAt,
			Email:        u.Email,
			Fields:       fields,
			PasswordHash: u.PasswordHash,
		})
		if err != nil {
			return err
		}
		return users.Put(key, data)
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil && err == fnErr:
		return err // the caller's own error, untouched
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	default:
		return fmt.Errorf("updating user %d in %s: %w", id, realmDesc(realm), err)
	}
}

// decode parses a stored record; nil data means no user. Everything is
// copied out of data, which bbolt only guarantees until the transaction
// ends.
func decode(data []byte) (*User, error) {
	if data == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // see the layout comment
	var rec struct {
		ID           int64          `json:"id"`
		CreatedAt    int64          `json:"created_at"`
		Email        string         `json:"email"`
		Fields       map[string]any `json:"fields"`
		PasswordHash string         `json:"password_hash"`
	}
	if err := dec.Decode(&rec); err != nil {
		// encoding/json errors name types, fields and offsets (at most one
		// offending character), so wrapping one cannot leak the hash.
		return nil, fmt.Errorf("decoding user record: %w", err)
	}
	if rec.Fields == nil {
		rec.Fields = map[string]any{}
	}
	return &User{
		ID:           rec.ID,
		CreatedAt:    rec.CreatedAt,
		Email:        rec.Email,
		Fields:       rec.Fields,
		PasswordHash: rec.PasswordHash,
	}, nil
}

// metaGet reports whether name exists in the meta bucket and a copy of its
// value. It uses a cursor rather than Get so that a stored empty value
// still counts as present.
func metaGet(tx *bolt.Tx, name []byte) ([]byte, bool) {
	k, v := tx.Bucket(bucketMeta).Cursor().Seek(name)
	if k == nil || !bytes.Equal(k, name) {
		return nil, false
	}
	return bytes.Clone(v), true
}

// validMetaName rejects names bbolt cannot use as keys.
func validMetaName(name string) error {
	switch {
	case name == "":
		return errors.New("meta name is required")
	case len(name) > bolt.MaxKeySize:
		return fmt.Errorf("meta name is longer than %d bytes", bolt.MaxKeySize)
	}
	return nil
}

// MetaGet implements Store.
func (b *Bolt) MetaGet(ctx context.Context, name string) ([]byte, error) {
	v, _, err := b.metaRead(ctx, name)
	return v, err
}

// metaRead reads the meta value under name in a read transaction, and
// whether it exists (an empty value does).
func (b *Bolt) metaRead(ctx context.Context, name string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := validMetaName(name); err != nil {
		return nil, false, err
	}
	var (
		out   []byte
		found bool
	)
	if err := b.db.View(func(tx *bolt.Tx) error {
		out, found = metaGet(tx, []byte(name))
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("reading meta %q: %w", name, err)
	}
	return out, found, nil
}

// MetaGetOrInit implements Store. A read transaction answers the common
// case (value already there) without taking the writer lock; otherwise the
// check and the insert happen in one write transaction, with init called
// inside it, so init runs at most once per name and every concurrent
// caller sees the winner's value.
func (b *Bolt) MetaGetOrInit(ctx context.Context, name string, init func() ([]byte, error)) ([]byte, error) {
	out, found, err := b.metaRead(ctx, name)
	if err != nil || found {
		return out, err
	}
	key := []byte(name)
	var initErr error
	err = b.db.Update(func(tx *bolt.Tx) error {
		if v, ok := metaGet(tx, key); ok { // another caller got here first
			out = v
			return nil
		}
		v, err := init()
		if err != nil {
			initErr = err
			return err
		}
		out = bytes.Clone(v) // the caller may reuse v; bbolt needs it until commit
		return tx.Bucket(bucketMeta).Put(key, out)
	})
	switch {
	case err == nil:
		return out, nil
	case initErr != nil && err == initErr:
		return nil, err
	default:
		return nil, fmt.Errorf("initialising meta %q: %w", name, err)
	}
}

// MetaPut implements Store.
func (b *Bolt) MetaPut(ctx context.Context, name string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validMetaName(name); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(name), bytes.Clone(value))
	})
	if err != nil {
		return fmt.Errorf("writing meta %q: %w", name, err)
	}
	return nil
}

// CountUsers implements Store. It counts the users bucket's keys (bbolt
// walks the bucket's pages), which stays correct even if deletion is added
// later, unlike reading the id sequence.
func (b *Bolt) CountUsers(ctx context.Context, realm Realm) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := b.db.View(func(tx *bolt.Tx) error {
		if users, _ := readBuckets(tx, realm); users != nil {
			n = users.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting users in %s: %w", realmDesc(realm), err)
	}
	return n, nil
}
