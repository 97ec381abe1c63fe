// Every op family on the CUDA device against the CPU device, F32 and BF16,
// forward and backward (op_parity.h: inputs identical on both devices,
// gradients pre-filled so += is compared, tolerances stated there). Shapes
// are small and odd-sized so tails and partial blocks are exercised. Skips
// cleanly where there is no CUDA device.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kernels/cuda/cuda_device.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/concat.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/image.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "tests/kernels/op_parity.h"

namespace anvil::kernels {
namespace {

using testing::OpCase;
using testing::Tol;
using Views = std::vector<TensorView>;
constexpr DType kF32 = DType::kF32, kBF16 = DType::kBF16;

// Param "cuda": the CUDA device against the CPU (skips without a GPU).
// Param "cpu": a 1-thread CPU device against the 2-thread one, which runs
// every case of this file through the harness and the ops' view checks on
// any machine, so a malformed case fails in CPU CI rather than first on a
// lent GPU.
class CudaParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cpu_ = MakeCpuDevice(2);
    if (GetParam() == "cpu") {
      other_ = MakeCpuDevice(1);
      return;
    }
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP()
          << "no CUDA device (CudaDeviceCount() == 0): CPU-vs-CUDA op comparisons need a GPU";
    }
    other_ = MakeCudaDevice(0);
  }
  void Run(OpCase& c, const OpCase::Fn& fn) { c.Run(*cpu_, *other_, fn); }
  std::unique_ptr<Device> cpu_, other_;
};

INSTANTIATE_TEST_SUITE_P(Devices, CudaParityTest, ::testing::Values("cuda", "cpu"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// The harness can fail: a 0.1% difference between the devices is reported.
TEST(OpParityHarness, ReportsADifference) {
  auto a = MakeCpuDevice(1), b = MakeCpuDevice(2);
  OpCase c("scale");
  const int x = c.Output(DType::kF32, {100});
  EXPECT_NONFATAL_FAILURE(c.Run(*a, *b,
                                [&](Device& d, const std::vector<TensorView>& v) {
                                  Scale(d, v[x], d.threads() == 1 ? 1.0f : 1.001f);
                                }),
                          "tensor 0");
}

// Rows [0,F) and [F,2F) of an (N,2F) buffer: the two halves SwiGLU reads.
TensorView Half(const TensorView& v, int64_t N, int64_t F, int which) {
  return Offset(Strided(v.data, v.dtype, {N, F}, {2 * F, 1}), which * F);
}

TEST_P(CudaParityTest, Elementwise) {
  for (DType t : {kF32, kBF16}) {
    const int64_t n = 1003;
    OpCase c(std::string("elementwise ") + std::string(DTypeName(t)));
    const int a = c.Input(t, {n}), b = c.Input(kF32, {n});
    const int sum = c.Output(t, {n}), acc = c.Output(t, {n}), sc = c.Output(t, {n});
    const int g = c.Output(t, {n}), dg = c.Output(t, {n}), s = c.Output(t, {n}),
              ds = c.Output(t, {n});
    const int x = c.Input(t, {n}, -6.0f, 6.0f), dy = c.Input(t, {n});
    Run(c, [&](Device& d, const Views& v) {
      Add(d, v[sum], v[a], v[b]);
      Accumulate(d, v[acc], v[b]);
      Scale(d, v[sc], 0.37f);
      GeluForward(d, v[g], v[x]);
      GeluBackward(d, v[dg], v[x], v[dy]);
      SiluForward(d, v[s], v[x]);
      SiluBackward(d, v[ds], v[x], v[dy]);
    });
  }
}

TEST_P(CudaParityTest, SwiGlu) {
  for (DType t : {kF32, kBF16}) {
    const int64_t N = 37, F = 45;
    OpCase c(std::string("swiglu ") + std::string(DTypeName(t)));
    const int gu = c.Input(t, {N, 2 * F}, -5.0f, 5.0f), dy = c.Input(t, {N, F});
    const int out = c.Output(t, {N, F}), dgu = c.Output(t, {N, 2 * F});
    Run(c, [&](Device& d, const Views& v) {
      SwiGluForward(d, v[out], Half(v[gu], N, F, 0), Half(v[gu], N, F, 1));
      SwiGluBackward(d, Half(v[dgu], N, F, 0), Half(v[dgu], N, F, 1), Half(v[gu], N, F, 0),
                     Half(v[gu], N, F, 1), v[dy]);
    });
  }
}

TEST_P(CudaParityTest, Norms) {
  for (DType t : {kF32, kBF16}) {
    for (bool with_bias : {true, false}) {
      const int64_t N = 67, C = 100;
      OpCase c(std::string("norms ") + std::string(DTypeName(t)));
      const int x = c.Input(t, {N, C}, -2.0f, 3.0f), w = c.Input(t, {C}), b = c.Input(t, {C});
      const int dy = c.Input(t, {N, C});
      const int out = c.Output(t, {N, C}, C), mean = c.Output(kF32, {N}, C),
                rstd = c.Output(kF32, {N}, C), dx = c.Output(t, {N, C}, C),
                dw = c.Output(kF32, {C}, N), db = c.Output(kF32, {C}, N);
      const int rout = c.Output(t, {N, C}, C), rrstd = c.Output(kF32, {N}, C),
                rdx = c.Output(t, {N, C}, C), rdw = c.Output(kF32, {C}, N);
      Run(c, [&](Device& d, const Views& v) {
        const TensorView bias = with_bias ? v[b] : TensorView{};
        LayerNormForward(d, v[out], v[mean], v[rstd], v[x], v[w], bias);
        LayerNormBackward(d, v[dx], v[dw], with_bias ? v[db] : TensorView{}, v[dy], v[x], v[w],
                          v[mean], v[rstd]);
        RmsNormForward(d, v[rout], v[rrstd], v[x], v[w]);
        RmsNormBackward(d, v[rdx], v[rdw], v[dy], v[x], v[w], v[rrstd]);
      });
    }
  }
}

TEST_P(CudaParityTest, Linear) {
  const int64_t N = 77, C = 48, OC = 72;
  for (DType t : {kF32, kBF16}) {
    for (DType out_t : {kF32, kBF16}) {
      for (DType bias_t : {kF32, kBF16}) {
        OpCase c(std::string("linear ") + std::string(DTypeName(t)) + " out " +
                 std::string(DTypeName(out_t)) + " bias " + std::string(DTypeName(bias_t)));
        const int x = c.Input(t, {N, C}), w = c.Input(t, {OC, C}), b = c.Input(bias_t, {OC});
        const int dy = c.Input(t, {N, OC});
        const int out = c.Output(out_t, {N, OC}, C), out_nb = c.Output(out_t, {N, OC}, C);
        const int acc = c.Output(kF32, {N, OC}, C);
        const int dx = c.Output(kF32, {N, C}, OC), dx_new = c.Output(t, {N, C}, OC);
        const int dw = c.Output(kF32, {OC, C}, N), db = c.Output(kF32, {OC}, N);
        Run(c, [&](Device& d, const Views& v) {
          LinearForward(d, v[out], v[x], v[w], v[b]);
          LinearForward(d, v[out_nb], v[x], v[w], TensorView{});
          LinearForward(d, v[acc], v[x], v[w], v[b], LinearParams{.accumulate = true});
          LinearBackward(d, v[dx], v[dw], v[db], v[dy], v[x], v[w]);
          LinearBackward(d, v[dx_new], TensorView{}, TensorView{}, v[dy], v[x], v[w],
                         LinearBackwardParams{.accumulate_dx = false});
        });
      }
    }
  }
}

TEST_P(CudaParityTest, Attention) {
  struct Shape {
    int64_t B, T, NH, NKV, HS;
    bool causal, packed;
  };
  for (DType t : {kF32, kBF16}) {
    for (const Shape s :
         {Shape{2, 37, 3, 3, 16, true, true}, Shape{1, 70, 4, 2, 64, true, false},
          Shape{2, 33, 4, 1, 40, false, false}, Shape{1, 5, 2, 2, 128, false, true}}) {
      OpCase c(std::string("attention ") + std::string(DTypeName(t)) + " T=" + std::to_string(s.T));
      const int64_t C = s.NH * s.HS, CKV = s.NKV * s.HS;
      const int qkv = c.Input(t, {s.B, s.T, C + 2 * CKV}, -1.5f, 1.5f);
      const int dy = c.Input(t, {s.B, s.T, s.NH, s.HS});
      const int out = c.Output(t, {s.B, s.T, s.NH, s.HS}, s.T);
      const int lse = c.Output(kF32, {s.B, s.NH, s.T}, s.T);
      const int dqkv = c.Output(t, {s.B, s.T, C + 2 * CKV}, s.T * s.HS);
      // Separate q, k, v buffers when not packed: views of one buffer either
      // way, with the packed row stride or per-tensor contiguous blocks.
      Run(c, [&](Device& d, const Views& v) {
        auto views = [&](const TensorView& base) {
          const int64_t row = C + 2 * CKV;
          if (s.packed) {
            return std::vector<TensorView>{
                Strided(base.data, t, {s.B, s.T, s.NH, s.HS}, {s.T * row, row, s.HS, 1}),
                Offset(Strided(base.data, t, {s.B, s.T, s.NKV, s.HS}, {s.T * row, row, s.HS, 1}),
                       C),
                Offset(Strided(base.data, t, {s.B, s.T, s.NKV, s.HS}, {s.T * row, row, s.HS, 1}),
                       C + CKV)};
          }
          const TensorView q = View(base.data, t, {s.B, s.T, s.NH, s.HS});
          const TensorView k = Offset(View(base.data, t, {s.B, s.T, s.NKV, s.HS}), s.B * s.T * C);
          return std::vector<TensorView>{q, k, Offset(k, s.B * s.T * CKV)};
        };
        const auto x = views(v[qkv]), g = views(v[dqkv]);
        const AttentionParams p{.causal = s.causal};
        AttentionForward(d, v[out], v[lse], x[0], x[1], x[2], p);
        AttentionBackward(d, g[0], g[1], g[2], v[dy], x[0], x[1], x[2], v[out], v[lse], p);
      });
    }
  }
}

TEST_P(CudaParityTest, EmbeddingRopeTimestep) {
  for (DType t : {kF32, kBF16}) {
    const int64_t B = 3, T = 17, C = 40, V = 11, NH = 2, hd = 20;
    OpCase c(std::string("embedding ") + std::string(DTypeName(t)));
    const int ids = c.Ids({B, T}, V), table = c.Input(t, {V, C}), pos = c.Input(t, {T, C});
    const int dy = c.Input(t, {B, T, C});
    const int out = c.Output(t, {B, T, C}), out_np = c.Output(t, {B, T, C});
    const int dtable = c.Output(kF32, {V, C}, B * T), dpos = c.Output(kF32, {T, C}, B);
    const int rope = c.Output(t, {B, T, NH, hd}), drope = c.Output(t, {B, T, NH, hd});
    const int ti = c.Ids({B}, 1000), tf = c.Input(kF32, {B}, 0.0f, 999.0f);
    const int e1 = c.Output(t, {B, 33}), e2 = c.Output(t, {B, 32});
    c.SetTol(e1, Tol{1e-5, 2e-6});  // sin/cos of arguments up to 1e3: libm vs CUDA, a few ulps
    c.SetTol(e2, Tol{1e-5, 2e-6});
    Run(c, [&](Device& d, const Views& v) {
      EmbeddingForward(d, v[out], v[ids], v[table], v[pos]);
      EmbeddingForward(d, v[out_np], v[ids], v[table], TensorView{});
      EmbeddingBackward(d, v[dtable], v[dpos], v[dy], v[ids]);
      RopeForward(d, v[rope], RopeParams{.theta = 500000.0f});
      RopeBackward(d, v[drope]);
      TimestepEmbedding(d, v[e1], v[ti]);
      TimestepEmbedding(
          d, v[e2], v[tf],
          TimestepEmbeddingParams{.flip_sin_to_cos = true, .downscale_freq_shift = 0});
    });
  }
}

TEST_P(CudaParityTest, Losses) {
  for (DType t : {kF32, kBF16}) {
    const int64_t N = 45, Vc = 1000, n = 9001;
    OpCase c(std::string("losses ") + std::string(DTypeName(t)));
    const int logits = c.Input(t, {N, Vc}, -6.0f, 6.0f), tg = c.Ids({N}, static_cast<int>(Vc), 7);
    const int losses = c.Output(kF32, {N}, Vc), probs = c.Output(kF32, {N, Vc}, Vc);
    const int dl = c.Output(t, {N, Vc}, Vc);
    const int pred = c.Input(t, {n}), target = c.Input(kF32, {n});
    const int mse = c.Output(kF32, {1}, n), dpred = c.Output(t, {n});
    Run(c, [&](Device& d, const Views& v) {
      SoftmaxCrossEntropyForward(d, v[losses], v[probs], v[logits], v[tg]);
      SoftmaxCrossEntropyBackward(d, v[dl], v[probs], v[tg], 0.25f);
      MseLossForward(d, v[mse], v[pred], v[target]);
      MseLossBackward(d, v[dpred], v[pred], v[target], 3.0f);
    });
  }
}

TEST_P(CudaParityTest, ImageOps) {
  for (DType t : {kF32, kBF16}) {
    const int64_t B = 2, H = 5, W = 7, C = 24, G = 4, N = H * W, Ca = 9;
    OpCase c(std::string("image ") + std::string(DTypeName(t)));
    const int x = c.Input(t, {B, H, W, C}, -2.0f, 3.0f), dy = c.Input(t, {B, H, W, C});
    const int gw = c.Input(t, {C}), gb = c.Input(kF32, {C});
    const int ada = c.Input(t, {B, 6 * C});  // adaLN vectors: column blocks of one (B,6C)
    const int gout = c.Output(t, {B, H, W, C}, N * C / G),
              gmean = c.Output(kF32, {B, G}, N * C / G), grstd = c.Output(kF32, {B, G}, N * C / G),
              gdx = c.Output(t, {B, H, W, C}, N * C / G), gdw = c.Output(kF32, {C}, B * N),
              gdb = c.Output(kF32, {C}, B * N);
    const int up = c.Output(t, {B, 2 * H, 2 * W, C}), dup = c.Input(t, {B, 2 * H, 2 * W, C});
    const int updx = c.Output(t, {B, H, W, C}, 4);
    const int biased = c.Output(t, {B, H, W, C});
    const int mod = c.Output(t, {B, N, C}), mdx = c.Output(t, {B, N, C}),
              dada = c.Output(t, {B, 6 * C}, N);
    const int gres = c.Output(t, {B, N, C}), gdy = c.Output(t, {B, N, C});
    const int ca = c.Input(t, {B, H, W, Ca}), cb = c.Input(kF32, {B, H, W, C - Ca});
    const int cat = c.Output(t, {B, H, W, C});
    const int cda = c.Output(t, {B, H, W, Ca}), cdb = c.Output(kF32, {B, H, W, C - Ca});
    Run(c, [&](Device& d, const Views& v) {
      const GroupNormParams gp{.groups = static_cast<int>(G)};
      GroupNormForward(d, v[gout], v[gmean], v[grstd], v[x], v[gw], v[gb], gp);
      GroupNormBackward(d, v[gdx], v[gdw], v[gdb], v[dy], v[x], v[gw], v[gmean], v[grstd], gp);
      Upsample2xForward(d, v[up], v[x]);
      Upsample2xBackward(d, v[updx], v[dup]);
      auto col = [&](const TensorView& base, int k) {
        return Offset(Strided(base.data, base.dtype, {B, C}, {6 * C, 1}), k * C);
      };
      AddChannelBias(d, v[biased], col(v[ada], 0));
      AddChannelBiasBackward(d, col(v[dada], 0), v[dy]);
      const TensorView xs = View(v[x].data, t, {B, N, C}), dys = View(v[dy].data, t, {B, N, C});
      ModulateForward(d, v[mod], xs, col(v[ada], 1), col(v[ada], 2));
      ModulateBackward(d, v[mdx], col(v[dada], 1), col(v[dada], 2), dys, xs, col(v[ada], 1));
      GatedResidualForward(d, v[gres], xs, col(v[ada], 3));
      GatedResidualBackward(d, v[gdy], col(v[dada], 3), dys, xs, col(v[ada], 3));
      ConcatChannels(d, v[cat], v[ca], v[cb]);
      ConcatChannelsBackward(d, v[cda], v[cdb], v[dy]);
    });
  }
}

TEST_P(CudaParityTest, Conv2d) {
  struct Shape {
    int64_t B, H, W, C, OC, K;
    int stride, pad;
  };
  for (DType t : {kF32, kBF16}) {
    for (const Shape s : {Shape{2, 9, 11, 8, 16, 3, 1, 1}, Shape{1, 8, 8, 16, 8, 2, 2, 0},
                          Shape{2, 6, 5, 12, 20, 1, 1, 0}, Shape{1, 13, 7, 4, 8, 3, 2, 1}}) {
      const Conv2dParams p = Conv2dSquare(s.stride, s.pad);
      const int64_t OH = Conv2dOutSize(s.H, s.K, s.stride, s.pad);
      const int64_t OW = Conv2dOutSize(s.W, s.K, s.stride, s.pad);
      const int64_t K = s.C * s.K * s.K;
      OpCase c(std::string("conv ") + std::string(DTypeName(t)) + " k" + std::to_string(s.K) +
               " s" + std::to_string(s.stride));
      const int x = c.Input(t, {s.B, s.H, s.W, s.C}), w = c.Input(kF32, {s.OC, s.C, s.K, s.K});
      const int b = c.Input(kF32, {s.OC}), dy = c.Input(t, {s.B, OH, OW, s.OC});
      const int out = c.Output(t, {s.B, OH, OW, s.OC}, K),
                out32 = c.Output(kF32, {s.B, OH, OW, s.OC}, K);
      const int dx = c.Output(t, {s.B, s.H, s.W, s.C}, s.OC * s.K * s.K);
      const int dx32 = c.Output(kF32, {s.B, s.H, s.W, s.C}, s.OC * s.K * s.K);
      const int dw = c.Output(kF32, {s.OC, s.C, s.K, s.K}, s.B * OH * OW);
      const int db = c.Output(kF32, {s.OC}, s.B * OH * OW);
      if (t == kBF16) {
        // cuDNN rounds a bf16 convolution's result to bf16 before the bias is
        // added (and a bf16 weight gradient before it is added to the fp32
        // one): one more bf16 rounding than the CPU, 2^-8 of the value.
        c.SetTol(out, Tol{std::ldexp(1.0, -6), std::ldexp(1.0, -8)});
        c.SetTol(out32, Tol{std::ldexp(1.0, -7), std::ldexp(1.0, -8)});
        c.SetTol(dx, Tol{std::ldexp(1.0, -6), std::ldexp(1.0, -8)});
        c.SetTol(dx32, Tol{std::ldexp(1.0, -7), std::ldexp(1.0, -8)});
        c.SetTol(dw, Tol{std::ldexp(1.0, -7), std::ldexp(1.0, -8)});
      }
      Run(c, [&](Device& d, const Views& v) {
        Conv2dForward(d, v[out], v[x], v[w], v[b], p);
        Conv2dForward(d, v[out32], v[x], v[w], TensorView{}, p);
        Conv2dBackward(d, v[dx], v[dw], v[db], v[dy], v[x], v[w], p);
        Conv2dParams overwrite = p;
        overwrite.accumulate_dx = false;
        Conv2dBackward(d, v[dx32], TensorView{}, TensorView{}, v[dy], v[x], v[w], overwrite);
      });
    }
  }
}

}  // namespace
}  // namespace anvil::kernels
