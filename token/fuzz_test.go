package token

import (
	"testing"
	"time"
)

// fuzzKey is the ring key of FuzzVerify. It is fixed so that the checked-in
// corpus (testdata/fuzz/FuzzVerify) can hold tokens this very key sealed:
// they are expired or not yet valid at fuzzNow, so that mutations explore
// real decryption, decompression and claim parsing, yet no input may pass.
var fuzzKey = []byte("xanoauth-fuzz-key-0123456789abcd")

// fuzzNow is a year after t0: tokens minted around t0 have expired.
var fuzzNow = t0.Add(365 * 24 * time.Hour)

// FuzzVerify feeds arbitrary strings to Ring.Verify: it must never panic,
// never accept anything (no valid token exists for fuzzKey at fuzzNow), and
// never return claims with an error.
func FuzzVerify(f *testing.F) {
	ring := mustRing(f, fuzzKey)
	other := mustRing(f, mustKey(f))
	// Fresh tokens each run, besides the corpus: expired, not yet valid,
	// sealed with another key, and without exp.
	c := validClaims()
	f.Add(mustMint(f, ring, c))
	late := validClaims()
	late.NotBefore, late.Expiry = fuzzNow.Unix()+3600, fuzzNow.Unix()+7200
	f.Add(mustMint(f, ring, late))
	fresh := validClaims()
	fresh.IssuedAt, fresh.NotBefore, fresh.Expiry = fuzzNow.Unix(), fuzzNow.Unix(), fuzzNow.Unix()+3600
	f.Add(mustMint(f, other, fresh))
	noExp := validClaims()
	noExp.Expiry = 0
	f.Add(mustMint(f, ring, noExp))
	f.Add("")
	f.Add("....")

	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := ring.Verify(tok, fuzzNow, 0)
		if err == nil {
			t.Fatalf("Verify accepted %q: %+v", tok, claims)
		}
		if claims.ID != 0 || claims.Table != "" || claims.SID != "" || claims.Expiry != 0 || claims.Extras != nil {
			t.Fatalf("Verify returned claims with error %v: %+v", err, claims)
		}
		if len(err.Error()) > 64 {
			t.Fatalf("error %q is not one of the fixed errors", err)
		}
	})
}
