package argon2

import "runtime"

// Memory is the working memory of one Argon2id computation at a time, kept
// for the next. The zero value is ready to use; it allocates on first use and
// whenever a computation needs a different number of blocks than the last
// (it then holds the new size). A Memory is not safe for concurrent use and
// must not be copied after first use.
//
// Between computations it holds the blocks of the last one. Those are not
// the password, and with two or more passes (time >= 2) every block has
// been rewritten by a pass that depends on the whole first pass, so they do
// not offer a cheaper way to test a guess than computing the hash.
//
// On Linux the blocks are a mapping of their own, outside the Go heap (so
// they do not raise the collector's heap target), that asks for transparent
// huge pages (mapBlocks). Free returns the mapping at once; a Memory dropped
// without Free returns it when the garbage collector finds it unreachable.
type Memory struct {
	blocks []block
	mapped *mapping // where blocks live, when outside the Go heap
}

// IDKey is the package-level IDKey computed in m.
func (m *Memory) IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKeyIn(m, argon2id, password, salt, nil, nil, time, memory, threads, keyLen)
}

// Size is the number of bytes m holds.
func (m *Memory) Size() uint64 { return uint64(len(m.blocks)) * blockLength * 8 }

// Free returns the memory m holds to the operating system (or, where it
// came from the Go heap, to the collector). m is empty afterwards and may be
// used again. It must not be called while a computation uses m.
func (m *Memory) Free() {
	m.blocks = nil
	if m.mapped != nil {
		m.mapped.unmap()
		m.mapped = nil
	}
}

// blocksFor returns n blocks to compute in: m's own when it has exactly n,
// otherwise (or when m is nil) freshly allocated ones, which m keeps.
// Reused blocks are not zeroed and need not be: deriveKeyIn's first pass
// overwrites every block before reading it. The caller keeps m reachable
// (runtime.KeepAlive) for as long as it uses the blocks, since an
// unreachable Memory's mapping is unmapped.
func (m *Memory) blocksFor(n uint32) []block {
	if m == nil {
		return make([]block, n)
	}
	if uint32(len(m.blocks)) != n {
		m.Free() // let the old size go before allocating the new
		if m.blocks, m.mapped = mapBlocks(n); m.mapped == nil {
			m.blocks = make([]block, n)
		}
	}
	return m.blocks
}

// keepAlive is runtime.KeepAlive, named for what it guards here: m's
// mapping stays mapped until this call.
func (m *Memory) keepAlive() { runtime.KeepAlive(m) }
