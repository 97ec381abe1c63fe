// `sample --eval` end to end through the real binaries: a tiny classifier
// and a tiny class-conditional UNet, each trained a few steps by `train` on
// the default Fashion-MNIST data, then `sample --eval --classifier_dir`
// draws the grid and an eval set and prints the quality metric: the Fréchet
// distance with its real-vs-real floor and the conditional accuracy, all
// finite (the numbers mean nothing after a few steps; the metric's own
// values are tested in tests/eval). Bad eval input — a classifier_dir that
// holds a non-classifier, no classifier_dir, a classifier of another class
// count — is one stderr line and exit code 2, before any sampling. Skipped
// where the data set is not installed.
#include <unistd.h>

#include <cmath>
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

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The number printed right after `key` in `text` (NaN when absent).
double NumberAfter(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return std::nan("");
  const char* begin = text.c_str() + at + key.size();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  return end == begin ? std::nan("") : v;
}

class SampleEvalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(fs::path(kDefaultImageDir) / "train-images-idx3-ubyte.gz")) return;
    dir_ = fs::temp_directory_path() / ("anvil_sample_eval_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::vector<std::string> common{"--threads=1", "--steps=4", "--log_every=4",
                                          "--eval_every=0", "--batch_size=16"};
    std::vector<std::string> clf{"--model=classifier", "--n_embd=16", "--lr=1e-2",
                                 "--checkpoint_dir=" + (dir_ / "clf").string()};
    clf.insert(clf.end(), common.begin(), common.end());
    testing::ProcessResult c = testing::RunProcess(ANVIL_TRAIN_BIN, clf, "", 0, 120);
    ASSERT_EQ(c.exit_code, 0) << c.err << c.out;
    std::vector<std::string> unet{"--model=unet",
                                  "--unet_channels=8",
                                  "--norm_groups=4",
                                  "--unet_channel_mult=1,2",
                                  "--unet_attention_res=14",
                                  "--checkpoint_dir=" + (dir_ / "unet").string()};
    unet.insert(unet.end(), common.begin(), common.end());
    testing::ProcessResult u = testing::RunProcess(ANVIL_TRAIN_BIN, unet, "", 0, 120);
    ASSERT_EQ(u.exit_code, 0) << u.err << u.out;
    trained_ = true;
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!fs::exists(fs::path(kDefaultImageDir) / "train-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << kDefaultImageDir << " missing (Debian dataset-fashion-mnist)";
    }
    ASSERT_TRUE(trained_) << "training the tiny classifier or UNet failed";
  }

  // `sample` on the tiny UNet with a small grid and few DDIM steps.
  static testing::ProcessResult Sample(std::vector<std::string> extra) {
    std::vector<std::string> a{"--checkpoint_dir=" + (dir_ / "unet").string(),
                               "--out=" + (dir_ / "grid.png").string(), "--steps=3",
                               "--per_class=2", "--threads=1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return testing::RunProcess(ANVIL_SAMPLE_BIN, a, "", 0, 120);
  }

  static fs::path dir_;
  static bool trained_;
};

fs::path SampleEvalTest::dir_;
bool SampleEvalTest::trained_ = false;

TEST_F(SampleEvalTest, PrintsTheFrechetDistanceItsFloorAndTheConditionalAccuracy) {
  testing::ProcessResult r = Sample(
      {"--eval", "--classifier_dir=" + (dir_ / "clf").string(), "--eval_samples=4", "--batch=16"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "grid.png"));
  // The grid line, then three eval lines.
  EXPECT_EQ(Lines(r.out), 4) << r.out;
  EXPECT_NE(r.out.find("one row per class, 10 classes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eval: 40 samples (4 per class) against the real test split, classifier "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("clf/step_00000004 step 4"), std::string::npos) << r.out;
  const double fd = NumberAfter(r.out, "Frechet distance ");
  const double floor = NumberAfter(r.out, "(floor ");
  const double acc = NumberAfter(r.out, "conditional accuracy ");
  const double chance = NumberAfter(r.out, "(chance ");
  const double real = NumberAfter(r.out, "the classifier on real test images ");
  EXPECT_TRUE(std::isfinite(fd) && fd >= 0) << r.out;
  EXPECT_TRUE(std::isfinite(floor) && floor >= 0) << r.out;
  EXPECT_TRUE(std::isfinite(acc) && acc >= 0 && acc <= 100) << r.out;
  EXPECT_EQ(chance, 10.0) << r.out;
  EXPECT_TRUE(std::isfinite(real) && real >= 0 && real <= 100) << r.out;
  EXPECT_NE(r.out.find("two disjoint real sets of 40 test images"), std::string::npos) << r.out;
}

TEST_F(SampleEvalTest, BadEvalInputIsOneLineAndExitTwo) {
  // A classifier_dir holding a non-classifier (the UNet's own run).
  testing::ProcessResult r = Sample({"--eval", "--classifier_dir=" + (dir_ / "unet").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("sample: --classifier_dir: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("holds a --model unet checkpoint, not a classifier's"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");  // refused before sampling: no grid line
  for (const auto& [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--eval"}, "--eval needs --classifier_dir"},
           {{"--classifier_dir=" + (dir_ / "clf").string()}, "only read with --eval"},
           {{"--eval", "--classifier_dir=" + (dir_ / "none").string()}, "no committed checkpoint"},
           {{"--eval", "--classifier_dir=" + (dir_ / "clf").string(), "--eval_samples=1"},
            "--eval_samples must be in"}}) {
    testing::ProcessResult bad = Sample(args);
    EXPECT_EQ(bad.exit_code, 2) << needle << ": " << bad.out;
    EXPECT_EQ(Lines(bad.err), 1) << bad.err;
    EXPECT_NE(bad.err.find(needle), std::string::npos) << bad.err;
  }
}

}  // namespace
}  // namespace anvil
