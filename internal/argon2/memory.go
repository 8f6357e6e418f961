package argon2

// Memory is the working memory of one Argon2id computation at a time, kept
// for the next. The zero value is ready to use; it allocates on first use and
// whenever a computation needs a different number of blocks than the last
// (it then holds the new size). A Memory is not safe for concurrent use.
//
// Between computations it holds the blocks of the last one. Those are not
// the password, and with two or more passes (time >= 2) every block has
// been rewritten by a pass that depends on the whole first pass, so they do
// not offer a cheaper way to test a guess than computing the hash.
type Memory struct {
	blocks []block
}

// IDKey is the package-level IDKey computed in m.
func (m *Memory) IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKeyIn(m, argon2id, password, salt, nil, nil, time, memory, threads, keyLen)
}

// Size is the number of bytes m holds.
func (m *Memory) Size() uint64 { return uint64(len(m.blocks)) * blockLength * 8 }

// blocksFor returns n blocks to compute in: m's own when it has exactly n,
// otherwise (or when m is nil) freshly allocated ones, which m keeps.
// Reused blocks are not zeroed and need not be: deriveKeyIn's first pass
// overwrites every block before reading it.
func (m *Memory) blocksFor(n uint32) []block {
	if m == nil {
		return make([]block, n)
	}
	if uint32(len(m.blocks)) != n {
		m.blocks = nil // let the old size go before allocating the new
		m.blocks = make([]block, n)
	}
	return m.blocks
}
