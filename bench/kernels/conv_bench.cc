// conv_bench: the conv family (oneDNN, NHWC activations, PyTorch weights) on
// the convolutions of a DDPM-style UNet at 32x32 (batch 64, base 64
// channels), fp32 and bf16: ms per call, GFLOP/s and the fraction of the
// dtype's GEMM peak measured in the same run (OpenBLAS sgemm for fp32, as
// the trainer's MFU; oneDNN bf16 GEMM for bf16), for forward (+bias),
// backward data and backward weights (+bias).
//
// Then the weight-layout experiment on the 64->64 3x3 shape: oneDNN 2.6 has
// only its reference convolution for plain (OC,IC,KH,KW) weights, so the
// op reorders the weights into the primitive's blocked layout on every call;
// the lines print that reorder's cost next to the convolution's, and the
// reference convolution on plain weights (at a smaller batch: it is slow).
// Not run by ctest.
#include <omp.h>

#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/common/timing.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/dnnl_conv.h"
#include "kernels/cpu/peak.h"
#include "kernels/device.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/linear.h"

ABSL_FLAG(int, threads, 2, "OpenMP threads");
ABSL_FLAG(int, B, 64, "batch size");
ABSL_FLAG(int, repeats, 5, "timed repeats per op (the minimum is reported)");
ABSL_FLAG(bool, layout_experiment, true, "also time the weight reorder and plain-weight conv");
ABSL_FLAG(bool, cpu_time, false,
          "time everything, the GEMM peaks included, with the calling thread's CPU clock "
          "(needs --threads=1; robust on a machine shared with other jobs)");

namespace anvil::kernels {
namespace {

struct Shape {
  const char* name;
  cpu::ConvGeometry g;
};

// A device buffer of n elements of dtype t with small deterministic values.
void* Filled(Device& d, size_t n, DType t, std::vector<void*>& owned) {
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i)
    host[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  void* p = d.Alloc(n * DTypeSize(t));
  Convert(d, Flat(p, t, n), Flat(host.data(), n));
  owned.push_back(p);
  return p;
}

double Gflops(double flops, double ms) { return flops / (ms * 1e6); }

// The peak definition of peak.h (C = A B^T, 2048^3, F32 through OpenBLAS
// sgemm, BF16 inputs with fp32 output through oneDNN) via the linear op,
// timed with the bench's clock so that --cpu_time ratios compare like with like.
double LinearPeakGflops(Device& d, DType dt, bool cpu_time) {
  constexpr int64_t n = 2048;
  std::vector<void*> owned;
  const TensorView a = View(Filled(d, n * n, dt, owned), dt, {n, n});
  const TensorView b = View(Filled(d, n * n, dt, owned), dt, {n, n});
  const TensorView c = View(Filled(d, n * n, DType::kF32, owned), DType::kF32, {n, n});
  const double ms = bench::BestMs([&] { LinearForward(d, c, a, b, TensorView{}); }, 3, cpu_time);
  for (void* q : owned) d.Free(q);
  return Gflops(2.0 * n * n * n, ms);
}

// The reference convolution oneDNN offers for plain oihw weights, forward.
double PlainWeightsForwardMs(const cpu::ConvGeometry& g, int nt, int repeats, bool cpu_time,
                             std::string* impl) {
  using dnnl::memory;
  using Tag = memory::format_tag;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const memory::desc x({g.B, g.C, g.H, g.W}, memory::data_type::f32, Tag::nhwc);
  const memory::desc w({g.OC, g.C, g.KH, g.KW}, memory::data_type::f32, Tag::oihw);
  const memory::desc y({g.B, g.OC, g.OH(), g.OW()}, memory::data_type::f32, Tag::nhwc);
  using F = dnnl::convolution_forward;
  omp_set_num_threads(nt);
  const F::primitive_desc pd(
      F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x, w, y,
              {g.stride_h, g.stride_w}, {g.pad_h, g.pad_w}, {g.pad_h, g.pad_w}),
      eng);
  *impl = pd.impl_info_str();
  memory mx(x, eng), mw(w, eng), my(y, eng);
  F prim(pd);
  return bench::BestMs(
      [&] {
        prim.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}});
        s.wait();
      },
      repeats, cpu_time);
}

int Main() {
  const int nt = absl::GetFlag(FLAGS_threads), B = absl::GetFlag(FLAGS_B),
            reps = absl::GetFlag(FLAGS_repeats);
  const bool cpu_time = absl::GetFlag(FLAGS_cpu_time);
  if (cpu_time && nt != 1) {
    std::fprintf(stderr, "conv_bench: --cpu_time needs --threads=1\n");
    return 1;
  }
  auto dev = MakeCpuDevice(nt);
  Device& d = *dev;
  const double sgemm_peak =
      cpu_time ? LinearPeakGflops(d, DType::kF32, true) : MeasureSgemmPeakGflops(nt);
  const double bf16_peak =
      cpu_time ? LinearPeakGflops(d, DType::kBF16, true) : MeasureBf16GemmPeakGflops(nt);
  std::printf("conv_bench: B=%d threads=%d, NHWC activations, (OC,IC,KH,KW) weights, %s clock\n", B,
              nt, cpu_time ? "thread CPU" : "wall");
  std::printf("cpu %s; %s\n", cpu::CpuModelName().c_str(), cpu::CpuIsaSummary().c_str());
  std::printf("peaks (2048^3 GEMM, same clock): sgemm %.1f GFLOP/s, bf16 %.1f GFLOP/s\n\n",
              sgemm_peak, bf16_peak);

  auto g = [B](int64_t H, int64_t C, int64_t OC, int64_t K, int64_t s, int64_t p) {
    return cpu::ConvGeometry{.B = B,
                             .H = H,
                             .W = H,
                             .C = C,
                             .OC = OC,
                             .KH = K,
                             .KW = K,
                             .stride_h = s,
                             .stride_w = s,
                             .pad_h = p,
                             .pad_w = p};
  };
  const std::vector<Shape> shapes = {
      {"stem 3x3 1->64 @32", g(32, 1, 64, 3, 1, 1)},
      {"res 3x3 64->64 @32", g(32, 64, 64, 3, 1, 1)},
      {"down 3x3/2 64->64 @32", g(32, 64, 64, 3, 2, 1)},
      {"res 3x3 64->128 @16", g(16, 64, 128, 3, 1, 1)},
      {"res 3x3 128->128 @16", g(16, 128, 128, 3, 1, 1)},
      {"skip 1x1 192->128 @16", g(16, 192, 128, 1, 1, 0)},
      {"res 3x3 128->128 @8", g(8, 128, 128, 3, 1, 1)},
      {"out 3x3 64->1 @32", g(32, 64, 1, 3, 1, 1)},
  };
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const bool bf16 = dt == DType::kBF16;
    const double peak = bf16 ? bf16_peak : sgemm_peak;
    std::printf("%-22s %-5s %8s %8s %6s | %8s %8s %6s | %8s %8s %6s  %s\n", "shape", "dtype",
                "fwd ms", "GFLOP/s", "%peak", "bwd-d ms", "GFLOP/s", "%peak", "bwd-w ms", "GFLOP/s",
                "%peak", "oneDNN impl (fwd)");
    for (const Shape& s : shapes) {
      std::vector<void*> owned;
      const cpu::ConvGeometry& c = s.g;
      const int64_t OH = c.OH(), OW = c.OW();
      const size_t nx = c.B * c.H * c.W * c.C, ny = c.B * OH * OW * c.OC,
                   nw = c.OC * c.C * c.KH * c.KW;
      const TensorView x = View(Filled(d, nx, dt, owned), dt, {c.B, c.H, c.W, c.C});
      const TensorView y = View(Filled(d, ny, dt, owned), dt, {c.B, OH, OW, c.OC});
      const TensorView dy = View(Filled(d, ny, dt, owned), dt, {c.B, OH, OW, c.OC});
      const TensorView dx = View(Filled(d, nx, dt, owned), dt, {c.B, c.H, c.W, c.C});
      const TensorView w = View(Filled(d, nw, dt, owned), dt, {c.OC, c.C, c.KH, c.KW});
      const TensorView b = View(Filled(d, c.OC, DType::kF32, owned), DType::kF32, {c.OC});
      const TensorView dw =
          View(Filled(d, nw, DType::kF32, owned), DType::kF32, {c.OC, c.C, c.KH, c.KW});
      const TensorView db = View(Filled(d, c.OC, DType::kF32, owned), DType::kF32, {c.OC});
      Conv2dParams p{.stride_h = static_cast<int>(c.stride_h),
                     .stride_w = static_cast<int>(c.stride_w),
                     .pad_h = static_cast<int>(c.pad_h),
                     .pad_w = static_cast<int>(c.pad_w),
                     .accumulate_dx = false};
      const double fwd = bench::BestMs([&] { Conv2dForward(d, y, x, w, b, p); }, reps, cpu_time);
      const double bwd_d = bench::BestMs(
          [&] { Conv2dBackward(d, dx, TensorView{}, TensorView{}, dy, x, w, p); }, reps, cpu_time);
      const double bwd_w = bench::BestMs(
          [&] { Conv2dBackward(d, TensorView{}, dw, db, dy, x, w, p); }, reps, cpu_time);
      const double f = c.Flops();
      std::printf(
          "%-22s %-5s %8.2f %8.1f %5.1f%% | %8.2f %8.1f %5.1f%% | %8.2f %8.1f %5.1f%%  %s\n",
          s.name, bf16 ? "bf16" : "fp32", fwd, Gflops(f, fwd), 100 * Gflops(f, fwd) / peak, bwd_d,
          Gflops(f, bwd_d), 100 * Gflops(f, bwd_d) / peak, bwd_w, Gflops(f, bwd_w),
          100 * Gflops(f, bwd_w) / peak, cpu::DnnlConvImplName(nt, c, dt));
      for (void* q : owned) d.Free(q);
    }
    std::printf("\n");
  }

  if (absl::GetFlag(FLAGS_layout_experiment)) {
    const cpu::ConvGeometry c = shapes[1].g;
    double fp32_reordered_gflops = 0;
    for (DType dt : {DType::kF32, DType::kBF16}) {
      std::vector<void*> owned;
      const size_t nx = c.B * c.H * c.W * c.C, nw = c.OC * c.C * c.KH * c.KW;
      const TensorView x = View(Filled(d, nx, dt, owned), dt, {c.B, c.H, c.W, c.C});
      const TensorView y = View(Filled(d, nx, dt, owned), dt, {c.B, c.H, c.W, c.OC});
      const TensorView w = View(Filled(d, nw, dt, owned), dt, {c.OC, c.C, c.KH, c.KW});
      const Conv2dParams p = Conv2dSquare(1, 1);
      const double conv =
          bench::BestMs([&] { Conv2dForward(d, y, x, w, TensorView{}, p); }, reps, cpu_time);
      const double reorder = bench::BestMs(
          [&] { cpu::DnnlConvReorderWeightsOnly(nt, c, dt, w.data, dt); }, 20 * reps, cpu_time);
      std::printf(
          "layout %s res 3x3 64->64 @32 B=%d: forward %.3f ms, of which the per-call "
          "weight reorder %.4f ms (%.2f%%)\n",
          dt == DType::kBF16 ? "bf16" : "fp32", B, conv, reorder, 100 * reorder / conv);
      if (dt == DType::kF32) fp32_reordered_gflops = Gflops(c.Flops(), conv);
      for (void* q : owned) d.Free(q);
    }
    cpu::ConvGeometry small = c;
    small.B = 4;
    std::string impl;
    const double plain = PlainWeightsForwardMs(small, nt, 1, cpu_time, &impl);
    std::printf(
        "layout fp32 plain oihw weights (%s), B=4: %.1f ms = %.2f GFLOP/s, vs %.1f "
        "GFLOP/s with reordered weights (above)\n",
        impl.c_str(), plain, Gflops(small.Flops(), plain), fp32_reordered_gflops);
  }
  return 0;
}

}  // namespace
}  // namespace anvil::kernels

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::kernels::Main();
}
