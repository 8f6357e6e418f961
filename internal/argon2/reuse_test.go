package argon2

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"testing"

	upstream "golang.org/x/crypto/argon2"
)

// poisoned returns a Memory of n blocks with every word set to fill, so
// that a computation reusing it would show any word it read before
// overwriting. Its blocks are where a Memory's own would be (mapped, on
// Linux).
func poisoned(n uint32, fill uint64) *Memory {
	m := new(Memory)
	m.blocksFor(n)
	for i := range m.blocks {
		for j := range m.blocks[i] {
			m.blocks[i][j] = fill
		}
	}
	return m
}

// TestReusedMemory is the reason the copy is safe: keys computed in
// poisoned memory equal upstream's, for the default parameters and for
// several lane counts and passes, and the memory really was reused.
func TestReusedMemory(t *testing.T) {
	cases := []struct {
		time, memory uint32 // memory: a multiple of 4×threads, so no rounding
		threads      uint8
	}{
		{2, 19456, 1}, // xanoauth's default
		{1, 64, 1},
		{3, 256, 2},
		{2, 512, 4},
		{1, 1024, 8},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("t=%d,m=%d,p=%d", c.time, c.memory, c.threads), func(t *testing.T) {
			for i, fill := range []uint64{0, ^uint64(0), 0x0123456789abcdef} {
				m := poisoned(c.memory, fill)
				first := &m.blocks[0]
				pw := []byte(fmt.Sprintf("password %d", i))
				salt := make([]byte, 16)
				rand.Read(salt)
				got := m.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
				want := upstream.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
				if !bytes.Equal(got, want) {
					t.Fatalf("fill %#x: got %s, upstream %s", fill, hex.EncodeToString(got), hex.EncodeToString(want))
				}
				if &m.blocks[0] != first {
					t.Fatal("the computation allocated instead of using the Memory's blocks")
				}
			}
		})
	}
}

// TestMemoryResizes: a Memory handed computations of different sizes
// allocates for each new size, keeps the last, and every key is right.
func TestMemoryResizes(t *testing.T) {
	var m Memory
	pw, salt := []byte("pw"), []byte("saltsaltsalt")
	for _, c := range []struct {
		memory  uint32
		threads uint8
		blocks  int // after upstream's rounding
	}{{64, 1, 64}, {100, 2, 96}, {64, 1, 64}, {64, 1, 64}, {5, 1, 8}} {
		got := m.IDKey(pw, salt, 2, c.memory, c.threads, 32)
		if want := upstream.IDKey(pw, salt, 2, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Fatalf("m=%d p=%d: got %x, upstream %x", c.memory, c.threads, got, want)
		}
		if len(m.blocks) != c.blocks || m.Size() != uint64(c.blocks)*1024 {
			t.Fatalf("m=%d p=%d: Memory holds %d blocks (%d bytes), want %d", c.memory, c.threads, len(m.blocks), m.Size(), c.blocks)
		}
	}
}

// TestMatchesUpstream compares random inputs and parameters with upstream,
// each goroutine reusing its own Memory across sizes and lane counts, and
// the package-level IDKey too (run it with -race).
func TestMatchesUpstream(t *testing.T) {
	const workers, perWorker = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m Memory
			r := mrand.New(mrand.NewPCG(uint64(w), 42))
			for range perWorker {
				threads := uint8(1 + r.IntN(4))
				memory := uint32(8*int(threads) + r.IntN(300))
				time := uint32(1 + r.IntN(3))
				keyLen := uint32(4 + r.IntN(60))
				pw := make([]byte, r.IntN(40))
				salt := make([]byte, 8+r.IntN(24))
				for i := range pw {
					pw[i] = byte(r.Uint32())
				}
				for i := range salt {
					salt[i] = byte(r.Uint32())
				}
				want := upstream.IDKey(pw, salt, time, memory, threads, keyLen)
				for name, got := range map[string][]byte{
					"Memory.IDKey": m.IDKey(pw, salt, time, memory, threads, keyLen),
					"IDKey":        IDKey(pw, salt, time, memory, threads, keyLen),
				} {
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("%s t=%d m=%d p=%d len=%d: got %x, upstream %x", name, time, memory, threads, keyLen, got, want)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// fuzzMemory is reused by every input of FuzzMatchesUpstream, so that each
// computes in memory the previous one left behind.
var fuzzMemory struct {
	sync.Mutex
	Memory
}

// FuzzMatchesUpstream: any password, salt and small parameters give the
// same key as upstream, computed in reused memory.
func FuzzMatchesUpstream(f *testing.F) {
	f.Add([]byte("password"), []byte("somesaltsomesalt"), uint8(2), uint16(64), uint8(1), uint8(32))
	f.Fuzz(func(t *testing.T, pw, salt []byte, time uint8, memory uint16, threads uint8, keyLen uint8) {
		tm := uint32(time%4) + 1
		th := threads%4 + 1
		mem := uint32(memory % 1024)
		kl := uint32(keyLen%64) + 4
		fuzzMemory.Lock()
		got := fuzzMemory.IDKey(pw, salt, tm, mem, th, kl)
		fuzzMemory.Unlock()
		want := upstream.IDKey(pw, salt, tm, mem, th, kl)
		if !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: got %x, upstream %x", tm, mem, th, kl, got, want)
		}
	})
}

// BenchmarkIDKey compares one xanoauth-default hash (m=19 MiB, t=2, p=1) in
// reused memory with upstream's, alone and from every CPU at once.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("password"), []byte("somesaltsomesalt")
	idKey := func(b *testing.B, f func(pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte) {
		b.ReportAllocs()
		for b.Loop() {
			f(pw, salt, 2, 19456, 1, 32)
		}
	}
	parallel := func(b *testing.B, reuse bool) {
		// RunParallel starts GOMAXPROCS goroutines; each takes a Memory
		// warmed up here, outside the timing.
		warm := make(chan *Memory, runtime.GOMAXPROCS(0))
		for range cap(warm) {
			m := new(Memory)
			m.IDKey(pw, salt, 2, 19456, 1, 32)
			warm <- m
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			f := upstream.IDKey
			if reuse {
				f = (<-warm).IDKey
			}
			for pb.Next() {
				f(pw, salt, 2, 19456, 1, 32)
			}
		})
	}
	b.Run("reused", func(b *testing.B) {
		var m Memory
		m.IDKey(pw, salt, 2, 19456, 1, 32) // as a server that has hashed before
		idKey(b, m.IDKey)
	})
	b.Run("reused/parallel", func(b *testing.B) { parallel(b, true) })
	// The first hash in new memory, as after the Hasher dropped its memory
	// for idleness: the kernel faults the memory in (with huge pages, in
	// 2 MiB pages; without, in ~4,900 4 KiB ones).
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			m := new(Memory)
			m.IDKey(pw, salt, 2, 19456, 1, 32)
			m.Free()
		}
	})
	b.Run("upstream", func(b *testing.B) { idKey(b, upstream.IDKey) })
	b.Run("upstream/parallel", func(b *testing.B) { parallel(b, false) })
}

// TestRefWindow: with one lane, refWindow gives indexAlpha's window, so
// that phi with it finds the same reference for any first word.
func TestRefWindow(t *testing.T) {
	r := mrand.New(mrand.NewPCG(5, 6))
	for range 20000 {
		segments := uint32(2 + r.IntN(5000))
		lanes := segments * syncPoints
		n, slice := uint32(r.IntN(3)), uint32(r.IntN(syncPoints))
		index := uint32(1 + r.IntN(int(segments)-1))
		if n == 0 && slice == 0 && index < 2 {
			continue // the first two blocks are not computed this way
		}
		rand := r.Uint64()
		m, s := refWindow(segments, n, slice, index)
		if got, want := phi(rand, m, s, 0, lanes), indexAlpha(rand, lanes, segments, 1, n, slice, 0, index); got != want {
			t.Fatalf("segments=%d n=%d slice=%d index=%d: phi with refWindow = %d, indexAlpha = %d", segments, n, slice, index, got, want)
		}
	}
}
