//go:build !amd64 || purego || !gc

package argon2

// Without the AVX2 assembly, blocks are computed as upstream computes them.

func fillBlock(out, in1, in2 *block, _ *prefetchPlan) { processBlock(out, in1, in2) }

func fillBlockXOR(out, in1, in2 *block, _ *prefetchPlan) { processBlockXOR(out, in1, in2) }

// EnvImplementation is the switch that selects x/crypto's block code on
// amd64 (fill_amd64.go); here that code always runs.
const EnvImplementation = "XANOAUTH_ARGON2"

// Implementation names the block code hashes run here, for the log.
func Implementation() string { return "generic (x/crypto)" }
