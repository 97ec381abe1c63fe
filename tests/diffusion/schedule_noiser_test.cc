// Noise schedules against their closed forms, and the training noiser:
// deterministic, rank-independent for the same global sample, N(0,1) noise,
// uniform t, the eps and v targets, label dropout at its rate.
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/diffusion/counter_rng.h"
#include "runtime/diffusion/noiser.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {
namespace {

NoiseSchedule Make(ScheduleKind kind, int T = 1000) {
  ScheduleOptions o;
  o.kind = kind;
  o.timesteps = T;
  absl::StatusOr<NoiseSchedule> s = NoiseSchedule::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

TEST(Schedule, LinearMatchesDdpm) {
  const NoiseSchedule s = Make(ScheduleKind::kLinear);
  ASSERT_EQ(s.timesteps(), 1000);
  EXPECT_DOUBLE_EQ(s.beta(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.beta(999), 0.02);
  EXPECT_NEAR(s.beta(500), 1e-4 + (0.02 - 1e-4) * 500 / 999, 1e-15);
  // abar_t = prod (1 - beta_i); values from an independent double-precision run.
  EXPECT_DOUBLE_EQ(s.alpha_bar(0), 0.9999);
  EXPECT_NEAR(s.alpha_bar(499), 0.07858724288177821, 1e-14);
  EXPECT_NEAR(s.alpha_bar(999) / 4.0358297653756754e-05, 1.0, 1e-10);
  EXPECT_DOUBLE_EQ(s.alpha_bar_prev(0), 1.0);
  EXPECT_DOUBLE_EQ(s.alpha_bar_prev(10), s.alpha_bar(9));
  for (int t = 1; t < 1000; ++t) ASSERT_LT(s.alpha_bar(t), s.alpha_bar(t - 1));
}

TEST(Schedule, CosineMatchesClosedForm) {
  const int T = 1000;
  const double sh = 0.008;
  const NoiseSchedule s = Make(ScheduleKind::kCosine, T);
  auto f = [&](double t) { return std::pow(std::cos((t / T + sh) / (1 + sh) * M_PI / 2), 2); };
  // Unclipped steps: abar_t = f(t+1) / f(0) exactly (the product telescopes).
  for (int t : {0, 1, 100, 499, 900, 998}) {
    EXPECT_NEAR(s.alpha_bar(t) / (f(t + 1) / f(0)), 1.0, 1e-9) << t;
  }
  EXPECT_NEAR(s.alpha_bar(499), 0.4938435904406382, 1e-12);
  // Endpoints: the first beta is tiny, the last is clipped at 0.999.
  EXPECT_NEAR(s.beta(0), 4.128422482196914e-05, 1e-15);
  EXPECT_DOUBLE_EQ(s.beta(999), 0.999);
  EXPECT_LT(s.beta(998), 0.999);
  EXPECT_NEAR(s.alpha_bar(999), s.alpha_bar(998) * 0.001, 1e-20);
  EXPECT_GT(s.alpha_bar(999), 0.0);
}

TEST(Schedule, BadOptions) {
  ScheduleOptions o;
  o.timesteps = 1;
  EXPECT_FALSE(NoiseSchedule::Create(o).ok());
  EXPECT_FALSE(ParseScheduleKind("sigmoid").ok());
  EXPECT_EQ(*ParseScheduleKind("cosine"), ScheduleKind::kCosine);
  EXPECT_FALSE(ParsePrediction("x0").ok());
}

struct Out {
  std::vector<float> x_t, target;
  std::vector<int32_t> t, labels, dropout_seeds;
};

Out Noise(const TrainingNoiser& n, const std::vector<float>& x0, const std::vector<int32_t>& labels,
          int64_t per, uint64_t step, uint64_t first, int begin, int count) {
  Out o;
  o.x_t.resize(count * per);
  o.target.resize(count * per);
  o.t.resize(count);
  o.labels.resize(count);
  o.dropout_seeds.resize(count);
  NoiserBatch b;
  b.batch = count;
  b.sample_numel = per;
  b.x0 = x0.data() + begin * per;
  b.labels = labels.empty() ? nullptr : labels.data() + begin;
  b.step = step;
  b.first_index = first;
  b.x_t = o.x_t.data();
  b.target = o.target.data();
  b.timesteps = o.t.data();
  b.labels_out = o.labels.data();
  b.dropout_seeds = o.dropout_seeds.data();
  n.Apply(b);
  return o;
}

class NoiserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    x0_.resize(kB * kPer);
    for (size_t i = 0; i < x0_.size(); ++i) x0_[i] = std::sin(0.37 * i);
    for (int i = 0; i < kB; ++i) labels_.push_back(i % 10);
  }
  static constexpr int kB = 8;
  static constexpr int64_t kPer = 3 * 4 * 2;
  NoiseSchedule sch_ = Make(ScheduleKind::kLinear);
  std::vector<float> x0_;
  std::vector<int32_t> labels_;
};

TEST_F(NoiserTest, DeterministicAndRankIndependent) {
  NoiserOptions o;
  o.seed = 9;
  o.num_classes = 10;
  o.label_dropout = 0.5;
  TrainingNoiser n(&sch_, o);
  const Out all = Noise(n, x0_, labels_, kPer, 4, 0, 0, kB);
  const Out again = Noise(n, x0_, labels_, kPer, 4, 0, 0, kB);
  EXPECT_EQ(all.x_t, again.x_t);
  EXPECT_EQ(all.t, again.t);
  // Rank 1 of 2 holding global samples 4..7 draws exactly their part.
  const Out r1 = Noise(n, x0_, labels_, kPer, 4, 4, 4, 4);
  EXPECT_EQ(std::vector<float>(all.x_t.begin() + 4 * kPer, all.x_t.end()), r1.x_t);
  EXPECT_EQ(std::vector<float>(all.target.begin() + 4 * kPer, all.target.end()), r1.target);
  EXPECT_EQ(std::vector<int32_t>(all.t.begin() + 4, all.t.end()), r1.t);
  EXPECT_EQ(std::vector<int32_t>(all.labels.begin() + 4, all.labels.end()), r1.labels);
  EXPECT_EQ(std::vector<int32_t>(all.dropout_seeds.begin() + 4, all.dropout_seeds.end()),
            r1.dropout_seeds);
  EXPECT_NE(all.dropout_seeds[0], all.dropout_seeds[1]);
  EXPECT_NE(Noise(n, x0_, labels_, kPer, 5, 0, 0, kB).dropout_seeds, all.dropout_seeds);
  // Another step or seed draws other noise.
  EXPECT_NE(Noise(n, x0_, labels_, kPer, 5, 0, 0, kB).target, all.target);
  o.seed = 10;
  EXPECT_NE(Noise(TrainingNoiser(&sch_, o), x0_, labels_, kPer, 4, 0, 0, kB).target, all.target);
}

TEST_F(NoiserTest, EpsTargetAndStatistics) {
  NoiserOptions o;
  o.seed = 1;
  o.num_classes = 10;
  o.label_dropout = 0.1;
  TrainingNoiser n(&sch_, o);
  double sum = 0, sq = 0;
  int64_t count = 0, dropped = 0, low = 0;
  std::vector<int> bins(10);
  for (uint64_t step = 0; step < 2500; ++step) {
    const Out r = Noise(n, x0_, labels_, kPer, step, 0, 0, kB);
    for (int i = 0; i < kB; ++i) {
      const int t = r.t[i];
      ASSERT_TRUE(t >= 0 && t < 1000);
      ++bins[t / 100];
      low += t == 0;
      if (r.labels[i] == 10) {
        ++dropped;
      } else {
        ASSERT_EQ(r.labels[i], labels_[i]);
      }
      const double a = std::sqrt(sch_.alpha_bar(t)), s = std::sqrt(1 - sch_.alpha_bar(t));
      for (int64_t j = 0; j < kPer; ++j) {
        const double eps = r.target[i * kPer + j];
        ASSERT_NEAR(r.x_t[i * kPer + j], a * x0_[i * kPer + j] + s * eps, 1e-5);
        sum += eps;
        sq += eps * eps;
        ++count;
      }
    }
  }
  EXPECT_NEAR(sum / count, 0.0, 0.01);  // 480,000 draws: sd of the mean 0.0014
  EXPECT_NEAR(sq / count, 1.0, 0.01);
  for (int b : bins) EXPECT_NEAR(b, 2000, 200);  // uniform t over 10 bins
  EXPECT_NEAR(static_cast<double>(dropped) / (2500 * kB), 0.1, 0.01);
  EXPECT_LT(low, 100);
}

TEST_F(NoiserTest, VTarget) {
  NoiserOptions o;
  o.seed = 2;
  o.num_classes = 10;
  o.label_dropout = 0;
  const Out e = Noise(TrainingNoiser(&sch_, o), x0_, labels_, kPer, 3, 0, 0, kB);
  o.prediction = Prediction::kV;
  const Out v = Noise(TrainingNoiser(&sch_, o), x0_, labels_, kPer, 3, 0, 0, kB);
  EXPECT_EQ(e.x_t, v.x_t);       // same t and noise
  EXPECT_EQ(e.labels, labels_);  // no dropout
  for (int i = 0; i < kB; ++i) {
    const double a = std::sqrt(sch_.alpha_bar(v.t[i])), s = std::sqrt(1 - sch_.alpha_bar(v.t[i]));
    for (int64_t j = 0; j < kPer; ++j) {
      const size_t k = i * kPer + j;
      EXPECT_NEAR(v.target[k], a * e.target[k] - s * x0_[k], 1e-5);
      // And the prediction.h conversions invert it.
      EXPECT_NEAR(EpsFromOutput(Prediction::kV, v.target[k], v.x_t[k], a, s), e.target[k], 1e-4);
      EXPECT_NEAR(X0FromOutput(Prediction::kV, v.target[k], v.x_t[k], a, s), x0_[k], 1e-4);
    }
  }
}

TEST_F(NoiserTest, UnconditionalAndAlwaysDropped) {
  NoiserOptions o;
  o.num_classes = 0;
  const Out u = Noise(TrainingNoiser(&sch_, o), x0_, labels_, kPer, 0, 0, 0, kB);
  EXPECT_EQ(u.labels, std::vector<int32_t>(kB, 0));
  o.num_classes = 10;
  const Out none = Noise(TrainingNoiser(&sch_, o), x0_, {}, kPer, 0, 0, 0, kB);
  EXPECT_EQ(none.labels, std::vector<int32_t>(kB, 10));
  o.label_dropout = 1;
  const Out all = Noise(TrainingNoiser(&sch_, o), x0_, labels_, kPer, 0, 0, 0, kB);
  EXPECT_EQ(all.labels, std::vector<int32_t>(kB, 10));
}

TEST(CounterRng, NormalPrefixAndIndependence) {
  std::vector<float> a(7), b(8);
  CounterNormal(CounterKey(1, RngStream::kTrainNoise, 2, 3), a.data(), a.size());
  CounterNormal(CounterKey(1, RngStream::kTrainNoise, 2, 3), b.data(), b.size());
  EXPECT_EQ(a, std::vector<float>(b.begin(), b.begin() + 7));
  EXPECT_NE(CounterKey(1, RngStream::kTrainNoise, 2, 3),
            CounterKey(1, RngStream::kTrainNoise, 3, 2));
  EXPECT_NE(CounterKey(1, RngStream::kTrainNoise, 2, 3),
            CounterKey(1, RngStream::kSampleStep, 2, 3));
  for (int i = 0; i < 1000; ++i) ASSERT_LT(CounterBelow(77, i, 13), 13u);
}

}  // namespace
}  // namespace anvil::diffusion
