package argon2

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	upstream "golang.org/x/crypto/argon2"
)

// region is one mapping of this process as /proc/self/smaps describes it.
type region struct {
	start, end uintptr
	fields     map[string]string // "AnonHugePages", "VmFlags", ...
}

// regionAt returns the mapping that contains addr, if any.
func regionAt(t *testing.T, addr uintptr) (region, bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var cur *region
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var start, end uintptr
		// A mapping's header starts "start-end "; its fields start "Name:".
		if n, _ := fmt.Sscanf(line, "%x-%x ", &start, &end); n == 2 {
			if cur != nil {
				return *cur, true
			}
			if start <= addr && addr < end {
				cur = &region{start: start, end: end, fields: map[string]string{}}
			}
			continue
		}
		if cur != nil {
			if k, v, ok := strings.Cut(line, ":"); ok {
				cur.fields[k] = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		return *cur, true
	}
	return region{}, false
}

func blocksAddr(m *Memory) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(m.blocks))) }

// TestMappedBlocks: a default-size Memory is a mapping of exactly its
// blocks, starting on a huge-page boundary, advised for huge pages.
func TestMappedBlocks(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skip("kernel without transparent huge pages")
	}
	var m Memory
	defer m.Free()
	m.IDKey([]byte("pw"), []byte("saltsaltsalt"), 2, 19456, 1, 32)
	if m.mapped == nil {
		t.Fatal("blocks were not mapped")
	}
	addr := blocksAddr(&m)
	r, ok := regionAt(t, addr)
	if !ok {
		t.Fatalf("no mapping holds the blocks at %#x", addr)
	}
	if r.start != addr || r.end-r.start != 19456*1024 {
		t.Errorf("mapping %#x-%#x, want %#x and 19456 KiB", r.start, r.end, addr)
	}
	if addr%hugePage != 0 {
		t.Errorf("blocks at %#x: not on a 2 MiB boundary", addr)
	}
	// qemu-user, which CI runs the arm64 tests in, takes madvise as a hint
	// and drops it, so the kernel never sees the advice there.
	if flags := strings.Fields(r.fields["VmFlags"]); !contains(flags, "hg") && os.Getenv("XANOAUTH_EMULATED") == "" {
		t.Errorf("VmFlags %v: no hg (MADV_HUGEPAGE)", flags)
	}
	// Whether the kernel found huge pages depends on the machine's THP mode
	// and fragmentation, not on this code: reported, not asserted.
	t.Logf("AnonHugePages: %s (THP mode: %s)", r.fields["AnonHugePages"], thpMode())
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func thpMode() string {
	b, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return strings.TrimSpace(string(b))
}

// TestFreeUnmaps: Free returns the mapping, and the Memory works again
// afterwards.
func TestFreeUnmaps(t *testing.T) {
	var m Memory
	pw, salt := []byte("pw"), []byte("saltsaltsalt")
	want := upstream.IDKey(pw, salt, 1, 4096, 1, 32)
	m.IDKey(pw, salt, 1, 4096, 1, 32)
	addr := blocksAddr(&m)
	if _, ok := regionAt(t, addr); !ok {
		t.Fatal("blocks not found among the mappings")
	}
	m.Free()
	if r, ok := regionAt(t, addr); ok {
		t.Fatalf("after Free, %#x is still mapped (%#x-%#x)", addr, r.start, r.end)
	}
	if m.Size() != 0 {
		t.Fatalf("after Free, Size() = %d", m.Size())
	}
	if got := m.IDKey(pw, salt, 1, 4096, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("after Free: %x, upstream %x", got, want)
	}
	m.Free()
	m.Free() // twice is harmless
}

// TestUnreachableMemoryUnmapped: a Memory dropped without Free gives its
// mapping back once the collector finds it unreachable.
func TestUnreachableMemoryUnmapped(t *testing.T) {
	addr := func() uintptr {
		m := new(Memory)
		m.IDKey([]byte("pw"), []byte("saltsaltsalt"), 1, 4096, 1, 32)
		return blocksAddr(m)
	}()
	for range 200 {
		runtime.GC()
		if _, ok := regionAt(t, addr); !ok {
			return
		}
		time.Sleep(5 * time.Millisecond) // cleanups run in their own goroutine
	}
	t.Fatalf("%#x still mapped after 200 collections", addr)
}

// TestMemoryKeptAliveWhileHashing: a Memory nobody holds but the running
// computation (new(Memory).IDKey) is not unmapped under it while the
// collector runs all the time. Without deriveKeyIn's keepAlive this
// crashes the test binary.
func TestMemoryKeptAliveWhileHashing(t *testing.T) {
	pw, salt := []byte("pw"), []byte("saltsaltsalt")
	want := upstream.IDKey(pw, salt, 1, 8192, 1, 32)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			runtime.GC()
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for range 30 {
		if got := new(Memory).IDKey(pw, salt, 1, 8192, 1, 32); !bytes.Equal(got, want) {
			t.Fatalf("got %x, upstream %x", got, want)
		}
	}
}

// TestMapRefused: where the kernel refuses the mapping (an address-space
// limit, strict overcommit), Memory computes in Go heap memory instead.
func TestMapRefused(t *testing.T) {
	defer func(f func(int, int64, unsafe.Pointer, uintptr, int, int) (unsafe.Pointer, error)) { mmapPtr = f }(mmapPtr)
	mmapPtr = func(int, int64, unsafe.Pointer, uintptr, int, int) (unsafe.Pointer, error) {
		return nil, syscall.ENOMEM
	}
	var m Memory
	pw, salt := []byte("pw"), []byte("saltsaltsalt")
	if got, want := m.IDKey(pw, salt, 1, 4096, 1, 32), upstream.IDKey(pw, salt, 1, 4096, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("got %x, upstream %x", got, want)
	}
	if m.mapped != nil || m.Size() != 4096*1024 {
		t.Fatalf("mapped %v, Size %d; want heap memory of 4096 KiB", m.mapped, m.Size())
	}
	m.Free()
}
