//go:build amd64 && gc && !purego

package argon2

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	upstream "golang.org/x/crypto/argon2"
	"golang.org/x/sys/cpu"
)

func randomBlock(r *mrand.Rand) *block {
	var b block
	for i := range b {
		b[i] = r.Uint64()
	}
	return &b
}

// TestFillBlockAVX2 compares the AVX2 compression with upstream's generic
// Go code on random blocks, in both modes and with out aliasing in1 (as
// the address generator calls it).
func TestFillBlockAVX2(t *testing.T) {
	needAVX2(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 2000 {
		in1, in2, old := randomBlock(r), randomBlock(r), randomBlock(r)
		for _, xor := range []bool{false, true} {
			want, got := *old, *old
			processBlockGeneric(&want, in1, in2, xor)
			fillBlockAVX2(&got, in1, in2, xor, nil)
			if got != want {
				t.Fatalf("block %d, xor %v: AVX2 differs from the generic code at word %d", i, xor, firstDiff(&got, &want))
			}

			want, got = *in1, *in1
			processBlockGeneric(&want, &want, in2, xor)
			fillBlockAVX2(&got, &got, in2, xor, nil)
			if got != want {
				t.Fatalf("block %d, xor %v, out = in1: AVX2 differs from the generic code at word %d", i, xor, firstDiff(&got, &want))
			}
		}
	}
}

// withoutAVX2 makes the rest of tb run upstream's SSE4.1 code; it skips
// tb on CPUs without AVX2, where every test and benchmark runs that code.
func withoutAVX2(tb testing.TB) {
	needAVX2(tb)
	useAVX2 = false
	tb.Cleanup(func() { useAVX2 = true })
}

func firstDiff(a, b *block) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestSSE4Path runs whole hashes through upstream's SSE4.1 code, which
// CPUs without AVX2 use, and compares them with x/crypto: with AVX2
// present, the other tests never reach it.
func TestSSE4Path(t *testing.T) {
	withoutAVX2(t)
	var m Memory
	for _, c := range []struct {
		time, memory uint32
		threads      uint8
	}{{2, 19456, 1}, {1, 64, 1}, {3, 256, 2}} {
		pw := []byte(fmt.Sprintf("sse4 %d", c.memory))
		salt := []byte("somesaltsomesalt")
		got := m.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
		want := upstream.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
		if !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d: SSE4.1 path differs from x/crypto", c.time, c.memory, c.threads)
		}
	}
}

func BenchmarkFillBlock(b *testing.B) {
	r := mrand.New(mrand.NewPCG(1, 2))
	in1, in2, out := randomBlock(r), randomBlock(r), randomBlock(r)
	b.Run("avx2", func(b *testing.B) {
		for b.Loop() {
			fillBlockAVX2(out, in1, in2, true, nil)
		}
	})
	b.Run("sse4", func(b *testing.B) {
		for b.Loop() {
			processBlockXOR(out, in1, in2)
		}
	})
}

// BenchmarkIDKeySSE4 is BenchmarkIDKey's reused case on upstream's SSE4.1
// code: compare it with BenchmarkIDKey/reused for what AVX2 gains.
func BenchmarkIDKeySSE4(b *testing.B) {
	withoutAVX2(b)
	pw, salt := []byte("password"), []byte("somesaltsomesalt")
	var m Memory
	m.IDKey(pw, salt, 2, 19456, 1, 32)
	for b.Loop() {
		m.IDKey(pw, salt, 2, 19456, 1, 32)
	}
}

// TestPrefetchAddress: the block fillBlockAVX2 prefetches is the one
// indexAlpha will pick as the next block's reference.
func TestPrefetchAddress(t *testing.T) {
	needAVX2(t)
	r := mrand.New(mrand.NewPCG(3, 4))
	const lanes, segments = 64, 16
	B := make([]block, lanes)
	for i := range B {
		B[i] = *randomBlock(r)
	}
	for i := range 500 {
		n, slice := uint32(r.IntN(3)), uint32(r.IntN(syncPoints))
		index := uint32(1 + r.IntN(segments-2)) // the block computed now; index+1 is next
		if n == 0 && slice == 0 && index < 2 {
			index = 2
		}
		offset := slice*segments + index
		plan := prefetchPlan{base: &B[0], lanes: lanes}
		plan.m, plan.s = refWindow(segments, n, slice, index+1)
		fillBlockAVX2(&B[offset], &B[offset-1], &B[r.IntN(int(offset))], n > 0, &plan)
		want := indexAlpha(B[offset][0], lanes, segments, 1, n, slice, 0, index+1)
		if plan.addr != uintptr(unsafe.Pointer(&B[want])) {
			t.Fatalf("case %d (n=%d slice=%d index=%d): prefetched block %d, indexAlpha picks %d",
				i, n, slice, index, (plan.addr-uintptr(unsafe.Pointer(&B[0])))/unsafe.Sizeof(B[0]), want)
		}
	}
}

// needAVX2 skips tb where the AVX2 code does not run, unless
// XANOAUTH_REQUIRE_AVX2=1 (.ci/run sets it on CPUs with AVX2), where a
// skip would hide that the self-test turned the code off.
func needAVX2(tb testing.TB) {
	tb.Helper()
	if useAVX2 {
		return
	}
	if os.Getenv("XANOAUTH_REQUIRE_AVX2") == "1" {
		tb.Fatalf("XANOAUTH_REQUIRE_AVX2=1 but the AVX2 code is off: %s (CPU has AVX2: %v)", Implementation(), cpu.X86.HasAVX2)
	}
	tb.Skipf("the AVX2 code does not run here: %s", Implementation())
}

// TestAVX2SelfTest: the start-up check accepts the AVX2 code and refuses
// one that differs from upstream's in a single bit.
func TestAVX2SelfTest(t *testing.T) {
	if !avx2SelfTest(processBlockAsFill) {
		t.Fatal("the self-test refuses upstream's own code")
	}
	broken := func(out, in1, in2 *block, xor bool, pf *prefetchPlan) {
		processBlockGeneric(out, in1, in2, xor)
		out[77] ^= 1 << 13
	}
	if avx2SelfTest(broken) {
		t.Fatal("the self-test accepts a block function that is wrong in one bit")
	}
	needAVX2(t)
	if !avx2SelfTest(fillBlockAVX2) {
		t.Fatal("the AVX2 code fails the self-test")
	}
}

func processBlockAsFill(out, in1, in2 *block, xor bool, _ *prefetchPlan) {
	processBlockGeneric(out, in1, in2, xor)
}

// TestImplementationSwitch: XANOAUTH_ARGON2=upstream at start runs
// x/crypto's code, and Implementation says so (a child process: the
// switch is read once, at init).
func TestImplementationSwitch(t *testing.T) {
	if os.Getenv("XANOAUTH_ARGON2_CHILD") == "1" {
		if useAVX2 || !strings.HasPrefix(Implementation(), "sse4.1 (x/crypto") && !strings.HasPrefix(Implementation(), "generic") {
			t.Fatalf("with %s=upstream: useAVX2=%v, %q", EnvImplementation, useAVX2, Implementation())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestImplementationSwitch$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XANOAUTH_ARGON2_CHILD=1", EnvImplementation+"=upstream", "XANOAUTH_REQUIRE_AVX2=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if cpu.X86.HasAVX2 && !useAVX2 && os.Getenv(EnvImplementation) == "" {
		t.Errorf("AVX2 CPU, no switch, but the AVX2 code is off: %s", Implementation())
	}
}
