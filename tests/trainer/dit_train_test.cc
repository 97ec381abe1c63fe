// The DiT through the Trainer on the default data set (Debian's
// Fashion-MNIST, no data flags): a short class-conditional eps-prediction
// run brings the validation MSE far below its start (1 for a fresh
// adaLN-Zero DiT, which predicts 0 against unit-variance noise).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/trainer.h"

namespace anvil {
namespace {

TEST(DitTrainTest, FashionMnistLossFallsFarBelowItsStart) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  }
  proto::TrainConfig c = DefaultTrainConfig();
  auto* m = c.mutable_model();
  m->set_kind("dit");
  m->set_n_layer(2);
  m->set_n_head(4);
  m->set_n_embd(64);
  m->set_patch_size(4);  // 7 x 7 tokens of 28 x 28 images
  c.mutable_data()->set_batch_size(32);
  c.mutable_optim()->set_warmup_steps(10);
  c.set_steps(100);
  c.set_seed(5);
  c.set_eval_every(0);
  c.set_eval_batches(4);
  c.set_log_every(1000);
  auto device = kernels::MakeCpuDevice(2);
  TrainerOptions quiet{0, [](const std::string&) {}, {}, 0, 1};
  auto t = Trainer::Create(c, device.get(), quiet);
  ASSERT_TRUE(t.ok()) << t.status();
  auto before = (*t)->Evaluate();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_NEAR(*before, 1.0, 0.05);  // adaLN-Zero: the prediction is 0
  const auto start = std::chrono::steady_clock::now();
  auto stats = (*t)->Run();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 100u);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto after = (*t)->Evaluate();
  ASSERT_TRUE(after.ok()) << after.status();
  std::printf("dit on fashion-mnist: val mse %.4f -> %.4f in 100 steps of 32 images (%.1f s)\n",
              *before, *after, secs);
  EXPECT_LT(*after, 0.2);
}

}  // namespace
}  // namespace anvil
