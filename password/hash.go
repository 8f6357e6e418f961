// Package password hashes and verifies user passwords and enforces Xano's
// password policy.
//
// Hashing is deliberately expensive, so every argon2id or bcrypt computation
// runs under a semaphore: a login storm queues for a bounded time and then
// fails fast with ErrBusy instead of exhausting the memory and CPU of the
// server that is supposed to guard everything behind it.
//
// Nothing in this package logs, and no error it returns contains a password
// or a hash.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xanoauth/caddy-xanoauth/internal/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrBusy is returned when no hashing slot frees up within the wait bound or
// ctx ends first. Callers should answer with a retryable error (e.g. 503)
// rather than treat it as a failed login.
var ErrBusy = errors.New("password hashing is busy")

// ErrInvalidHash is wrapped by every error Verify returns for an encoded hash
// it cannot use (malformed, unsupported algorithm or out-of-range
// parameters). The wrapping error's text describes the problem only in fixed
// words: it never contains the hash or the password, so it is safe to log.
var ErrInvalidHash = errors.New("password: invalid password hash")

// Params are argon2id parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// KeyLen is the length in bytes of the derived key.
	KeyLen uint32
	// SaltLen is the length in bytes of the random salt.
	SaltLen uint32
}

// DefaultParams are the OWASP-recommended argon2id parameters
// (m=19 MiB, t=2, p=1): strong enough against offline guessing while keeping
// a single hash around 20 MiB so many logins can run at once.
var DefaultParams = Params{
	Memory:  19456,
	Time:    2,
	Threads: 1,
	KeyLen:  32,
	SaltLen: 16,
}

const (
	argon2idPrefix = "$argon2id$"

	// defaultMaxWait is how long a hash waits for a slot when NewHasher is
	// given no bound.
	defaultMaxWait = 10 * time.Second

	// defaultMemoryIdle is how long a Hasher keeps argon2 working memory
	// after its last hash.
	defaultMemoryIdle = time.Minute

	// Limits on the parameters of stored argon2id hashes that Verify accepts.
	// Stored hashes may come from elsewhere (imports, older configurations);
	// the limits keep one bad row from pinning a slot for minutes or
	// allocating gigabytes.
	maxArgonMemory  = 1 << 20 // KiB (1 GiB)
	maxArgonTime    = 64
	minArgonSaltLen = 8 // RFC 9106 minimum
	maxArgonSaltLen = 1024
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 1024

	// bcryptHashLen is the length of "$2a$NN$" plus 22 salt and 31 hash
	// characters.
	bcryptHashLen = 60
	// maxBcryptCost bounds the work of a stored bcrypt hash; each step
	// doubles it, and bcrypt.MaxCost (31) would hold a slot for days.
	maxBcryptCost = 16
)

// Hasher hashes and verifies passwords, at most a fixed number at a time.
//
// Bounded concurrency is what protects the server from a login storm: without
// it, N simultaneous logins need N × Params.Memory of RAM and N cores' worth of
// CPU. With it, excess requests wait up to maxWait for a slot and then get
// ErrBusy. A Hasher is safe for concurrent use.
type Hasher struct {
	params  Params
	sem     chan struct{}
	maxWait time.Duration

	// dummySalt and dummyKey are the argon2id hash of a random, discarded
	// password. VerifyDummy checks against them so that a login for an
	// unknown user costs the same as one for a real user.
	dummySalt []byte
	dummyKey  []byte

	// computations counts argon2/bcrypt computations; tests use it to see
	// that work was (or was not) done.
	computations atomic.Uint64

	// fg makes hashing yield to foreground traffic (foreground.go).
	fg foreground

	// mem keeps the argon2 working memory of finished hashes for the next
	// (internal/argon2): without it every hash allocated and zeroed
	// Params.Memory KiB and left it to the garbage collector. It holds at
	// most one argon2.Memory per slot, sized for h.params only, so kept
	// and in-use memory together stay within MemoryBound; after memIdle
	// without a hash, or after Release, it is dropped.
	mem       chan *argon2.Memory
	memIdle   time.Duration
	lastHash  atomic.Int64 // UnixNano when the last hash ended
	sweeping  atomic.Bool  // a sweep is scheduled
	released  atomic.Bool
	memCreate atomic.Uint64 // argon2.Memory values created; tests read it
	kept      atomic.Int64  // bytes in mem, for KeptMemory
}

// NewHasher returns a Hasher that hashes with p and runs at most concurrency
// computations at a time, each waiting at most maxWait for a slot.
//
// concurrency <= 0 means runtime.NumCPU(); maxWait <= 0 means 10s. Zero
// fields of p take their value from DefaultParams, since argon2 cannot run
// with zero passes or threads.
//
// NewHasher precomputes a dummy hash (argon2id of a random password) for
// VerifyDummy, so it costs one hash computation.
func NewHasher(p Params, concurrency int, maxWait time.Duration) *Hasher {
	return newHasher(p, concurrency, maxWait, defaultMemoryIdle)
}

// newHasher is NewHasher with the time argon2 memory is kept after the last
// hash (tests shorten it).
func newHasher(p Params, concurrency int, maxWait, memIdle time.Duration) *Hasher {
	if p.Memory == 0 {
		p.Memory = DefaultParams.Memory
	}
	if p.Time == 0 {
		p.Time = DefaultParams.Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultParams.Threads
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultParams.KeyLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = DefaultParams.SaltLen
	}
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	if maxWait <= 0 {
		maxWait = defaultMaxWait
	}
	h := &Hasher{
		params:  p,
		sem:     make(chan struct{}, concurrency),
		maxWait: maxWait,
		mem:     make(chan *argon2.Memory, concurrency),
		memIdle: memIdle,
	}
	h.fg.init(concurrency, 0)

	// The dummy password is random and immediately forgotten, so no input
	// can ever match the dummy hash. crypto/rand.Read never fails on
	// supported platforms (it crashes the program instead).
	dummyPassword := make([]byte, 32)
	_, _ = rand.Read(dummyPassword)
	h.dummySalt = make([]byte, p.SaltLen)
	_, _ = rand.Read(h.dummySalt)
	m := h.takeMemory() // kept for the first login
	h.dummyKey = m.IDKey(dummyPassword, h.dummySalt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.keepMemory(m)
	return h
}

// Hash returns the argon2id hash of pw with h's parameters as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// where salt and key are standard base64 without padding. It returns ErrBusy
// if no slot frees up in time or ctx ends first.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: generating salt: %w", err)
	}
	var key []byte
	err := h.compute(ctx, func(m *argon2.Memory) {
		key = m.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	})
	if err != nil {
		return "", err
	}
	return encodeArgon2id(h.params, salt, key), nil
}

// Verify checks pw against encoded, which may be an argon2id PHC string with
// any parameters or a bcrypt hash ($2a$, $2b$ or $2y$), so that accounts
// imported from elsewhere keep working.
//
// ok reports a match; for argon2id the keys are compared in constant time so
// the comparison leaks nothing about how much of the key matched. rehash is
// true when ok and encoded is bcrypt or argon2id with parameters different
// from h's: the caller should then store a fresh Hash of pw, which migrates
// users to the current parameters as they log in.
//
// A malformed or unsupported encoded hash returns ok=false and an error
// wrapping ErrInvalidHash, without spending any hashing work. ErrBusy is
// returned if no slot frees up in time or ctx ends first.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		return h.verifyArgon2id(ctx, encoded, pw)
	case strings.HasPrefix(encoded, "$2"):
		return h.verifyBcrypt(ctx, encoded, pw)
	default:
		return false, false, fmt.Errorf("%w: unsupported algorithm", ErrInvalidHash)
	}
}

// VerifyDummy spends the same work as a real argon2id Verify against h's
// parameters, comparing pw with a dummy hash nothing can match. It is used
// when the user does not exist, so that response timing does not reveal
// whether an account exists. It returns nil after doing the work, or ErrBusy
// like Verify.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	return h.compute(ctx, func(m *argon2.Memory) {
		key := m.IDKey([]byte(pw), h.dummySalt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
		// Compare like Verify does so the two paths cost the same; the
		// result is meaningless and ignored.
		_ = subtle.ConstantTimeCompare(key, h.dummyKey)
	})
}

// MemoryBound is the worst-case argon2 memory in bytes of hashes with h's
// parameters, in use or kept for reuse: Params.Memory KiB × concurrency.
// Verifying a stored argon2id hash whose own memory parameter is larger uses
// that larger amount while it runs.
func (h *Hasher) MemoryBound() uint64 {
	return uint64(h.params.Memory) * 1024 * uint64(cap(h.sem))
}

// Computations returns how many argon2id or bcrypt computations h has run,
// the dummy of NewHasher excepted: a cheap way for callers and tests to
// see whether a code path spent hashing work.
func (h *Hasher) Computations() uint64 { return h.computations.Load() }

// compute runs f while holding a hashing slot (and, while foreground
// traffic is active, a foreground slot: foreground.go), with the slot's
// argon2 working memory. It waits for them at most h.maxWait and never past
// ctx; either way it returns ErrBusy without running f. A ctx that has
// already ended gets ErrBusy even if a slot is free, since nobody is waiting
// for the result.
func (h *Hasher) compute(ctx context.Context, f func(*argon2.Memory)) error {
	if ctx.Err() != nil {
		return ErrBusy
	}
	start := time.Now()
	select {
	case h.sem <- struct{}{}:
	default:
		t := time.NewTimer(h.maxWait)
		defer t.Stop()
		select {
		case h.sem <- struct{}{}:
		case <-t.C:
			return ErrBusy
		case <-ctx.Done():
			return ErrBusy
		}
	}
	defer func() { <-h.sem }()
	release, err := h.yield(ctx, start)
	if err != nil {
		return err
	}
	defer release()
	h.computations.Add(1)
	m := h.takeMemory()
	defer h.keepMemory(m)
	f(m)
	return nil
}

// takeMemory returns kept argon2 memory, or a new (empty) Memory when none
// is kept. Only slot holders call it, so at most cap(h.sem) exist.
func (h *Hasher) takeMemory() *argon2.Memory {
	select {
	case m := <-h.mem:
		h.kept.Add(-int64(m.Size()))
		return m
	default:
		h.memCreate.Add(1)
		return new(argon2.Memory)
	}
}

// keepMemory keeps m for the next hash and makes sure a sweep will drop it
// once hashing stops.
func (h *Hasher) keepMemory(m *argon2.Memory) {
	if h.released.Load() || m.Size() > uint64(h.params.Memory)*1024 {
		m.Free() // a stored hash with a larger memory cost: not kept
		return
	}
	h.lastHash.Store(time.Now().UnixNano())
	// Counted before it can be taken, so that kept never goes negative.
	h.kept.Add(int64(m.Size()))
	select {
	case h.mem <- m:
	default:
		h.kept.Add(-int64(m.Size()))
		m.Free()
	}
	if h.sweeping.CompareAndSwap(false, true) {
		time.AfterFunc(h.memIdle, h.sweep)
	}
}

// sweep drops the kept memory if no hash ended for memIdle, and otherwise
// looks again when that much time will have passed since the last one.
func (h *Hasher) sweep() {
	if idle := time.Duration(time.Now().UnixNano() - h.lastHash.Load()); idle < h.memIdle && !h.released.Load() {
		time.AfterFunc(h.memIdle-idle, h.sweep)
		return
	}
	h.dropMemory()
	h.sweeping.Store(false)
	// Memory kept between the drop and the Store found a sweep still
	// scheduled and scheduled none: schedule one for it.
	if len(h.mem) > 0 && h.sweeping.CompareAndSwap(false, true) {
		time.AfterFunc(h.memIdle, h.sweep)
	}
}

func (h *Hasher) dropMemory() {
	for {
		select {
		case m := <-h.mem:
			h.kept.Add(-int64(m.Size()))
			m.Free()
		default:
			return
		}
	}
}

// KeptMemory is how many bytes of argon2 working memory h keeps between
// hashes: at most MemoryBound, and none a minute after the last hash or
// after Release.
func (h *Hasher) KeptMemory() uint64 { return uint64(max(h.kept.Load(), 0)) }

// Release drops the argon2 working memory h keeps between hashes and stops
// keeping any; h still hashes, allocating for each hash. The xano app calls
// it when its configuration is replaced or stopped.
func (h *Hasher) Release() {
	h.released.Store(true)
	h.dropMemory()
}

func (h *Hasher) verifyArgon2id(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	p, salt, key, err := decodeArgon2id(encoded)
	if err != nil {
		return false, false, err
	}
	err = h.compute(ctx, func(m *argon2.Memory) {
		computed := m.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		ok = subtle.ConstantTimeCompare(computed, key) == 1
	})
	if err != nil {
		return false, false, err
	}
	return ok, ok && p != h.params, nil
}

func (h *Hasher) verifyBcrypt(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	if err := checkBcrypt(encoded); err != nil {
		return false, false, err
	}
	// $2a$, $2b$ and $2y$ are the same algorithm as far as x/crypto/bcrypt is
	// concerned (2b and 2y only fix a C-implementation bug Go never had).
	// Normalise to $2a$ so the result does not depend on which minor
	// versions the library happens to accept.
	normalized := []byte("$2a" + encoded[3:])
	var cmpErr error
	err = h.compute(ctx, func(*argon2.Memory) {
		cmpErr = bcrypt.CompareHashAndPassword(normalized, []byte(pw))
	})
	if err != nil {
		return false, false, err
	}
	switch {
	case cmpErr == nil:
		return true, true, nil
	case errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword),
		errors.Is(cmpErr, bcrypt.ErrPasswordTooLong):
		// Newer x/crypto refuses passwords over 72 bytes instead of
		// truncating them; such a password cannot be the one stored.
		return false, false, nil
	default:
		// Do not wrap cmpErr: bcrypt's errors may quote parts of the hash.
		return false, false, fmt.Errorf("%w: bcrypt hash rejected", ErrInvalidHash)
	}
}

// checkBcrypt validates the shape of a bcrypt hash: $2a$, $2b$ or $2y$, a
// two-digit cost in range, and 53 characters of bcrypt's base64 alphabet.
func checkBcrypt(encoded string) error {
	if len(encoded) != bcryptHashLen {
		return fmt.Errorf("%w: bcrypt hash has wrong length", ErrInvalidHash)
	}
	if encoded[0] != '$' || encoded[1] != '2' || encoded[3] != '$' || encoded[6] != '$' {
		return fmt.Errorf("%w: malformed bcrypt hash", ErrInvalidHash)
	}
	switch encoded[2] {
	case 'a', 'b', 'y':
	default:
		return fmt.Errorf("%w: unsupported bcrypt version", ErrInvalidHash)
	}
	if !isDigit(encoded[4]) || !isDigit(encoded[5]) {
		return fmt.Errorf("%w: malformed bcrypt cost", ErrInvalidHash)
	}
	cost := int(encoded[4]-'0')*10 + int(encoded[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return fmt.Errorf("%w: bcrypt cost out of range", ErrInvalidHash)
	}
	for i := 7; i < len(encoded); i++ {
		if !isBcryptBase64(encoded[i]) {
			return fmt.Errorf("%w: malformed bcrypt salt or hash", ErrInvalidHash)
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isBcryptBase64(c byte) bool {
	return c == '.' || c == '/' || isDigit(c) || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}

// encodeArgon2id formats an argon2id PHC string.
func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// decodeArgon2id parses an argon2id PHC string, returning its parameters
// (KeyLen and SaltLen taken from the decoded key and salt), salt and key.
// Errors describe the problem without quoting the input.
func decodeArgon2id(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id hash", ErrInvalidHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported argon2id version", ErrInvalidHash)
	}

	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id parameters", ErrInvalidHash)
	}
	m, okM := parseParam(fields[0], "m=", 32)
	t, okT := parseParam(fields[1], "t=", 32)
	threads, okP := parseParam(fields[2], "p=", 8)
	if !okM || !okT || !okP {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id parameters", ErrInvalidHash)
	}
	// RFC 9106 requires m >= 8p, t >= 1 and p >= 1; argon2.IDKey panics on
	// t or p of zero.
	if threads < 1 || t < 1 || t > maxArgonTime || m < 8*threads || m > maxArgonMemory {
		return p, nil, nil, fmt.Errorf("%w: argon2id parameters out of range", ErrInvalidHash)
	}

	salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minArgonSaltLen || len(salt) > maxArgonSaltLen {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id salt", ErrInvalidHash)
	}
	key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minArgonKeyLen || len(key) > maxArgonKeyLen {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id key", ErrInvalidHash)
	}

	p = Params{
		Memory:  uint32(m),
		Time:    uint32(t),
		Threads: uint8(threads),
		KeyLen:  uint32(len(key)),
		SaltLen: uint32(len(salt)),
	}
	return p, salt, key, nil
}

// parseParam parses "<prefix><decimal>" into an unsigned integer of the given
// bit size.
func parseParam(field, prefix string, bitSize int) (uint64, bool) {
	s, found := strings.CutPrefix(field, prefix)
	if !found {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, bitSize)
	return v, err == nil
}

// Implementation names the argon2 block code that hashes run (AVX2, or
// x/crypto's SSE4.1 or generic code), with the reason when the AVX2 code is
// off on a CPU that has it: its start-up self-test failed, or
// XANOAUTH_ARGON2=upstream asked for x/crypto's code.
func Implementation() string { return argon2.Implementation() }

// ImplementationSuspect reports whether the AVX2 code was turned off
// because it computed a block differently from x/crypto's on this CPU.
func ImplementationSuspect() bool {
	return strings.Contains(argon2.Implementation(), "self-test failed")
}
