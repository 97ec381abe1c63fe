// DDPM and DDIM samplers and classifier-free guidance, with models given as
// callbacks: an exact denoiser of a point mass must be sampled back to that
// point; DDIM with eta = 1 over all T steps equals DDPM on the same noise;
// DDIM with eta = 0 uses no noise; guidance mixes the two branches; a fixed
// seed reproduces the same images however the batch is split.
#include "runtime/diffusion/sampling.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {
namespace {

NoiseSchedule Make(ScheduleKind kind, int T = 1000) {
  ScheduleOptions o;
  o.kind = kind;
  o.timesteps = T;
  return *NoiseSchedule::Create(o);
}

// The exact eps (or v) predictor when the data is one point per label:
// points[label] (per-sample values), for labels 0..n-1; null_class gets `null_point`.
ModelFn PointMass(const NoiseSchedule& sch, const SampleShape& shape, Prediction p,
                  std::vector<std::vector<float>> points, int* calls = nullptr) {
  return [&sch, shape, p, points, calls](const float* x_t, const int32_t* t, const int32_t* labels,
                                         float* out) {
    if (calls) ++*calls;
    const int64_t per = shape.sample_numel();
    for (int b = 0; b < shape.batch; ++b) {
      const double a = std::sqrt(sch.alpha_bar(t[b])), s = std::sqrt(1 - sch.alpha_bar(t[b]));
      const std::vector<float>& x0 = points.at(labels[b]);
      for (int64_t j = 0; j < per; ++j) {
        const double xt = x_t[b * per + j];
        const double eps = (xt - a * x0[j]) / s;
        out[b * per + j] = static_cast<float>(p == Prediction::kEps ? eps : a * eps - s * x0[j]);
      }
    }
    return absl::OkStatus();
  };
}

// A smooth model that is no exact denoiser (so the steps' noise matters).
absl::Status Smooth(const SampleShape& shape, const float* x_t, const int32_t* t,
                    const int32_t* labels, float* out) {
  const int64_t per = shape.sample_numel();
  for (int b = 0; b < shape.batch; ++b)
    for (int64_t j = 0; j < per; ++j)
      out[b * per + j] = static_cast<float>(0.6 * x_t[b * per + j] +
                                            0.3 * std::sin(0.01 * t[b] + labels[b] + 0.5 * j));
  return absl::OkStatus();
}

std::vector<float> Point(int64_t n, double phase) {
  std::vector<float> p(n);
  for (int64_t j = 0; j < n; ++j) p[j] = static_cast<float>(0.8 * std::sin(phase + 0.7 * j));
  return p;
}

std::vector<float> Draw(const NoiseSchedule& sch, const ModelFn& model, const SampleShape& shape,
                        const int32_t* labels, const SamplingOptions& o) {
  std::vector<float> out(shape.numel());
  const absl::Status s = Sample(sch, model, shape, labels, o, out.data());
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double{a[i]} - b[i]));
  return m;
}

TEST(Sampling, Timesteps) {
  SamplingOptions o;
  o.steps = 50;
  const std::vector<int> ddim = SamplingTimesteps(1000, o);
  ASSERT_EQ(ddim.size(), 50u);
  EXPECT_EQ(ddim.front(), 980);
  EXPECT_EQ(ddim[1], 960);
  EXPECT_EQ(ddim.back(), 0);
  o.kind = SamplerKind::kDdpm;
  const std::vector<int> ddpm = SamplingTimesteps(1000, o);
  ASSERT_EQ(ddpm.size(), 1000u);
  EXPECT_EQ(ddpm.front(), 999);
  EXPECT_EQ(ddpm.back(), 0);
}

TEST(Sampling, ExactDenoiserOfAPointIsSampledToThePoint) {
  const SampleShape shape{2, 3, 3, 2};
  const int64_t per = shape.sample_numel();
  for (ScheduleKind kind : {ScheduleKind::kLinear, ScheduleKind::kCosine}) {
    const NoiseSchedule sch = Make(kind);
    for (Prediction p : {Prediction::kEps, Prediction::kV}) {
      const ModelFn model = PointMass(sch, shape, p, {Point(per, 0), Point(per, 1), Point(per, 2)});
      const std::vector<int32_t> labels = {1, 0};
      std::vector<float> expect = Point(per, 1);
      const std::vector<float> p0 = Point(per, 0);
      expect.insert(expect.end(), p0.begin(), p0.end());
      for (auto [k, steps, eta] : {std::tuple{SamplerKind::kDdpm, 0, 0.0},
                                   {SamplerKind::kDdim, 50, 0.0},
                                   {SamplerKind::kDdim, 10, 1.0},
                                   {SamplerKind::kDdim, 1000, 0.5}}) {
        SamplingOptions o;
        o.kind = k;
        o.steps = steps;
        o.eta = eta;
        o.prediction = p;
        o.null_class = 2;
        EXPECT_LT(MaxDiff(Draw(sch, model, shape, labels.data(), o), expect), 1e-3)
            << "schedule " << static_cast<int>(kind) << " prediction " << static_cast<int>(p)
            << " sampler " << static_cast<int>(k) << " steps " << steps << " eta " << eta;
      }
    }
  }
}

TEST(Sampling, DdimEta1AllStepsEqualsDdpm) {
  const NoiseSchedule sch = Make(ScheduleKind::kLinear);
  const SampleShape shape{3, 4, 4, 2};
  const ModelFn model = [shape](const float* x, const int32_t* t, const int32_t* l, float* out) {
    return Smooth(shape, x, t, l, out);
  };
  const std::vector<int32_t> labels = {0, 3, 7};
  for (bool clip : {false, true}) {
    SamplingOptions o;
    o.seed = 42;
    o.clip_x0 = clip;
    o.kind = SamplerKind::kDdpm;
    const std::vector<float> ddpm = Draw(sch, model, shape, labels.data(), o);
    o.kind = SamplerKind::kDdim;
    o.steps = 1000;
    o.eta = 1.0;
    const std::vector<float> ddim = Draw(sch, model, shape, labels.data(), o);
    EXPECT_LT(MaxDiff(ddpm, ddim), 2e-4) << "clip " << clip;
    o.eta = 0.0;
    EXPECT_GT(MaxDiff(ddpm, Draw(sch, model, shape, labels.data(), o)), 0.05)
        << "the step noise must matter for the comparison to mean anything";
  }
}

TEST(Sampling, DdimEta0UsesNoNoise) {
  const NoiseSchedule sch = Make(ScheduleKind::kCosine);
  const int64_t n = 16;
  std::vector<float> x(n), out(n), z1(n, 1.0f), z2(n, -3.0f), a(n), b(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::cos(i));
    out[i] = static_cast<float>(0.5 * std::sin(i));
  }
  DdimStep(sch, 500, 480, 0.0, Prediction::kEps, true, x.data(), out.data(), z1.data(), n,
           a.data());
  DdimStep(sch, 500, 480, 0.0, Prediction::kEps, true, x.data(), out.data(), z2.data(), n,
           b.data());
  EXPECT_EQ(a, b);
  DdimStep(sch, 500, 480, 0.0, Prediction::kEps, true, x.data(), out.data(), nullptr, n, b.data());
  EXPECT_EQ(a, b);
  DdimStep(sch, 500, 480, 0.5, Prediction::kEps, true, x.data(), out.data(), z2.data(), n,
           b.data());
  EXPECT_NE(a, b);

  const SampleShape shape{2, 2, 2, 1};
  const ModelFn model = [shape](const float* xx, const int32_t* t, const int32_t* l, float* o) {
    return Smooth(shape, xx, t, l, o);
  };
  const std::vector<int32_t> labels = {1, 2};
  SamplingOptions o;
  o.steps = 25;
  o.seed = 3;
  EXPECT_EQ(Draw(sch, model, shape, labels.data(), o), Draw(sch, model, shape, labels.data(), o));
}

TEST(Sampling, ClassifierFreeGuidance) {
  std::vector<float> c = {1, 2, -1}, u = {0.5, 0, 1}, out(3);
  CombineGuidance(c.data(), u.data(), 3.0, 3, out.data());
  EXPECT_EQ(out, (std::vector<float>{2.0f, 6.0f, -5.0f}));
  CombineGuidance(c.data(), u.data(), 1.0, 3, out.data());
  EXPECT_EQ(out, c);

  const NoiseSchedule sch = Make(ScheduleKind::kLinear);
  const SampleShape shape{2, 2, 3, 1};
  const int64_t per = shape.sample_numel();
  // Class 0 and 1 are points; the null class (2) is a third point.
  const std::vector<std::vector<float>> pts = {Point(per, 0), Point(per, 1), Point(per, 2)};
  int calls = 0;
  const ModelFn model = PointMass(sch, shape, Prediction::kEps, pts, &calls);
  const std::vector<int32_t> labels = {1, 0};
  SamplingOptions o;
  o.steps = 20;
  o.clip_x0 = false;
  o.null_class = 2;
  for (double w : {0.0, 1.0, 2.0, 4.0}) {
    o.guidance = w;
    calls = 0;
    const std::vector<float> got = Draw(sch, model, shape, labels.data(), o);
    // Guided point-mass denoisers denoise toward u + w (c - u).
    for (int b = 0; b < 2; ++b)
      for (int64_t j = 0; j < per; ++j) {
        const double want = pts[2][j] + w * (pts[labels[b]][j] - pts[2][j]);
        EXPECT_NEAR(got[b * per + j], want, 1e-3) << "w " << w;
      }
    EXPECT_EQ(calls, (w == 0.0 || w == 1.0) ? 20 : 40) << "w " << w;
  }
  // No labels: unconditional, one call per step, the null point.
  calls = 0;
  o.guidance = 3;
  const std::vector<float> unc = Draw(sch, model, shape, nullptr, o);
  EXPECT_EQ(calls, 20);
  for (int64_t j = 0; j < per; ++j) EXPECT_NEAR(unc[per + j], pts[2][j], 1e-3);
}

TEST(Sampling, FixedSeedReproducibleAndSplitInvariant) {
  const NoiseSchedule sch = Make(ScheduleKind::kLinear, 100);
  const SampleShape four{4, 3, 3, 1}, two{2, 3, 3, 1};
  auto model_for = [](SampleShape s) {
    return ModelFn([s](const float* x, const int32_t* t, const int32_t* l, float* o) {
      return Smooth(s, x, t, l, o);
    });
  };
  const std::vector<int32_t> labels = {3, 1, 4, 1};
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim}) {
    SamplingOptions o;
    o.kind = k;
    o.steps = 10;
    o.eta = 0.7;
    o.seed = 1234;
    o.guidance = 2.5;
    const std::vector<float> a = Draw(sch, model_for(four), four, labels.data(), o);
    EXPECT_EQ(a, Draw(sch, model_for(four), four, labels.data(), o));
    // The same four rows drawn as two batches of two.
    std::vector<float> halves = Draw(sch, model_for(two), two, labels.data(), o);
    o.first_sample = 2;
    const std::vector<float> second = Draw(sch, model_for(two), two, labels.data() + 2, o);
    halves.insert(halves.end(), second.begin(), second.end());
    EXPECT_EQ(a, halves);
    o.first_sample = 0;
    o.seed = 1235;
    EXPECT_GT(MaxDiff(a, Draw(sch, model_for(four), four, labels.data(), o)), 0.01);
  }
}

TEST(Sampling, BadOptionsAndModelErrors) {
  const NoiseSchedule sch = Make(ScheduleKind::kLinear, 100);
  const SampleShape shape{1, 2, 2, 1};
  std::vector<float> out(4);
  const ModelFn ok = [shape](const float* x, const int32_t* t, const int32_t* l, float* o) {
    return Smooth(shape, x, t, l, o);
  };
  SamplingOptions o;
  o.steps = 101;
  absl::Status s = Sample(sch, ok, shape, nullptr, o, out.data());
  EXPECT_NE(s.message().find("--sample_steps must be in [1, 100]"), std::string::npos) << s;
  o.steps = 10;
  o.eta = 1.5;
  EXPECT_FALSE(Sample(sch, ok, shape, nullptr, o, out.data()).ok());
  o.eta = 0;
  const ModelFn bad = [](const float*, const int32_t*, const int32_t*, float*) {
    return absl::InternalError("model exploded");
  };
  s = Sample(sch, bad, shape, nullptr, o, out.data());
  EXPECT_EQ(s.message(), "model exploded");
}

}  // namespace
}  // namespace anvil::diffusion
