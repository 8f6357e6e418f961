// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2 is golang.org/x/crypto/argon2 (v0.58.0) with two
// additions: Memory, working memory that a caller keeps and hands to the
// next hash instead of having every hash allocate, zero and leave to the
// collector; and an AVX2 block function (fill_amd64.s).
//
// Upstream allocates m KiB per call (19 MiB for xanoauth's default), so every
// login paid for zeroing 19 MiB and for about one GC cycle, which in a server
// also marks everything else it holds. With Memory reused, BenchmarkIDKey's
// hash takes 15–25 % less time and logins through Caddy run about 1.25× as
// fast on the 2-CPU benchmark machine (docs/performance.md). Upstream has no
// API for this (golang/go#36634). The caller, not this package, decides how
// many Memory values exist and when they are dropped: package password keeps
// one per hashing slot.
//
// Upstream's amd64 code computes a block with 128-bit SSE4.1 vectors in three
// calls (mix, round, mix). fillBlockAVX2 does it in one, with 256-bit vectors:
// 0.2 µs a block instead of 0.47, and a default hash in about half the time
// (BenchmarkFillBlock, BenchmarkIDKeySSE4 against BenchmarkIDKey/reused). With
// one lane it also prefetches the reference block of the next data-dependent
// block as soon as that is known (prefetchPlan), which takes another 10 % off
// a hash alone and 12–14 % off two at once; TestPrefetchAddress and
// TestRefWindow check the address. CPUs without AVX2 and other architectures
// run upstream's code. TestFillBlockAVX2 compares it with upstream's generic
// code block by block, and on machines with AVX2 every test against x/crypto
// runs it, while TestSSE4Path keeps the SSE4.1 path tested there (.ci/run
// makes those tests fail rather than skip on a CPU with AVX2). A hash
// computed wrongly on some CPU would lock users out the day the store moves
// to another machine, so at start the AVX2 code is also checked against
// upstream's on fixed blocks (avx2SelfTest) and, on a mismatch, upstream's
// code runs; XANOAUTH_ARGON2=upstream asks for it too, and the purego build
// tag leaves all assembly out. Implementation names the code in use.
//
// To make reuse safe, the first pass overwrites each block instead of XORing
// into it: upstream XORs into freshly zeroed memory, which gives the same
// result, but a reused buffer holds the previous hash's blocks. Every block is
// written in the first pass before any block reads it (Argon2 references only
// blocks already computed), so no earlier content can reach the output;
// TestReusedMemory checks that against upstream with poisoned buffers.
//
// The changes to upstream, to re-apply when copying a newer version (which
// TestUpstreamUnchanged asks for when go.mod's x/crypto brings one): Memory
// (memory.go; on Linux its blocks are a mapping advised for huge pages,
// mmap_linux.go) and deriveKeyIn, which computes in it and keeps it alive;
// initBlocks takes the blocks; processBlocks calls fillBlock and
// fillBlockXOR (fill_*.go) with a prefetchPlan (refWindow), names its
// addressing condition (independent), and its first pass calls fillBlock
// instead of fillBlockXOR;
// Key (Argon2i) and the loong64 assembly are left out, so blamka_ref.go's
// build tag no longer names loong64 and blamka_generic.go has no useLSX.
// blake2b.go, blamka_amd64.go and the generated SSE4.1 assembly
// (blamka_amd64.s) are verbatim. Upstream's licence applies (LICENSE here).
package argon2

import (
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// The Argon2 version implemented by this package.
const Version = 0x13

const (
	argon2d = iota
	argon2i
	argon2id
)

// IDKey derives a key from the password, salt, and cost parameters using
// Argon2id returning a byte slice of length keyLen that can be used as
// cryptographic key. The CPU cost and parallelism degree must be greater than
// zero.
//
// For example, you can get a derived key for e.g. AES-256 (which needs a
// 32-byte key) by doing:
//
//	key := argon2.IDKey([]byte("some password"), salt, 1, 2*1024*1024, 4, 32)
//
// The example above uses the first [RFC 9106 Section 4] recommended option.
// If much less memory is available, the second recommended option is time=3,
// memory=64*1024 KiB (64 MiB), and threads=4.
//
// The time parameter specifies the number of passes over the memory and the
// memory parameter specifies the size of the memory in KiB. For example
// memory=2*1024*1024 sets the memory cost to ~2 GiB. The number of threads can
// be adjusted to the numbers of available CPUs. The cost parameters should be
// increased as memory latency and CPU parallelism increases. Remember to get a
// good random salt.
//
// [RFC 9106 Section 4]: https://www.rfc-editor.org/rfc/rfc9106.html#section-4
func IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKey(argon2id, password, salt, nil, nil, time, memory, threads, keyLen)
}

func deriveKey(mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKeyIn(nil, mode, password, salt, secret, data, time, memory, threads, keyLen)
}

// deriveKeyIn is upstream's deriveKey computing in mem's blocks (fresh ones
// when mem is nil).
func deriveKeyIn(mem *Memory, mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, mode)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	B := initBlocks(mem.blocksFor(memory), &h0, memory, uint32(threads))
	processBlocks(B, time, memory, uint32(threads), mode)
	key := extractKey(B, memory, uint32(threads), keyLen)
	mem.keepAlive()
	return key
}

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

func initBlocks(B []block, h0 *[blake2b.Size + 8]byte, memory, threads uint32) []block {
	var block0 [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
	return B
}

func processBlocks(B []block, time, memory, threads uint32, mode int) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32, wg *sync.WaitGroup) {
		var addresses, in, zero block
		// With one lane, the AVX2 code prefetches each data-dependent
		// block's reference block as soon as the block before it has its
		// first word (prefetchPlan).
		plan := prefetchPlan{base: &B[0], lanes: uint64(lanes)}
		// Data-independent addressing (Argon2i, and Argon2id's first half
		// pass): references come from generated address blocks.
		independent := mode == argon2i || (mode == argon2id && n == 0 && slice < syncPoints/2)
		if independent {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(mode)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			if mode == argon2i || mode == argon2id {
				in[6]++
				fillBlock(&addresses, &in, &zero, nil)
				fillBlock(&addresses, &addresses, &zero, nil)
			}
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if independent {
				if index%blockLength == 0 {
					in[6]++
					fillBlock(&addresses, &in, &zero, nil)
					fillBlock(&addresses, &addresses, &zero, nil)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			var pf *prefetchPlan
			if threads == 1 && index+1 < segments && !independent {
				plan.m, plan.s = refWindow(segments, n, slice, index+1)
				pf = &plan
			}
			if n == 0 {
				// Overwrite: B may be a reused buffer (see the package doc).
				fillBlock(&B[offset], &B[prev], &B[newOffset], pf)
			} else {
				fillBlockXOR(&B[offset], &B[prev], &B[newOffset], pf)
			}
			index, offset = index+1, offset+1
		}
		wg.Done()
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			var wg sync.WaitGroup
			for lane := uint32(0); lane < threads; lane++ {
				wg.Add(1)
				go processSegment(n, slice, lane, &wg)
			}
			wg.Wait()
		}
	}

}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

// prefetchPlan lets fillBlockAVX2 prefetch the reference block of the next
// block: with one lane, that block's reference is phi(rand, m, s, 0, lanes)
// where rand is the first word of the block being computed, which the
// column pass writes first. Fetching it then, instead of when the next
// block starts, overlaps the fetch with the rest of this block. addr is
// where the assembly computed the reference to be (tests read it).
type prefetchPlan struct {
	base  *block // the lane's first block
	m, s  uint64 // indexAlpha's window for the next block
	lanes uint64
	addr  uintptr
}

// refWindow is indexAlpha's m and s for the block at index with a single
// lane, where the reference lane is always the block's own.
func refWindow(segments, n, slice, index uint32) (m, s uint64) {
	if n == 0 {
		return uint64(slice*segments + index - 1), 0
	}
	return uint64(3*segments + index - 1), uint64(((slice + 1) % syncPoints) * segments)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
