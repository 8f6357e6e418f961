//go:build amd64 && gc && !purego

package argon2

import (
	"os"

	"golang.org/x/sys/cpu"
)

// useAVX2 selects fillBlockAVX2, which computes a block with 256-bit
// vectors where upstream's SSE4.1 code uses 128-bit ones: a 19 MiB hash
// takes about half the time on CPUs that have AVX2 (BenchmarkIDKey).
// Tests set it to false to check the SSE4.1 path on the same machine.
// init turns it off when the environment asks for upstream's code or the
// self-test fails.
var useAVX2 = cpu.X86.HasAVX2

// avx2Refused says why the AVX2 code is off on a CPU that has AVX2 ("" when
// it is on, or the CPU has none).
var avx2Refused string

// EnvImplementation names the environment variable that, set to
// "upstream", makes this package run x/crypto's own block code even where
// the AVX2 code would run: the switch for a machine where it is suspected.
const EnvImplementation = "XANOAUTH_ARGON2"

func init() {
	if !useAVX2 {
		return
	}
	if os.Getenv(EnvImplementation) == "upstream" {
		useAVX2, avx2Refused = false, EnvImplementation+"=upstream"
		return
	}
	if !avx2SelfTest(fillBlockAVX2) {
		// A hash computed wrongly here would not verify on another
		// machine (or after this switch): users would be locked out the
		// day the store moves. Upstream's code is the reference.
		useAVX2, avx2Refused = false, "self-test failed: the AVX2 code differs from upstream's on this CPU"
	}
}

// avx2SelfTest compares fill (fillBlockAVX2) with upstream's generic code
// on a few fixed pseudo-random blocks, in both modes and with out aliasing
// in1, as TestFillBlockAVX2 does at length. It costs a few microseconds at
// start.
func avx2SelfTest(fill func(out, in1, in2 *block, xor bool, pf *prefetchPlan)) bool {
	var in1, in2, old block
	x := uint64(0x9e3779b97f4a7c15)
	next := func() uint64 { // splitmix64: fixed, with every bit in play
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	for range 4 {
		for i := range in1 {
			in1[i], in2[i], old[i] = next(), next(), next()
		}
		for _, xor := range []bool{false, true} {
			want, got := old, old
			processBlockGeneric(&want, &in1, &in2, xor)
			fill(&got, &in1, &in2, xor, nil)
			if got != want {
				return false
			}
			want, got = in1, in1
			processBlockGeneric(&want, &want, &in2, xor)
			fill(&got, &got, &in2, xor, nil)
			if got != want {
				return false
			}
		}
	}
	return true
}

// Implementation names the block code hashes run here, for the log:
// "avx2", "sse4.1 (x/crypto)" or "generic (x/crypto)", with the reason
// when the AVX2 code is off on a CPU that has it.
func Implementation() string {
	switch {
	case useAVX2:
		return "avx2"
	case useSSE4 && avx2Refused != "":
		return "sse4.1 (x/crypto; avx2 off: " + avx2Refused + ")"
	case useSSE4:
		return "sse4.1 (x/crypto)"
	}
	return "generic (x/crypto)"
}

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
