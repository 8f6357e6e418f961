package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testParams keep argon2id cheap so the suite stays fast under -race.
var testParams = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func newTestHasher(t testing.TB) *Hasher {
	t.Helper()
	return NewHasher(testParams, 2, 5*time.Second)
}

func TestHashVerify(t *testing.T) {
	h := newTestHasher(t)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse 1")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}

	ok, rehash, err := h.Verify(ctx, encoded, "correct horse 1")
	if err != nil || !ok || rehash {
		t.Errorf("Verify(right pw) = ok %v, rehash %v, err %v; want true, false, nil", ok, rehash, err)
	}

	ok, rehash, err = h.Verify(ctx, encoded, "correct horse 2")
	if err != nil || ok || rehash {
		t.Errorf("Verify(wrong pw) = ok %v, rehash %v, err %v; want false, false, nil", ok, rehash, err)
	}
	ok, _, err = h.Verify(ctx, encoded, "")
	if err != nil || ok {
		t.Errorf("Verify(empty pw) = ok %v, err %v; want false, nil", ok, err)
	}
}

func TestHashFormat(t *testing.T) {
	h := newTestHasher(t)
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	// 16-byte salt -> 22 chars, 32-byte key -> 43 chars, no padding.
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(encoded) {
		t.Errorf("Hash = %q, does not match %s", encoded, re)
	}
}

func TestHashSalted(t *testing.T) {
	h := newTestHasher(t)
	ctx := context.Background()
	a, err := h.Hash(ctx, "same password 1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(ctx, "same password 1")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of the same password are equal: %q", a)
	}
	// Salts differ, not just keys.
	if strings.Split(a, "$")[4] == strings.Split(b, "$")[4] {
		t.Errorf("two hashes share a salt")
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newTestHasher(t)
	ctx := context.Background()
	const pw = "bcrypt password 1"
	raw, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "$2a$") {
		t.Fatalf("bcrypt.GenerateFromPassword gave %q, want $2a$ prefix", raw)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(prefix, func(t *testing.T) {
			encoded := prefix + string(raw[4:])
			ok, rehash, err := h.Verify(ctx, encoded, pw)
			if err != nil || !ok || !rehash {
				t.Errorf("Verify(right pw) = ok %v, rehash %v, err %v; want true, true, nil", ok, rehash, err)
			}
			ok, rehash, err = h.Verify(ctx, encoded, pw+"x")
			if err != nil || ok || rehash {
				t.Errorf("Verify(wrong pw) = ok %v, rehash %v, err %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestVerifyBcryptLongPassword(t *testing.T) {
	// bcrypt only sees 72 bytes; whatever x/crypto does with longer input
	// (truncate or ErrPasswordTooLong), Verify must not report a bad hash.
	h := newTestHasher(t)
	raw, err := bcrypt.GenerateFromPassword([]byte(strings.Repeat("a", 72)), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Verify(context.Background(), string(raw), strings.Repeat("a", 100)); err != nil {
		t.Errorf("Verify(>72-byte pw) error = %v, want nil", err)
	}
}

func TestVerifyRehashArgon2id(t *testing.T) {
	ctx := context.Background()
	current := newTestHasher(t)
	tests := []struct {
		name   string
		params Params
		rehash bool
	}{
		{"same", testParams, false},
		{"memory", Params{Memory: 128, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, true},
		{"time", Params{Memory: 64, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}, true},
		{"threads", Params{Memory: 64, Time: 1, Threads: 2, KeyLen: 32, SaltLen: 16}, true},
		{"keylen", Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 16, SaltLen: 16}, true},
		{"saltlen", Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := NewHasher(tt.params, 1, time.Second)
			encoded, err := old.Hash(ctx, "migrate me 1")
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := current.Verify(ctx, encoded, "migrate me 1")
			if err != nil || !ok || rehash != tt.rehash {
				t.Errorf("Verify = ok %v, rehash %v, err %v; want true, %v, nil", ok, rehash, err, tt.rehash)
			}
			ok, rehash, err = current.Verify(ctx, encoded, "migrate me 2")
			if err != nil || ok || rehash {
				t.Errorf("Verify(wrong pw) = ok %v, rehash %v, err %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newTestHasher(t)
	ctx := context.Background()
	good, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	goodBcrypt, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }

	inputs := map[string]string{
		"empty":              "",
		"plaintext":          "plaintext",
		"bad memory":         "$argon2id$v=19$m=x",
		"argon2i":            "$argon2i$" + strings.TrimPrefix(good, "$argon2id$"),
		"argon2d":            "$argon2d$" + strings.TrimPrefix(good, "$argon2id$"),
		"old version":        join("", "argon2id", "v=16", parts[3], parts[4], parts[5]),
		"no version":         join("", "argon2id", parts[3], parts[4], parts[5]),
		"extra field":        good + "$x",
		"param order":        join("", "argon2id", "v=19", "t=1,m=64,p=1", parts[4], parts[5]),
		"zero time":          join("", "argon2id", "v=19", "m=64,t=0,p=1", parts[4], parts[5]),
		"zero threads":       join("", "argon2id", "v=19", "m=64,t=1,p=0", parts[4], parts[5]),
		"threads overflow":   join("", "argon2id", "v=19", "m=64,t=1,p=256", parts[4], parts[5]),
		"memory too small":   join("", "argon2id", "v=19", "m=4,t=1,p=1", parts[4], parts[5]),
		"memory too large":   join("", "argon2id", "v=19", "m=4294967295,t=1,p=1", parts[4], parts[5]),
		"negative memory":    join("", "argon2id", "v=19", "m=-64,t=1,p=1", parts[4], parts[5]),
		"time too large":     join("", "argon2id", "v=19", "m=64,t=100000,p=1", parts[4], parts[5]),
		"truncated key":      good[:len(good)-2],
		"truncated salt":     join("", "argon2id", "v=19", parts[3], parts[4][:21], parts[5]),
		"short key":          join("", "argon2id", "v=19", parts[3], parts[4], parts[5][:8]),
		"empty key":          join("", "argon2id", "v=19", parts[3], parts[4], ""),
		"empty salt":         join("", "argon2id", "v=19", parts[3], "", parts[5]),
		"padded key":         join("", "argon2id", "v=19", parts[3], parts[4], parts[5]+"="),
		"bad base64":         join("", "argon2id", "v=19", parts[3], parts[4], "!!!!"+parts[5][4:]),
		"argon2id prefix":    "$argon2id$",
		"bcrypt cost 99":     "$2a$99$" + string(goodBcrypt[7:]),
		"bcrypt cost 03":     "$2a$03$" + string(goodBcrypt[7:]),
		"bcrypt cost 31":     "$2a$31$" + string(goodBcrypt[7:]),
		"bcrypt cost xx":     "$2a$xx$" + string(goodBcrypt[7:]),
		"bcrypt 2x":          "$2x$" + string(goodBcrypt[4:]),
		"bcrypt 2":           "$2$" + string(goodBcrypt[4:]),
		"bcrypt truncated":   string(goodBcrypt[:len(goodBcrypt)-1]),
		"bcrypt too long":    string(goodBcrypt) + "x",
		"bcrypt bad char":    string(goodBcrypt[:20]) + "!" + string(goodBcrypt[21:]),
		"bcrypt no dollar":   string(goodBcrypt[:6]) + "x" + string(goodBcrypt[7:]),
		"bcrypt prefix only": "$2a$",
		"bcrypt 2a$99$...":   "$2a$99$...",
	}
	before := h.computations.Load()
	for name, encoded := range inputs {
		t.Run(name, func(t *testing.T) {
			const pw = "secret-password-42"
			ok, rehash, err := h.Verify(ctx, encoded, pw)
			if ok || rehash {
				t.Errorf("Verify = ok %v, rehash %v; want false, false", ok, rehash)
			}
			if err == nil {
				t.Fatal("Verify error = nil, want an error")
			}
			if errors.Is(err, ErrBusy) {
				t.Errorf("Verify error = ErrBusy, want a hash error")
			}
			if !errors.Is(err, ErrInvalidHash) {
				t.Errorf("Verify error = %v, want it to wrap ErrInvalidHash", err)
			}
			msg := err.Error()
			if encoded != "" && strings.Contains(msg, encoded) {
				t.Errorf("error %q contains the hash", msg)
			}
			if strings.Contains(msg, pw) {
				t.Errorf("error %q contains the password", msg)
			}
			// The salt and key must not leak in part either.
			for _, p := range parts[4:] {
				if strings.Contains(msg, p[:8]) {
					t.Errorf("error %q contains part of the hash", msg)
				}
			}
		})
	}
	if got := h.computations.Load(); got != before {
		t.Errorf("malformed hashes cost %d hash computations, want 0", got-before)
	}
}

func TestHashBusy(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	h := NewHasher(testParams, 1, maxWait)
	h.sem <- struct{}{} // occupy the only slot
	defer func() { <-h.sem }()

	ctx := context.Background()
	start := time.Now()
	_, err := h.Hash(ctx, "pw")
	elapsed := time.Since(start)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with no free slot: err = %v, want ErrBusy", err)
	}
	if elapsed < maxWait {
		t.Errorf("Hash gave up after %v, want at least maxWait %v", elapsed, maxWait)
	}
	if elapsed > maxWait+5*time.Second {
		t.Errorf("Hash gave up after %v, far beyond maxWait %v", elapsed, maxWait)
	}

	encoded := encodeArgon2id(testParams, make([]byte, 16), make([]byte, 32))
	if _, _, err := h.Verify(ctx, encoded, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify with no free slot: err = %v, want ErrBusy", err)
	}
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy with no free slot: err = %v, want ErrBusy", err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Verify(ctx, string(bc), "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify(bcrypt) with no free slot: err = %v, want ErrBusy", err)
	}
	if n := h.computations.Load(); n != 0 {
		t.Errorf("%d computations ran without a slot, want 0", n)
	}
}

func TestHashCancelledContext(t *testing.T) {
	// maxWait is long so that returning quickly can only come from ctx.
	const maxWait = 10 * time.Second
	h := NewHasher(testParams, 1, maxWait)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// Already cancelled, slot free: no point hashing for nobody.
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash(cancelled ctx, free slot) err = %v, want ErrBusy", err)
	}

	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	start := time.Now()
	_, err := h.Hash(ctx, "pw")
	if !errors.Is(err, ErrBusy) {
		t.Errorf("Hash(cancelled ctx) err = %v, want ErrBusy", err)
	}
	if elapsed := time.Since(start); elapsed > maxWait/2 {
		t.Errorf("Hash(cancelled ctx) took %v, want immediate", elapsed)
	}
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy(cancelled ctx) err = %v, want ErrBusy", err)
	}
}

func TestHashContextCancelledWhileWaiting(t *testing.T) {
	const maxWait = 10 * time.Second
	h := NewHasher(testParams, 1, maxWait)
	h.sem <- struct{}{}
	defer func() { <-h.sem }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Hash(ctx, "pw")
	if !errors.Is(err, ErrBusy) {
		t.Errorf("Hash err = %v, want ErrBusy", err)
	}
	if elapsed := time.Since(start); elapsed > maxWait/2 {
		t.Errorf("Hash took %v after ctx ended, want it to stop waiting", elapsed)
	}
}

func TestHashWaitsForSlot(t *testing.T) {
	h := NewHasher(testParams, 1, 10*time.Second)
	h.sem <- struct{}{}
	go func() {
		time.Sleep(20 * time.Millisecond)
		<-h.sem
	}()
	encoded, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatalf("Hash after slot freed: %v", err)
	}
	if ok, _, err := h.Verify(context.Background(), encoded, "pw"); err != nil || !ok {
		t.Errorf("Verify = %v, %v; want true, nil", ok, err)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots still held after operations finished, want 0", n)
	}
}

func TestManyConcurrentHashes(t *testing.T) {
	const concurrency = 2
	h := NewHasher(testParams, concurrency, 10*time.Second)
	h.sem <- struct{}{} // one slot taken; one left
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := h.Hash(context.Background(), "pw")
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("Hash: %v", err)
		}
	}
	<-h.sem
	if n := h.computations.Load(); n != 8 {
		t.Errorf("computations = %d, want 8", n)
	}
	if n := len(h.sem); n != 0 {
		t.Errorf("%d slots leaked", n)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newTestHasher(t)
	before := h.computations.Load()
	if err := h.VerifyDummy(context.Background(), "anything 1"); err != nil {
		t.Fatalf("VerifyDummy: %v", err)
	}
	if got := h.computations.Load() - before; got != 1 {
		t.Errorf("VerifyDummy ran %d computations, want 1", got)
	}
	if len(h.dummyKey) != int(testParams.KeyLen) || len(h.dummySalt) != int(testParams.SaltLen) {
		t.Errorf("dummy hash has key %d, salt %d bytes; want %d, %d",
			len(h.dummyKey), len(h.dummySalt), testParams.KeyLen, testParams.SaltLen)
	}
	// The dummy hash is a valid hash with h's parameters, so VerifyDummy
	// does the same work as Verify would; no password known to anyone
	// matches it.
	encoded := encodeArgon2id(h.params, h.dummySalt, h.dummyKey)
	ok, _, err := h.Verify(context.Background(), encoded, "anything 1")
	if err != nil || ok {
		t.Errorf("Verify(dummy hash) = %v, %v; want false, nil", ok, err)
	}
}

func TestNewHasherDefaults(t *testing.T) {
	h := NewHasher(Params{}, 0, 0)
	if h.params != DefaultParams {
		t.Errorf("params = %+v, want DefaultParams %+v", h.params, DefaultParams)
	}
	if cap(h.sem) != runtime.NumCPU() {
		t.Errorf("concurrency = %d, want NumCPU %d", cap(h.sem), runtime.NumCPU())
	}
	if h.maxWait != 10*time.Second {
		t.Errorf("maxWait = %v, want 10s", h.maxWait)
	}
}

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
	if DefaultParams != want {
		t.Fatalf("DefaultParams = %+v, want %+v", DefaultParams, want)
	}
	h := NewHasher(DefaultParams, 1, 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "default params 1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %q, want DefaultParams prefix", encoded)
	}
	ok, rehash, err := h.Verify(ctx, encoded, "default params 1")
	if err != nil || !ok || rehash {
		t.Errorf("Verify = ok %v, rehash %v, err %v; want true, false, nil", ok, rehash, err)
	}
	if err := h.VerifyDummy(ctx, "default params 1"); err != nil {
		t.Errorf("VerifyDummy: %v", err)
	}
}

func TestMemoryBound(t *testing.T) {
	if got, want := NewHasher(testParams, 3, 0).MemoryBound(), uint64(64*1024*3); got != want {
		t.Errorf("MemoryBound = %d, want %d", got, want)
	}
	if got, want := NewHasher(DefaultParams, 4, 0).MemoryBound(), uint64(19456*1024*4); got != want {
		t.Errorf("MemoryBound(default) = %d, want %d", got, want)
	}
}

func BenchmarkHashDefault(b *testing.B) {
	h := NewHasher(DefaultParams, 1, 0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "benchmark password 1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams, 1, 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "benchmark password 1")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ok, _, err := h.Verify(ctx, encoded, "benchmark password 1")
		if err != nil || !ok {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
