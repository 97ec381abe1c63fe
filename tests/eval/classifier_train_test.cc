// The classifier end to end: `--model classifier` trained through the
// Trainer on Debian's Fashion-MNIST for a short run (checkpointed), then
// reloaded from its checkpoint directory by the ClassifierEvaluator and run
// over the whole test split: a stated accuracy, the Fréchet-distance floor
// between the split's two halves, and FDs of obviously wrong image sets
// (noise, blanks, one class) far above that floor; the quality report on
// real training images (near the floor), mislabelled ones (accuracy far
// below) and noisier ones (FD growing with the noise). Prints the measured
// numbers. Skipped where the data set is not installed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/config/schema.h"
#include "runtime/data/image_data_config.h"
#include "runtime/eval/classifier_features.h"
#include "runtime/eval/frechet.h"
#include "runtime/eval/quality.h"
#include "runtime/trainer/trainer.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

double Fd(const eval::ClassifierOutputs& a, int64_t a0, int64_t an,
          const eval::ClassifierOutputs& b, int64_t b0, int64_t bn) {
  const int D = a.dim;
  absl::StatusOr<eval::FeatureStats> sa =
      eval::ComputeFeatureStats(a.features.data() + a0 * D, an, D);
  absl::StatusOr<eval::FeatureStats> sb =
      eval::ComputeFeatureStats(b.features.data() + b0 * D, bn, D);
  EXPECT_TRUE(sa.ok() && sb.ok());
  absl::StatusOr<double> fd = eval::FrechetDistance(*sa, *sb);
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? *fd : -1.0;
}

TEST(ClassifierTraining, FashionMnistAccuracyAndFrechetFloor) {
  if (!fs::exists(fs::path(kDefaultImageDir) / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << kDefaultImageDir << " missing (Debian dataset-fashion-mnist)";
  }
  const fs::path dir = fs::path(testing::TempDir()) / ("clf_train_" + std::to_string(getpid()));
  fs::remove_all(dir);
  proto::TrainConfig c = DefaultTrainConfig();
  c.mutable_model()->set_kind("classifier");
  c.mutable_model()->set_n_embd(64);
  c.mutable_data()->set_batch_size(64);
  c.mutable_optim()->set_lr(2e-2f);
  c.mutable_optim()->set_grad_clip(0.0f);
  c.mutable_optim()->set_warmup_steps(20);
  c.mutable_optim()->set_weight_decay(0.0f);
  c.set_steps(300);
  c.set_seed(7);
  c.set_eval_every(0);
  c.set_eval_batches(20);
  c.set_log_every(100);
  c.set_threads(2);
  c.set_checkpoint_dir(dir.string());
  auto device = kernels::MakeCpuDevice(2);
  std::vector<std::string> log;
  TrainerOptions o;
  o.log = [&](const std::string& line) {
    log.push_back(line);
    std::printf("%s\n", line.c_str());
  };
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Trainer>> t = Trainer::Create(c, device.get(), o);
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::vector<StepStats>> steps = (*t)->Run();
  ASSERT_TRUE(steps.ok()) << steps.status();
  absl::StatusOr<double> val = (*t)->Evaluate();
  ASSERT_TRUE(val.ok()) << val.status();
  const double train_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double first = steps->front().loss, last = steps->back().loss;
  t->reset();

  absl::StatusOr<std::unique_ptr<eval::ClassifierEvaluator>> ev =
      eval::ClassifierEvaluator::Load(dir.string(), device.get());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ((*ev)->step(), 300);
  EXPECT_EQ((*ev)->feature_dim(), 64);
  proto::DataConfig d;  // defaults: the Fashion-MNIST test split
  absl::StatusOr<ImageDataset> test = LoadImageData(d, Split::kVal);
  ASSERT_TRUE(test.ok()) << test.status();
  ASSERT_EQ(test->count, 10000);
  absl::StatusOr<eval::ClassifierOutputs> real = (*ev)->Run(*test, 0, test->count);
  ASSERT_TRUE(real.ok()) << real.status();
  absl::StatusOr<eval::AccuracyResult> acc =
      eval::Accuracy(real->logits.data(), test->labels.data(), test->count, real->classes);
  ASSERT_TRUE(acc.ok());
  const double floor = Fd(*real, 0, 5000, *real, 5000, 5000);

  // Wrong image sets: 2000 of uniform noise, all-black canvases (all
  // alike: 2 are enough), and one class's real images (no diversity).
  const int64_t n = 2000, px = 28 * 28;
  std::vector<float> noise(n * px), blank(n * px, -1.0f);
  std::mt19937 rng(1);
  for (float& v : noise) v = std::uniform_real_distribution<float>(-1.f, 1.f)(rng);
  absl::StatusOr<eval::ClassifierOutputs> fn = (*ev)->Run(noise.data(), n, 28, 28, 1);
  ASSERT_TRUE(fn.ok());
  // Blank canvases of 20x20, padded to 28x28 by the evaluator.
  absl::StatusOr<eval::ClassifierOutputs> fb = (*ev)->Run(blank.data(), 2, 20, 20, 1);
  ASSERT_TRUE(fb.ok());
  std::vector<float> one_class;
  for (int64_t i = 0; i < test->count; ++i) {
    if (test->labels[i] != 7) continue;  // sneakers
    for (int64_t p = 0; p < px; ++p) one_class.push_back(ToUnitRange(test->image(i)[p]));
  }
  const int64_t n7 = static_cast<int64_t>(one_class.size() / px);
  absl::StatusOr<eval::ClassifierOutputs> f7 = (*ev)->Run(one_class.data(), n7, 28, 28, 1);
  ASSERT_TRUE(f7.ok());
  const double fd_noise = Fd(*fn, 0, n, *real, 5000, 5000);
  const double fd_blank = Fd(*fb, 0, 2, *real, 5000, 5000);  // degenerate: 0 covariance
  const double fd_one = Fd(*f7, 0, n7, *real, 5000, 5000);
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "classifier D=64, 300 steps x 64 images (%.1f s training, %.1f s "
      "in all): train loss "
      "%.3f -> %.3f, val loss %.3f, test accuracy %.4f (%lld/%lld); FD "
      "floor (two halves of "
      "the test split, 5000 each) %.4f; FD noise %.2f, blank %.2f, one "
      "class (%lld sneakers) "
      "%.2f\n",
      train_s, total_s, first, last, *val, acc->accuracy(), static_cast<long long>(acc->correct),
      static_cast<long long>(acc->total), floor, fd_noise, fd_blank, static_cast<long long>(n7),
      fd_one);
  EXPECT_LT(last, 0.6 * first);
  EXPECT_LT(*val, 0.55);
  EXPECT_GT(acc->accuracy(), 0.80);
  EXPECT_GT(floor, 0.0);
  EXPECT_GT(fd_noise, 20 * floor);
  EXPECT_GT(fd_blank, 20 * floor);
  EXPECT_GT(fd_one, 10 * floor);

  // The one-call report (what `sample --eval` prints) with real training
  // images standing in for samples: near the floor, accuracy near the test
  // split's; with their labels shifted by one class, accuracy far below
  // chance's ceiling; with growing pixel noise, a growing FD.
  absl::StatusOr<ImageDataset> train = LoadImageData(d, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  const int64_t m = 1000;
  std::vector<float> x(m * px);
  std::vector<int32_t> y(train->labels.begin(), train->labels.begin() + m), shifted(m);
  for (int64_t i = 0; i < m * px; ++i) x[i] = ToUnitRange(train->pixels[i]);
  for (int64_t i = 0; i < m; ++i) shifted[i] = (y[i] + 1) % 10;
  absl::StatusOr<eval::QualityReport> q =
      eval::EvaluateSamples(**ev, x.data(), y.data(), m, 28, 28, 1, *test);
  ASSERT_TRUE(q.ok()) << q.status();
  std::printf("real training images as samples: %s\n", q->Summary().c_str());
  EXPECT_EQ(q->n, m);
  EXPECT_LT(q->fd, 3 * q->fd_floor);
  EXPECT_NEAR(q->accuracy, q->real_accuracy, 0.05);
  absl::StatusOr<eval::QualityReport> qs =
      eval::EvaluateSamples(**ev, x.data(), shifted.data(), m, 28, 28, 1, *test);
  ASSERT_TRUE(qs.ok());
  EXPECT_LT(qs->accuracy, 0.2);
  EXPECT_DOUBLE_EQ(qs->fd, q->fd);
  double previous = q->fd;
  for (float sigma : {0.1f, 0.4f}) {
    std::vector<float> noisy = x;
    std::normal_distribution<float> g(0.f, sigma);
    for (float& v : noisy) v = std::clamp(v + g(rng), -1.f, 1.f);
    absl::StatusOr<eval::QualityReport> qn =
        eval::EvaluateSamples(**ev, noisy.data(), nullptr, m, 28, 28, 1, *test);
    ASSERT_TRUE(qn.ok());
    std::printf("training images + N(0, %.1f^2) pixel noise: %s\n", sigma, qn->Summary().c_str());
    EXPECT_EQ(qn->accuracy, -1);
    EXPECT_GT(qn->fd, previous);
    previous = qn->fd;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anvil
