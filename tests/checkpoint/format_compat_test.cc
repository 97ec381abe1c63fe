// Checkpoint format compatibility: a checkpoint written by an older build
// (tests/checkpoint/fixtures/, committed with the expected state) still
// resumes, with every state value equal to what was saved and the next step's
// loss equal to the uninterrupted run's; a manifest of an unknown format
// version is refused with one line naming the version.
//
// The fixture: a tiny GPT trained 3 steps by 2 ranks with FULL_SHARD, saved
// at step 2 (shard padding on disk, two files), format 1. It was written by
// the generator below at commit e6c3d79, before checkpoints named their
// states; run today, the generator writes the current format. It runs only
// when ANVIL_WRITE_FIXTURE is set to an output directory and records the
// saved state from the engine's memory (not from the checkpoint) in
// expected_state.f32 (params | adam_m | adam_v, model layout order) and the
// step-3 loss in expected.txt.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/checkpoint_loader.h"
#include "runtime/checkpoint/checkpoint_writer.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/data/token_shard.h"
#include "tests/checkpoint/thread_job.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using testing::JobSpec;
using testing::RunJob;

// The fixture's run: everything but the paths is what it was saved with.
proto::TrainConfig FixtureConfig(const fs::path& data, const fs::path& ckpt, int steps) {
  proto::TrainConfig c;
  auto* m = c.mutable_model();
  m->set_kind("gpt");
  m->set_n_layer(1);
  m->set_n_head(2);
  m->set_n_embd(16);
  m->set_max_seq_len(8);
  m->set_vocab_size(61);
  auto* d = c.mutable_data();
  d->set_train_pattern((data / "train_*.bin").string());
  d->set_batch_size(2);
  d->set_seq_len(8);
  auto* o = c.mutable_optim();
  o->set_lr(1e-2f);
  o->set_min_lr_ratio(0.1f);
  o->set_warmup_steps(1);
  o->set_weight_decay(0.1f);
  o->set_beta1(0.9f);
  o->set_beta2(0.95f);
  o->set_eps(1e-8f);
  o->set_grad_clip(1.0f);
  c.set_steps(steps);
  c.set_grad_accum(1);
  c.set_seed(11);
  c.set_eval_batches(1);
  c.set_log_every(1);
  c.set_threads(1);
  c.set_sharding("FULL_SHARD");
  c.set_param_dtype("fp32");
  c.set_reduce_dtype("fp32");
  c.set_checkpoint_dir(ckpt.string());
  c.set_checkpoint_every(2);
  c.set_keep_last(0);
  return c;
}

class FormatCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() / ("anvil_format_test_" + std::to_string(getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<uint32_t> t(4000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 7 + i / 13) % 61);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Full-layout copies of a rank's local shard buffer (elements it owns).
void ScatterLocal(const ShardLayout& shards, const float* local, float* full) {
  for (const UnitShard& s : shards.units()) {
    for (size_t x = s.begin; x < s.end; ++x) full[s.global_offset + x] = local[s.shard_offset + x - s.begin];
  }
}

TEST_F(FormatCompatTest, WriteFixture) {
  const char* out = std::getenv("ANVIL_WRITE_FIXTURE");
  if (out == nullptr) GTEST_SKIP() << "set ANVIL_WRITE_FIXTURE=<dir> to write the fixture";
  const fs::path ckpt = dir_ / "ckpt";
  std::mutex mu;
  std::vector<float> state;  // params | adam m | adam v, model layout order
  double loss3 = 0;
  auto rs = RunJob(FixtureConfig(dir_, ckpt, 3), JobSpec{"FULL_SHARD", 2},
                   [&](Trainer& t, int rank) -> absl::Status {
                     const size_t n = t.num_params();
                     for (int s = 0; s < 3; ++s) {
                       auto st = t.Step();
                       if (!st.ok()) return st.status();
                       if (s == 1) {
                         RETURN_IF_ERROR(t.SaveCheckpoint(/*wait=*/true));
                         std::lock_guard<std::mutex> l(mu);
                         const StateList& b = t.engine().state();
                         state.resize(b.size() * n);
                         for (size_t k = 0; k < b.size(); ++k) {
                           ScatterLocal(t.engine().shard_layout(), b[k].data, state.data() + k * n);
                         }
                       }
                       if (s == 2 && rank == 0) loss3 = st->loss;
                     }
                     return absl::OkStatus();
                   });
  ASSERT_TRUE(testing::AllOk(rs));
  const fs::path dst = out;
  fs::create_directories(dst);
  fs::copy(ckpt / ckpt::StepDirName(2), dst / ckpt::StepDirName(2),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ofstream(dst / "expected_state.f32", std::ios::binary)
      .write(reinterpret_cast<const char*>(state.data()),
             static_cast<std::streamsize>(state.size() * sizeof(float)));
  std::ofstream txt(dst / "expected.txt");
  txt.precision(17);
  txt << "step3_loss " << loss3 << "\n";
}

const fs::path kFixture = fs::path(ANVIL_CKPT_FIXTURES) / "format1_gpt_step2";

struct Expected {
  std::vector<float> state;  // params | m | v
  double loss3 = 0;
};

Expected ReadExpected() {
  Expected e;
  auto bytes = ckpt::ReadSmallFile((kFixture / "expected_state.f32").string());
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  if (!bytes.ok()) return e;
  e.state.resize(bytes->size() / sizeof(float));
  std::memcpy(e.state.data(), bytes->data(), e.state.size() * sizeof(float));
  std::ifstream txt(kFixture / "expected.txt");
  std::string key;
  txt >> key >> e.loss3;
  EXPECT_EQ(key, "step3_loss");
  return e;
}

// The rank's local state buffers equal the expected full-layout state
// element for element (bitwise), and shard padding is zero. The fixture was
// saved with format 1's three states, in this order.
absl::Status CheckState(Trainer& t, const Expected& e) {
  const size_t n = t.num_params();
  const char* names[] = {"params", "adam_m", "adam_v"};
  const StateList& state = t.engine().state();
  if (e.state.size() != 3 * n || state.size() != 3) {
    return absl::InternalError(absl::StrCat("expected 3 x ", n, " values, fixture has ",
                                            e.state.size(), ", engine ", state.size(), " buffers"));
  }
  for (int k = 0; k < 3; ++k) {
    if (state[k].name != names[k]) {
      return absl::InternalError(absl::StrCat("state ", k, " is ", state[k].name));
    }
    const float* local = state[k].data;
    const float* want = e.state.data() + k * n;
    for (const UnitShard& s : t.engine().shard_layout().units()) {
      for (size_t x = s.begin; x < s.end; ++x) {
        const float got = local[s.shard_offset + x - s.begin];
        if (std::memcmp(&got, &want[s.global_offset + x], sizeof(float)) != 0) {
          return absl::InternalError(absl::StrCat(names[k], " element ", s.global_offset + x,
                                                  " is ", got, ", saved ", want[s.global_offset + x]));
        }
      }
      for (size_t i = s.end - s.begin; i < s.shard; ++i) {
        if (local[s.shard_offset + i] != 0.0f) return absl::InternalError("padding not zero");
      }
    }
  }
  return absl::OkStatus();
}

// Same world and strategy as the saving run: the state is what was saved and
// step 3 trains exactly as the uninterrupted run did.
TEST_F(FormatCompatTest, ResumesFromAFormat1Checkpoint) {
  const Expected e = ReadExpected();
  ASSERT_GT(e.loss3, 0);
  proto::TrainConfig c = FixtureConfig(dir_, dir_ / "ckpt", 3);
  c.set_resume_from(kFixture.string());
  std::mutex mu;
  double loss3 = 0;
  auto rs = RunJob(c, JobSpec{"FULL_SHARD", 2}, [&](Trainer& t, int rank) -> absl::Status {
    if (t.resumed_step() != 2 || t.engine().step() != 2) {
      return absl::InternalError(absl::StrCat("resumed at ", t.resumed_step(), ", optimizer step ",
                                              t.engine().step()));
    }
    RETURN_IF_ERROR(CheckState(t, e));
    auto st = t.Step();
    if (!st.ok()) return st.status();
    std::lock_guard<std::mutex> l(mu);
    if (rank == 0) loss3 = st->loss;
    return absl::OkStatus();
  });
  ASSERT_TRUE(testing::AllOk(rs)) << testing::JoinLog(rs[0]);
  EXPECT_NEAR(loss3, e.loss3, 1e-6 * e.loss3);
}

// Resharded onto one rank without sharding: every value still as saved.
TEST_F(FormatCompatTest, Format1CheckpointReshardsOntoOneRank) {
  const Expected e = ReadExpected();
  proto::TrainConfig c = FixtureConfig(dir_, dir_ / "ckpt", 3);
  c.set_resume_from(kFixture.string());
  auto rs = RunJob(c, JobSpec{"NO_SHARD", 1}, [&](Trainer& t, int) -> absl::Status {
    if (t.resumed_step() != 2) return absl::InternalError("did not resume");
    return CheckState(t, e);
  });
  ASSERT_TRUE(testing::AllOk(rs)) << testing::JoinLog(rs[0]);
}

// A manifest from a future (or garbled) format: refused in one line naming
// the version, and resume fails instead of silently starting over.
TEST_F(FormatCompatTest, UnknownFormatVersionIsRefusedNamingTheVersion) {
  const fs::path from = dir_ / "future";
  const fs::path step = from / ckpt::StepDirName(2);
  fs::create_directories(from);
  fs::copy(kFixture / ckpt::StepDirName(2), step, fs::copy_options::recursive);
  auto bytes = ckpt::ReadSmallFile((step / ckpt::kManifestName).string());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  proto::CheckpointManifest m;
  ASSERT_TRUE(m.ParseFromString(bytes->substr(24)));  // after magic, length, xxh3
  m.set_format_version(97);
  ASSERT_TRUE(ckpt::WriteManifest(step.string(), m).ok());

  const absl::Status direct = ckpt::ReadManifest(step.string()).status();
  EXPECT_EQ(direct.code(), absl::StatusCode::kFailedPrecondition) << direct;
  EXPECT_NE(direct.message().find("format version 97"), std::string::npos) << direct;
  EXPECT_EQ(direct.message().find('\n'), std::string::npos) << direct;

  proto::TrainConfig c = FixtureConfig(dir_, dir_ / "ckpt", 3);
  c.set_resume_from(from.string());
  auto rs = RunJob(c, JobSpec{"NO_SHARD", 1}, [](Trainer&, int) { return absl::OkStatus(); });
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_FALSE(rs[0].status.ok());
  EXPECT_NE(rs[0].status.message().find("format version 97"), std::string::npos) << rs[0].status;
  std::printf("refused: %s\n", std::string(direct.message()).c_str());
  EXPECT_EQ(rs[0].status.message().find('\n'), std::string::npos) << rs[0].status;
}

// A state list with one more buffer (as an EMA of the weights will be) is
// saved and loaded by name with no checkpoint code knowing it; a format-1
// checkpoint, which lacks it, is refused naming the missing state.
TEST_F(FormatCompatTest, AnExtraStateBufferRoundTripsByName) {
  proto::TrainConfig c = FixtureConfig(dir_, dir_ / "ckpt", 2);
  auto rs = RunJob(c, JobSpec{"NO_SHARD", 1}, [&](Trainer& t, int) -> absl::Status {
    for (int s = 0; s < 2; ++s) RETURN_IF_ERROR(t.Step().status());
    const ShardLayout& shards = t.engine().shard_layout();
    const size_t n = shards.local_numel();
    std::vector<float> ema(n);
    for (size_t i = 0; i < n; ++i) ema[i] = 0.25f * static_cast<float>(i % 97) - 3.0f;
    StateList state = t.engine().state();
    state.push_back(StateBuffer{"ema", ema.data(), n});
    auto device = kernels::MakeCpuDevice(1);

    ckpt::CheckpointWriterOptions wo;
    wo.dir = (dir_ / "extra").string();
    wo.async = false;
    ASSIGN_OR_RETURN(auto writer, ckpt::CheckpointWriter::Create(wo));
    ckpt::SaveRequest r;
    r.step = 2;
    r.config = c;
    r.source = {&t.model().layout(), &shards, 1, 0, device.get(), state};
    RETURN_IF_ERROR(writer->Save(r).status());
    for (const ckpt::SaveReport& rep : writer->Wait()) RETURN_IF_ERROR(rep.status);

    const std::string path = (dir_ / "extra" / ckpt::StepDirName(2)).string();
    ASSIGN_OR_RETURN(proto::CheckpointManifest m, ckpt::ReadManifest(path));
    EXPECT_EQ(m.format_version(), ckpt::kFormatVersion);
    EXPECT_EQ(m.tensors_size(), static_cast<int>(4 * t.model().layout().params().size()));
    int ema_entries = 0;
    for (const proto::TensorEntry& e : m.tensors()) {
      if (e.state() != "ema") continue;
      ++ema_entries;
      EXPECT_EQ(e.kind(), proto::STATE_KIND_UNSPECIFIED) << e.name();
    }
    EXPECT_EQ(ema_entries, static_cast<int>(t.model().layout().params().size()));

    std::vector<std::vector<float>> back(state.size(), std::vector<float>(n, -1.0f));
    ckpt::ShardTarget target{&t.model().layout(), &shards, device.get(), {}};
    for (size_t k = 0; k < state.size(); ++k) {
      target.state.push_back(StateBuffer{state[k].name, back[k].data(), n});
    }
    ckpt::ResumePoint point{path, m};
    RETURN_IF_ERROR(ckpt::LoadShard(point, target).status());
    for (size_t k = 0; k < state.size(); ++k) {
      if (std::memcmp(back[k].data(), state[k].data, n * sizeof(float)) != 0) {
        return absl::InternalError(absl::StrCat(state[k].name, " did not round-trip"));
      }
    }

    ASSIGN_OR_RETURN(proto::CheckpointManifest old,
                     ckpt::ReadManifest((kFixture / ckpt::StepDirName(2)).string()));
    ShardLayout two(t.model().layout(), 2, 0);  // the fixture's layout does not matter here
    std::vector<std::vector<float>> old_back(state.size(), std::vector<float>(two.local_numel()));
    ckpt::ShardTarget old_target{&t.model().layout(), &two, device.get(), {}};
    for (size_t k = 0; k < state.size(); ++k) {
      old_target.state.push_back(StateBuffer{state[k].name, old_back[k].data(), two.local_numel()});
    }
    const absl::Status refused =
        ckpt::LoadShard(ckpt::ResumePoint{(kFixture / ckpt::StepDirName(2)).string(), old}, old_target)
            .status();
    EXPECT_NE(refused.message().find("no ema tensor"), std::string::npos) << refused;
    return absl::OkStatus();
  });
  ASSERT_TRUE(testing::AllOk(rs)) << testing::JoinLog(rs[0]);
}

}  // namespace
}  // namespace anvil
