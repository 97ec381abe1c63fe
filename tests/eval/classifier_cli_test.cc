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
#include "tests/common/process.h"

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
  // Other sizes: a 32x32 canvas (a 28x28 image padded as --image_pad 32
  // does) is cropped back to the same features; other channels are refused.
  std::vector<float> img28(300 * 28 * 28), img32(300 * 32 * 32, -1.0f);
  for (int64_t i = 0; i < 300 * 28 * 28; ++i) img28[i] = ToUnitRange(test->image(100)[i]);
  for (int i = 0; i < 300; ++i)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        img32[(i * 32 + y + 2) * 32 + x + 2] = img28[(i * 28 + y) * 28 + x];
  absl::StatusOr<eval::ClassifierOutputs> cropped = (*ev)->Run(img32.data(), 300, 32, 32, 1);
  ASSERT_TRUE(cropped.ok()) << cropped.status();
  EXPECT_EQ(cropped->features, out->features);
  const absl::Status channels = (*ev)->Run(img32.data(), 2, 16, 16, 3).status();
  EXPECT_NE(channels.message().find("takes 28x28x1"), std::string::npos) << channels;
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
           {"--image_classes=1", "--image_classes"}}) {
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
