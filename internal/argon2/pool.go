package argon2

import (
	"sync"
	"sync/atomic"
)

// pools holds, per memory size in blocks, the working memory of finished
// hashes for the next hash of that size. A sync.Pool rather than a fixed free
// list: the garbage collector empties it when hashing stops, so an idle
// server gives the memory back, while under load it holds about as many
// buffers as hashes run at once (xanoauth bounds those by hash_concurrency).
// Stored hashes decide the sizes, so there are as many pools as distinct
// memory costs in the user table: one, or a few after a parameter change.
var pools sync.Map // uint32 -> *sync.Pool of *[]block

// reuses counts buffers taken from a pool, so that tests know a reused
// buffer really was exercised (sync.Pool may drop anything, and does so at
// random under the race detector).
var reuses atomic.Uint64

func getBlocks(n uint32) []block {
	if p, ok := pools.Load(n); ok {
		if b, ok := p.(*sync.Pool).Get().(*[]block); ok {
			reuses.Add(1)
			return *b
		}
	}
	// Fresh memory is zeroed; reused memory is not, and need not be:
	// deriveKey's first pass overwrites every block before reading it.
	return make([]block, n)
}

func putBlocks(b []block) {
	p, _ := pools.LoadOrStore(uint32(len(b)), new(sync.Pool))
	p.(*sync.Pool).Put(&b)
}
