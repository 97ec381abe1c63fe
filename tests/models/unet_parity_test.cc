// Parity with PyTorch: the tiny UNet in unet_reference.bin (written by
// make_unet_reference.py in float64, NCHW) must be reproduced by the C++
// model in fp32 (NHWC): the prediction, the loss and every gradient, each
// within max abs error <= 1e-4 x max |ref|.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/unet/unet.h"
#include "tests/models/reference_file.h"

namespace anvil {
namespace {

using testing::RefTensor;

// max |a - ref| <= tol * max |ref|; returns max err / max |ref|.
double ExpectClose(const float* a, const std::vector<float>& ref, double tol,
                   const std::string& what) {
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
    max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - ref[i]));
  }
  EXPECT_GT(max_ref, 0.0) << what << " is all zeros in the reference";
  EXPECT_LE(max_err, tol * max_ref) << what << ": max abs error " << max_err << " vs max |ref| "
                                    << max_ref;
  return max_ref > 0 ? max_err / max_ref : max_err;
}

TEST(UNetParity, PredictionLossAndEveryGradientMatchPyTorch) {
  auto ref_or = testing::ReadReferenceFile(ANVIL_TEST_DATA_DIR "/unet_reference.bin");
  ASSERT_TRUE(ref_or.ok()) << ref_or.status();
  const auto& ref = *ref_or;
  const std::vector<int32_t>& c = ref.at("config").i;
  UNetConfig cfg;
  cfg.image_size = c[0];
  cfg.image_channels = c[1];
  cfg.channels = c[2];
  cfg.blocks_per_level = c[3];
  cfg.norm_groups = c[4];
  cfg.n_head = c[5];
  cfg.num_classes = c[6];
  const int B = c[7];
  const int L = c[8];
  cfg.channel_mult.assign(c.begin() + 9, c.begin() + 9 + L);
  const int A = c[9 + L];
  cfg.attention_res.assign(c.begin() + 10 + L, c.begin() + 10 + L + A);

  auto device = kernels::MakeCpuDevice(2);
  auto m = UNet::Create(cfg, UNetOptions{B}, device.get());
  ASSERT_TRUE(m.ok()) << m.status();
  UNet& model = **m;
  const ParamLayout& layout = model.layout();
  std::vector<float> p(layout.total_numel()), g(layout.total_numel(), 0.f);
  size_t covered = 0;
  for (const ParamInfo& info : layout.params()) {
    const RefTensor& t = ref.at("param/" + info.name);
    ASSERT_EQ(t.shape, info.shape) << info.name;
    std::copy(t.f.begin(), t.f.end(), p.begin() + info.offset);
    covered += info.numel;
  }
  ASSERT_EQ(covered, layout.total_numel());

  Batch b;
  const std::vector<int64_t> img = ref.at("x_t").shape;
  b.Set("x_t", {DType::kF32, img, ref.at("x_t").f.data()});
  b.Set("target", {DType::kF32, img, ref.at("target").f.data()});
  b.Set("timesteps", {DType::kI32, {B}, ref.at("timesteps").i.data()});
  b.Set("labels", {DType::kI32, {B}, ref.at("labels").i.data()});
  ASSERT_TRUE(model.SetBatch(b).ok());
  model.ForwardAll(p.data());
  model.BackwardAll(p.data(), g.data(), 1.0f);

  std::vector<float> pred(ref.at("pred").f.size());
  model.CopyPrediction(pred.data());
  ExpectClose(pred.data(), ref.at("pred").f, 1e-4, "prediction");
  const double loss_ref = ref.at("loss").f[0];
  EXPECT_NEAR(model.Loss(), loss_ref, 1e-4 * std::fabs(loss_ref));
  double worst = 0;
  std::string worst_name;
  for (const ParamInfo& info : layout.params()) {
    const double r = ExpectClose(g.data() + info.offset, ref.at("grad/" + info.name).f, 1e-4,
                                 "grad " + info.name);
    if (r > worst) {
      worst = r;
      worst_name = info.name;
    }
  }
  std::printf("unet parity: loss %.7f vs %.7f, %zu gradients, worst %s at %.2e of max |ref|\n",
              model.Loss(), loss_ref, layout.params().size(), worst_name.c_str(), worst);
}

}  // namespace
}  // namespace anvil
