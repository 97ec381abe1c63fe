// Checkpoints in-process, with real trainers on threads (Gloo over loopback):
// a resumed run equals the uninterrupted one bit for bit for every strategy;
// checkpoints reshard across world sizes and strategies and hold each
// element once; corrupt ones are skipped with the reason; the manifest
// framing catches damage; retention and never-overwrite hold; config
// mismatches name the field.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/gpt/gpt.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/checkpoint_loader.h"
#include "runtime/checkpoint/dir_lock.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_slices.h"
#include "runtime/data/token_shard.h"
#include "tests/checkpoint/thread_job.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using testing::JobSpec;
using testing::RankResult;
using testing::ReadCheckpoint;
using testing::RunJob;

bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) c = c == '/' ? '_' : c;
    dir_ = fs::temp_directory_path() / ("anvil_ckpt_test_" + std::to_string(getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<uint32_t> t(20000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 7 + i / 13) % 61);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  proto::TrainConfig Config(const std::string& ckpt, int steps) const {
    proto::TrainConfig c;
    auto* m = c.mutable_model();
    m->set_kind("gpt");
    m->set_n_layer(2);
    m->set_n_head(2);
    m->set_n_embd(16);
    m->set_max_seq_len(16);
    m->set_vocab_size(64);
    auto* d = c.mutable_data();
    d->set_train_pattern((dir_ / "train_*.bin").string());
    d->set_batch_size(2);
    d->set_seq_len(16);
    auto* o = c.mutable_optim();
    o->set_lr(1e-2f);
    o->set_min_lr_ratio(0.1f);
    o->set_warmup_steps(2);
    o->set_weight_decay(0.1f);
    o->set_beta1(0.9f);
    o->set_beta2(0.95f);
    o->set_eps(1e-8f);
    o->set_grad_clip(1.0f);
    c.set_steps(steps);
    c.set_grad_accum(1);
    c.set_seed(7);
    c.set_eval_batches(1);
    c.set_log_every(1);
    c.set_threads(1);
    c.set_sharding("NO_SHARD");
    c.set_param_dtype("fp32");
    c.set_reduce_dtype("fp32");
    c.set_checkpoint_dir((dir_ / ckpt).string());
    c.set_keep_last(0);
    return c;
  }
  std::string Ckpt(const std::string& name, int64_t step) const {
    return (dir_ / name / ckpt::StepDirName(step)).string();
  }

  fs::path dir_;
};

absl::Status RunAll(Trainer& t, int) { return t.Run().status(); }

// A --checkpoint_dir inside folders nobody made yet is created with its
// parents (Slurm and k8s jobs name one per job); a file in the way is one
// clear error.
TEST_F(CheckpointTest, CheckpointDirIsCreatedWithItsParents) {
  ASSERT_TRUE(testing::AllOk(
      RunJob(Config("nested/deeper/ckpt", 2), JobSpec{"FULL_SHARD", 2}, RunAll)));
  EXPECT_TRUE(fs::exists(fs::path(Ckpt("nested/deeper/ckpt", 2)) / "manifest.pb"));
  std::ofstream(dir_ / "a_file") << "x";
  const absl::Status s = ckpt::MakeDirs((dir_ / "a_file" / "ckpt").string());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("cannot create"), std::string::npos) << s;
}

// ---- manifest and slices ---------------------------------------------------

TEST_F(CheckpointTest, ManifestFramingCatchesTruncationAndBitFlips) {
  proto::CheckpointManifest m;
  m.set_format_version(ckpt::kFormatVersion);
  m.set_step(42);
  m.mutable_config()->set_steps(100);
  const std::string d = dir_.string();
  ASSERT_TRUE(ckpt::WriteManifest(d, m).ok());
  auto back = ckpt::ReadManifest(d);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->step(), 42);
  const std::string path = (dir_ / ckpt::kManifestName).string();
  std::string bytes = *ckpt::ReadSmallFile(path);
  std::string flipped = bytes;
  flipped[bytes.size() - 3] ^= 0x04;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << flipped;
  EXPECT_NE(std::string(ckpt::ReadManifest(d).status().message()).find("checksum mismatch"),
            std::string::npos);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  EXPECT_NE(std::string(ckpt::ReadManifest(d).status().message()).find("truncated"),
            std::string::npos);
  fs::remove(path);
  EXPECT_EQ(ckpt::ReadManifest(d).status().message(), "no manifest.pb");
}

// Whatever the strategy, the pieces the ranks write cover every element of
// every tensor and state exactly once: replicas split the work. The state
// list is the engine's three buffers plus one more (as an EMA would be).
TEST(ShardSlicesTest, WritersTileEveryTensorExactlyOnce) {
  auto device = kernels::MakeCpuDevice(1);
  auto model = Gpt::Create(GptConfig{2, 2, 12, 8, 29}, GptOptions{1, 8}, device.get());
  ASSERT_TRUE(model.ok());
  const ParamLayout& layout = (*model)->layout();
  struct Case {
    int shard_world, replicas;
  };
  const std::vector<std::string> states = {"params", "adam_m", "adam_v", "ema"};
  const size_t ns = states.size();
  for (Case c : {Case{1, 1}, Case{1, 3}, Case{4, 1}, Case{2, 2}, Case{3, 2}, Case{5, 1}}) {
    proto::CheckpointManifest m;
    std::vector<proto::TensorEntry> tensors = ckpt::EmptyEntries(layout, states);
    uint64_t stored = 0;
    for (int s = 0; s < c.shard_world; ++s) {
      ShardLayout shards(layout, c.shard_world, s);
      for (int k = 0; k < c.replicas; ++k) {
        const ckpt::Piece p = ckpt::WriterPiece(shards.local_numel(), c.replicas, k);
        proto::ShardFile* f = m.add_files();
        f->set_name("f" + std::to_string(m.files_size()));
        f->set_bytes(ns * p.size() * 4);
        ASSERT_TRUE(ckpt::AddSlices(ckpt::DescribePiece(layout, shards, p, 0, states),
                                    static_cast<uint32_t>(m.files_size() - 1), &tensors)
                        .ok());
        stored += ns * p.size();
      }
    }
    for (auto& t : tensors) *m.add_tensors() = t;
    EXPECT_TRUE(ckpt::ValidateManifest(m).ok()) << ckpt::ValidateManifest(m) << " shard_world "
                                                << c.shard_world << " replicas " << c.replicas;
    size_t padded = 0;
    for (const UnitInfo& u : layout.units())
      padded += (u.numel + c.shard_world - 1) / c.shard_world * c.shard_world;
    EXPECT_EQ(stored, ns * padded);  // padding only; no element twice
    EXPECT_EQ(m.tensors_size(), static_cast<int>(ns * layout.params().size()));
    if (c.shard_world * c.replicas == 4) {
      // A writer bug (an element stored twice, or by nobody) is caught.
      proto::CheckpointManifest twice = m, hole = m;
      proto::TensorEntry* t = twice.mutable_tensors(3);
      t->mutable_slices()->Add()->CopyFrom(t->slices(0));
      std::sort(t->mutable_slices()->begin(), t->mutable_slices()->end(),
                [](const auto& a, const auto& b) { return a.begin() < b.begin(); });
      EXPECT_NE(std::string(ckpt::ValidateManifest(twice).message()).find("stored twice"),
                std::string::npos);
      hole.mutable_tensors(3)->mutable_slices()->DeleteSubrange(0, 1);
      EXPECT_NE(std::string(ckpt::ValidateManifest(hole).message()).find("are in no file"),
                std::string::npos);
      // A hostile manifest: data files outside the directory, a repeated
      // file, a negative or overflowing shape, a slice whose byte range wraps.
      auto message = [](const proto::CheckpointManifest& bad) {
        return std::string(ckpt::ValidateManifest(bad).message());
      };
      for (const char* name : {"../f1", "/etc/passwd", "..", "", "a/b"}) {
        proto::CheckpointManifest bad = m;
        bad.mutable_files(0)->set_name(name);
        EXPECT_NE(message(bad).find("not a plain file name"), std::string::npos) << name;
      }
      proto::CheckpointManifest dup = m, negative = m, huge = m, wrap = m;
      dup.mutable_files(1)->set_name(m.files(0).name());
      EXPECT_NE(message(dup).find("twice"), std::string::npos);
      negative.mutable_tensors(0)->set_shape(0, -4);
      EXPECT_NE(message(negative).find("impossible shape"), std::string::npos);
      huge.mutable_tensors(0)->add_shape(int64_t{1} << 30);
      huge.mutable_tensors(0)->add_shape(int64_t{1} << 30);
      EXPECT_NE(message(huge).find("impossible shape"), std::string::npos);
      proto::TensorSlice* sl = wrap.mutable_tensors(0)->mutable_slices(0);
      sl->set_file_offset(~uint64_t{0} - 3);
      EXPECT_NE(message(wrap).find("runs past the end"), std::string::npos);
    }
  }
}

// ---- resume is exact -------------------------------------------------------

class ResumeExact : public CheckpointTest, public ::testing::WithParamInterface<JobSpec> {};

TEST_P(ResumeExact, ResumedRunEqualsUninterruptedBitForBit) {
  const JobSpec spec = GetParam();
  std::vector<double> ref_losses, got_losses;
  auto run_and_record = [](std::vector<double>* losses) {
    return [losses](Trainer& t, int rank) -> absl::Status {
      auto stats = t.Run();
      if (!stats.ok()) return stats.status();
      if (rank == 0) {
        for (const StepStats& s : *stats) losses->push_back(s.loss);
      }
      return absl::OkStatus();
    };
  };
  ASSERT_TRUE(testing::AllOk(RunJob(Config("a", 6), spec, run_and_record(&ref_losses))));
  // Interrupted: 3 steps, save, gone; then a fresh job resumes.
  ASSERT_TRUE(testing::AllOk(RunJob(Config("b", 6), spec, [](Trainer& t, int) -> absl::Status {
    for (int i = 0; i < 3; ++i) {
      if (auto s = t.Step(); !s.ok()) return s.status();
    }
    return t.SaveCheckpoint(/*wait=*/true);
  })));
  auto resumed = RunJob(Config("b", 6), spec, [&](Trainer& t, int rank) -> absl::Status {
    EXPECT_EQ(t.resumed_step(), 3);
    return run_and_record(&got_losses)(t, rank);
  });
  ASSERT_TRUE(testing::AllOk(resumed));
  EXPECT_TRUE(testing::LogHas(resumed[0], "resumed from")) << testing::JoinLog(resumed[0]);
  ASSERT_EQ(ref_losses.size(), 6u);
  ASSERT_EQ(got_losses.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got_losses[i], ref_losses[3 + i]) << "step " << 4 + i;
  const auto a = ReadCheckpoint(Ckpt("a", 6)), b = ReadCheckpoint(Ckpt("b", 6));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, values] : a) EXPECT_TRUE(BitEqual(values, b.at(name))) << name;
}

INSTANTIATE_TEST_SUITE_P(Strategies, ResumeExact,
                         ::testing::Values(JobSpec{"NO_SHARD", 1}, JobSpec{"NO_SHARD", 2},
                                           JobSpec{"FULL_SHARD", 2}, JobSpec{"HYBRID_SHARD", 4, 2},
                                           JobSpec{"NO_SHARD", 1, 0, /*async=*/false},
                                           // rounded compute copy, and the fp16 loss scaler's state
                                           JobSpec{"NO_SHARD", 1, 0, true, "bf16"},
                                           JobSpec{"FULL_SHARD", 2, 0, true, "fp16"}),
                         [](const auto& info) {
                           return info.param.strategy + "_" + std::to_string(info.param.world) +
                                  (info.param.async ? "" : "_sync") +
                                  (info.param.param_dtype.empty() ? ""
                                                                  : "_" + info.param.param_dtype);
                         });

// ---- resharding ------------------------------------------------------------

struct ReshardCase {
  JobSpec from, to;
};

void PrintTo(const ReshardCase& c, std::ostream* os) {
  *os << c.from.strategy << " x" << c.from.world << " -> " << c.to.strategy << " x" << c.to.world;
}

class Reshard : public CheckpointTest, public ::testing::WithParamInterface<ReshardCase> {};

TEST_P(Reshard, LoadsUnderAnotherWorldAndStrategy) {
  const ReshardCase c = GetParam();
  ASSERT_TRUE(testing::AllOk(RunJob(Config("r", 3), c.from, RunAll)));
  // Each element is on disk once, whatever the replication.
  auto m = ckpt::ReadManifest(Ckpt("r", 3));
  ASSERT_TRUE(m.ok()) << m.status();
  const int shard_world = c.from.strategy == "NO_SHARD"       ? 1
                          : c.from.strategy == "HYBRID_SHARD" ? c.from.local_size
                                                              : c.from.world;
  uint64_t padded = 0, bytes = 0;
  {
    auto device = kernels::MakeCpuDevice(1);
    auto model = Gpt::Create(GptConfig{2, 2, 16, 16, 64}, GptOptions{2, 16}, device.get());
    for (const UnitInfo& u : (*model)->layout().units()) {
      padded += (u.numel + shard_world - 1) / shard_world * shard_world;
    }
  }
  for (const auto& f : m->files()) bytes += f.bytes();
  EXPECT_EQ(bytes, 12 * padded);
  const auto saved = ReadCheckpoint(Ckpt("r", 3));

  auto loaded = RunJob(Config("r", 5), c.to, [&](Trainer& t, int) -> absl::Status {
    EXPECT_EQ(t.resumed_step(), 3);
    const ParamLayout& layout = t.model().layout();
    const StateList& state = t.engine().state();
    if (state.size() != 3) return absl::InternalError("expected 3 state buffers");
    for (const StateBuffer& b : state) {
      const float* local = b.data;
      std::vector<float> full;
      for (const ParamInfo& p : layout.params()) {
        const auto& v = saved.at(b.name + "/" + p.name);
        full.insert(full.end(), v.begin(), v.end());
      }
      for (const UnitShard& s : t.engine().shard_layout().units()) {
        for (size_t x = s.begin; x < s.end; ++x) {
          if (local[s.shard_offset + x - s.begin] != full[s.global_offset + x]) {
            return absl::InternalError(
                absl::StrCat(b.name, " element ", s.global_offset + x, " differs"));
          }
        }
        for (size_t i = s.end - s.begin; i < s.shard; ++i) {
          if (local[s.shard_offset + i] != 0.0f) return absl::InternalError("padding not zero");
        }
      }
    }
    auto stats = t.Run();
    if (!stats.ok()) return stats.status();
    if (stats->size() != 2 || !std::isfinite(stats->back().loss))
      return absl::InternalError("bad run");
    return absl::OkStatus();
  });
  ASSERT_TRUE(testing::AllOk(loaded));
  EXPECT_TRUE(testing::LogHas(loaded[0], "resumed from")) << testing::JoinLog(loaded[0]);
  // Issue 14: another world size or strategy is said, with its global batch.
  EXPECT_TRUE(testing::LogHas(loaded[0], "resuming under another layout"))
      << testing::JoinLog(loaded[0]);
  EXPECT_TRUE(testing::LogHas(loaded[0], "global batch")) << testing::JoinLog(loaded[0]);
  if (c.from.world != c.to.world) {
    EXPECT_TRUE(testing::LogHas(loaded[0], absl::StrCat("world size ", c.from.world, " -> ",
                                                        c.to.world)))
        << testing::JoinLog(loaded[0]);
  }
}

INSTANTIATE_TEST_SUITE_P(Matrix, Reshard,
                         ::testing::Values(ReshardCase{{"FULL_SHARD", 2}, {"NO_SHARD", 1}},
                                           ReshardCase{{"NO_SHARD", 2}, {"FULL_SHARD", 3}},
                                           ReshardCase{{"HYBRID_SHARD", 4, 2},
                                                       {"SHARD_GRAD_OP", 2}},
                                           ReshardCase{{"NO_SHARD", 1}, {"HYBRID_SHARD", 4, 2}},
                                           ReshardCase{{"SHARD_GRAD_OP", 3}, {"FULL_SHARD", 2}}),
                         [](const auto& info) {
                           return info.param.from.strategy + std::to_string(info.param.from.world) +
                                  "_to_" + info.param.to.strategy +
                                  std::to_string(info.param.to.world);
                         });

// ---- corruption, retention, config -----------------------------------------

TEST_F(CheckpointTest, CorruptNewestIsSkippedWithTheReasonAndTheRunStillMatches) {
  const JobSpec spec{"FULL_SHARD", 2};
  proto::TrainConfig ref = Config("ref", 6);
  ref.set_checkpoint_every(2);
  ASSERT_TRUE(testing::AllOk(RunJob(ref, spec, RunAll)));
  const auto want = ReadCheckpoint(Ckpt("ref", 6));

  for (const std::string damage : {"bitflip", "truncate", "missing"}) {
    SCOPED_TRACE(damage);
    fs::remove_all(dir_ / "x");
    proto::TrainConfig cfg = Config("x", 6);
    cfg.set_checkpoint_every(2);
    ASSERT_TRUE(testing::AllOk(RunJob(cfg, spec, [](Trainer& t, int) -> absl::Status {
      for (int i = 0; i < 5; ++i) {  // saves at 2 and 4; "crashes" after 5
        if (auto s = t.Step(); !s.ok()) return s.status();
        if (t.step() % 2 == 0) {
          if (auto s = t.SaveCheckpoint(true); !s.ok()) return s;
        }
      }
      return absl::OkStatus();
    })));
    const fs::path victim = fs::path(Ckpt("x", 4)) / "rank_00001.bin";
    if (damage == "bitflip") {
      std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(1000);
      char b;
      f.get(b);
      f.seekp(1000);
      f.put(static_cast<char>(b ^ 0x10));
    } else if (damage == "truncate") {
      fs::resize_file(victim, fs::file_size(victim) / 2);
    } else {
      fs::remove(victim);
    }
    auto rs = RunJob(cfg, spec, RunAll);
    ASSERT_TRUE(testing::AllOk(rs));
    const std::string why = damage == "bitflip"    ? "rank_00001.bin checksum mismatch"
                            : damage == "truncate" ? "(truncated)"
                                                   : "rank_00001.bin is missing";
    EXPECT_TRUE(testing::LogHas(rs[0], "skipped step_00000004: ")) << testing::JoinLog(rs[0]);
    EXPECT_TRUE(testing::LogHas(rs[0], why)) << testing::JoinLog(rs[0]);
    EXPECT_TRUE(testing::LogHas(rs[0], "step_00000002 (saved by 2")) << testing::JoinLog(rs[0]);
    const auto got = ReadCheckpoint(Ckpt("x", 6));
    for (const auto& [name, values] : want) EXPECT_TRUE(BitEqual(values, got.at(name))) << name;
    // The damaged one is kept aside, not deleted; a good step_4 was re-saved.
    bool aside = false;
    for (const auto& e : ckpt::ListCheckpointDir((dir_ / "x").string())) {
      aside |= e.state == ckpt::EntryState::kSetAside && e.step == 4;
    }
    EXPECT_TRUE(aside);
    EXPECT_TRUE(fs::exists(fs::path(Ckpt("x", 4)) / ckpt::kManifestName));
  }
}

TEST_F(CheckpointTest, RetentionKeepsTheNewestKAndNeverOverwrites) {
  proto::TrainConfig cfg = Config("k", 8);
  cfg.set_checkpoint_every(2);
  cfg.set_keep_last(2);
  auto rs = RunJob(cfg, JobSpec{}, RunAll);
  ASSERT_TRUE(testing::AllOk(rs));
  std::vector<int64_t> steps;
  for (const auto& e : ckpt::ListCheckpointDir((dir_ / "k").string())) steps.push_back(e.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{8, 6}));
  EXPECT_EQ(*ckpt::ReadLatest((dir_ / "k").string()), "step_00000008");
  EXPECT_TRUE(testing::LogHas(rs[0], "removed step_00000002 (--keep_last=2)"));

  cfg = Config("all", 6);
  cfg.set_checkpoint_every(2);
  ASSERT_TRUE(testing::AllOk(RunJob(cfg, JobSpec{}, RunAll)));
  EXPECT_EQ(ckpt::CommittedCheckpoints((dir_ / "all").string()).size(), 3u);  // keep_last 0: all

  // Saving a step that is committed again leaves it untouched.
  const fs::path file = fs::path(Ckpt("all", 6)) / "rank_00000.bin";
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  ASSERT_TRUE(
      // The trainer locks a directory of its own: a second writer on "all"
      // within the same job would be refused by the directory lock.
      testing::AllOk(RunJob(Config("probe", 6), JobSpec{}, [&](Trainer& t, int) -> absl::Status {
        ckpt::CheckpointWriterOptions wo;
        wo.dir = (dir_ / "all").string();
        auto w = ckpt::CheckpointWriter::Create(wo);
        if (!w.ok()) return w.status();
        ckpt::SaveRequest r;
        r.step = 6;
        r.source = {&t.model().layout(), &t.engine().shard_layout(), 1, 0, nullptr,
                    t.engine().state()};
        auto device = kernels::MakeCpuDevice(1);
        r.source.device = device.get();
        if (auto s = (*w)->Save(r); !s.ok()) return s.status();
        auto reports = (*w)->Wait();
        EXPECT_EQ(reports.size(), 1u);
        EXPECT_TRUE(reports[0].skipped) << reports[0].Describe();
        return absl::OkStatus();
      })));
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST_F(CheckpointTest, ModelShapeMismatchNamesTheFieldAndHarmlessChangesAreAllowed) {
  ASSERT_TRUE(testing::AllOk(RunJob(Config("c", 2), JobSpec{}, RunAll)));
  proto::TrainConfig wider = Config("c", 4);
  wider.mutable_model()->set_n_embd(32);
  auto rs = RunJob(wider, JobSpec{}, RunAll);
  ASSERT_FALSE(rs[0].status.ok());
  EXPECT_NE(std::string(rs[0].status.message()).find("--n_embd=16 but this run has --n_embd=32"),
            std::string::npos)
      << rs[0].status;

  proto::TrainConfig other = Config("c", 4);  // steps, log_every, threads: harmless
  other.set_log_every(5);
  other.mutable_optim()->set_lr(5e-3f);  // another run's settings: only when asked for
  rs = RunJob(other, JobSpec{}, RunAll);
  ASSERT_FALSE(rs[0].status.ok());
  EXPECT_NE(std::string(rs[0].status.message()).find("holds step_00000002 of another run"),
            std::string::npos)
      << rs[0].status;
  other.set_resume_from(other.checkpoint_dir());  // explicit: allowed, and reported
  rs = RunJob(other, JobSpec{}, RunAll);
  ASSERT_TRUE(testing::AllOk(rs));
  EXPECT_TRUE(testing::LogHas(rs[0], "resuming with changed settings")) << testing::JoinLog(rs[0]);
  EXPECT_TRUE(testing::LogHas(rs[0], "--lr 0.01 -> 0.005")) << testing::JoinLog(rs[0]);
  EXPECT_FALSE(testing::LogHas(rs[0], "--log_every"));
}

// Issue 14, item 1: a checkpoint directory belongs to one job. A second job
// is refused while the first holds it (one line naming the owner); a stale
// lock is taken over with a note; another run (other seed) does not silently
// resume the first run's checkpoints but can with --resume_from, which
// reads that directory and never writes it.
TEST_F(CheckpointTest, CheckpointDirBelongsToOneJobAndForeignResumeIsExplicit) {
  const std::string shared = (dir_ / "shared").string();
  fs::create_directories(shared);
  {
    std::string note;
    auto held = ckpt::CheckpointDirLock::Acquire(shared, "job-a", &note);
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_TRUE(note.empty());
    proto::TrainConfig b = Config("shared", 2);
    b.set_seed(8);
    auto rs = RunJob(b, JobSpec{"NO_SHARD", 2}, RunAll);
    for (const RankResult& r : rs) {
      ASSERT_FALSE(r.status.ok());
      EXPECT_NE(std::string(r.status.message()).find("is in use by another job: run 'job-a'"),
                std::string::npos)
          << r.status;
      EXPECT_NE(std::string(r.status.message()).find(std::to_string(getpid())), std::string::npos);
    }
    EXPECT_TRUE(ckpt::CommittedCheckpoints(shared).empty());
  }
  // A record whose process is gone (here: a pid no process has) is stale.
  std::ofstream(fs::path(shared) / ckpt::kOwnerFileName)
      << "run_id: job-gone\nhost: elsewhere\npid: 4194304\npid_start: 1\nstarted: then\n";
  auto a = RunJob(Config("shared", 3), JobSpec{"NO_SHARD", 2}, RunAll);
  ASSERT_TRUE(testing::AllOk(a));
  EXPECT_TRUE(testing::LogHas(a[0], "took over the lock of --checkpoint_dir")) << testing::JoinLog(a[0]);
  EXPECT_TRUE(testing::LogHas(a[0], "job-gone"));
  EXPECT_FALSE(fs::exists(fs::path(shared) / ckpt::kOwnerFileName));  // released when done

  // Job B (another seed) with the same directory is refused, not resumed.
  proto::TrainConfig b = Config("shared", 5);
  b.set_seed(8);
  auto refused = RunJob(b, JobSpec{"NO_SHARD", 2}, RunAll);
  ASSERT_FALSE(refused[0].status.ok());
  EXPECT_NE(std::string(refused[0].status.message()).find("--seed 7 -> 8"), std::string::npos)
      << refused[0].status;
  // In its own directory with --resume_from, B starts from A's step 3.
  b.set_checkpoint_dir((dir_ / "b").string());
  b.set_resume_from(shared);
  auto rb = RunJob(b, JobSpec{"NO_SHARD", 2}, [](Trainer& t, int) -> absl::Status {
    if (t.resumed_step() != 3) return absl::InternalError("did not resume step 3");
    return t.Run().status();
  });
  ASSERT_TRUE(testing::AllOk(rb));
  EXPECT_TRUE(testing::LogHas(rb[0], "(--resume_from, read only)")) << testing::JoinLog(rb[0]);
  std::vector<int64_t> a_steps, b_steps;
  for (const auto& e : ckpt::CommittedCheckpoints(shared)) a_steps.push_back(e.step);
  for (const auto& e : ckpt::CommittedCheckpoints((dir_ / "b").string())) b_steps.push_back(e.step);
  EXPECT_EQ(a_steps, (std::vector<int64_t>{3}));  // A's directory untouched
  EXPECT_EQ(b_steps, (std::vector<int64_t>{5}));
}

TEST_F(CheckpointTest, NoVerifyingCheckpointIsAnErrorNotAFreshStart) {
  ASSERT_TRUE(testing::AllOk(RunJob(Config("n", 2), JobSpec{}, RunAll)));
  fs::resize_file(fs::path(Ckpt("n", 2)) / "rank_00000.bin", 8);
  auto rs = RunJob(Config("n", 4), JobSpec{}, RunAll);
  ASSERT_FALSE(rs[0].status.ok());
  EXPECT_NE(std::string(rs[0].status.message()).find("no checkpoint in"), std::string::npos)
      << rs[0].status;
}

}  // namespace
}  // namespace anvil
