// A diffusion model through the trainer and the `sample` tool: the tiny
// denoiser (registered here, as any model outside models/ would be) trains on
// the default data (Debian's Fashion-MNIST) with validation, its checkpoints
// carry the EMA of the weights, a run stopped and resumed ends bit for bit
// where the uninterrupted run ends (weights, EMA, optimizer state), and the
// sample tool draws a grid from a checkpoint: deterministic from the seed,
// EMA or raw weights, one row per class; bad input is one line (exit 2 for
// the binary).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/model_registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/data/png_io.h"
#include "runtime/diffusion/sample_tool.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/trainer.h"
#include "tests/diffusion/tiny_denoiser.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

// name "state/tensor" -> values, every tensor of a checkpoint.
std::map<std::string, std::vector<float>> ReadAll(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  auto m = ckpt::ReadManifest(path);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return out;
  for (const proto::TensorEntry& t : m->tensors()) {
    uint64_t n = 1;
    for (int64_t d : t.shape()) n *= static_cast<uint64_t>(d);
    std::vector<float> v(n);
    EXPECT_TRUE(ckpt::ReadTensorRange(path, *m, t, 0, n, v.data()).ok());
    out[absl::StrCat(ckpt::EntryStateName(t), "/", t.name())] = std::move(v);
  }
  return out;
}

std::string FileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class DiffusionRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(RegisterModel(testing::TinyDenoiserSpec("tiny_denoiser", 28, 28, 1, 10)).ok());
    ASSERT_TRUE(fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
        << "the default data set (dataset-fashion-mnist, scripts/setup.sh) is missing";
  }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("anvil_sample_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  proto::TrainConfig Config(const std::string& run, int steps) const {
    proto::TrainConfig c;
    c.mutable_model()->set_kind("tiny_denoiser");
    c.mutable_data()->set_batch_size(8);
    auto* d = c.mutable_diffusion();
    d->set_schedule("linear");
    d->set_timesteps(1000);
    d->set_prediction("eps");
    d->set_label_dropout(0.1f);
    d->set_num_classes(-1);
    auto* o = c.mutable_optim();
    o->set_lr(2e-2f);
    o->set_min_lr_ratio(0.1f);
    o->set_warmup_steps(2);
    o->set_beta1(0.9f);
    o->set_beta2(0.95f);
    o->set_eps(1e-8f);
    o->set_grad_clip(1.0f);
    o->set_ema_decay(0.99f);
    c.set_steps(steps);
    c.set_grad_accum(1);
    c.set_seed(3);
    c.set_eval_every(10);
    c.set_eval_batches(2);
    c.set_log_every(10);
    c.set_threads(1);
    c.set_sharding("NO_SHARD");
    c.set_param_dtype("fp32");
    c.set_reduce_dtype("fp32");
    c.set_checkpoint_dir((dir_ / run).string());
    c.set_checkpoint_async(false);
    c.set_keep_last(2);
    return c;
  }

  absl::StatusOr<std::vector<StepStats>> Train(const proto::TrainConfig& c,
                                               std::vector<std::string>* lines) {
    if (absl::Status s = ValidateTrainConfig(c); !s.ok()) return s;
    TrainerOptions o;
    o.log = [lines](const std::string& l) { lines->push_back(l); };
    auto t = Trainer::Create(c, device_.get(), o);
    if (!t.ok()) return t.status();
    return (*t)->Run();
  }

  fs::path dir_;
  std::unique_ptr<kernels::Device> device_ = kernels::MakeCpuDevice(1);
};

TEST_F(DiffusionRunTest, TrainsOnTheDefaultDataAndSavesTheEma) {
  std::vector<std::string> lines;
  auto stats = Train(Config("a", 40), &lines);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += (*stats)[i].loss / 5;
  for (int i = 35; i < 40; ++i) last += (*stats)[i].loss / 5;
  EXPECT_LT(last, 0.8 * first) << "first " << first << " last " << last;
  EXPECT_STREQ(stats->back().unit, "images");
  bool val = false;
  for (const std::string& l : lines) val |= absl::StrContains(l, "val loss");
  EXPECT_TRUE(val);
  const auto ck = ReadAll((dir_ / "a" / ckpt::StepDirName(40)).string());
  ASSERT_TRUE(ck.count("ema/pixel")) << "no EMA in the checkpoint";
  ASSERT_TRUE(ck.count("params/pixel"));
  EXPECT_NE(ck.at("ema/pixel"), ck.at("params/pixel"));
}

TEST_F(DiffusionRunTest, AResumedRunEndsBitForBitWhereTheUninterruptedOneEnds) {
  std::vector<std::string> lines;
  ASSERT_TRUE(Train(Config("a", 6), &lines).ok());
  {
    TrainerOptions quiet;
    quiet.log = [](const std::string&) {};
    auto t = Trainer::Create(Config("b", 6), device_.get(), quiet);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*t)->Step().ok());
    ASSERT_TRUE((*t)->SaveCheckpoint(true).ok());
  }
  lines.clear();
  ASSERT_TRUE(Train(Config("b", 6), &lines).ok());
  bool resumed = false;
  for (const std::string& l : lines) resumed |= absl::StrContains(l, "resumed from");
  EXPECT_TRUE(resumed);
  const auto a = ReadAll((dir_ / "a" / ckpt::StepDirName(6)).string());
  const auto b = ReadAll((dir_ / "b" / ckpt::StepDirName(6)).string());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_TRUE(a.count("ema/label"));
  for (const auto& [name, values] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(std::memcmp(values.data(), b.at(name).data(), values.size() * 4), 0) << name;
  }
}

TEST_F(DiffusionRunTest, ACheckpointWithoutAnEmaResumesWithTheEmaAtItsWeights) {
  std::vector<std::string> lines;
  proto::TrainConfig c = Config("a", 3);
  c.mutable_optim()->set_ema_decay(0);
  ASSERT_TRUE(Train(c, &lines).ok());
  c = Config("a", 4);
  c.set_resume_from(c.checkpoint_dir());  // another setting: continue explicitly
  lines.clear();
  ASSERT_TRUE(Train(c, &lines).ok()) ;
  bool said = false;
  for (const std::string& l : lines) said |= absl::StrContains(l, "holds no EMA");
  EXPECT_TRUE(said);
  const auto three = ReadAll((dir_ / "a" / ckpt::StepDirName(3)).string());
  const auto four = ReadAll((dir_ / "a" / ckpt::StepDirName(4)).string());
  ASSERT_TRUE(four.count("ema/pixel"));
  // One step after the resume (t = 3): ema = d p3 + (1 - d) p4.
  const float d = EmaDecayAt(0.99f, 3);
  const auto& p3 = three.at("params/pixel");
  const auto& p4 = four.at("params/pixel");
  for (size_t i = 0; i < p3.size(); ++i) {
    EXPECT_NEAR(four.at("ema/pixel")[i], d * p3[i] + (1 - d) * p4[i], 1e-6) << i;
  }
}

TEST_F(DiffusionRunTest, SamplesAreDeterministicFromTheSeed) {
  std::vector<std::string> lines;
  ASSERT_TRUE(Train(Config("a", 10), &lines).ok());
  diffusion::SampleToolOptions o;
  o.checkpoint_dir = (dir_ / "a").string();
  o.out = (dir_ / "one.png").string();
  o.steps = 5;
  o.per_class = 3;
  o.seed = 1;
  o.threads = 1;
  auto r = diffusion::RunSampleTool(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->weights, "ema");
  EXPECT_EQ(r->step, 10);
  EXPECT_EQ(r->rows, 10);  // one per Fashion-MNIST class
  EXPECT_EQ(r->cols, 3);
  EXPECT_TRUE(absl::StrContains(r->Describe(o), "one.png")) << r->Describe(o);
  auto info = ReadPngInfo(o.out);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->height, 10 * 30 + 2);
  EXPECT_EQ(info->width, 3 * 30 + 2);
  EXPECT_EQ(info->channels, 1);
  auto again = [&](const std::string& name, auto change) {
    diffusion::SampleToolOptions p = o;
    p.out = (dir_ / name).string();
    change(p);
    auto s = diffusion::RunSampleTool(p);
    EXPECT_TRUE(s.ok()) << s.status();
    return FileBytes(p.out);
  };
  const std::string one = FileBytes(o.out);
  // (Compared as booleans: a failure should not print PNG bytes.)
  EXPECT_TRUE(again("same.png", [](auto&) {}) == one) << "same seed, other bytes";
  EXPECT_TRUE(again("seed.png", [](auto& p) { p.seed = 2; }) != one) << "seed ignored";
  EXPECT_TRUE(again("raw.png", [](auto& p) { p.use_ema = false; }) != one) << "EMA ignored";
  EXPECT_TRUE(again("ddpm.png", [](auto& p) { p.sampler = "ddpm"; }) != one) << "sampler ignored";
}

TEST_F(DiffusionRunTest, BadInputIsOneLine) {
  diffusion::SampleToolOptions o;
  o.checkpoint_dir = (dir_ / "empty").string();
  o.out = (dir_ / "x.png").string();
  auto r = diffusion::RunSampleTool(o);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no committed checkpoint")) << r.status();
  o.sampler = "euler";
  r = diffusion::RunSampleTool(o);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "--sampler must be ddpm or ddim"))
      << r.status();
  // A checkpoint of a token model.
  std::vector<std::string> lines;
  ASSERT_TRUE(Train(Config("a", 1), &lines).ok());
  const std::string step = (dir_ / "a" / ckpt::StepDirName(1)).string();
  auto m = ckpt::ReadManifest(step);
  ASSERT_TRUE(m.ok());
  m->mutable_config()->mutable_model()->set_kind("gpt");
  ASSERT_TRUE(ckpt::WriteManifest(step, *m).ok());
  o.sampler = "ddim";
  o.checkpoint_dir.clear();
  o.checkpoint = step;
  r = diffusion::RunSampleTool(o);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "'gpt' model, which is no diffusion model"))
      << r.status();
  for (const std::string& msg : {std::string(r.status().message())}) {
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

// The binary: exit 2 and one line on stderr.
int RunBinary(const std::string& args, std::string* err) {
  const std::string cmd = absl::StrCat(ANVIL_SAMPLE_BIN, " ", args, " 2>&1 >/dev/null");
  FILE* f = ::popen(cmd.c_str(), "r");
  char buf[4096];
  err->clear();
  while (f != nullptr && std::fgets(buf, sizeof buf, f) != nullptr) *err += buf;
  const int st = f != nullptr ? ::pclose(f) : -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(SampleBinaryTest, BadInputExitsTwoWithOneLine) {
  std::string err;
  EXPECT_EQ(RunBinary("--checkpoint_dir /nonexistent/run --out /tmp/x.png", &err), 2);
  EXPECT_TRUE(absl::StartsWith(err, "sample: no committed checkpoint")) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(RunBinary("--checkpoint_dir /tmp --out /tmp/x.png --bogus 3", &err), 2);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(RunBinary("--checkpoint_dir /tmp --out /tmp/x.png --steps many", &err), 2);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

}  // namespace
}  // namespace anvil
