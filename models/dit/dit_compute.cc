// Dit's forward and backward passes (the unit plumbing, arena and batch
// handling are in dit.cc). Shapes: B images, T tokens, N = B*T rows, C
// width, P = p*p*Cin values per patch.
//
// Backward protocol: FinalBackward zeroes d SiLU(c) (acts_.dsilu_c) and
// writes acts_.dres = d(loss)/d(final layer input); each BlockBackward turns
// dres into the gradient of its own input and adds its adaLN's share to
// d SiLU(c); EmbedBackward consumes both.
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/image.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/norm.h"
#include "models/dit/dit.h"

namespace anvil {
namespace {

namespace k = kernels;

// The DiT's timestep features: cos first, frequency shift 0 (models.py
// TimestepEmbedder.timestep_embedding).
constexpr k::TimestepEmbeddingParams kTimestepFeatures{
    .max_period = 10000.0f, .flip_sin_to_cos = true, .downscale_freq_shift = 0.0f, .scale = 1.0f};

}  // namespace

void Dit::EmbedForward(const EmbedParams& w) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, P = DitPatchDim(config_),
                F = config_.freq_dim, N = B * T;
  k::Device& d = *device_;
  const TV xp = Act(acts_.xp_cd, {N, P});
  if (acts_.xp_cd != acts_.xp) k::Convert(d, xp, k::View(acts_.xp, {N, P}));
  // Patch embedding (the p x p stride-p conv as one GEMM), plus positions
  // broadcast over the batch: tokens seen as (1, B, T*C).
  k::LinearForward(d, k::View(acts_.tokens, {N, C}), xp, w.patch_w, w.patch_b);
  const TV pos = w.pos.present() ? w.pos : k::View(acts_.pos, {1, T * C});
  k::AddChannelBias(d, k::View(acts_.tokens, {1, B, T * C}), pos);
  // c = t MLP(sinusoidal(t)) + class_table[label]
  k::TimestepEmbedding(d, Act(acts_.tfreq, {B, F}), k::View(acts_.timesteps, {B}),
                       kTimestepFeatures);
  k::LinearForward(d, Act(acts_.h1, {B, C}), Act(acts_.tfreq, {B, F}), w.t1_w, w.t1_b);
  k::SiluForward(d, Act(acts_.h1s, {B, C}), Act(acts_.h1, {B, C}));
  k::EmbeddingForward(d, k::View(acts_.c, {B, 1, C}), k::View(acts_.labels, {B, 1}), w.table, {});
  k::LinearForward(d, k::View(acts_.c, {B, C}), Act(acts_.h1s, {B, C}), w.t2_w, w.t2_b,
                   {.accumulate = true});
  k::SiluForward(d, Act(acts_.silu_c, {B, C}), k::View(acts_.c, {B, C}));
}

void Dit::BlockForward(int l, const BlockParams& w) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, NH = config_.n_head, N = B * T;
  const Layer& a = acts_.layers[l];
  const float* x = BlockInput(l);
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const k::LayerNormParams ln{.eps = config_.norm_eps};
  const TV ones = k::View(acts_.ones, {C});
  // shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = Linear(SiLU(c))
  k::LinearForward(d, Act(a.mod, {B, 6 * C}), Act(acts_.silu_c, {B, C}), w.ada_w, w.ada_b);
  // Attention half.
  k::LayerNormForward(d, Act(a.ln1, {N, C}), k::View(a.mean1, {N}), k::View(a.rstd1, {N}),
                      k::View(x, {N, C}), ones, {}, ln);
  k::ModulateForward(d, Act(a.m1, {B, T, C}), Act(a.ln1, {B, T, C}), Chunk(a.mod, dt, 6, 1),
                     Chunk(a.mod, dt, 6, 0));
  k::LinearForward(d, Act(a.qkv, {N, 3 * C}), Act(a.m1, {N, C}), w.qkv_w, w.qkv_b);
  const k::QkvViews qkv = k::PackedQkv(a.qkv, dt, B, T, C, NH);
  k::AttentionForward(d, Act(a.atty, {B, T, NH, C / NH}), k::View(a.lse, {B, NH, T}), qkv.q, qkv.k,
                      qkv.v, {.causal = false});
  k::LinearForward(d, Act(a.a, {N, C}), Act(a.atty, {N, C}), w.proj_w, w.proj_b);
  d.Copy(a.residual2, x, sizeof(float) * N * C);
  k::GatedResidualForward(d, k::View(a.residual2, {B, T, C}), Act(a.a, {B, T, C}),
                          Chunk(a.mod, dt, 6, 2));
  // MLP half.
  k::LayerNormForward(d, Act(a.ln2, {N, C}), k::View(a.mean2, {N}), k::View(a.rstd2, {N}),
                      k::View(a.residual2, {N, C}), ones, {}, ln);
  k::ModulateForward(d, Act(a.m2, {B, T, C}), Act(a.ln2, {B, T, C}), Chunk(a.mod, dt, 6, 4),
                     Chunk(a.mod, dt, 6, 3));
  k::LinearForward(d, Act(a.h, {N, 4 * C}), Act(a.m2, {N, C}), w.fc1_w, w.fc1_b);
  k::GeluForward(d, Act(a.hg, {N * 4 * C}), Act(a.h, {N * 4 * C}));
  k::LinearForward(d, Act(a.f, {N, C}), Act(a.hg, {N, 4 * C}), w.fc2_w, w.fc2_b);
  d.Copy(a.residual3, a.residual2, sizeof(float) * N * C);
  k::GatedResidualForward(d, k::View(a.residual3, {B, T, C}), Act(a.f, {B, T, C}),
                          Chunk(a.mod, dt, 6, 5));
}

void Dit::FinalForward(const FinalParams& w) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, P = DitPatchDim(config_),
                N = B * T;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  // shift, scale = Linear(SiLU(c))
  k::LinearForward(d, Act(acts_.modf, {B, 2 * C}), Act(acts_.silu_c, {B, C}), w.ada_w, w.ada_b);
  k::LayerNormForward(d, Act(acts_.lnf, {N, C}), k::View(acts_.meanf, {N}),
                      k::View(acts_.rstdf, {N}), k::View(BlockInput(config_.n_layer), {N, C}),
                      k::View(acts_.ones, {C}), {}, {.eps = config_.norm_eps});
  k::ModulateForward(d, Act(acts_.mf, {B, T, C}), Act(acts_.lnf, {B, T, C}),
                     Chunk(acts_.modf, dt, 2, 1), Chunk(acts_.modf, dt, 2, 0));
  k::LinearForward(d, k::View(acts_.pred, {N, P}), Act(acts_.mf, {N, C}), w.lin_w, w.lin_b);
  if (has_target_) {
    k::MseLossForward(d, k::View(acts_.loss, {1}), k::View(acts_.pred, {N * P}),
                      k::View(acts_.target, {N * P}));
  }
  loss_ready_ = false;
}

void Dit::AdaLnBackward(const TV& ada_w, const TV& dada_w, const TV& dada_b, int chunks) {
  const int64_t B = B_, C = config_.n_embd, W = chunks * C;
  const TV dmod = ToCompute(acts_.dmod, acts_.dmod_cd, {B, W});
  k::LinearBackward(*device_, k::View(acts_.dsilu_c, {B, C}), dada_w, dada_b, dmod,
                    Act(acts_.silu_c, {B, C}), ada_w, {.accumulate_dx = true});
}

void Dit::FinalBackward(const FinalParams& w, const FinalParams& g, float loss_scale) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, P = DitPatchDim(config_),
                N = B * T;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const TV dpred = Act(acts_.dpred, {N, P});
  d.Memset(acts_.dpred, 0, dpred.bytes());
  if (has_target_) {
    k::MseLossBackward(d, Act(acts_.dpred, {N * P}), k::View(acts_.pred, {N * P}),
                       k::View(acts_.target, {N * P}), loss_scale);
  }
  k::LinearBackward(d, Act(acts_.dcd_n1, {N, C}), g.lin_w, g.lin_b, dpred, Act(acts_.mf, {N, C}),
                    w.lin_w, {.accumulate_dx = false});
  d.Memset(acts_.dmod, 0, sizeof(float) * B * 2 * C);
  d.Memset(acts_.dcd_n3, 0, Act(acts_.dcd_n3, {N, C}).bytes());
  k::ModulateBackward(d, Act(acts_.dcd_n3, {B, T, C}), Chunk(acts_.dmod, DType::kF32, 2, 1),
                      Chunk(acts_.dmod, DType::kF32, 2, 0), Act(acts_.dcd_n1, {B, T, C}),
                      Act(acts_.lnf, {B, T, C}), Chunk(acts_.modf, dt, 2, 1));
  d.Memset(acts_.dres, 0, sizeof(float) * N * C);
  k::LayerNormBackward(d, k::View(acts_.dres, {N, C}), k::View(acts_.dnorm_w, {C}), {},
                       Act(acts_.dcd_n3, {N, C}), k::View(BlockInput(config_.n_layer), {N, C}),
                       k::View(acts_.ones, {C}), k::View(acts_.meanf, {N}),
                       k::View(acts_.rstdf, {N}), {.eps = config_.norm_eps});
  d.Memset(acts_.dsilu_c, 0, sizeof(float) * B * C);
  AdaLnBackward(w.ada_w, g.ada_w, g.ada_b, 2);
}

void Dit::BlockBackward(int l, const BlockParams& w, const BlockParams& g) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, NH = config_.n_head, N = B * T;
  const Layer& a = acts_.layers[l];
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const k::LayerNormParams ln{.eps = config_.norm_eps};
  const TV ones = k::View(acts_.ones, {C});
  const TV dres = k::View(acts_.dres, {B, T, C});
  const TV dmod_f = k::View(acts_.dmod, {B, 6 * C});
  auto dmod = [&](int kk) { return Chunk(acts_.dmod, DType::kF32, 6, kk); };
  auto zero = [&](void* p, const TV& v) { d.Memset(p, 0, v.bytes()); };
  zero(acts_.dmod, dmod_f);
  // MLP half: dres = d/d residual3.
  const TV df = Act(acts_.dcd_n1, {B, T, C});
  zero(acts_.dcd_n1, df);
  k::GatedResidualBackward(d, df, dmod(5), dres, Act(a.f, {B, T, C}), Chunk(a.mod, dt, 6, 5));
  k::LinearBackward(d, Act(acts_.dhg, {N, 4 * C}), g.fc2_w, g.fc2_b, Act(acts_.dcd_n1, {N, C}),
                    Act(a.hg, {N, 4 * C}), w.fc2_w, {.accumulate_dx = false});
  const TV dh = Act(acts_.dh, {N * 4 * C});
  zero(acts_.dh, dh);
  k::GeluBackward(d, dh, Act(a.h, {N * 4 * C}), Act(acts_.dhg, {N * 4 * C}));
  k::LinearBackward(d, Act(acts_.dcd_n2, {N, C}), g.fc1_w, g.fc1_b, Act(acts_.dh, {N, 4 * C}),
                    Act(a.m2, {N, C}), w.fc1_w, {.accumulate_dx = false});
  const TV dln2 = Act(acts_.dcd_n3, {B, T, C});
  zero(acts_.dcd_n3, dln2);
  k::ModulateBackward(d, dln2, dmod(4), dmod(3), Act(acts_.dcd_n2, {B, T, C}),
                      Act(a.ln2, {B, T, C}), Chunk(a.mod, dt, 6, 4));
  k::LayerNormBackward(d, k::View(acts_.dres, {N, C}), k::View(acts_.dnorm_w, {C}), {},
                       Act(acts_.dcd_n3, {N, C}), k::View(a.residual2, {N, C}), ones,
                       k::View(a.mean2, {N}), k::View(a.rstd2, {N}), ln);
  // Attention half: dres = d/d residual2.
  const TV da = Act(acts_.dcd_n1, {B, T, C});
  zero(acts_.dcd_n1, da);
  k::GatedResidualBackward(d, da, dmod(2), dres, Act(a.a, {B, T, C}), Chunk(a.mod, dt, 6, 2));
  k::LinearBackward(d, Act(acts_.dcd_n2, {N, C}), g.proj_w, g.proj_b, Act(acts_.dcd_n1, {N, C}),
                    Act(a.atty, {N, C}), w.proj_w, {.accumulate_dx = false});
  const TV dqkv_flat = Act(acts_.dqkv, {N, 3 * C});
  zero(acts_.dqkv, dqkv_flat);
  const k::QkvViews qkv = k::PackedQkv(a.qkv, dt, B, T, C, NH);
  const k::QkvViews dqkv = k::PackedQkv(acts_.dqkv, dt, B, T, C, NH);
  k::AttentionBackward(d, dqkv.q, dqkv.k, dqkv.v, Act(acts_.dcd_n2, {B, T, NH, C / NH}), qkv.q,
                       qkv.k, qkv.v, Act(a.atty, {B, T, NH, C / NH}), k::View(a.lse, {B, NH, T}),
                       {.causal = false});
  k::LinearBackward(d, Act(acts_.dcd_n1, {N, C}), g.qkv_w, g.qkv_b, dqkv_flat, Act(a.m1, {N, C}),
                    w.qkv_w, {.accumulate_dx = false});
  const TV dln1 = Act(acts_.dcd_n3, {B, T, C});
  zero(acts_.dcd_n3, dln1);
  k::ModulateBackward(d, dln1, dmod(1), dmod(0), Act(acts_.dcd_n1, {B, T, C}),
                      Act(a.ln1, {B, T, C}), Chunk(a.mod, dt, 6, 1));
  k::LayerNormBackward(d, k::View(acts_.dres, {N, C}), k::View(acts_.dnorm_w, {C}), {},
                       Act(acts_.dcd_n3, {N, C}), k::View(BlockInput(l), {N, C}), ones,
                       k::View(a.mean1, {N}), k::View(a.rstd1, {N}), ln);
  AdaLnBackward(w.ada_w, g.ada_w, g.ada_b, 6);
}

void Dit::EmbedBackward(const EmbedParams& w, const EmbedParams& g) {
  const int64_t B = B_, T = DitTokens(config_), C = config_.n_embd, P = DitPatchDim(config_),
                F = config_.freq_dim, N = B * T;
  k::Device& d = *device_;
  // Tokens: learned positions, then the patch GEMM (no input gradient).
  if (g.pos.present()) {
    k::AddChannelBiasBackward(d, g.pos, k::View(acts_.dres, {1, B, T * C}));
  }
  const TV dtok = ToCompute(acts_.dres, acts_.dres_cd, {N, C});
  k::LinearBackward(d, {}, g.patch_w, g.patch_b, dtok, Act(acts_.xp_cd, {N, P}), w.patch_w);
  // c = t2(SiLU(t1(freq))) + table[label]; d c = SiLU'(c) * d SiLU(c).
  d.Memset(acts_.dc, 0, sizeof(float) * B * C);
  k::SiluBackward(d, k::View(acts_.dc, {B, C}), k::View(acts_.c, {B, C}),
                  k::View(acts_.dsilu_c, {B, C}));
  k::EmbeddingBackward(d, g.table, {}, k::View(acts_.dc, {B, 1, C}), k::View(acts_.labels, {B, 1}));
  const TV dc = ToCompute(acts_.dc, acts_.dcd_c, {B, C});
  k::LinearBackward(d, Act(acts_.dcd_b, {B, C}), g.t2_w, g.t2_b, dc, Act(acts_.h1s, {B, C}), w.t2_w,
                    {.accumulate_dx = false});
  const TV dh1 = Act(acts_.dcd_c, {B, C});
  d.Memset(acts_.dcd_c, 0, dh1.bytes());
  k::SiluBackward(d, dh1, Act(acts_.h1, {B, C}), Act(acts_.dcd_b, {B, C}));
  k::LinearBackward(d, {}, g.t1_w, g.t1_b, dh1, Act(acts_.tfreq, {B, F}), w.t1_w);
}

}  // namespace anvil
