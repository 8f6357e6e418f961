//go:build amd64 && gc && !purego

package argon2

import "golang.org/x/sys/cpu"

// useAVX2 selects fillBlockAVX2, which computes a block with 256-bit
// vectors where upstream's SSE4.1 code uses 128-bit ones: a 19 MiB hash
// takes about half the time on CPUs that have AVX2 (BenchmarkIDKey).
// Tests set it to false to check the SSE4.1 path on the same machine.
var useAVX2 = cpu.X86.HasAVX2

// fillBlockAVX2 is processBlock (xor false) or processBlockXOR (xor true)
// in one pass: in1 ^ in2 is loaded once, the row rounds run in a 1 KiB
// frame, and the column rounds write out directly. out may be in1. Unless
// pf is nil, it prefetches the next block's reference (prefetchPlan).
//
//go:noescape
func fillBlockAVX2(out, in1, in2 *block, xor bool, pf *prefetchPlan)

// fillBlock is processBlock, with AVX2 where the CPU has it.
func fillBlock(out, in1, in2 *block, pf *prefetchPlan) {
	if useAVX2 {
		fillBlockAVX2(out, in1, in2, false, pf)
		return
	}
	processBlock(out, in1, in2)
}

// fillBlockXOR is processBlockXOR, with AVX2 where the CPU has it.
func fillBlockXOR(out, in1, in2 *block, pf *prefetchPlan) {
	if useAVX2 {
		fillBlockAVX2(out, in1, in2, true, pf)
		return
	}
	processBlockXOR(out, in1, in2)
}
