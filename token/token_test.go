package token

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var t0 = time.Unix(1_700_000_000, 0)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t testing.TB, keys ...[]byte) *Ring {
	t.Helper()
	r, err := NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustMint(t testing.TB, r *Ring, c Claims) string {
	t.Helper()
	tok, err := r.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func validClaims() Claims {
	return Claims{ID: 42, Table: "user", DS: "live", SID: "s1",
		IssuedAt: t0.Unix(), NotBefore: t0.Unix(), Expiry: t0.Unix() + 3600}
}

// foreign builds a token with go-jose directly, for shapes Mint never makes.
func foreign(t *testing.T, alg jose.KeyAlgorithm, enc jose.ContentEncryption, key any, opts *jose.EncrypterOptions, plain []byte) string {
	t.Helper()
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key, PBES2Count: 1000}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	r := mustRing(t, mustKey(t))
	want := Claims{
		ID:    -9007199254740993, // beyond float64 precision: must survive as int64
		Table: "user",
		DS:    "live",
		Extras: map[string]any{
			"role":   "admin",
			"level":  float64(3),
			"tags":   []any{"a", "b"},
			"nested": map[string]any{"ok": true, "none": nil},
			"utf8":   "héllo ✓",
		},
		SID:       "0123456789abcdef",
		IssuedAt:  t0.Unix() - 10,
		NotBefore: t0.Unix() - 5,
		Expiry:    t0.Unix() + 60,
	}
	got, err := r.Verify(mustMint(t, r, want), t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
	}

	// Without extras the field is omitted and comes back nil.
	plain := validClaims()
	got, err = r.Verify(mustMint(t, r, plain), t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, plain) {
		t.Fatalf("round trip without extras:\n got %#v\nwant %#v", got, plain)
	}
}

func TestHeaderBytes(t *testing.T) {
	r := mustRing(t, mustKey(t))
	tok := mustMint(t, r, validClaims())
	parts := strings.Split(tok, ".")
	if len(parts) != 5 {
		t.Fatalf("token has %d parts, want 5", len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}`
	if string(h) != want {
		t.Fatalf("header = %s, want %s", h, want)
	}
	// Sizes fixed by the algorithms: wrapped 64-byte CEK, 16-byte IV,
	// 32-byte tag.
	for i, n := range map[int]int{1: 72, 2: 16, 4: 32} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != n {
			t.Errorf("part %d is %d bytes, want %d", i, len(b), n)
		}
	}
}

func TestTokensDiffer(t *testing.T) {
	r := mustRing(t, mustKey(t))
	a, b := mustMint(t, r, validClaims()), mustMint(t, r, validClaims())
	if a == b {
		t.Fatal("two mints of the same claims gave the same token; CEK/IV not fresh")
	}
}

func flip(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestTamper(t *testing.T) {
	r := mustRing(t, mustKey(t))
	tok := mustMint(t, r, validClaims())
	parts := strings.Split(tok, ".")

	cases := map[string]string{}
	for i := range parts {
		for _, pos := range []int{0, len(parts[i]) / 2} {
			p := append([]string(nil), parts...)
			b := []byte(p[i])
			b[pos] = flip(b[pos])
			p[i] = string(b)
			cases["flip part "+string(rune('0'+i))+" at "+map[bool]string{true: "start", false: "middle"}[pos == 0]] = strings.Join(p, ".")
		}
		// Drop the segment entirely, keeping five parts.
		p := append([]string(nil), parts...)
		p[i] = ""
		cases["empty part "+string(rune('0'+i))] = strings.Join(p, ".")
		// Remove it, leaving four parts.
		p = append(append([]string(nil), parts[:i]...), parts[i+1:]...)
		cases["drop part "+string(rune('0'+i))] = strings.Join(p, ".")
	}
	cases["extra part"] = tok + "." + parts[4]
	cases["trailing dot"] = tok + "."
	cases["leading dot"] = "." + tok
	cases["swap iv and tag"] = strings.Join([]string{parts[0], parts[1], parts[4][:22], parts[3], parts[2] + parts[4][22:]}, ".")
	cases["truncated ciphertext"] = strings.Join([]string{parts[0], parts[1], parts[2], parts[3][:len(parts[3])-4], parts[4]}, ".")

	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if bad == tok {
				t.Fatal("test case did not change the token")
			}
			c, err := r.Verify(bad, t0, 0)
			if err == nil {
				t.Fatalf("tampered token verified: %+v", c)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrMalformed or ErrInvalid", err)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Fatalf("claims returned with error: %+v", c)
			}
		})
	}
}

// A base64url segment whose length is 2 or 3 mod 4 has unused low bits in
// its last character; the decoder ignores them, so Verify must check them
// or one token would have several spellings.
func TestNonCanonicalSpellings(t *testing.T) {
	r := mustRing(t, mustKey(t))
	tok := mustMint(t, r, validClaims())
	parts := strings.Split(tok, ".")

	respelled := 0
	for i, p := range parts {
		var mask byte
		switch len(p) % 4 {
		case 2:
			mask = 0x0f
		case 3:
			mask = 0x03
		default:
			continue
		}
		last := sextet(p[len(p)-1])
		if last&mask != 0 {
			t.Fatalf("Mint produced a non-canonical part %d", i)
		}
		// Bit 0 is unused in both cases; setting it changes the spelling
		// but not the bytes.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		q := append([]string(nil), parts...)
		q[i] = p[:len(p)-1] + string(alphabet[last|1])
		if q[i] == p {
			t.Fatalf("part %d respelling unchanged", i)
		}
		// The respelling must decode to the same bytes, or the test proves
		// nothing about canonical form.
		a, _ := base64.RawURLEncoding.DecodeString(p)
		b, err := base64.RawURLEncoding.DecodeString(q[i])
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("part %d respelling decodes differently", i)
		}
		respelled++
		if _, err := r.Verify(strings.Join(q, "."), t0, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("part %d respelled: err = %v, want ErrMalformed", i, err)
		}
	}
	if respelled == 0 {
		t.Fatal("no segment had unused bits; test is vacuous")
	}

	// encoding/base64 also skips CR and LF.
	for _, ins := range []string{"\n", "\r", " ", "=", "+", "/"} {
		bad := parts[0] + ins + "." + strings.Join(parts[1:], ".")
		if _, err := r.Verify(bad, t0, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("inserted %q: err = %v, want ErrMalformed", ins, err)
		}
	}
}

func TestKeys(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	oldRing := mustRing(t, oldKey)
	newOnly := mustRing(t, newKey)
	rotated := mustRing(t, newKey, oldKey)
	fromOld := mustMint(t, oldRing, validClaims())
	fromRotated := mustMint(t, rotated, validClaims())

	tests := []struct {
		name string
		ring *Ring
		tok  string
		want error
	}{
		{"same key", oldRing, fromOld, nil},
		{"wrong key", newOnly, fromOld, ErrInvalid},
		{"rotated ring accepts old token", rotated, fromOld, nil},
		{"rotated ring mints with newest", newOnly, fromRotated, nil},
		{"old ring refuses newest key's token", oldRing, fromRotated, ErrInvalid},
		{"nil ring", nil, fromOld, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.ring.Verify(tt.tok, t0, 0)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && c.ID != 42 {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	r := mustRing(t, mustKey(t))
	now := t0.Unix()
	tests := []struct {
		name   string
		nbf    int64
		exp    int64
		leeway time.Duration
		want   error
	}{
		{"exp == now", now - 10, now, 0, ErrExpired},
		{"exp == now+1", now - 10, now + 1, 0, nil},
		{"exp long past", now - 100, now - 50, 0, ErrExpired},
		{"leeway 5s, exp now-3", now - 10, now - 3, 5 * time.Second, nil},
		{"leeway 5s, exp now-5", now - 10, now - 5, 5 * time.Second, ErrExpired},
		{"leeway below a second is exact", now - 10, now, 999 * time.Millisecond, ErrExpired},
		{"nbf == now", now, now + 60, 0, nil},
		{"nbf == now+1", now + 1, now + 60, 0, ErrNotYetValid},
		{"nbf far future", now + 3600, now + 7200, 0, ErrNotYetValid},
		{"leeway 5s, nbf now+5", now + 5, now + 60, 5 * time.Second, nil},
		{"leeway 5s, nbf now+6", now + 6, now + 60, 5 * time.Second, ErrNotYetValid},
		{"no nbf", 0, now + 60, 0, nil},
		{"no exp", now - 10, 0, 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			c.NotBefore, c.Expiry = tt.nbf, tt.exp
			got, err := r.Verify(mustMint(t, r, c), t0, tt.leeway)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				if !reflect.DeepEqual(got, c) {
					t.Fatalf("claims = %+v, want %+v", got, c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(got, Claims{}) {
				t.Fatalf("claims returned with error: %+v", got)
			}
		})
	}
	// The wall clock's sub-second part must not matter: exp == now holds
	// for the whole second.
	c := validClaims()
	c.Expiry = now
	if _, err := r.Verify(mustMint(t, r, c), t0.Add(999*time.Millisecond), 0); !errors.Is(err, ErrExpired) {
		t.Fatalf("late in the exp second: err = %v, want ErrExpired", err)
	}
}

func TestGarbage(t *testing.T) {
	key := mustKey(t)
	r := mustRing(t, key)
	good := mustMint(t, r, validClaims())
	deflate := &jose.EncrypterOptions{Compression: jose.DEFLATE}
	claimsJSON := []byte(`{"id":1,"table":"user","ds":"live","exp":9999999999}`)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign(claimsJSON)
	if err != nil {
		t.Fatal(err)
	}
	jwsCompact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(good, ".")
	withHeader := func(h string) string {
		return strings.Join(append([]string{b64([]byte(h))}, parts[1:]...), ".")
	}
	doubleKey := append(append([]byte(nil), key...), key...)

	tests := []struct {
		name string
		tok  string
		want error // nil means any error will do
	}{
		{"empty", "", ErrMalformed},
		{"a.b.c.d.e", "a.b.c.d.e", ErrMalformed},
		{"five dots", ".....", ErrMalformed},
		{"four empty parts", "....", ErrMalformed},
		{"words", "not a token", ErrMalformed},
		{"too long", strings.Repeat("A", MaxTokenLength+1), ErrMalformed},
		{"too long, token shaped", good + strings.Repeat("A", MaxTokenLength), ErrMalformed},
		{"JWS", jwsCompact, ErrMalformed},
		{"dir", foreign(t, jose.DIRECT, jose.A256CBC_HS512, doubleKey, deflate, claimsJSON), ErrMalformed},
		{"RSA-OAEP", foreign(t, jose.RSA_OAEP, jose.A256CBC_HS512, &rsaKey.PublicKey, deflate, claimsJSON), ErrMalformed},
		{"RSA-OAEP-256", foreign(t, jose.RSA_OAEP_256, jose.A256CBC_HS512, &rsaKey.PublicKey, deflate, claimsJSON), ErrMalformed},
		{"A256GCMKW, same key", foreign(t, jose.A256GCMKW, jose.A256CBC_HS512, key, deflate, claimsJSON), ErrMalformed},
		{"A128KW", foreign(t, jose.A128KW, jose.A256CBC_HS512, key[:16], deflate, claimsJSON), ErrMalformed},
		{"PBES2, key as password", foreign(t, jose.PBES2_HS512_A256KW, jose.A256CBC_HS512, key, deflate, claimsJSON), ErrMalformed},
		{"A256KW with A256GCM", foreign(t, jose.A256KW, jose.A256GCM, key, deflate, claimsJSON), ErrMalformed},
		{"A256KW with A128CBC-HS256", foreign(t, jose.A256KW, jose.A128CBC_HS256, key, deflate, claimsJSON), ErrMalformed},
		{"alg none header", withHeader(`{"alg":"none","enc":"A256CBC-HS512","zip":"DEF"}`), ErrMalformed},
		{"alg dir header", withHeader(`{"alg":"dir","enc":"A256CBC-HS512","zip":"DEF"}`), ErrMalformed},
		{"no alg header", withHeader(`{"enc":"A256CBC-HS512","zip":"DEF"}`), ErrMalformed},
		{"header not JSON", withHeader(`alg`), ErrMalformed},
		{"header reordered", withHeader(`{"enc":"A256CBC-HS512","alg":"A256KW","zip":"DEF"}`), ErrInvalid},
		{"header with kid", withHeader(`{"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF","kid":"x"}`), ErrInvalid},
		// Right key, but shapes we never mint.
		{"crit header", foreign(t, jose.A256KW, jose.A256CBC_HS512, key,
			(&jose.EncrypterOptions{Compression: jose.DEFLATE}).WithHeader("crit", []string{"b64"}).WithHeader("b64", false), claimsJSON), ErrInvalid},
		{"unknown zip", foreign(t, jose.A256KW, jose.A256CBC_HS512, key,
			(&jose.EncrypterOptions{Compression: jose.DEFLATE}).WithHeader("zip", "GZ"), claimsJSON), ErrInvalid},
		{"claims not JSON", foreign(t, jose.A256KW, jose.A256CBC_HS512, key, deflate, []byte("hello")), ErrInvalid},
		{"claims wrong types", foreign(t, jose.A256KW, jose.A256CBC_HS512, key, deflate, []byte(`{"id":"1","exp":9999999999}`)), ErrInvalid},
		{"claims without exp", foreign(t, jose.A256KW, jose.A256CBC_HS512, key, deflate, []byte(`{"id":1,"table":"user"}`)), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Verify(tt.tok, t0, 0)
			if err == nil {
				t.Fatalf("verified: %+v", c)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Fatalf("claims returned with error: %+v", c)
			}
			if len(tt.tok) > 8 && strings.Contains(err.Error(), tt.tok) {
				t.Fatal("error quotes the token")
			}
		})
	}

	// Control: with go-jose building the same shape Mint does, Verify
	// accepts, so the refusals above are about the shape, not the helper.
	if _, err := r.Verify(foreign(t, jose.A256KW, jose.A256CBC_HS512, key, deflate, claimsJSON), t0, 0); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
}

func TestNewRing(t *testing.T) {
	k := mustKey(t)
	tests := []struct {
		name string
		keys [][]byte
		ok   bool
	}{
		{"none", nil, false},
		{"nil key", [][]byte{nil}, false},
		{"short", [][]byte{make([]byte, KeySize-1)}, false},
		{"long", [][]byte{make([]byte, KeySize+1)}, false},
		{"AES-128 size", [][]byte{make([]byte, 16)}, false},
		{"good then short", [][]byte{k, k[:16]}, false},
		{"one", [][]byte{k}, true},
		{"three", [][]byte{k, mustKey(t), mustKey(t)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRing(tt.keys...)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && r.Len() != len(tt.keys) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(tt.keys))
			}
			if !tt.ok && r != nil {
				t.Fatal("ring returned with error")
			}
		})
	}
	var nilRing *Ring
	if nilRing.Len() != 0 {
		t.Fatal("nil ring Len != 0")
	}
	if _, err := nilRing.Mint(validClaims()); err == nil {
		t.Fatal("nil ring minted")
	}
}

func TestNewRingCopiesKeys(t *testing.T) {
	k := mustKey(t)
	orig := append([]byte(nil), k...)
	r := mustRing(t, k)
	before := mustMint(t, r, validClaims())
	for i := range k {
		k[i] ^= 0xff
	}
	if _, err := r.Verify(before, t0, 0); err != nil {
		t.Fatalf("token minted before the caller changed its buffer: %v", err)
	}
	after := mustMint(t, r, validClaims())
	if _, err := mustRing(t, orig).Verify(after, t0, 0); err != nil {
		t.Fatalf("ring minted with the caller's changed buffer: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key sizes %d, %d", len(a), len(b))
	}
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, KeySize)) {
		t.Fatal("keys are not random")
	}
}

func TestErrorsQuoteNothing(t *testing.T) {
	key := mustKey(t)
	r := mustRing(t, key)
	c := validClaims()
	c.Extras = map[string]any{"secret": make(chan int)}
	_, err := r.Mint(c)
	if err == nil {
		t.Fatal("unencodable claims minted")
	}
	if strings.Contains(err.Error(), "chan") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks claim details: %v", err)
	}
	_, err = NewRing(key[:31])
	if err == nil || strings.Contains(err.Error(), string(key[:31])) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key[:31])) {
		t.Fatalf("NewRing error = %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	old := mustMint(t, mustRing(t, oldKey), validClaims())
	r := mustRing(t, newKey, oldKey)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				c := validClaims()
				c.ID = int64(g*1000 + i)
				c.Extras = map[string]any{"g": float64(g)}
				tok, err := r.Mint(c)
				if err != nil {
					errs <- err
					return
				}
				got, err := r.Verify(tok, t0, 0)
				if err != nil || !reflect.DeepEqual(got, c) {
					errs <- errors.New("own token did not round trip")
					return
				}
				if got, err := r.Verify(old, t0, 0); err != nil || got.ID != 42 {
					errs <- errors.New("old-key token failed under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkMint(b *testing.B) {
	r := mustRing(b, mustKey(b))
	c := validClaims()
	c.Extras = map[string]any{"role": "admin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	keys := [][]byte{mustKey(b), mustKey(b), mustKey(b)}
	r := mustRing(b, keys...)
	c := validClaims()
	c.Extras = map[string]any{"role": "admin"}
	for _, bc := range []struct {
		name string
		by   *Ring
	}{
		{"newest", mustRing(b, keys[0])},
		{"oldest-of-3", mustRing(b, keys[2])},
		{"unknown-key", mustRing(b, mustKey(b))},
	} {
		tok := mustMint(b, bc.by, c)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := r.Verify(tok, t0, 0)
				if (err != nil) != (bc.name == "unknown-key") {
					b.Fatal(err)
				}
			}
		})
	}
}
