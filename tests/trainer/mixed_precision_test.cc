// Mixed precision end to end through the Trainer: --param_dtype bf16 (bf16
// gathers, activations and matmuls; fp32 master weights, gradients and
// AdamW) trains on the demo data (Debian's license texts, byte level) and
// tracks the fp32 loss curve within 2% over 200 steps, and
// --recompute unit reproduces the fp32 run bit for bit.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/data/token_shard.h"
#include "runtime/config/schema.h"
#include "runtime/trainer/trainer.h"

namespace anvil {
namespace {

class MixedPrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("anvil_mp_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::vector<uint32_t> tokens;
    for (const char* name : {"GPL-3", "GPL-2", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "Artistic"}) {
      std::ifstream in(std::string("/usr/share/common-licenses/") + name, std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (unsigned char c : text) tokens.push_back(c);
    }
    ASSERT_GT(tokens.size(), 100000u) << "the demo data (base-files' licenses) is missing";
    const size_t val = tokens.size() / 10;
    std::vector<uint32_t> train(tokens.begin(), tokens.end() - val), held(tokens.end() - val, tokens.end());
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), train).ok());
    ASSERT_TRUE(WriteTokenShard((dir_ / "val_0.bin").string(), held).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  proto::TrainConfig Config(const std::string& dtype) {
    proto::TrainConfig c = DefaultTrainConfig();
    auto* m = c.mutable_model();
    m->set_n_layer(2);
    m->set_n_head(4);
    m->set_n_embd(64);
    m->set_max_seq_len(64);
    m->set_vocab_size(256);
    auto* d = c.mutable_data();
    d->set_train_pattern((dir_ / "train_*.bin").string());
    d->set_val_pattern((dir_ / "val_*.bin").string());
    d->set_batch_size(8);
    d->set_seq_len(64);
    auto* o = c.mutable_optim();
    // At 3e-3 this tiny model's trajectory is chaotic after warmup: fp32 and
    // bf16 part ways at step ~25 (bf16 then lower by ~4%), as two fp32 runs
    // with different summation orders would. 1e-3 is the stable regime.
    o->set_lr(1e-3f);  // the rest of the optimiser: the schema's defaults
    c.set_steps(200);
    c.set_seed(5);
    c.set_eval_every(0);
    c.set_eval_batches(8);
    c.set_log_every(1000);
    c.set_param_dtype(dtype);
    return c;
  }

  struct Curve {
    std::vector<double> loss;
    double eval = 0;
  };
  Curve Train(const proto::TrainConfig& c) {
    auto t = Trainer::Create(c, device_.get(), quiet_);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return {};
    auto stats = (*t)->Run();
    EXPECT_TRUE(stats.ok()) << stats.status();
    Curve curve;
    for (const StepStats& s : *stats) curve.loss.push_back(s.loss);
    curve.eval = *(*t)->Evaluate();
    return curve;
  }

  std::filesystem::path dir_;
  std::unique_ptr<kernels::Device> device_ = kernels::MakeCpuDevice(2);
  TrainerOptions quiet_{0, [](const std::string&) {}, {}, 0, 1};
};

TEST_F(MixedPrecisionTest, Bf16TracksTheFp32LossCurveWithin2Percent) {
  const Curve f32 = Train(Config("fp32"));
  const Curve bf16 = Train(Config("bf16"));
  ASSERT_EQ(f32.loss.size(), 200u);
  ASSERT_EQ(bf16.loss.size(), 200u);
  // It learned: from ~ln(256) = 5.5 to well below.
  EXPECT_LT(f32.loss.back(), 3.0);
  // Mean loss over windows of 20 steps (single steps are noisy by design:
  // each sees another batch).
  for (size_t w = 0; w < 200; w += 20) {
    double a = 0, b = 0;
    for (size_t i = w; i < w + 20; ++i) {
      a += f32.loss[i];
      b += bf16.loss[i];
    }
    EXPECT_NEAR(b, a, 0.02 * a) << "steps " << w + 1 << ".." << w + 20;
  }
  EXPECT_NEAR(bf16.eval, f32.eval, 0.02 * f32.eval);
}

TEST_F(MixedPrecisionTest, RecomputeReproducesTheRunBitForBit) {
  proto::TrainConfig c = Config("fp32");
  c.set_steps(20);
  const Curve keep = Train(c);
  c.set_recompute("unit");
  const Curve redo = Train(c);
  EXPECT_EQ(redo.loss, keep.loss);
  EXPECT_EQ(redo.eval, keep.eval);
}

}  // namespace
}  // namespace anvil
