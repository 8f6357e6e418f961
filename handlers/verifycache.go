package handlers

import (
	"hash/maphash"
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
// Memory bound: at most verifyCacheSize entries, each the token string
// (≈400 bytes for ours) plus its claims: ≈10 MB when full.
const (
	verifyCacheShards   = 16
	verifyCacheSize     = 16384
	verifyCachePerShard = verifyCacheSize / verifyCacheShards
)

type verifyCache struct {
	seed   maphash.Seed
	shards [verifyCacheShards]verifyShard
}

type verifyShard struct {
	mu sync.RWMutex
	m  map[string]verifiedEntry
}

type verifiedEntry struct {
	claims token.Claims
	ring   *token.Ring
}

func newVerifyCache() *verifyCache {
	c := &verifyCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]verifiedEntry)
	}
	return c
}

func (c *verifyCache) shard(tok string) *verifyShard {
	return &c.shards[maphash.String(c.seed, tok)%verifyCacheShards]
}

// get returns the claims of tok if it verified under ring and is still
// inside its validity window at now.
func (c *verifyCache) get(tok string, ring *token.Ring, now time.Time, leeway time.Duration) (token.Claims, bool) {
	sh := c.shard(tok)
	sh.mu.RLock()
	e, ok := sh.m[tok]
	sh.mu.RUnlock()
	if !ok || e.ring != ring {
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
func (c *verifyCache) put(tok string, ring *token.Ring, claims token.Claims) {
	sh := c.shard(tok)
	sh.mu.Lock()
	if len(sh.m) >= verifyCachePerShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[tok] = verifiedEntry{claims, ring}
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

// verify checks a token, from the cache when it can.
func (s *Service) verify(raw string) (token.Claims, error) {
	ring := s.Keys()
	now := s.now()
	s.cacheOnce.Do(func() { s.cache = newVerifyCache() })
	if c, ok := s.cache.get(raw, ring, now, s.Leeway); ok {
		return c, nil
	}
	c, err := ring.Verify(raw, now, s.Leeway)
	if err == nil {
		s.cache.put(raw, ring, c)
	}
	return c, err
}
