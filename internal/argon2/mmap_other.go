//go:build !linux

package argon2

// mapping is empty where Memory's blocks come from the Go heap.
type mapping struct{}

func (*mapping) unmap() {}

// mapBlocks maps nothing outside Linux: Memory allocates from the Go heap.
// A mapping would spare only the collector's heap target there (no
// MADV_HUGEPAGE), and only Linux has been measured.
func mapBlocks(uint32) ([]block, *mapping) { return nil, nil }
