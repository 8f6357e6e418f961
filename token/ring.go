package token

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The only algorithms Verify accepts. Listing them explicitly is what keeps
// "none", "dir", RSA or PBES2 headers from ever reaching a key.
var (
	keyAlgs = []jose.KeyAlgorithm{jose.A256KW}
	encAlgs = []jose.ContentEncryption{jose.A256CBC_HS512}
)

// errNoRing stands in for a Ring that was never built, so that a caller
// which forgot to configure keys gets an error instead of a panic.
var errNoRing = errors.New("token: no key ring")

// Ring is an immutable set of keys: the first (newest) mints, all of them
// verify, newest first. Being immutable, it is safe for concurrent use
// without locks; rotation builds a new Ring and swaps the pointer.
type Ring struct {
	keys [][]byte
	// enc is shared by all Mint calls: go-jose's encrypter keeps no
	// per-message state (each Encrypt draws a fresh content key and IV and
	// only reads the encrypter's fields), so one instance serves every
	// goroutine and saves rebuilding it per token.
	enc jose.Encrypter
}

// NewRing builds a ring from keys, newest first. It copies the keys so that
// a caller reusing or zeroing its buffers cannot change a live ring.
func NewRing(keys ...[]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: key ring needs at least one key")
	}
	r := &Ring{keys: make([][]byte, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			// Only the lengths go into the message, never the key.
			return nil, fmt.Errorf("token: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		r.keys[i] = append([]byte(nil), k...)
	}
	// Compression is done by Mint with a pooled writer, and announced
	// with the same "zip":"DEF" header go-jose would set: go-jose builds a
	// new DEFLATE compressor (~1.2 MB) for every token otherwise.
	enc, err := jose.NewEncrypter(
		jose.A256CBC_HS512,
		jose.Recipient{Algorithm: jose.A256KW, Key: r.keys[0]},
		(&jose.EncrypterOptions{}).WithHeader(jose.HeaderKey("zip"), "DEF"),
	)
	if err != nil {
		return nil, fmt.Errorf("token: building encrypter: %w", err)
	}
	r.enc = enc
	return r, nil
}

// Len returns the number of keys, so that callers can report rotation state
// without seeing the keys themselves.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.keys)
}

// Mint encrypts c with the newest key. It does not fill in or check times:
// the caller owns the token's lifetime, but Verify refuses a token without
// exp, so c.Expiry must be set.
func (r *Ring) Mint(c Claims) (string, error) {
	if r == nil {
		return "", errNoRing
	}
	plain, err := json.Marshal(c)
	if err != nil {
		// json errors can quote offending values from Extras; keep them out.
		return "", errors.New("token: claims cannot be encoded as JSON")
	}
	obj, err := r.enc.Encrypt(deflate(plain))
	if err != nil {
		return "", fmt.Errorf("token: encrypting: %w", err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("token: serializing: %w", err)
	}
	return tok, nil
}

// Verify opens tok with the ring's keys and checks its time window at now.
// leeway widens the window on both sides to absorb clock skew; 0 means
// exact, so a token whose exp equals now is already expired. On any error
// the returned Claims are zero, so a caller cannot act on an expired or
// forged token's contents by mistake.
func (r *Ring) Verify(tok string, now time.Time, leeway time.Duration) (Claims, error) {
	if len(tok) > MaxTokenLength || !wellFormed(tok) {
		return Claims{}, ErrMalformed
	}
	obj, err := jose.ParseEncryptedCompact(tok, keyAlgs, encAlgs)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if r == nil {
		return Claims{}, ErrInvalid
	}
	// Decrypt also refuses "crit" headers and unknown "zip" values, and
	// bounds how far DEFLATE may expand the plaintext.
	var plain []byte
	for _, k := range r.keys {
		if plain, err = obj.Decrypt(k); err == nil {
			break
		}
	}
	if err != nil {
		return Claims{}, ErrInvalid
	}
	var c Claims
	if err := json.Unmarshal(plain, &c); err != nil || c.Expiry == 0 {
		// We never mint without exp, so a token lacking one was not ours
		// to begin with and must not live forever.
		return Claims{}, ErrInvalid
	}
	lw := int64(leeway / time.Second)
	unix := now.Unix()
	if unix >= c.Expiry+lw {
		return Claims{}, ErrExpired
	}
	if unix+lw < c.NotBefore {
		return Claims{}, ErrNotYetValid
	}
	return c, nil
}

// wellFormed reports whether tok is five segments of canonical unpadded
// base64url. encoding/base64 skips CR/LF and ignores the unused low bits of
// a segment's last character, so without this check one token would have
// many spellings, and anything keyed by the token string (logs, caches,
// deny lists) could be sidestepped by respelling it.
func wellFormed(tok string) bool {
	segments, start := 0, 0
	for i := 0; i <= len(tok); i++ {
		if i < len(tok) && tok[i] != '.' {
			if sextet(tok[i]) > 63 {
				return false
			}
			continue
		}
		seg := tok[start:i]
		switch len(seg) % 4 {
		case 1:
			return false
		case 2:
			if sextet(seg[len(seg)-1])&0x0f != 0 {
				return false
			}
		case 3:
			if sextet(seg[len(seg)-1])&0x03 != 0 {
				return false
			}
		}
		segments++
		start = i + 1
	}
	return segments == 5
}

// sextet returns the value of a base64url character, or 0xff for any other
// byte.
func sextet(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return 0xff
}

// flateWriters reuses DEFLATE compressors across Mint calls.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // the level go-jose uses
	return w
}}

// deflate compresses p as go-jose's DEFLATE compression does.
func deflate(p []byte) []byte {
	var buf bytes.Buffer
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = w.Write(p) // writing to a bytes.Buffer cannot fail
	_ = w.Close()
	flateWriters.Put(w)
	return buf.Bytes()
}
