package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	live = Realm{DataSource: "live", Table: "user"}
	test = Realm{DataSource: "test", Table: "user"}
)

// openTemp opens a fresh database in a temp dir and closes it at the end.
func openTemp(t testing.TB) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "auth.db")
	db, err := OpenBolt(path, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func mustCreate(t testing.TB, db *Bolt, r Realm, email string) *User {
	t.Helper()
	u := &User{Email: email, Fields: map[string]any{"name": "N " + email}, PasswordHash: "hash-" + email}
	if err := db.CreateUser(context.Background(), r, u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func TestCreateAndRead(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	before := time.Now().UnixMilli()
	u := &User{Email: "a@example.com", Fields: map[string]any{"name": "Ann"}, PasswordHash: "h1"}
	if err := db.CreateUser(ctx, live, u); err != nil {
		t.Fatal(err)
	}
	if u.ID != 1 {
		t.Errorf("ID = %d, want 1", u.ID)
	}
	if u.CreatedAt < before || u.CreatedAt > time.Now().UnixMilli() {
		t.Errorf("CreatedAt = %d, not set to now", u.CreatedAt)
	}

	check := func(name string, got *User, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != u.ID || got.CreatedAt != u.CreatedAt || got.Email != u.Email || got.PasswordHash != "h1" || got.Fields["name"] != "Ann" {
			t.Errorf("%s = %+v, want %+v", name, got, u)
		}
	}
	got, err := db.UserByEmail(ctx, live, "a@example.com")
	check("UserByEmail", got, err)
	got, err = db.UserByID(ctx, live, u.ID)
	check("UserByID", got, err)

	if _, err := db.UserByEmail(ctx, live, "b@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByEmail(missing) err = %v, want ErrNotFound", err)
	}
	if _, err := db.UserByID(ctx, live, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByID(missing) err = %v, want ErrNotFound", err)
	}
	if _, err := db.UserByID(ctx, Realm{DataSource: "nope", Table: "user"}, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByID(unknown realm) err = %v, want ErrNotFound", err)
	}
	if _, err := db.UserByEmail(ctx, test, "a@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("other realm sees the user: err = %v, want ErrNotFound", err)
	}
}

func TestCreatedAtKeptWhenSet(t *testing.T) {
	db, _ := openTemp(t)
	u := &User{Email: "a@x", CreatedAt: 12345}
	if err := db.CreateUser(context.Background(), live, u); err != nil {
		t.Fatal(err)
	}
	got, err := db.UserByID(context.Background(), live, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != 12345 || u.CreatedAt != 12345 {
		t.Errorf("CreatedAt = %d/%d, want 12345", got.CreatedAt, u.CreatedAt)
	}
	if got.Fields == nil {
		t.Error("nil Fields read back as a nil map; want an empty one")
	}
}

func TestIDsSequentialPerRealm(t *testing.T) {
	db, _ := openTemp(t)
	for i := 1; i <= 3; i++ {
		if u := mustCreate(t, db, live, fmt.Sprintf("l%d@x", i)); u.ID != int64(i) {
			t.Errorf("live user %d got ID %d", i, u.ID)
		}
	}
	for i := 1; i <= 2; i++ {
		if u := mustCreate(t, db, test, fmt.Sprintf("t%d@x", i)); u.ID != int64(i) {
			t.Errorf("test user %d got ID %d", i, u.ID)
		}
	}
	if u := mustCreate(t, db, live, "l4@x"); u.ID != 4 {
		t.Errorf("live user 4 got ID %d", u.ID)
	}
	// A different table in the same data source is its own realm too.
	if u := mustCreate(t, db, Realm{DataSource: "live", Table: "admin"}, "l1@x"); u.ID != 1 {
		t.Errorf("live/admin user got ID %d", u.ID)
	}
	for r, want := range map[Realm]int{live: 4, test: 2, {DataSource: "none", Table: "user"}: 0} {
		n, err := db.CountUsers(context.Background(), r)
		if err != nil || n != want {
			t.Errorf("CountUsers(%v) = %d, %v; want %d", r, n, err, want)
		}
	}
}

func TestRealmNamesDoNotCollide(t *testing.T) {
	db, _ := openTemp(t)
	a := Realm{DataSource: "a/b", Table: "c"}
	b := Realm{DataSource: "a", Table: "b/c"}
	mustCreate(t, db, a, "x@x")
	if _, err := db.UserByEmail(context.Background(), b, "x@x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("realm %v sees a user of %v: %v", b, a, err)
	}
	if u := mustCreate(t, db, b, "x@x"); u.ID != 1 {
		t.Errorf("ID in %v = %d, want 1", b, u.ID)
	}
}

func TestSameEmailInTwoRealms(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	ul := mustCreate(t, db, live, "same@x")
	ut := &User{Email: "same@x", PasswordHash: "other"}
	if err := db.CreateUser(ctx, test, ut); err != nil {
		t.Fatalf("same email in another realm: %v", err)
	}
	gl, err := db.UserByEmail(ctx, live, "same@x")
	if err != nil || gl.PasswordHash != ul.PasswordHash {
		t.Errorf("live user = %+v, %v", gl, err)
	}
	gt, err := db.UserByEmail(ctx, test, "same@x")
	if err != nil || gt.PasswordHash != "other" {
		t.Errorf("test user = %+v, %v", gt, err)
	}
}

func TestDuplicateEmail(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	mustCreate(t, db, live, "dup@x")
	u := &User{Email: "dup@x", PasswordHash: "secret-hash"}
	err := db.CreateUser(ctx, live, u)
	if !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("err = %v, want ErrEmailTaken", err)
	}
	if u.ID != 0 || u.CreatedAt != 0 {
		t.Errorf("failed create modified u: %+v", u)
	}
	if n, _ := db.CountUsers(ctx, live); n != 1 {
		t.Errorf("CountUsers = %d, want 1", n)
	}
	// The next successful signup must not have skipped an id.
	if u := mustCreate(t, db, live, "next@x"); u.ID != 2 {
		t.Errorf("next ID = %d, want 2", u.ID)
	}
}

func TestCreateRejectsEmptyEmail(t *testing.T) {
	db, _ := openTemp(t)
	if err := db.CreateUser(context.Background(), live, &User{}); err == nil {
		t.Fatal("empty email accepted")
	}
}

func TestConcurrentSameEmail(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	const n = 50
	var ok, taken, other atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := db.CreateUser(ctx, live, &User{Email: "race@x", PasswordHash: fmt.Sprint(i)})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrEmailTaken):
				taken.Add(1)
			default:
				other.Add(1)
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || taken.Load() != n-1 || other.Load() != 0 {
		t.Errorf("successes=%d taken=%d other=%d; want 1, %d, 0", ok.Load(), taken.Load(), other.Load(), n-1)
	}
	if c, err := db.CountUsers(ctx, live); err != nil || c != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", c, err)
	}
	if u, err := db.UserByEmail(ctx, live, "race@x"); err != nil || u.ID != 1 {
		t.Errorf("UserByEmail = %+v, %v; want ID 1", u, err)
	}
}

func TestConcurrentDifferentEmails(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	const n = 50
	ids := make([]int64, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			u := &User{Email: fmt.Sprintf("u%d@x", i), Fields: map[string]any{"i": i}}
			if err := db.CreateUser(ctx, live, u); err != nil {
				t.Errorf("CreateUser %d: %v", i, err)
				return
			}
			ids[i] = u.ID
		}()
	}
	close(start)
	wg.Wait()
	sorted := append([]int64(nil), ids...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	for i, id := range sorted {
		if id != int64(i+1) {
			t.Fatalf("sorted ids = %v, want 1..%d", sorted, n)
		}
	}
	// Each id must belong to the user it was reported for.
	for i, id := range ids {
		u, err := db.UserByID(ctx, live, id)
		if err != nil || u.Email != fmt.Sprintf("u%d@x", i) {
			t.Errorf("UserByID(%d) = %+v, %v; want u%d@x", id, u, err, i)
		}
	}
	if c, _ := db.CountUsers(ctx, live); c != n {
		t.Errorf("CountUsers = %d, want %d", c, n)
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	ctx := context.Background()
	db, err := OpenBolt(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, live, "a@x")
	mustCreate(t, db, live, "b@x")
	if err := db.MetaPut(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenBolt(path, 0)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	u, err := db.UserByEmail(ctx, live, "b@x")
	if err != nil || u.ID != 2 || u.PasswordHash != "hash-b@x" || u.Fields["name"] != "N b@x" {
		t.Errorf("after reopen UserByEmail = %+v, %v", u, err)
	}
	v, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return []byte("new"), nil })
	if err != nil || string(v) != "v" {
		t.Errorf("meta after reopen = %q, %v; want v", v, err)
	}
	// The sequence survives too: no id reuse after a restart.
	if u := mustCreate(t, db, live, "c@x"); u.ID != 3 {
		t.Errorf("ID after reopen = %d, want 3", u.ID)
	}
}

func TestUpdateUser(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	u := mustCreate(t, db, live, "a@x")

	err := db.UpdateUser(ctx, live, u.ID, func(s *User) error {
		if s.PasswordHash != "hash-a@x" {
			t.Errorf("fn got hash %q", s.PasswordHash)
		}
		s.PasswordHash = "new-hash"
		s.Fields["name"] = "Renamed"
		s.Fields["extra"] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.UserByID(ctx, live, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != "new-hash" || got.Fields["name"] != "Renamed" || got.Fields["extra"] != true {
		t.Errorf("after update = %+v", got)
	}

	for name, fn := range map[string]func(*User) error{
		"id":    func(s *User) error { s.ID = 99; s.PasswordHash = "bad"; return nil },
		"email": func(s *User) error { s.Email = "b@x"; s.PasswordHash = "bad"; return nil },
	} {
		if err := db.UpdateUser(ctx, live, u.ID, fn); err == nil {
			t.Errorf("changing %s was accepted", name)
		} else if strings.Contains(err.Error(), "bad") {
			t.Errorf("error leaks the hash: %v", err)
		}
	}
	got, _ = db.UserByID(ctx, live, u.ID)
	if got.PasswordHash != "new-hash" {
		t.Errorf("refused update was saved: hash %q", got.PasswordHash)
	}
	if _, err := db.UserByEmail(ctx, live, "b@x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused email change left an index entry: %v", err)
	}

	sentinel := errors.New("abort")
	if err := db.UpdateUser(ctx, live, u.ID, func(s *User) error { s.PasswordHash = "bad"; return sentinel }); err != sentinel {
		t.Errorf("fn error = %v, want it unchanged", err)
	}
	got, _ = db.UserByID(ctx, live, u.ID)
	if got.PasswordHash != "new-hash" {
		t.Errorf("aborted update was saved: hash %q", got.PasswordHash)
	}

	called := false
	fn := func(*User) error { called = true; return nil }
	if err := db.UpdateUser(ctx, live, 42, fn); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing id err = %v, want ErrNotFound", err)
	}
	if err := db.UpdateUser(ctx, Realm{DataSource: "x", Table: "y"}, 1, fn); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing realm err = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn called for a missing user")
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	u := &User{Email: "f@x", Fields: map[string]any{
		"s":   "text",
		"b":   true,
		"n":   42,
		"big": json.Number("9007199254740993"), // not representable as float64
		"f":   1.5,
	}}
	if err := db.CreateUser(ctx, live, u); err != nil {
		t.Fatal(err)
	}
	got, err := db.UserByEmail(ctx, live, "f@x")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"s":   "text",
		"b":   true,
		"n":   json.Number("42"),
		"big": json.Number("9007199254740993"),
		"f":   json.Number("1.5"),
	}
	if len(got.Fields) != len(want) {
		t.Errorf("Fields = %#v, want %#v", got.Fields, want)
	}
	for k, w := range want {
		if got.Fields[k] != w {
			t.Errorf("Fields[%q] = %#v (%T), want %#v (%T)", k, got.Fields[k], got.Fields[k], w, w)
		}
	}
}

func TestCreateRejectsUnencodableFields(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	u := &User{Email: "c@x", Fields: map[string]any{"ch": make(chan int)}, PasswordHash: "secret-hash"}
	err := db.CreateUser(ctx, live, u)
	if err == nil {
		t.Fatal("unencodable field accepted")
	}
	if strings.Contains(err.Error(), "secret-hash") {
		t.Errorf("error leaks the hash: %v", err)
	}
	if n, _ := db.CountUsers(ctx, live); n != 0 {
		t.Errorf("CountUsers = %d, want 0", n)
	}
}

func TestMetaGetOrInitConcurrent(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	const n = 10
	got := make([][]byte, n)
	var calls atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := db.MetaGetOrInit(ctx, "key", func() ([]byte, error) {
				calls.Add(1)
				return []byte(fmt.Sprintf("value-%d", i)), nil
			})
			if err != nil {
				t.Errorf("MetaGetOrInit: %v", err)
			}
			got[i] = v
		}()
	}
	close(start)
	wg.Wait()
	for i := range got {
		if got[i] == nil || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("callers got different values: %q", got)
		}
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("init called %d times, want 1", c)
	}
	// A later call returns the stored value without calling init.
	v, err := db.MetaGetOrInit(ctx, "key", func() ([]byte, error) {
		t.Error("init called for an existing name")
		return []byte("late"), nil
	})
	if err != nil || !bytes.Equal(v, got[0]) {
		t.Errorf("later MetaGetOrInit = %q, %v; want %q", v, err, got[0])
	}
}

func TestMetaGetOrInitError(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	boom := errors.New("boom")
	if _, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	// Nothing was stored, so the next call's init runs and wins.
	v, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(v) != "ok" {
		t.Errorf("after failed init = %q, %v; want ok", v, err)
	}
}

func TestMetaEmptyValueCountsAsPresent(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	if err := db.MetaPut(ctx, "e", []byte{}); err != nil {
		t.Fatal(err)
	}
	v, err := db.MetaGetOrInit(ctx, "e", func() ([]byte, error) { return []byte("x"), nil })
	if err != nil || len(v) != 0 {
		t.Errorf("MetaGetOrInit on empty value = %q, %v; want empty", v, err)
	}
}

func TestMetaPut(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	if _, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return []byte("one"), nil }); err != nil {
		t.Fatal(err)
	}
	buf := []byte("two")
	if err := db.MetaPut(ctx, "k", buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X' // the store must have kept its own copy
	v, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return []byte("three"), nil })
	if err != nil || string(v) != "two" {
		t.Errorf("after MetaPut = %q, %v; want two", v, err)
	}
}

func TestMetaGet(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	if v, err := db.MetaGet(ctx, "k"); err != nil || v != nil {
		t.Fatalf("absent: %q, %v; want nil", v, err)
	}
	if err := db.MetaPut(ctx, "k", []byte("one")); err != nil {
		t.Fatal(err)
	}
	v, err := db.MetaGet(ctx, "k")
	if err != nil || string(v) != "one" {
		t.Fatalf("MetaGet = %q, %v; want one", v, err)
	}
	v[0] = 'X' // the caller's copy: the stored value stays
	if v, _ := db.MetaGet(ctx, "k"); string(v) != "one" {
		t.Errorf("after changing the returned slice: %q", v)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	db2, err := OpenBolt(path, 100*time.Millisecond)
	elapsed := time.Since(start)
	if err == nil {
		db2.Close()
		t.Fatal("second OpenBolt succeeded while the first is open")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if !strings.Contains(err.Error(), "caddy reload") {
		t.Errorf("error %q does not suggest caddy reload", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("took %v to give up, want about 100ms", elapsed)
	}
}

func TestFileModes(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode = %o, want 600", m)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Errorf("created folder mode = %o, want 700", m)
	}
}

func TestCanceledContext(t *testing.T) {
	db, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.CreateUser(ctx, live, &User{Email: "a@x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateUser err = %v, want context.Canceled", err)
	}
	if _, err := db.UserByEmail(ctx, live, "a@x"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByEmail err = %v, want context.Canceled", err)
	}
	if _, err := db.MetaGetOrInit(ctx, "k", func() ([]byte, error) { return []byte("v"), nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("MetaGetOrInit err = %v, want context.Canceled", err)
	}
	if n, _ := db.CountUsers(context.Background(), live); n != 0 {
		t.Errorf("canceled CreateUser stored a user")
	}
}

func BenchmarkCreateUserParallel(b *testing.B) {
	db, _ := openTemp(b)
	ctx := context.Background()
	var n atomic.Int64
	// Model many concurrent HTTP signups rather than one per CPU, which is
	// the case group commit exists for.
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			u := &User{Email: fmt.Sprintf("u%d@x", i), Fields: map[string]any{"name": "Bench"}, PasswordHash: "h"}
			if err := db.CreateUser(ctx, live, u); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUserByEmail(b *testing.B) {
	db, _ := openTemp(b)
	ctx := context.Background()
	const users = 1000
	seedUsers(b, db, users)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.UserByEmail(ctx, live, fmt.Sprintf("u%d@x", i%users)); err != nil {
			b.Fatal(err)
		}
	}
}
