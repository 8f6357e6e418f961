//go:build !linux

package argon2

// mapping is empty where Memory's blocks come from the Go heap.
type mapping struct{}

func (*mapping) unmap() {}

// mapBlocks maps nothing outside Linux, where huge-page advice is not to be
// had the same way: Memory allocates from the Go heap.
func mapBlocks(uint32) ([]block, *mapping) { return nil, nil }
