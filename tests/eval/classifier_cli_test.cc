// `train --model classifier` through the real binary: a short run on the
// default Fashion-MNIST data logs images/s and a validation loss and
// checkpoints, the evaluator loads that checkpoint; the classifier's flag
// errors are one stderr line with exit code 2; classifier_eval prints the
// checkpoint's test accuracy and Fréchet floor. Skipped where the data set is
// not installed.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/data/image_data_config.h"
#include "runtime/eval/classifier_features.h"
#include "tests/trainer/subprocess.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Args(const std::string& ckpt, std::vector<std::string> extra = {}) {
  std::vector<std::string> a{"--model=classifier", "--n_embd=16",
                             "--batch_size=16",    "--steps=12",
                             "--threads=1",        "--eval_every=12",
                             "--eval_batches=2",   "--log_every=4",
                             "--lr=1e-2",          "--checkpoint_dir=" + ckpt};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(ClassifierCli, TrainsChecksAndReloads) {
  if (!fs::exists(fs::path(kDefaultImageDir) / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << kDefaultImageDir << " missing (Debian dataset-fashion-mnist)";
  }
  const fs::path dir = fs::temp_directory_path() / ("anvil_clf_cli_" + std::to_string(getpid()));
  fs::remove_all(dir);
  testing::ProcessResult r = testing::RunProcess(ANVIL_TRAIN_BIN, Args(dir.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  for (const char* s : {"Classifier D=16 28x28x1 K=10", "step    12/12", "img/s", "val loss",
                        "checkpoint step_00000012 committed"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  auto device = kernels::MakeCpuDevice(1);
  absl::StatusOr<std::unique_ptr<eval::ClassifierEvaluator>> ev =
      eval::ClassifierEvaluator::Load((dir / "step_00000012").string(), device.get());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ((*ev)->feature_dim(), 16);
  EXPECT_EQ((*ev)->train_config().model().kind(), "classifier");
  absl::StatusOr<ImageDataset> test = LoadImageData(proto::DataConfig(), Split::kVal);
  ASSERT_TRUE(test.ok());
  absl::StatusOr<eval::ClassifierOutputs> out = (*ev)->Run(*test, 100, 300);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->features.size(), 300u * 16);
  EXPECT_FALSE((*ev)->Run(*test, 9900, 200).ok());  // past the end
  // Larger images or other channels than the classifier's are refused.
  const std::vector<float> big(2 * 32 * 32 * 3, 0.0f);
  const absl::Status too_big = (*ev)->Run(big.data(), 2, 32, 32, 1).status();
  EXPECT_NE(too_big.message().find("takes 28x28x1"), std::string::npos) << too_big;
  EXPECT_FALSE((*ev)->Run(big.data(), 2, 28, 28, 3).ok());
  // A directory without checkpoints says so.
  const absl::Status none =
      eval::ClassifierEvaluator::Load((dir / "nothing").string(), device.get()).status();
  EXPECT_NE(none.message().find("no committed checkpoint"), std::string::npos) << none;
  // classifier_eval prints the test accuracy and the floor.
  testing::ProcessResult e = testing::RunProcess(
      ANVIL_CLASSIFIER_EVAL_BIN, {"--checkpoint=" + dir.string(), "--n=500", "--threads=1"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  for (const char* s : {"(step 12, D=16, K=10)", "test accuracy", "of 1000", "FD floor",
                        "two disjoint sets of 500 test images"}) {
    EXPECT_NE(e.out.find(s), std::string::npos) << s << "\n" << e.out;
  }
  testing::ProcessResult no_dir = testing::RunProcess(ANVIL_CLASSIFIER_EVAL_BIN, {});
  EXPECT_EQ(no_dir.exit_code, 2);
  EXPECT_EQ(no_dir.err, "classifier_eval: --checkpoint is required\n");
  // Padded images: --image_pad 32 needs --image_size 32.
  for (const auto& [flag, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--image_pad=32", "--image_pad (32)"},
           {"--n_embd=10", "--n_embd"},
           {"--model_num_classes=1", "--model_num_classes"}}) {
    testing::ProcessResult bad =
        testing::RunProcess(ANVIL_TRAIN_BIN, Args((dir / "bad").string(), {flag}));
    EXPECT_EQ(bad.exit_code, 2) << flag << ": " << bad.err;
    EXPECT_EQ(Lines(bad.err), 1) << bad.err;
    EXPECT_NE(bad.err.find(needle), std::string::npos) << bad.err;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anvil
