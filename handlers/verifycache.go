package handlers

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/xanoauth/caddy-xanoauth/token"
)

// Decrypting a JWE (A256KW unwrap, AES-CBC + HMAC-SHA512, inflate) costs
// tens of microseconds; a browser sends the same token on every request.
// verifyCache remembers tokens that verified, so the guard's common case is
// a map lookup. It never holds a failure (an attacker could fill it), an
// entry is only good for the key ring it was verified under, and expiry is
// re-checked on every hit, so caching changes no answer. Revocation is not
// its business: the caller checks it after every verify, cached or not.
//
// Memory bound: at most verifyCacheSize entries (a full shard evicts one
// at random), each a private copy of the token string (≈380 bytes for
// ours; Verify refuses more than token.MaxTokenLength) plus its decoded
// claims and map slot (≈640 bytes with one extra): ≈1 KB per entry, 64 MiB
// when full (TestVerifyCacheMemoryBound measures it). It fills only with
// distinct tokens that verified, each one a login, so only a site with tens
// of thousands of users active within a token lifetime gets near it.
const (
	verifyCacheShards   = 64
	verifyCacheSize     = 65536
	verifyCachePerShard = verifyCacheSize / verifyCacheShards
)

type verifyCache struct {
	seed   maphash.Seed
	shards [verifyCacheShards]verifyShard
}

// verifyShard maps a token's hash to its entry: the one hash that picks
// the shard also finds the entry, and the entry's own copy of the token
// settles a collision (then it is a miss, never a wrong answer).
type verifyShard struct {
	mu sync.RWMutex
	m  map[uint64]verifiedEntry
}

type verifiedEntry struct {
	tok    string
	claims token.Claims
	ring   *token.Ring
}

func newVerifyCache() *verifyCache {
	c := &verifyCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]verifiedEntry)
	}
	return c
}

// slot returns the shard of tok and its key there.
func (c *verifyCache) slot(tok string) (*verifyShard, uint64) {
	h := maphash.String(c.seed, tok)
	return &c.shards[h%verifyCacheShards], h
}

// get returns the claims of tok if it verified under ring and is still
// inside its validity window at now.
func (c *verifyCache) get(tok string, ring *token.Ring, now time.Time, leeway time.Duration) (token.Claims, bool) {
	sh, h := c.slot(tok)
	sh.mu.RLock()
	e, ok := sh.m[h]
	sh.mu.RUnlock()
	if !ok || e.ring != ring || e.tok != tok {
		return token.Claims{}, false
	}
	lw := int64(leeway / time.Second)
	unix := now.Unix()
	if unix >= e.claims.Expiry+lw || unix+lw < e.claims.NotBefore {
		return token.Claims{}, false // Verify gives the exact error
	}
	return e.claims, true
}

// put remembers a verified token, evicting an arbitrary entry of a full
// shard: a bound on memory matters more than which token pays a miss.
// The entry keeps a copy of tok: tok is usually a substring of a request
// header, and a Cookie header can be a megabyte that the cache must not
// keep alive.
func (c *verifyCache) put(tok string, ring *token.Ring, claims token.Claims) {
	sh, h := c.slot(tok)
	e := verifiedEntry{strings.Clone(tok), claims, ring}
	sh.mu.Lock()
	if _, ok := sh.m[h]; !ok && len(sh.m) >= verifyCachePerShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[h] = e
	sh.mu.Unlock()
}

func (c *verifyCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// verify checks a token, from the cache when it can. The claims of a hit
// share their Extras map with the cache and with other requests: callers
// read them, never modify them.
//
// Every token that verifies is also reported to the hasher as foreground
// traffic, so that a login storm leaves processors for authenticated
// requests (password/foreground.go). Failures are not reported: junk
// tokens must not be a cheap way to slow everyone's logins down.
func (s *Service) verify(raw string) (token.Claims, error) {
	ring := s.Keys()
	now := s.now()
	s.cacheOnce.Do(func() { s.cache = newVerifyCache() })
	c, ok := s.cache.get(raw, ring, now, s.Leeway)
	if !ok {
		var err error
		if c, err = ring.Verify(raw, now, s.Leeway); err != nil {
			return c, err
		}
		s.cache.put(raw, ring, c)
	}
	if s.Hasher != nil {
		s.Hasher.Foreground()
	}
	return c, nil
}
