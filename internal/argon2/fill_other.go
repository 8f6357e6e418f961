//go:build !amd64 || purego || !gc

package argon2

// Without the AVX2 assembly, blocks are computed as upstream computes them.

func fillBlock(out, in1, in2 *block, _ *prefetchPlan) { processBlock(out, in1, in2) }

func fillBlockXOR(out, in1, in2 *block, _ *prefetchPlan) { processBlockXOR(out, in1, in2) }
