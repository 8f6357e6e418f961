package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MetaUpdate replaces the meta value under name with fn(old) in one write
// transaction (old is nil when absent), so read-modify-write cycles such
// as key rotation cannot lose a concurrent update. An error from fn aborts
// the update and is returned unchanged.
func (b *Bolt) MetaUpdate(ctx context.Context, name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validMetaName(name); err != nil {
		return nil, err
	}
	var out []byte
	err := b.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		var old []byte
		if v := meta.Get([]byte(name)); v != nil {
			old = bytes.Clone(v)
		}
		v, err := fn(old)
		if err != nil {
			return err
		}
		out = bytes.Clone(v)
		return meta.Put([]byte(name), out)
	})
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", name, err)
	}
	return out, nil
}
