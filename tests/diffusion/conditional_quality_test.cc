// A short class-conditional training run on Fashion-MNIST, end to end
// through the real binaries: `train --model classifier` (150 steps), `train
// --model unet` (a small UNet, 300 steps, label dropout 0.1, EMA), then
// `sample --eval` draws 10 images per class with DDIM and guidance 3 and the
// classifier reads them. Asserted: the UNet's eps-MSE falls from ~1 (its
// zero-initialised output predicts 0) well below its start, and its
// conditional samples are classified far above chance (10%): at least 25%,
// five binomial standard deviations above chance for 100 samples (this CPU
// reaches 44%). Skipped where the data set is not installed.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/data/image_data_config.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

// The number printed right after the last occurrence of `key` (NaN when
// absent), or after the first when `first` is set.
double NumberAfter(const std::string& text, const std::string& key, bool first = false) {
  const size_t at = first ? text.find(key) : text.rfind(key);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

TEST(ConditionalQuality, ShortUNetRunDrawsRecognisableClasses) {
  if (!fs::exists(fs::path(kDefaultImageDir) / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << kDefaultImageDir << " missing (Debian dataset-fashion-mnist)";
  }
  const fs::path dir = fs::temp_directory_path() / ("anvil_cond_quality_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  testing::ProcessResult c = testing::RunProcess(
      ANVIL_TRAIN_BIN,
      {"--model=classifier", "--threads=2", "--n_embd=32", "--batch_size=64", "--lr=2e-2",
       "--grad_clip=0", "--weight_decay=0", "--steps=150", "--log_every=150", "--eval_every=0",
       "--checkpoint_dir=" + (dir / "clf").string()},
      "", 0, 300);
  ASSERT_EQ(c.exit_code, 0) << c.err << c.out;
  testing::ProcessResult u = testing::RunProcess(
      ANVIL_TRAIN_BIN,
      {"--model=unet", "--unet_channels=16", "--unet_channel_mult=1,2",
       "--unet_attention_res=14", "--norm_groups=4", "--n_head=2", "--threads=2",
       "--batch_size=32", "--lr=3e-3", "--warmup_steps=20", "--steps=300", "--log_every=1",
       "--eval_every=0", "--checkpoint_dir=" + (dir / "unet").string()},
      "", 0, 600);
  ASSERT_EQ(u.exit_code, 0) << u.err << u.out;
  // The step lines (--log_every=1): the first and the last loss.
  const double first = NumberAfter(u.out, "| loss ", true);
  const double last = NumberAfter(u.out, "| loss ");
  testing::ProcessResult s = testing::RunProcess(
      ANVIL_SAMPLE_BIN,
      {"--checkpoint_dir=" + (dir / "unet").string(), "--out=" + (dir / "grid.png").string(),
       "--sampler=ddim", "--steps=20", "--guidance=3", "--per_class=10", "--threads=2", "--eval",
       "--classifier_dir=" + (dir / "clf").string(), "--eval_samples=10"},
      "", 0, 300);
  fs::remove_all(dir);
  ASSERT_EQ(s.exit_code, 0) << s.err << s.out;
  const double acc = NumberAfter(s.out, "conditional accuracy ");
  const double fd = NumberAfter(s.out, "Frechet distance ");
  std::printf("unet 300 steps: loss %.4f -> %.4f; samples: conditional accuracy %.1f%%, "
              "Frechet distance %.2f\n%s",
              first, last, acc, fd, s.out.c_str());
  EXPECT_GT(first, 0.7);  // eps ~ N(0,1) against a zero prediction
  EXPECT_LT(last, 0.15);
  EXPECT_GE(acc, 25.0) << s.out;
  EXPECT_TRUE(std::isfinite(fd)) << s.out;
}

}  // namespace
}  // namespace anvil
