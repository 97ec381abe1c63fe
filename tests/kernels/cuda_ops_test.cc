// Runs every op family on the CUDA device and compares it with the CPU
// device on the same inputs (the CPU ops are themselves tested against the
// float64 reference: the ggml test-backend-ops pattern). Gradient outputs are pre-filled with random values so the +=
// semantics are compared too. Skips cleanly when no GPU is present.
#include "kernels/cuda/cuda_device.h"

#include <bit>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/convert.h"
#include "kernels/ops/attention.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

testing::DVec D(const FVec& v) { return testing::ToD(v); }

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_dev_ = MakeCudaDevice(0);
    cpu_dev_ = MakeCpuDevice(2);
    gpu_ = std::make_unique<testing::Ops>(*gpu_dev_);
    cpu_ = std::make_unique<testing::Ops>(*cpu_dev_);
  }
  void TearDown() override {
    for (void* p : owned_) gpu_->Free(p);
  }

  template <typename T>
  T* Up(const std::vector<T>& h) {
    T* d = static_cast<T*>(gpu_->Alloc(sizeof(T) * h.size()));
    owned_.push_back(d);
    gpu_->CopyFromHost(d, h.data(), sizeof(T) * h.size());
    return d;
  }
  template <typename T>
  std::vector<T> Down(const T* d, size_t n) {
    std::vector<T> h(n);
    gpu_->CopyToHost(h.data(), d, sizeof(T) * n);
    return h;
  }

  std::unique_ptr<Device> gpu_dev_, cpu_dev_;
  std::unique_ptr<testing::Ops> gpu_, cpu_;
  std::vector<void*> owned_;
};

TEST_F(CudaOpsTest, Encoder) {
  const int B = 3, T = 37, C = 40, V = 7;
  const auto tokens = testing::RandomTokens(B * T, V, 1);
  const FVec wte = testing::Random(V * C, 2), wpe = testing::Random(T * C, 3);
  const FVec dout = testing::Random(B * T * C, 4);
  FVec out(B * T * C), dwte = testing::Random(V * C, 5), dwpe = testing::Random(T * C, 6);
  float* g_out = Up(out);
  float* g_dwte = Up(dwte);
  float* g_dwpe = Up(dwpe);
  const int32_t* g_tok = Up(tokens);
  gpu_->EncoderForward(g_out, g_tok, Up(wte), Up(wpe), B, T, C);
  gpu_->EncoderBackward(g_dwte, g_dwpe, Up(dout), g_tok, B, T, C);
  cpu_->EncoderForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
  cpu_->EncoderBackward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
  EXPECT_TRUE(AllClose(Down(g_out, out.size()), D(out), 1e-6, 1e-6));
  EXPECT_TRUE(AllClose(Down(g_dwte, dwte.size()), D(dwte), 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_dwpe, dwpe.size()), D(dwpe), 1e-5, 1e-5));
}

TEST_F(CudaOpsTest, LayerNorm) {
  const int N = 67, C = 100;
  const FVec inp = testing::Random(N * C, 1, -2.0f, 3.0f), w = testing::Random(C, 2),
             b = testing::Random(C, 3), dout = testing::Random(N * C, 4);
  FVec out(N * C), mean(N), rstd(N), dinp = testing::Random(N * C, 5), dw = testing::Random(C, 6),
                                     db = testing::Random(C, 7);
  float *g_out = Up(out), *g_mean = Up(mean), *g_rstd = Up(rstd);
  float *g_dinp = Up(dinp), *g_dw = Up(dw), *g_db = Up(db);
  const float *g_inp = Up(inp), *g_w = Up(w);
  gpu_->LayerNormForward(g_out, g_mean, g_rstd, g_inp, g_w, Up(b), N, C);
  gpu_->LayerNormBackward(g_dinp, g_dw, g_db, Up(dout), g_inp, g_w, g_mean, g_rstd, N, C);
  cpu_->LayerNormForward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N,
                         C);
  cpu_->LayerNormBackward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(),
                          mean.data(), rstd.data(), N, C);
  EXPECT_TRUE(AllClose(Down(g_out, out.size()), D(out), 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_mean, N), D(mean), 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_rstd, N), D(rstd), 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_dinp, dinp.size()), D(dinp), 1e-5, 1e-4));
  EXPECT_TRUE(AllClose(Down(g_dw, C), D(dw), 1e-4, 1e-4));
  EXPECT_TRUE(AllClose(Down(g_db, C), D(db), 1e-4, 1e-4));
}

TEST_F(CudaOpsTest, Matmul) {
  const int N = 77, C = 37, OC = 131;
  for (bool with_bias : {true, false}) {
    const FVec inp = testing::Random(N * C, 1), w = testing::Random(OC * C, 2),
               bias = testing::Random(OC, 3), dout = testing::Random(N * OC, 4);
    FVec out(N * OC), dinp = testing::Random(N * C, 5), dw = testing::Random(OC * C, 6),
                      db = testing::Random(OC, 7);
    float *g_out = Up(out), *g_dinp = Up(dinp), *g_dw = Up(dw), *g_db = Up(db);
    const float *g_inp = Up(inp), *g_w = Up(w);
    gpu_->MatmulForward(g_out, g_inp, g_w, with_bias ? Up(bias) : nullptr, N, C, OC);
    gpu_->MatmulBackward(g_dinp, g_dw, with_bias ? g_db : nullptr, Up(dout), g_inp, g_w, N, C, OC);
    cpu_->MatmulForward(out.data(), inp.data(), w.data(), with_bias ? bias.data() : nullptr, N, C,
                        OC);
    cpu_->MatmulBackward(dinp.data(), dw.data(), with_bias ? db.data() : nullptr, dout.data(),
                         inp.data(), w.data(), N, C, OC);
    EXPECT_TRUE(AllClose(Down(g_out, out.size()), D(out), 1e-4, 1e-5)) << with_bias;
    EXPECT_TRUE(AllClose(Down(g_dinp, dinp.size()), D(dinp), 1e-4, 1e-5)) << with_bias;
    EXPECT_TRUE(AllClose(Down(g_dw, dw.size()), D(dw), 1e-4, 1e-5)) << with_bias;
    EXPECT_TRUE(AllClose(Down(g_db, db.size()), D(db), 1e-4, 1e-5)) << with_bias;
  }
}

TEST_F(CudaOpsTest, Attention) {
  struct Shape {
    int B, T, C, NH;
  };
  for (const Shape s : {Shape{2, 7, 12, 3}, Shape{2, 131, 24, 3}, Shape{3, 1, 8, 1}}) {
    const size_t n_qkv = static_cast<size_t>(s.B) * s.T * 3 * s.C;
    const size_t n_out = static_cast<size_t>(s.B) * s.T * s.C;
    const FVec qkv = testing::Random(n_qkv, 1, -1.5f, 1.5f), dout = testing::Random(n_out, 2);
    FVec out(n_out), lse(static_cast<size_t>(s.B) * s.NH * s.T),
        dqkv = testing::Random(n_qkv, 3);
    float *g_out = Up(out), *g_dqkv = Up(dqkv), *g_lse = Up(lse);
    float* g_qkv = Up(qkv);
    float* g_dout = Up(dout);
    // The same family calls on both devices: packed views, causal.
    auto run = [&](Device& dev, float* o, float* l, float* x, float* dx, float* dy) {
      const QkvViews v = PackedQkv(x, DType::kF32, s.B, s.T, s.C, s.NH);
      const QkvViews dv = PackedQkv(dx, DType::kF32, s.B, s.T, s.C, s.NH);
      const TensorView ov = View(o, {s.B, s.T, s.NH, s.C / s.NH});
      const TensorView lv = View(l, {s.B, s.NH, s.T});
      AttentionForward(dev, ov, lv, v.q, v.k, v.v);
      AttentionBackward(dev, dv.q, dv.k, dv.v, View(dy, {s.B, s.T, s.NH, s.C / s.NH}), v.q, v.k,
                        v.v, ov, lv);
    };
    run(*gpu_dev_, g_out, g_lse, g_qkv, g_dqkv, g_dout);
    FVec x = qkv, dy = dout;
    run(*cpu_dev_, out.data(), lse.data(), x.data(), dqkv.data(), dy.data());
    EXPECT_TRUE(AllClose(Down(g_out, n_out), D(out), 1e-5, 1e-4)) << s.T;
    EXPECT_TRUE(AllClose(Down(g_dqkv, n_qkv), D(dqkv), 1e-5, 1e-4)) << s.T;
  }
}

TEST_F(CudaOpsTest, GeluResidualScale) {
  const size_t n = 100003;
  const FVec x = testing::Random(n, 1, -8.0f, 8.0f), y = testing::Random(n, 2),
             dout = testing::Random(n, 3);
  FVec out(n), dinp = testing::Random(n, 4), sum(n), acc = testing::Random(n, 5), sc = x;
  float *g_out = Up(out), *g_dinp = Up(dinp), *g_sum = Up(sum), *g_acc = Up(acc), *g_sc = Up(sc);
  const float *g_x = Up(x), *g_y = Up(y);
  gpu_->GeluForward(g_out, g_x, n);
  gpu_->GeluBackward(g_dinp, g_x, Up(dout), n);
  gpu_->ResidualForward(g_sum, g_x, g_y, n);
  gpu_->Accumulate(g_acc, g_y, n);
  gpu_->Scale(g_sc, 0.3f, n);
  cpu_->GeluForward(out.data(), x.data(), n);
  cpu_->GeluBackward(dinp.data(), x.data(), dout.data(), n);
  cpu_->ResidualForward(sum.data(), x.data(), y.data(), n);
  cpu_->Accumulate(acc.data(), y.data(), n);
  cpu_->Scale(sc.data(), 0.3f, n);
  EXPECT_TRUE(AllClose(Down(g_out, n), D(out), 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_dinp, n), D(dinp), 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_sum, n), D(sum), 0, 0));
  EXPECT_TRUE(AllClose(Down(g_acc, n), D(acc), 0, 0));
  EXPECT_TRUE(AllClose(Down(g_sc, n), D(sc), 0, 0));
}

TEST_F(CudaOpsTest, SoftmaxCrossEntropy) {
  const int N = 45, V = 1000;
  const FVec logits = testing::Random(N * V, 1, -6.0f, 6.0f);
  auto targets = testing::RandomTokens(N, V, 2);
  targets[3] = -1;
  FVec losses(N), probs(N * V), dlogits = testing::Random(N * V, 3);
  float *g_losses = Up(losses), *g_probs = Up(probs), *g_dl = Up(dlogits);
  const int32_t* g_t = Up(targets);
  gpu_->SoftmaxCrossEntropyForward(g_losses, g_probs, Up(logits), g_t, N, V);
  gpu_->SoftmaxCrossEntropyBackward(g_dl, g_probs, g_t, 0.25f, N, V);
  cpu_->SoftmaxCrossEntropyForward(losses.data(), probs.data(), logits.data(), targets.data(), N,
                                   V);
  cpu_->SoftmaxCrossEntropyBackward(dlogits.data(), probs.data(), targets.data(), 0.25f, N, V);
  EXPECT_TRUE(AllClose(Down(g_losses, N), D(losses), 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_probs, probs.size()), D(probs), 1e-8, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_dl, dlogits.size()), D(dlogits), 1e-6, 1e-5));
}

TEST_F(CudaOpsTest, AdamWAndReductions) {
  const size_t n = 100003;
  FVec param = testing::Random(n, 1), m(n, 0.0f), v(n, 0.0f);
  float *g_p = Up(param), *g_m = Up(m), *g_v = Up(v);
  AdamWParams p;
  p.weight_decay = 0.1f;
  p.grad_scale = 0.5f;
  for (int step = 1; step <= 3; ++step) {
    const FVec grad = testing::Random(n, 10 + step);
    p.step = step;
    gpu_->AdamW(g_p, Up(grad), g_m, g_v, n, p);
    cpu_->AdamW(param.data(), grad.data(), m.data(), v.data(), n, p);
  }
  EXPECT_TRUE(AllClose(Down(g_p, n), D(param), 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_m, n), D(m), 1e-7, 1e-5));
  EXPECT_TRUE(AllClose(Down(g_v, n), D(v), 1e-9, 1e-5));

  const double want = cpu_->SquaredNorm(param.data(), n);
  EXPECT_NEAR(gpu_->SquaredNorm(g_p, n), want, 1e-9 * want);
  EXPECT_EQ(gpu_->SquaredNorm(g_p, 0), 0.0);
  EXPECT_FALSE(gpu_->HasNonFinite(g_p, n));
  FVec bad = param;
  bad[n - 1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(gpu_->HasNonFinite(Up(bad), n));
  bad[n - 1] = -std::numeric_limits<float>::infinity();
  EXPECT_TRUE(gpu_->HasNonFinite(Up(bad), n));
}

TEST_F(CudaOpsTest, ConvertIsBitIdenticalToCpu) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  std::mt19937 gen(3);
  std::vector<float> f(1 << 18);
  for (auto& x : f) x = std::bit_cast<float>(static_cast<uint32_t>(gen()));
  for (int i = 0; i < 64; ++i) f[i] = std::bit_cast<float>(0x7f800000u + i);  // inf and NaNs
  const uint16_t* g_all = Up(all);
  const float* g_f = Up(f);
  for (DType half : {DType::kBF16, DType::kF16}) {
    float* g_wide = static_cast<float*>(gpu_->Alloc(sizeof(float) * all.size()));
    owned_.push_back(g_wide);
    gpu_->Convert(g_wide, DType::kF32, g_all, half, all.size());
    std::vector<float> wide(all.size());
    cpu_->Convert(wide.data(), DType::kF32, all.data(), half, all.size());
    const auto got_wide = Down(g_wide, all.size());
    ASSERT_EQ(std::memcmp(got_wide.data(), wide.data(), sizeof(float) * wide.size()), 0);

    uint16_t* g_narrow = static_cast<uint16_t*>(gpu_->Alloc(sizeof(uint16_t) * f.size()));
    owned_.push_back(g_narrow);
    gpu_->Convert(g_narrow, half, g_f, DType::kF32, f.size());
    std::vector<uint16_t> narrow(f.size());
    cpu_->Convert(narrow.data(), half, f.data(), DType::kF32, f.size());
    EXPECT_EQ(Down(g_narrow, f.size()), narrow);
  }
}

TEST_F(CudaOpsTest, MemsetAndCopies) {
  const size_t n = 1000;
  auto* d = static_cast<uint8_t*>(gpu_->Alloc(n));
  owned_.push_back(d);
  gpu_->Memset(d, 0x5a, n);
  EXPECT_EQ(Down(d, n), std::vector<uint8_t>(n, 0x5a));
  std::vector<uint8_t> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<uint8_t>(i * 13);
  gpu_->CopyFromHost(d, h.data(), n);
  gpu_->Synchronize();
  EXPECT_EQ(Down(d, n), h);
  EXPECT_EQ(gpu_dev_->kind(), DeviceKind::kCuda);
}

}  // namespace
}  // namespace anvil::kernels
