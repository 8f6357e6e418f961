package xanoauth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/xanoauth/caddy-xanoauth/handlers"
	"github.com/xanoauth/caddy-xanoauth/store"
)

// A token keeps the exp it was minted with, so after token_ttl is
// shortened, tokens of the old, longer lifetime stay valid until then: a
// log-out-everywhere must be remembered, and a retired key keep
// verifying, for that long, not for the new lifetime. The store keeps,
// per table, the longest token_ttl a running config has had. It is
// recorded when a config starts, not when it is provisioned: Caddy
// provisions a config before it knows it will run, and one it abandons
// never minted a token (a typo such as `token_ttl 8760h` in a reload that
// fails must not make cutoffs and retired keys last a year).

func lifetimeMetaName(table string) string { return "longest_token_ttl/" + table }

// loadTokenLifetimes sets on each table, as LongestTokenTTL, the longest
// token_ttl recorded for it.
func loadTokenLifetimes(ctx context.Context, st store.Store, tables map[string]*handlers.Table) error {
	for name, t := range tables {
		v, err := st.MetaGet(ctx, lifetimeMetaName(name))
		if err != nil {
			return fmt.Errorf("table %q: reading its longest token lifetime: %w", name, err)
		}
		n, err := parseLifetime(v)
		if err != nil {
			return fmt.Errorf("table %q: %w", name, err)
		}
		t.LongestTokenTTL = max(t.LongestTokenTTL, n)
	}
	return nil
}

// recordTokenLifetimes records each table's token_ttl as its longest if
// it is longer than the one recorded. The tables themselves need no
// change: their MaxTokenTTL already counts their own token_ttl, and
// requests may be reading them.
func recordTokenLifetimes(ctx context.Context, st store.Store, tables map[string]*handlers.Table) error {
	for name, t := range tables {
		_, err := st.MetaUpdate(ctx, lifetimeMetaName(name), func(old []byte) ([]byte, error) {
			longest, err := parseLifetime(old)
			if err != nil {
				longest = 0 // an unreadable value is replaced
			}
			return strconv.AppendInt(nil, int64(max(longest, t.TokenTTL)/time.Second), 10), nil
		})
		if err != nil {
			return fmt.Errorf("table %q: recording its token lifetime: %w", name, err)
		}
	}
	return nil
}

// parseLifetime reads a stored lifetime in seconds; nil is none.
func parseLifetime(v []byte) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("stored token lifetime %q is unreadable", v)
	}
	return time.Duration(n) * time.Second, nil
}
