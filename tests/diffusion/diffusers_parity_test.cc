// Parity with Hugging Face diffusers: schedules (betas, alphas_cumprod), the
// DDIM timestep spacing, and single DDPM and DDIM steps on the same inputs
// and noise, read from diffusers_fixture.txt (written by
// make_diffusers_fixture.py, diffusers 0.42.1 / torch 2.15), so CI needs no
// Python. diffusers computes in float32, we in double: tolerances are a few
// float32 ulps of the values involved.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/diffusion/sampling.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {
namespace {

using Fixture = std::map<std::string, std::vector<double>>;

const Fixture& Load() {
  static const Fixture* f = [] {
    auto* m = new Fixture;
    std::ifstream in(ANVIL_DIFFUSERS_FIXTURE);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string name;
      size_t n = 0;
      ls >> name >> n;
      std::vector<double>& v = (*m)[name];
      v.resize(n);
      for (double& x : v) ls >> x;
    }
    return m;
  }();
  return *f;
}

const std::vector<double>& Get(const std::string& name) {
  const Fixture& f = Load();
  auto it = f.find(name);
  EXPECT_NE(it, f.end()) << "fixture lacks " << name << " (" << ANVIL_DIFFUSERS_FIXTURE << ")";
  static const std::vector<double> empty;
  return it == f.end() ? empty : it->second;
}

std::vector<float> F32(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

NoiseSchedule Make(int id) {
  ScheduleOptions o;
  o.kind = id == 0 ? ScheduleKind::kLinear : ScheduleKind::kCosine;
  return *NoiseSchedule::Create(o);
}

TEST(DiffusersParity, Schedules) {
  const std::vector<double>& ts = Get("schedule.t");
  ASSERT_EQ(ts.size(), 7u);
  for (int id : {0, 1}) {
    const NoiseSchedule s = Make(id);
    const std::vector<double>& beta = Get("schedule" + std::to_string(id) + ".beta");
    const std::vector<double>& abar = Get("schedule" + std::to_string(id) + ".alpha_bar");
    ASSERT_EQ(beta.size(), ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      const int t = static_cast<int>(ts[i]);
      EXPECT_NEAR(s.beta(t), beta[i], 2e-7 * beta[i] + 1e-12) << "schedule " << id << " t " << t;
      // float32 cumprod over up to 1000 factors drifts ~1e-5 relative.
      EXPECT_NEAR(s.alpha_bar(t), abar[i], 3e-5 * abar[i]) << "schedule " << id << " t " << t;
    }
  }
}

TEST(DiffusersParity, DdimTimesteps) {
  SamplingOptions o;
  o.steps = 50;
  const std::vector<int> ours = SamplingTimesteps(1000, o);
  const std::vector<double>& ref = Get("ddim50.timesteps");
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(ours[i], static_cast<int>(ref[i]));
}

void CheckSteps(const std::string& kind) {
  int cases = 0;
  for (int i = 0;; ++i) {
    const std::string p = kind + std::to_string(i);
    if (Load().find(p + ".meta") == Load().end()) break;
    ++cases;
    const std::vector<double>& meta = Get(p + ".meta");
    const NoiseSchedule s = Make(static_cast<int>(meta[0]));
    const Prediction pred = meta[1] == 0 ? Prediction::kEps : Prediction::kV;
    const bool clip = meta[2] != 0;
    const int t = static_cast<int>(meta[3]), t_prev = static_cast<int>(meta[4]);
    const std::vector<float> x = F32(Get(p + ".x_t")), out = F32(Get(p + ".out")),
                             noise = F32(Get(p + ".noise"));
    const std::vector<double>& ref = Get(p + ".prev");
    std::vector<float> got(x.size());
    if (kind == "ddpm") {
      DdpmStep(s, t, pred, clip, x.data(), out.data(), noise.data(), x.size(), got.data());
    } else {
      DdimStep(s, t, t_prev, meta[5], pred, clip, x.data(), out.data(), noise.data(), x.size(),
               got.data());
    }
    double worst = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      const double err = std::abs(got[j] - ref[j]) / (1.0 + std::abs(ref[j]));
      worst = std::max(worst, err);
      EXPECT_LT(err, 2e-5) << p << " element " << j << ": ours " << got[j] << " diffusers "
                           << ref[j];
    }
    std::printf("%s (t=%d, %s, clip %d): max relative difference %.2e\n", p.c_str(), t,
                pred == Prediction::kEps ? "eps" : "v", clip, worst);
  }
  EXPECT_GE(cases, 6);
}

TEST(DiffusersParity, DdpmSteps) { CheckSteps("ddpm"); }
TEST(DiffusersParity, DdimSteps) { CheckSteps("ddim"); }

}  // namespace
}  // namespace anvil::diffusion
