// 2-D convolution on oneDNN's convolution primitives (CPU): forward (+bias),
// backward data, backward weights (+bias), fp32 and bf16, NHWC activations,
// PyTorch (OC, IC, KH, KW) weights.
//
// Invariants:
//  - Activations are the caller's NHWC memory, used in place (oneDNN's jit
//    and brgemm convolutions take nhwc directly): nothing of activation size
//    is copied or reordered.
//  - Weights: given plain (oihw), oneDNN 2.6 only has its reference
//    convolution (ref:any, ~100x slower), so every primitive is created with
//    format_tag::any weights and the caller's (OC,IC,KH,KW) weights are
//    reordered into that layout on each call (the weights change every
//    step; the reorder also converts F32 weights to a bf16 primitive's
//    dtype). conv_bench measures the reorder against the convolution on the
//    UNet shape. Weight gradients come out in the primitive's layout into a
//    per-thread buffer and are reordered back with oneDNN's sum post-op, so
//    they ACCUMULATE into the caller's fp32 (OC,IC,KH,KW) gradient in one pass.
//  - Accumulation is fp32 for every dtype (bf16 is a storage format).
//  - Primitives are created once per (kind, geometry, dtypes, bias, threads)
//    and cached for the life of the process; each calling thread keeps its
//    own memory objects, argument arrays, scratchpad and weight buffers, so a
//    cached call takes no lock (the dnnl_gemm.h scheme, same thread rules:
//    omp_set_num_threads(nt) around creation and execution; inside an OpenMP
//    region a call runs on the calling thread).
//  - Each function returns false, having done nothing, when oneDNN has no
//    convolution for the requested dtypes on the ISA in force (bf16 below
//    AVX-512, or an fp32 convolution with a bf16 output) or only an emulated
//    one (bf16 without bf16 dot products, DnnlHasNativeBf16): the caller widens
//    its operands to fp32 and calls again (kernels/cpu/family_conv.cc). The
//    answer is cached with the primitive. All-fp32 calls always succeed.
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace anvil::kernels::cpu {

struct ConvGeometry {
  int64_t B = 0, H = 0, W = 0, C = 0;                        // input (B,H,W,C)
  int64_t OC = 0, KH = 0, KW = 0;                            // weight (OC,C,KH,KW)
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;  // symmetric padding
  int64_t OH() const { return (H + 2 * pad_h - KH) / stride_h + 1; }
  int64_t OW() const { return (W + 2 * pad_w - KW) / stride_w + 1; }
  // Multiply-adds x 2 of the forward pass (backward data and weights: same).
  double Flops() const {
    return 2.0 * static_cast<double>(B * OH() * OW()) * static_cast<double>(OC * C * KH * KW);
  }
  bool operator==(const ConvGeometry&) const = default;
};

// y (B,OH,OW,OC) = conv(x (B,H,W,C), w (OC,C,KH,KW)) [+ bias (OC)], overwritten.
// x_type F32|BF16 is the compute dtype; w_type, bias_type, y_type F32|BF16.
struct ConvForwardArgs {
  const void* x = nullptr;
  DType x_type = DType::kF32;
  const void* w = nullptr;
  DType w_type = DType::kF32;
  const void* bias = nullptr;  // null: no bias
  DType bias_type = DType::kF32;
  void* y = nullptr;
  DType y_type = DType::kF32;
};
bool DnnlConvForward(int nt, const ConvGeometry& g, const ConvForwardArgs& a);

// dx (B,H,W,C) = conv_transpose(dy (B,OH,OW,OC), w), OVERWRITTEN (callers
// that accumulate go through an fp32 temporary). dy_type is the compute dtype.
struct ConvBackwardDataArgs {
  void* dx = nullptr;
  DType dx_type = DType::kF32;
  const void* dy = nullptr;
  DType dy_type = DType::kF32;
  const void* w = nullptr;
  DType w_type = DType::kF32;
};
bool DnnlConvBackwardData(int nt, const ConvGeometry& g, const ConvBackwardDataArgs& a);

// dw (OC,C,KH,KW) fp32 += x^T * dy over (B,OH,OW); db (OC) fp32 += colsum(dy)
// (db may be null). x and dy share `type`, F32|BF16.
struct ConvBackwardWeightsArgs {
  float* dw = nullptr;
  float* db = nullptr;
  const void* x = nullptr;
  const void* dy = nullptr;
  DType type = DType::kF32;
};
bool DnnlConvBackwardWeights(int nt, const ConvGeometry& g, const ConvBackwardWeightsArgs& a);

// Which implementation oneDNN picked for the forward primitive of this
// geometry and dtype (e.g. "brgconv:avx512_core_bf16"), for benchmarks.
const char* DnnlConvImplName(int nt, const ConvGeometry& g, DType type);

// Benchmark/experiment hook: time only the per-call weight reorder of the
// forward primitive (plain (OC,C,KH,KW) weights of w_type -> the primitive's
// layout), or 0 work when the layouts already agree. Returns false when no
// primitive exists for these dtypes.
bool DnnlConvReorderWeightsOnly(int nt, const ConvGeometry& g, DType type, const void* w,
                                DType w_type);

}  // namespace anvil::kernels::cpu
