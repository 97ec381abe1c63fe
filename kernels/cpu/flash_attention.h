// Flash-style multi-head attention on the CPU (forward + backward), fp32 and
// bf16, over strided (B,T,heads,HS) views, with grouped-query heads.
//
// Invariants:
//  - No (T,T) buffer is ever made: scores live in per-thread (64,64) tiles,
//    softmax is computed online over key tiles (FlashAttention-2), and the
//    backward recomputes P from q, k and the saved row log-sum-exp.
//  - All accumulation is fp32; bf16 outputs are rounded once (round to
//    nearest even). bf16 tile products run bf16 x bf16 on AVX512-BF16 CPUs
//    (P and dS rounded to bf16 as operands, flash_attention_pairs.cc), else
//    on inputs widened to fp32 tile by tile.
//  - Scratch comes from a grow-only pool owned by the calling thread:
//    forward uses fixed per-thread tiles (independent of T); backward adds
//    five (T, HS) fp32 strips per thread, so FlashAttentionScratchBytes(nt, d)
//    is ~20*T*HS bytes per thread plus tiles: linear in T, never T x T.
//  - Results are bitwise identical for any thread count: every output element
//    has exactly one writer, which sums in a fixed order (see the .cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace anvil::kernels::cpu {

struct AttentionDims {
  int B = 0, T = 0;     // batch, sequence (queries and keys have the same T)
  int NH = 0, NKV = 0;  // query heads, key/value heads; NH % NKV == 0 (GQA: query head h uses
                        // kv head h / (NH/NKV))
  int HS = 0;           // head size
  bool causal = true;
  float scale = 0;  // 0 means 1/sqrt(HS)
};

// A (B,T,heads,HS) tensor addressed with strides in ELEMENTS; the HS dim is
// contiguous. Element (b,t,h,d) is at data + b*sb + t*st + h*sh + d. Packed
// GPT qkv (B,T,3C) is three such views into one buffer (st = 3C, sh = HS,
// offsets 0, C, 2C), so no copy is needed.
struct HeadsView {
  void* data = nullptr;
  int64_t sb = 0, st = 0, sh = 0;
};

// out = softmax(scale * Q K^T [+ causal mask]) V. q/k/v/out of dtype F32 or
// BF16 (all the same); lse (B,NH,T) fp32: the row log-sum-exp (of the scaled
// scores) saved for backward. Allocates nothing beyond fixed per-thread tiles
// (no T x T buffer); runs on nt OpenMP threads.
void FlashAttentionForward(int nt, const AttentionDims& d, DType dtype, HeadsView out, HeadsView q,
                           HeadsView k, HeadsView v, float* lse);

// Gradients are ACCUMULATED (+=) into dq, dk, dv (same dtype as the inputs;
// for bf16 read, add in fp32, round). Recomputes P from q, k and lse; uses
// D = rowsum(dout * out). Under GQA, dk/dv sum over the query heads of a
// group.
void FlashAttentionBackward(int nt, const AttentionDims& d, DType dtype, HeadsView dq, HeadsView dk,
                            HeadsView dv, HeadsView dout, HeadsView q, HeadsView k, HeadsView v,
                            HeadsView out, const float* lse);

// Bytes of scratch the two calls use at most for these dims and threads
// (fixed tiles), for tests/asserts.
size_t FlashAttentionScratchBytes(int nt, const AttentionDims& d);

namespace flash_internal {
// Test hooks on the calling thread's scratch pool: the bytes it holds now,
// and freeing it (so a test can watch what one call allocates).
size_t ScratchPoolBytes();
void ReleaseScratchPool();
// Whether bf16 calls may take the AVX512-BF16 tiles where the CPU has them
// (default true; false forces the widened tiles, so tests compare the two).
void AllowBf16Pairs(bool allow);
}  // namespace flash_internal

}  // namespace anvil::kernels::cpu
