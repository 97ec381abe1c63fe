// classifier_eval: a trained classifier checkpoint on the real test split.
//
//   classifier_eval --checkpoint DIR [--n 5000] [--state params] [data flags]
// prints the classifier's test accuracy (per class too) and the Fréchet
// distance floor between two disjoint sets of N test images (frechet.h):
// the numbers `sample --eval` reports generated images against. The data
// flags are train's (--val_images/--val_labels, --val_image_root; none:
// Debian's Fashion-MNIST test split).
#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "common/command_line.h"
#include "kernels/device.h"
#include "runtime/data/image_data_config.h"
#include "runtime/eval/classifier_features.h"
#include "runtime/eval/frechet.h"

ABSL_FLAG(std::string, checkpoint, "", "Classifier checkpoint directory (or one step_<N> in it).");
ABSL_FLAG(int64_t, n, 5000, "Test images in each of the two sets of the floor.");
ABSL_FLAG(std::string, state, "params", "Checkpoint state to load (params, ema).");
ABSL_FLAG(std::string, val_images, "", "IDX images file of the test split (empty: Fashion-MNIST).");
ABSL_FLAG(std::string, val_labels, "", "IDX labels file of the test split.");
ABSL_FLAG(std::string, val_image_root, "", "ImageFolder root of the test split.");
ABSL_FLAG(int, threads, 0, "CPU threads (0: all cores).");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "classifier_eval: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("classifier_eval --checkpoint DIR [--n N]");
  if (auto checked = anvil::CheckCommandLine(argc, argv); !checked.ok()) {
    return Fail(std::string(checked.status().message()));
  }
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_checkpoint).empty()) return Fail("--checkpoint is required");
  auto device = anvil::kernels::MakeCpuDevice(absl::GetFlag(FLAGS_threads));
  anvil::eval::ClassifierEvalOptions options;
  options.state = absl::GetFlag(FLAGS_state);
  auto ev = anvil::eval::ClassifierEvaluator::Load(absl::GetFlag(FLAGS_checkpoint), device.get(),
                                                   options);
  if (!ev.ok()) return Fail(std::string(ev.status().message()));
  anvil::proto::DataConfig d;
  d.set_val_images(absl::GetFlag(FLAGS_val_images));
  d.set_val_labels(absl::GetFlag(FLAGS_val_labels));
  d.set_val_image_root(absl::GetFlag(FLAGS_val_image_root));
  if (!d.val_image_root().empty()) d.set_image_root(d.val_image_root());
  if (!d.val_images().empty()) d.set_train_images(d.val_images());
  auto test = anvil::LoadImageData(d, anvil::Split::kVal);
  if (!test.ok()) return Fail(std::string(test.status().message()));
  if (!test->labelled()) return Fail(test->source + ": the test split needs labels");
  const int64_t n = std::min(absl::GetFlag(FLAGS_n), test->count / 2);
  if (n < 2) return Fail("--n must be >= 2 (and the test split hold 2 N images)");
  auto out = (*ev)->Run(*test, 0, test->count);
  if (!out.ok()) return Fail(std::string(out.status().message()));
  auto acc =
      anvil::eval::Accuracy(out->logits.data(), test->labels.data(), test->count, out->classes);
  if (!acc.ok()) return Fail(std::string(acc.status().message()));
  auto a = anvil::eval::ComputeFeatureStats(out->features.data(), n, out->dim);
  auto b = anvil::eval::ComputeFeatureStats(out->features.data() + n * out->dim, n, out->dim);
  if (!a.ok() || !b.ok()) return Fail("feature statistics failed (non-finite features?)");
  auto floor = anvil::eval::FrechetDistance(*a, *b);
  if (!floor.ok()) return Fail(std::string(floor.status().message()));
  std::printf("classifier %s (step %lld, D=%d, K=%d) on %s\n", (*ev)->checkpoint_path().c_str(),
              static_cast<long long>((*ev)->step()), out->dim, out->classes, test->source.c_str());
  std::printf("test accuracy %.2f%% (%lld/%lld; chance %.1f%%)\n", 100 * acc->accuracy(),
              static_cast<long long>(acc->correct), static_cast<long long>(acc->total),
              100.0 / out->classes);
  for (int k = 0; k < out->classes; ++k) {
    const int64_t t = acc->class_total[k];
    std::printf("  class %d: %.1f%% of %lld\n", k, t > 0 ? 100.0 * acc->class_correct[k] / t : 0.0,
                static_cast<long long>(t));
  }
  std::printf("FD floor %.4f (two disjoint sets of %lld test images)\n", *floor,
              static_cast<long long>(n));
  return 0;
}
