#include "runtime/eval/quality.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "runtime/eval/frechet.h"

namespace anvil::eval {
namespace {

absl::StatusOr<FeatureStats> Stats(const ClassifierOutputs& o, int64_t begin, int64_t n) {
  return ComputeFeatureStats(o.features.data() + begin * o.dim, n, o.dim);
}

}  // namespace

std::string QualityReport::Summary() const {
  std::string s =
      absl::StrFormat("FD %.4g (floor %.4g: two disjoint real sets of %d)", fd, fd_floor, n);
  const double chance = classes > 0 ? 100.0 / classes : 0.0;
  if (accuracy >= 0) {
    absl::StrAppend(&s, absl::StrFormat(", conditional accuracy %.1f%% (chance %.1f%%, real test "
                                        "images %.1f%%)",
                                        100 * accuracy, chance, 100 * real_accuracy));
  } else {
    absl::StrAppend(&s, absl::StrFormat(" (unconditional samples: no accuracy; real test images "
                                        "%.1f%%)",
                                        100 * real_accuracy));
  }
  return s;
}

absl::StatusOr<QualityReport> EvaluateSamples(ClassifierEvaluator& classifier, const float* samples,
                                              const int32_t* labels, int64_t n, int h, int w, int c,
                                              const ImageDataset& real) {
  if (!real.labelled()) {
    return absl::InvalidArgumentError(absl::StrCat(real.source, ": the real images need labels"));
  }
  const int64_t use = std::min(n, real.count / 2);
  if (use < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("the quality metric needs at least 2 samples "
                     "and 4 real images, got ",
                     n, " and ", real.count));
  }
  ASSIGN_OR_RETURN(const ClassifierOutputs gen, classifier.Run(samples, use, h, w, c));
  ASSIGN_OR_RETURN(const ClassifierOutputs ref, classifier.Run(real, 0, 2 * use));
  ASSIGN_OR_RETURN(const FeatureStats a, Stats(ref, 0, use));
  ASSIGN_OR_RETURN(const FeatureStats b, Stats(ref, use, use));
  ASSIGN_OR_RETURN(const FeatureStats g, Stats(gen, 0, use));
  QualityReport r;
  r.n = use;
  r.classes = gen.classes;
  ASSIGN_OR_RETURN(r.fd, FrechetDistance(g, a));
  ASSIGN_OR_RETURN(r.fd_floor, FrechetDistance(b, a));
  ASSIGN_OR_RETURN(const AccuracyResult ra,
                   Accuracy(ref.logits.data(), real.labels.data(), 2 * use, ref.classes));
  r.real_accuracy = ra.accuracy();
  if (labels != nullptr) {
    ASSIGN_OR_RETURN(const AccuracyResult ga,
                     Accuracy(gen.logits.data(), labels, use, gen.classes));
    r.accuracy = ga.accuracy();
  }
  return r;
}

}  // namespace anvil::eval
