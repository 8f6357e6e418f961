package argon2

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the transparent huge page size on amd64 and (with 4 KiB base
// pages) arm64.
const hugePage = 2 << 20

// mmapPtr is unix.MmapPtr; tests make it fail.
var mmapPtr = unix.MmapPtr

// A mapping is anonymous memory mapped for one Memory's blocks.
type mapping struct {
	addr    unsafe.Pointer
	size    uintptr
	cleanup runtime.Cleanup
}

// mapBlocks maps n blocks starting at a huge-page boundary and advises the
// kernel to back them with transparent huge pages. That advice matters with
// the kernel's default THP mode, "madvise": the Go heap does not give it
// (since Go 1.21.1), so the 19 MiB of a default hash sit in about 4,900
// 4 KiB pages, more than the CPU's TLB holds, and a data-dependent reference
// could cost a page walk on top of its cache miss. On the Zen 5 of the
// docs/performance.md's figures that made no measurable difference to a warm hash, but
// the first hash in new memory took 15 ms instead of 73 (BenchmarkIDKey/
// fresh): the kernel faults in ten huge pages instead of ~4,900 small ones.
// Where THP is off, the advice is ignored and the mapping is ordinary
// memory.
//
// It returns a nil mapping if the kernel refuses the mapping; the caller
// then allocates from the Go heap.
func mapBlocks(n uint32) ([]block, *mapping) {
	size := uintptr(n) * blockLength * 8
	// Map one huge page more than needed and unmap what lies outside the
	// aligned range, so that the blocks start on a huge-page boundary.
	// (unix.Mmap and unix.Munmap would refuse to unmap part of a mapping.)
	raw, err := mmapPtr(-1, 0, nil, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil
	}
	head := (hugePage - uintptr(raw)%hugePage) % hugePage
	if head > 0 {
		_ = unix.MunmapPtr(raw, head)
	}
	addr := unsafe.Add(raw, head)
	if tail := hugePage - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(addr, size), tail)
	}
	mem := unsafe.Slice((*byte)(addr), size)
	// Refused only by kernels without THP: the memory still works.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	m := &mapping{addr: addr, size: size}
	m.cleanup = runtime.AddCleanup(m, unmap, mem)
	return unsafe.Slice((*block)(addr), n), m
}

// unmap returns the mapping at once, instead of when it becomes unreachable.
func (m *mapping) unmap() {
	m.cleanup.Stop()
	unmap(unsafe.Slice((*byte)(m.addr), m.size))
}

func unmap(mem []byte) { _ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))) }
