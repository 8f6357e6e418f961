// xanoauth's addition to this copy of x/crypto/argon2, not upstream code;
// distributed under the same BSD-style terms as the package (LICENSE).

//go:build amd64 && gc && !purego

#include "textflag.h"

// Argon2's compression G(X, Y) = P(X ^ Y) ^ X ^ Y with 256-bit vectors.
// P applies the BlaMka round (BLAKE2b's, with a + b + 2*lo(a)*lo(b) for
// a + b) to each of the block's eight 16-word rows, then to each of its
// eight 16-word columns, in the word order of blamkaGeneric's calls.
//
// Row pass: a row's words v0..v15 sit in four registers A = v0..v3,
// B = v4..v7, C = v8..v11, D = v12..v15, so one G on (A, B, C, D) is four
// column steps; VPERMQ rotates B, C and D for the diagonal steps and back.
// Two rows are processed at once for instruction-level parallelism.
//
// Column pass: column group i (i even) takes words i, i+1 of each row, so
// the 32 bytes at offset 8i of row k hold words 2k, 2k+1 of groups i and
// i+2, one group per 128-bit lane: with Rk = row k's chunk, G on
// (R0, R2, R4, R6) and (R1, R3, R5, R7) are the column steps of both
// groups. For the diagonal steps VPALIGNR pairs the halves of R2/R3 and
// of R6/R7 within each lane, and R4 and R5 swap roles.

// BLAMKA sets a = a + b + 2*lo32(a)*lo32(b) on 64-bit lanes; t is scratch.
#define BLAMKA(a, b, t) \
	VPMULUDQ b, a, t; \
	VPADDQ   b, a, a; \
	VPADDQ   t, a, a; \
	VPADDQ   t, a, a

// G is BLAKE2b's G with BLAMKA additions and rotations right by 32, 24,
// 16 and 63 bits. Y10 and Y11 hold the byte shuffles for 24 and 16.
#define G(a, b, c, d, t) \
	BLAMKA(a, b, t); \
	VPXOR    a, d, d; \
	VPSHUFD  $0xb1, d, d; \
	BLAMKA(c, d, t); \
	VPXOR    c, b, b; \
	VPSHUFB  Y10, b, b; \
	BLAMKA(a, b, t); \
	VPXOR    a, d, d; \
	VPSHUFB  Y11, d, d; \
	BLAMKA(c, d, t); \
	VPXOR    c, b, b; \
	VPSRLQ   $0x3f, b, t; \
	VPADDQ   b, b, b; \
	VPXOR    t, b, b

// ROTATE_ROW rotates a row's b, c and d words by one, two and three lanes
// (ROTATE_ROW($0x39, $0x93, ...): diagonalising) or back
// (ROTATE_ROW($0x93, $0x39, ...)).
#define ROTATE_ROW(pb, pd, b, c, d) \
	VPERMQ pb, b, b; \
	VPERMQ $0x4e, c, c; \
	VPERMQ pd, d, d

// ROUND_ROWS runs the round on two rows: Y0..Y3 and Y4..Y7.
#define ROUND_ROWS \
	G(Y0, Y1, Y2, Y3, Y8); \
	G(Y4, Y5, Y6, Y7, Y9); \
	ROTATE_ROW($0x39, $0x93, Y1, Y2, Y3); \
	ROTATE_ROW($0x39, $0x93, Y5, Y6, Y7); \
	G(Y0, Y1, Y2, Y3, Y8); \
	G(Y4, Y5, Y6, Y7, Y9); \
	ROTATE_ROW($0x93, $0x39, Y1, Y2, Y3); \
	ROTATE_ROW($0x93, $0x39, Y5, Y6, Y7)

// ROUND_COLS runs the round on two column groups, Y0..Y7 = R0..R7.
// VPALIGNR $8, lo, hi, dst sets each lane of dst to (lo's high word,
// hi's low word).
#define ROUND_COLS \
	G(Y0, Y2, Y4, Y6, Y8); \
	G(Y1, Y3, Y5, Y7, Y9); \
	VPALIGNR $8, Y2, Y3, Y12; \
	VPALIGNR $8, Y3, Y2, Y13; \
	VPALIGNR $8, Y7, Y6, Y14; \
	VPALIGNR $8, Y6, Y7, Y15; \
	G(Y0, Y12, Y5, Y14, Y8); \
	G(Y1, Y13, Y4, Y15, Y9); \
	VPALIGNR $8, Y13, Y12, Y2; \
	VPALIGNR $8, Y12, Y13, Y3; \
	VPALIGNR $8, Y14, Y15, Y6; \
	VPALIGNR $8, Y15, Y14, Y7

// LOAD_R sets y to the 32 bytes at off of R = in1 ^ in2.
#define LOAD_R(y, off) \
	VMOVDQU off(AX)(SI*1), y; \
	VPXOR   off(BX)(SI*1), y, y

// STORE_OUT writes y ^ in1 ^ in2 to out at off; STORE_OUT_XOR XORs it
// into out (the passes after the first).
#define STORE_OUT(y, off) \
	VPXOR   off(AX)(SI*1), y, y; \
	VPXOR   off(BX)(SI*1), y, y; \
	VMOVDQU y, off(DX)(SI*1)

#define STORE_OUT_XOR(y, off) \
	VPXOR off(DX)(SI*1), y, y; \
	STORE_OUT(y, off)

// PREFETCH_BLOCK asks for the 16 cache lines of the block at r.
#define PREFETCH_BLOCK(r) \
	PREFETCHT0 (r); \
	PREFETCHT0 64(r); \
	PREFETCHT0 128(r); \
	PREFETCHT0 192(r); \
	PREFETCHT0 256(r); \
	PREFETCHT0 320(r); \
	PREFETCHT0 384(r); \
	PREFETCHT0 448(r); \
	PREFETCHT0 512(r); \
	PREFETCHT0 576(r); \
	PREFETCHT0 640(r); \
	PREFETCHT0 704(r); \
	PREFETCHT0 768(r); \
	PREFETCHT0 832(r); \
	PREFETCHT0 896(r); \
	PREFETCHT0 960(r)

// func fillBlockAVX2(out, in1, in2 *block, xor bool, pf *prefetchPlan)
// Requires: AVX, AVX2
TEXT ·fillBlockAVX2(SB), 0, $1024-40
	MOVQ    out+0(FP), DX
	MOVQ    in1+8(FP), AX
	MOVQ    in2+16(FP), BX
	MOVBQZX xor+24(FP), CX
	LEAQ    r-1024(SP), DI
	VMOVDQU ·rotr24<>(SB), Y10
	VMOVDQU ·rotr16<>(SB), Y11

	// R = in1 ^ in2, through the row rounds, into the frame.
	XORQ SI, SI

rows:
	LOAD_R(Y0, 0)
	LOAD_R(Y1, 32)
	LOAD_R(Y2, 64)
	LOAD_R(Y3, 96)
	LOAD_R(Y4, 128)
	LOAD_R(Y5, 160)
	LOAD_R(Y6, 192)
	LOAD_R(Y7, 224)
	ROUND_ROWS
	VMOVDQU Y0, 0(DI)(SI*1)
	VMOVDQU Y1, 32(DI)(SI*1)
	VMOVDQU Y2, 64(DI)(SI*1)
	VMOVDQU Y3, 96(DI)(SI*1)
	VMOVDQU Y4, 128(DI)(SI*1)
	VMOVDQU Y5, 160(DI)(SI*1)
	VMOVDQU Y6, 192(DI)(SI*1)
	VMOVDQU Y7, 224(DI)(SI*1)
	ADDQ $0x100, SI
	CMPQ SI, $0x400
	JB   rows

	// The column rounds, then out = P(R) ^ in1 ^ in2 (^ out when xor).
	// Each 32-byte piece of out is written after in1's piece at the same
	// offset was read for the last time, so out may be in1.
	XORQ SI, SI

cols:
	VMOVDQU 0(DI)(SI*1), Y0
	VMOVDQU 128(DI)(SI*1), Y1
	VMOVDQU 256(DI)(SI*1), Y2
	VMOVDQU 384(DI)(SI*1), Y3
	VMOVDQU 512(DI)(SI*1), Y4
	VMOVDQU 640(DI)(SI*1), Y5
	VMOVDQU 768(DI)(SI*1), Y6
	VMOVDQU 896(DI)(SI*1), Y7
	ROUND_COLS
	TESTQ CX, CX
	JNZ   colsxor
	STORE_OUT(Y0, 0)
	STORE_OUT(Y1, 128)
	STORE_OUT(Y2, 256)
	STORE_OUT(Y3, 384)
	STORE_OUT(Y4, 512)
	STORE_OUT(Y5, 640)
	STORE_OUT(Y6, 768)
	STORE_OUT(Y7, 896)
	JMP  next

colsxor:
	STORE_OUT_XOR(Y0, 0)
	STORE_OUT_XOR(Y1, 128)
	STORE_OUT_XOR(Y2, 256)
	STORE_OUT_XOR(Y3, 384)
	STORE_OUT_XOR(Y4, 512)
	STORE_OUT_XOR(Y5, 640)
	STORE_OUT_XOR(Y6, 768)
	STORE_OUT_XOR(Y7, 896)

next:
	// After the first column step out[0] is final: prefetch the next
	// block's reference, phi(out[0]) (see prefetchPlan), while the other
	// three steps run.
	TESTQ SI, SI
	JNZ   advance
	MOVQ  pf+32(FP), R8
	TESTQ R8, R8
	JZ    advance
	MOVL  (DX), R9             // p = lo32(out[0])
	IMULQ R9, R9
	SHRQ  $32, R9              // p = p*p >> 32
	MOVQ  8(R8), R10           // m
	IMULQ R10, R9
	SHRQ  $32, R9              // p = p*m >> 32
	MOVQ  16(R8), R11          // s
	ADDQ  R10, R11
	SUBQ  R9, R11
	DECQ  R11                  // s + m - (p+1)
	MOVQ  AX, R12              // DIVQ takes AX and DX
	MOVQ  DX, R13
	MOVQ  R11, AX
	XORL  DX, DX
	DIVQ  24(R8)               // DX = (s + m - (p+1)) % lanes
	SHLQ  $10, DX
	ADDQ  (R8), DX             // the reference block
	MOVQ  DX, 32(R8)
	PREFETCH_BLOCK(DX)
	MOVQ  R12, AX
	MOVQ  R13, DX

advance:
	ADDQ $0x20, SI
	CMPQ SI, $0x80
	JB   cols
	VZEROUPPER
	RET

DATA ·rotr24<>+0(SB)/8, $0x0201000706050403
DATA ·rotr24<>+8(SB)/8, $0x0a09080f0e0d0c0b
DATA ·rotr24<>+16(SB)/8, $0x0201000706050403
DATA ·rotr24<>+24(SB)/8, $0x0a09080f0e0d0c0b
GLOBL ·rotr24<>(SB), RODATA|NOPTR, $32

DATA ·rotr16<>+0(SB)/8, $0x0100070605040302
DATA ·rotr16<>+8(SB)/8, $0x09080f0e0d0c0b0a
DATA ·rotr16<>+16(SB)/8, $0x0100070605040302
DATA ·rotr16<>+24(SB)/8, $0x09080f0e0d0c0b0a
GLOBL ·rotr16<>(SB), RODATA|NOPTR, $32
