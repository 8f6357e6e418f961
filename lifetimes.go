package xanoauth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// rememberTokenLifetimes records in the store, per table, the longest
// token_ttl the table has had, and sets it on the table as
// LongestTokenTTL. A token keeps the exp it was minted with, so after
// token_ttl is shortened, tokens of the old, longer lifetime stay valid
// until then: a log-out-everywhere must be remembered, and a retired key
// keep verifying, for that long, not for the new lifetime.
func rememberTokenLifetimes(ctx context.Context, st store.Store, tables map[string]*handlers.Table) error {
	for name, t := range tables {
		v, err := st.MetaUpdate(ctx, "longest_token_ttl/"+name, func(old []byte) ([]byte, error) {
			longest := int64(t.TokenTTL / time.Second)
			if n, err := strconv.ParseInt(string(old), 10, 64); err == nil && n > longest {
				longest = n
			}
			return strconv.AppendInt(nil, longest, 10), nil
		})
		if err != nil {
			return fmt.Errorf("table %q: recording its token lifetime: %w", name, err)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("table %q: stored token lifetime %q: %w", name, v, err)
		}
		t.LongestTokenTTL = time.Duration(n) * time.Second
	}
	return nil
}
