// Package token mints and verifies xanoauth's access tokens.
//
// A token is a compact JWE whose protected header is exactly
// {"alg":"A256KW","enc":"A256CBC-HS512","zip":"DEF"}: byte for byte what
// Xano issues, so that clients and tools built around Xano's tokens see the
// same shape. The claims are JSON, deflated, then sealed with a random
// content key that is wrapped (AES key wrap) with a 256-bit ring key.
//
// Xano's header carries no "kid", and neither does ours, so a verifier
// cannot tell which key minted a token. Verification therefore tries the
// ring's keys newest first. That stays cheap because AES key unwrap checks
// its own integrity value and fails after a few block operations on a wrong
// key, before any content is decrypted.
//
// The claims are confidential as well as authenticated: Extras may hold
// record fields that clients should not read, so tokens are encrypted
// rather than merely signed.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// Claims are what an access token carries. Times are unix seconds so that
// the JSON matches Xano's and comparisons need no time zone handling.
type Claims struct {
	ID        int64          `json:"id"`               // user id
	Table     string         `json:"table"`            // auth table name, e.g. "user"
	DS        string         `json:"ds"`               // data source, e.g. "live"
	Extras    map[string]any `json:"extras,omitempty"` // privileged record fields, e.g. {"role":"admin"}
	SID       string         `json:"sid"`              // session id
	IssuedAt  int64          `json:"iat"`              // unix seconds
	NotBefore int64          `json:"nbf"`              // unix seconds
	Expiry    int64          `json:"exp"`              // unix seconds
}

// KeySize is the size of every ring key in bytes: A256KW takes a 256-bit
// key-encryption key, and accepting other sizes would silently pick a
// different algorithm.
const KeySize = 32

// MaxTokenLength bounds what Verify will look at. Real tokens are a few
// hundred bytes; the bound stops oversized input from costing base64,
// JSON and AES work before it is refused.
const MaxTokenLength = 8192

// Verification errors. They are fixed values, never wrapped around
// anything, so that logging one cannot leak a token, a key or plaintext,
// and callers can tell them apart with errors.Is.
var (
	// ErrMalformed means the string is not a token of our format at all:
	// not five base64url parts, too long, or a header with another
	// algorithm. It needs no key to decide.
	ErrMalformed = errors.New("token is malformed")
	// ErrInvalid means the string looks like a token but no ring key opens
	// it, it was tampered with, or its claims are unusable.
	ErrInvalid = errors.New("token is invalid")
	// ErrExpired is separate from ErrInvalid because Xano answers an
	// expired token with its own message, and clients react by refreshing.
	ErrExpired = errors.New("token has expired")
	// ErrNotYetValid means nbf lies in the future beyond the leeway,
	// usually a clock skew between issuers.
	ErrNotYetValid = errors.New("token is not valid yet")
)

// GenerateKey returns a new random ring key. It reads crypto/rand because a
// key from a weaker source would make every token forgeable.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("token: generating key: %w", err)
	}
	return k, nil
}
