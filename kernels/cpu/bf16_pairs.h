// Small bf16 matrix products for attention tiles on CPUs with AVX512-BF16
// (vdpbf16ps: each fp32 lane adds a[2i]*b[2i] + a[2i+1]*b[2i+1]), on
// operands in "pair form", and the packers that make that form.
//
// Pair form: a bf16 matrix X (K x N) is stored as 32-bit words, word (p, n)
// holding X[2p][n] in its low half and X[2p+1][n] in its high half (0 when
// 2p+1 == K): the pairs along the reduction dimension that one vdpbf16ps
// lane consumes. For C (M x N) = A (M x K) B (K x N):
//  - B is in pair form with rows of words contiguous along N (loaded as
//    vectors): word (p, n) at Bp[p * ldb + n].
//  - A is read one word at a time (broadcast), word (m, p) = the pair
//    A[m][2p], A[m][2p+1] at Ap[m * sm + p * sk]: a row-major bf16 A with an
//    even leading dimension lda is already in this form (sm = lda / 2,
//    sk = 1), and so is the pair form of A^T (sm = 1, sk = its ld), which
//    PackPairRows makes from rows of A^T without a transpose.
//
// Invariants: accumulation is fp32, each output element summing its pairs
// in increasing p (so results do not depend on threads or blocking); the
// products need a CPU with AVX512-BF16 (callers check Bf16PairsAvailable()).
#pragma once

#include <cstdint>

namespace anvil::kernels::cpu {

// True when this CPU has AVX512-BF16 and oneDNN's dispatch is not capped
// below it (ONEDNN_MAX_CPU_ISA): the same condition under which bf16 GEMMs
// run natively (DnnlHasNativeBf16), so one setting forces both off.
// ANVIL_BF16_PAIRS=0 in the environment turns these products off alone
// (attention then widens bf16 to fp32), for comparisons.
bool Bf16PairsAvailable();

// C (M x N, fp32, ldc) = alpha * A B (+ C when accumulate); K = 2 * kp.
void PairGemm(int m, int n, int kp, const uint32_t* ap, int64_t sm, int64_t sk, const uint32_t* bp,
              int64_t ldb, float alpha, bool accumulate, float* c, int64_t ldc);

// Pair form of X (rows x cols, row-major, leading dimension ldx): out word
// (p, c) at out[p * ldo + c] for p < ceil(rows / 2). From bf16 or from fp32
// (rounded to nearest even, like F32ToBF16).
void PackPairRows(const uint16_t* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo);
void PackPairRows(const float* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo);

// Pairs along the columns of X (rows x cols, fp32, row-major): out word
// (r, p) = (X[r][2p], X[r][2p+1]) rounded to bf16, at out[r * ldo + p], the
// high half 0 when 2p+1 == cols (a row-major bf16 copy padded to even
// length: an A operand with sm = ldo, sk = 1).
void PackPairColumns(const float* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo);

// Pair form of Y^T for Y (rows x cols) bf16 row-major with cols even and
// ldy even: out word (p, r) = (Y[r][2p], Y[r][2p+1]) at out[p * ldo + r], a
// transpose of 32-bit words.
void PackPairsOfTransposed(const uint16_t* y, int64_t ldy, int rows, int cols, uint32_t* out,
                           int64_t ldo);

}  // namespace anvil::kernels::cpu
