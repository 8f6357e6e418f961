package xanoauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/xanoauth/caddy-xanoauth/store"
	"github.com/xanoauth/caddy-xanoauth/token"
)

// Key rotation. A key that stops signing keeps verifying until every token
// it could have signed has expired (the longest token lifetime of any
// table, plus leeway), then it is dropped. This holds for both sources of
// keys:
//
//   - Generated keys live in the store under keysMetaName, newest first,
//     each with the time it was retired. RotateKeys (admin API) adds a new
//     one.
//   - Configured keys (`key` lines) are rotated by putting a new key first.
//     The store remembers, by fingerprint, the last time each configured
//     key was seen signing: a config with it first records that when it is
//     provisioned, started and stopped, and at every sweep while it runs.
//     Caddy provisions a new config before it knows whether it will run,
//     and keeps the old one running when it does not, so the time a key
//     stopped being first cannot be recorded when a config without it
//     first is merely loaded. A key that is no longer first stops
//     verifying once its tokens have expired, plus one sweep interval (the
//     most a crash can have kept from the record), with a warning to
//     remove it from the config.
const (
	keysMetaName       = "token_keys"
	configKeysMetaName = "config_keys"
)

// storedKey is a generated key as kept in the store.
type storedKey struct {
	Key     []byte `json:"key"`
	Created int64  `json:"created"`
	Retired int64  `json:"retired,omitempty"`
}

// configKeyState is what the store remembers of a configured key, in unix
// seconds.
type configKeyState struct {
	FirstSeen int64 `json:"first_seen"`
	// LastFirst is the last time the key was seen first, i.e. signing.
	LastFirst int64 `json:"last_first,omitempty"`
	// Demoted is when a version before LastFirst existed saw the key no
	// longer first; only stores those versions wrote have it.
	Demoted int64 `json:"demoted,omitempty"`
}

// signedUntil is the latest time the key may have signed a token.
func (s configKeyState) signedUntil() int64 { return max(s.FirstSeen, s.LastFirst, s.Demoted) }

// configuredKeys are the resolved `key` lines of a config, first (signing)
// key first.
type configuredKeys struct {
	raw [][]byte
	fps []string // short sha256 fingerprints, to name keys without showing them
}

// now is the app's clock; tests replace it.
func (a *App) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

// maxTokenLifetime is how long a retired key must keep verifying: the
// longest lifetime any table's tokens have had (loadTokenLifetimes, recordTokenLifetimes).
func (a *App) maxTokenLifetime() time.Duration {
	longest := time.Duration(0)
	for _, t := range a.svc.Tables {
		longest = max(longest, t.MaxTokenTTL())
	}
	return longest + time.Duration(a.Leeway)
}

// loadKeys builds the key ring from the configured keys or, without any,
// from the store, generating and persisting a key the first time.
func (a *App) loadKeys(ctx context.Context, repl *caddy.Replacer, st store.Store) (*token.Ring, error) {
	if len(a.Keys) > 0 {
		return a.loadConfiguredKeys(ctx, repl)
	}
	now := a.now()
	val, err := st.MetaUpdate(ctx, keysMetaName, func(old []byte) ([]byte, error) {
		keys, err := decodeStoredKeys(old)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			k, err := token.GenerateKey()
			if err != nil {
				return nil, err
			}
			a.logger.Info("generated a new token key")
			keys = []storedKey{{Key: k, Created: now.Unix()}}
		}
		return json.Marshal(a.pruneKeys(keys, now))
	})
	if err != nil {
		return nil, fmt.Errorf("loading token keys: %v", err)
	}
	return ringOf(val)
}

// RotateKeys makes a new generated key the signing key; the others keep
// verifying until their tokens have expired. It refuses when keys come
// from the config, where rotation means adding a `key` line.
func (a *App) RotateKeys(ctx context.Context) (int, error) {
	if len(a.Keys) > 0 {
		return 0, errors.New("token keys are set in the config: rotate them by putting a new `key` first")
	}
	now := a.now()
	k, err := token.GenerateKey()
	if err != nil {
		return 0, err
	}
	val, err := a.svc.Store.MetaUpdate(ctx, keysMetaName, func(old []byte) ([]byte, error) {
		keys, err := decodeStoredKeys(old)
		if err != nil {
			return nil, err
		}
		for i := range keys {
			if keys[i].Retired == 0 {
				keys[i].Retired = now.Unix()
			}
		}
		keys = append([]storedKey{{Key: k, Created: now.Unix()}}, keys...)
		return json.Marshal(a.pruneKeys(keys, now))
	})
	if err != nil {
		return 0, fmt.Errorf("rotating token keys: %v", err)
	}
	ring, err := ringOf(val)
	if err != nil {
		return 0, err
	}
	a.svc.SetKeys(ring)
	a.logger.Info("token key rotated", zap.Int("keys", ring.Len()))
	return ring.Len(), nil
}

// refreshKeys drops keys whose tokens have all expired, and records that
// the configured signing key is still signing; the sweeper calls it so
// that a retired key goes away on time even without a restart.
func (a *App) refreshKeys(ctx context.Context, now time.Time) error {
	if a.configKeys != nil {
		// The sweeper warns once, when the ring shrinks, not at every
		// sweep while the config still lists the key.
		ring, err := a.recordSigningKey(ctx, now, false)
		if err != nil {
			return err
		}
		if ring.Len() != a.svc.Keys().Len() {
			a.svc.SetKeys(ring)
			a.logger.Warn("a configured token key is past its lifetime and no longer verifies; remove it from the config",
				zap.Int("keys", ring.Len()))
		}
		return nil
	}
	val, err := a.svc.Store.MetaUpdate(ctx, keysMetaName, func(old []byte) ([]byte, error) {
		keys, err := decodeStoredKeys(old)
		if err != nil || len(keys) == 0 {
			return old, err
		}
		return json.Marshal(a.pruneKeys(keys, now))
	})
	if err != nil {
		return err
	}
	ring, err := ringOf(val)
	if err != nil {
		return err
	}
	if ring.Len() != a.svc.Keys().Len() {
		a.svc.SetKeys(ring)
		a.logger.Info("retired token key dropped", zap.Int("keys", ring.Len()))
	}
	return nil
}

// pruneKeys drops retired keys past their lifetime; the newest key stays.
func (a *App) pruneKeys(keys []storedKey, now time.Time) []storedKey {
	life := a.maxTokenLifetime()
	out := keys[:1]
	for _, k := range keys[1:] {
		if k.Retired == 0 || now.Before(time.Unix(k.Retired, 0).Add(life)) {
			out = append(out, k)
		}
	}
	return out
}

func decodeStoredKeys(data []byte) ([]storedKey, error) {
	if data == nil {
		return nil, nil
	}
	var keys []storedKey
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, errors.New("stored key ring is unreadable")
	}
	return keys, nil
}

func ringOf(data []byte) (*token.Ring, error) {
	keys, err := decodeStoredKeys(data)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("stored key ring is empty")
	}
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		raw[i] = k.Key
	}
	return token.NewRing(raw...)
}

// loadConfiguredKeys resolves the `key` placeholders, records the first
// key as signing and drops keys whose tokens have all expired.
func (a *App) loadConfiguredKeys(ctx context.Context, repl *caddy.Replacer) (*token.Ring, error) {
	ck := &configuredKeys{}
	for i, k := range a.Keys {
		resolved, err := repl.ReplaceOrErr(k, true, true)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i+1, err)
		}
		raw, err := decodeKey(resolved)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i+1, err)
		}
		sum := sha256.Sum256(raw)
		ck.raw = append(ck.raw, raw)
		ck.fps = append(ck.fps, hex.EncodeToString(sum[:8]))
	}
	a.configKeys = ck
	return a.recordSigningKey(ctx, a.now(), true)
}

// recordSigningKey records in the store that the first configured key
// signs at now, and returns the ring of the configured keys whose tokens
// may still be valid; with warn, it logs each key it leaves out.
func (a *App) recordSigningKey(ctx context.Context, now time.Time, warn bool) (*token.Ring, error) {
	ck := a.configKeys
	unix := now.Unix()
	var states map[string]configKeyState
	_, err := a.svc.Store.MetaUpdate(ctx, configKeysMetaName, func(old []byte) ([]byte, error) {
		states = map[string]configKeyState{}
		if old != nil {
			_ = json.Unmarshal(old, &states) // unreadable state starts afresh
		}
		for i, fp := range ck.fps {
			s, seen := states[fp]
			switch {
			case !seen:
				// LastFirst is set even for a key that is not first, so
				// that the state is never taken for an earlier version's
				// (below). signedUntil is FirstSeen either way: a key
				// never first here verifies for a token lifetime, in case
				// it signed elsewhere.
				s.FirstSeen, s.LastFirst = unix, unix
			case s.LastFirst == 0 && s.Demoted == 0:
				// Written by a version that did not record signing: the
				// key was first in the last config that version loaded,
				// and may have signed until now.
				s.LastFirst = unix
			}
			if i == 0 {
				s.LastFirst = max(s.LastFirst, unix)
				s.Demoted = 0
			}
			states[fp] = s
		}
		return json.Marshal(states)
	})
	if err != nil {
		return nil, fmt.Errorf("recording configured keys: %v", err)
	}
	life := int64((a.maxTokenLifetime() + a.sweepInterval()) / time.Second)
	ring := ck.raw[:1:1]
	for i := 1; i < len(ck.raw); i++ {
		if unix >= states[ck.fps[i]].signedUntil()+life {
			if warn {
				a.logger.Warn("a configured token key is past its lifetime and no longer verifies; remove it from the config",
					zap.Int("key", i+1), zap.String("fingerprint", ck.fps[i]))
			}
			continue
		}
		ring = append(ring, ck.raw[i])
	}
	return token.NewRing(ring...)
}

// decodeKey accepts 64 hex digits or base64 (standard or URL alphabet, with
// or without padding) of exactly 32 bytes. Errors never echo the key.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*token.KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == token.KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be %d bytes, written as %d hex digits or base64", token.KeySize, 2*token.KeySize)
}
