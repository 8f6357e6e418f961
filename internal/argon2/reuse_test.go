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

// poisonPool leaves n buffers of the given size (in KiB, as IDKey's memory
// after upstream's rounding to a multiple of 4×threads) in the pool, every
// word set to fill, so that a hash reusing one would show any word it failed
// to overwrite before reading.
func poisonPool(memory uint32, n int, fill uint64) {
	for range n {
		b := make([]block, memory)
		for i := range b {
			for j := range b[i] {
				b[i][j] = fill
			}
		}
		putBlocks(b)
	}
}

// TestReusedMemory is the reason this fork is safe: hashes computed in
// poisoned, reused buffers equal upstream's, for the default parameters and
// for several lane counts and passes.
func TestReusedMemory(t *testing.T) {
	cases := []struct {
		time, memory uint32
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
			before := reuses.Load()
			for i, fill := range []uint64{0, ^uint64(0), 0x0123456789abcdef} {
				poisonPool(c.memory, 4, fill)
				pw := []byte(fmt.Sprintf("password %d", i))
				salt := make([]byte, 16)
				rand.Read(salt)
				got := IDKey(pw, salt, c.time, c.memory, c.threads, 32)
				want := upstream.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
				if !bytes.Equal(got, want) {
					t.Fatalf("fill %#x: got %s, upstream %s", fill, hex.EncodeToString(got), hex.EncodeToString(want))
				}
			}
			// Under -race sync.Pool drops a quarter of what it is given;
			// with 12 poisoned buffers for 3 hashes, none reused would
			// mean the pool is not used at all.
			if reuses.Load() == before {
				t.Fatal("no hash reused a pooled buffer; the test exercised nothing")
			}
		})
	}
}

// TestMatchesUpstream compares random inputs and parameters with upstream,
// from several goroutines at once so that buffers move between hashes of
// different sizes and lane counts (run it with -race).
func TestMatchesUpstream(t *testing.T) {
	const workers, perWorker = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				got := IDKey(pw, salt, time, memory, threads, keyLen)
				want := upstream.IDKey(pw, salt, time, memory, threads, keyLen)
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("t=%d m=%d p=%d len=%d: got %x, upstream %x", time, memory, threads, keyLen, got, want)
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

// FuzzMatchesUpstream: any password, salt and small parameters give the
// same key as upstream.
func FuzzMatchesUpstream(f *testing.F) {
	f.Add([]byte("password"), []byte("somesaltsomesalt"), uint8(2), uint16(64), uint8(1), uint8(32))
	f.Fuzz(func(t *testing.T, pw, salt []byte, time uint8, memory uint16, threads uint8, keyLen uint8) {
		tm := uint32(time%4) + 1
		th := threads%4 + 1
		mem := uint32(memory % 1024)
		kl := uint32(keyLen%64) + 4
		got := IDKey(pw, salt, tm, mem, th, kl)
		want := upstream.IDKey(pw, salt, tm, mem, th, kl)
		if !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: got %x, upstream %x", tm, mem, th, kl, got, want)
		}
	})
}

// BenchmarkIDKey compares one xanoauth-default hash (m=19 MiB, t=2, p=1)
// with upstream's, alone and from every CPU at once.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("password"), []byte("somesaltsomesalt")
	impls := []struct {
		name string
		f    func(pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	}{{"reused", IDKey}, {"upstream", upstream.IDKey}}
	for _, impl := range impls {
		// One hash first, so that the figures are those of a server that
		// has hashed before (the fork's pool holds a buffer by then).
		impl.f(pw, salt, 2, 19456, 1, 32)
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.f(pw, salt, 2, 19456, 1, 32)
			}
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					impl.f(pw, salt, 2, 19456, 1, 32)
				}
			})
		})
	}
}

// TestIdleMemoryReleased: the kept memory is released once hashing stops,
// after two garbage collections, so an idle server does not hold
// hash_concurrency × 19 MiB forever.
func TestIdleMemoryReleased(t *testing.T) {
	const n = 72 // a size no other test uses
	putBlocks(make([]block, n))
	putBlocks(make([]block, n))
	runtime.GC()
	runtime.GC()
	before := reuses.Load()
	getBlocks(n)
	if reuses.Load() != before {
		t.Fatal("a buffer survived two garbage collections in the pool")
	}
}
