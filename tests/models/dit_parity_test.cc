// Parity with PyTorch: the tiny DiT in dit_reference.bin (written by
// make_dit_reference.py in float64 with the structure of facebookresearch/DiT
// models.py, NCHW, patch conv, unpatchify; adaLN and the final linear
// non-zero) must be reproduced by the C++ model in fp32: the prediction, the
// MSE loss and every gradient (max abs error <= 1e-4 x max |ref|).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/dit/dit.h"
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
  EXPECT_GT(max_ref, 0.0) << what << " is all zero in the reference";
  EXPECT_LE(max_err, tol * max_ref)
      << what << ": max abs error " << max_err << " vs max |ref| " << max_ref;
  return max_err / max_ref;
}

TEST(DitParity, PredictionLossAndEveryGradient) {
  auto ref_or = testing::ReadReferenceFile(ANVIL_TEST_DATA_DIR "/dit_reference.bin");
  ASSERT_TRUE(ref_or.ok()) << ref_or.status();
  const std::map<std::string, RefTensor>& ref = *ref_or;
  const auto& c = ref.at("config").i;
  const DitConfig config{.n_layer = c[0],
                         .n_head = c[1],
                         .n_embd = c[2],
                         .patch_size = c[3],
                         .image_size = c[4],
                         .image_channels = c[5],
                         .num_classes = c[6],
                         .freq_dim = c[7]};
  const int B = c[8];
  auto device = kernels::MakeCpuDevice(2);
  auto m = Dit::Create(config, DitOptions{B}, device.get());
  ASSERT_TRUE(m.ok()) << m.status();
  Dit& model = **m;
  const ParamLayout& layout = model.layout();
  std::vector<float> params(layout.total_numel()), grads(layout.total_numel(), 0.f);
  for (const ParamInfo& p : layout.params()) {
    const RefTensor& t = ref.at("param/" + p.name);
    ASSERT_EQ(t.shape, p.shape) << p.name;
    std::copy(t.f.begin(), t.f.end(), params.begin() + p.offset);
  }
  const DiffusionBatch batch{ref.at("x_t").f.data(), ref.at("timesteps").i.data(),
                             ref.at("labels").i.data(), ref.at("target").f.data(), B};
  ASSERT_TRUE(model.SetDiffusionBatch(batch).ok());
  model.ForwardAll(params.data());
  std::vector<float> pred(ref.at("pred").f.size());
  model.CopyPrediction(pred.data());
  const double pred_err = ExpectClose(pred.data(), ref.at("pred").f, 1e-4, "prediction");
  const double ref_loss = ref.at("loss").f[0];
  EXPECT_NEAR(model.Loss(), ref_loss, 1e-4 * ref_loss);
  model.BackwardAll(params.data(), grads.data(), 1.0f);
  double worst = 0;
  std::string worst_name;
  for (const ParamInfo& p : layout.params()) {
    const double e =
        ExpectClose(grads.data() + p.offset, ref.at("grad/" + p.name).f, 1e-4, "grad " + p.name);
    if (e > worst) worst = e, worst_name = p.name;
  }
  std::printf("dit parity: loss %.6f vs %.6f, prediction rel err %.2e, worst gradient %s %.2e\n",
              model.Loss(), ref_loss, pred_err, worst_name.c_str(), worst);
}

}  // namespace
}  // namespace anvil
