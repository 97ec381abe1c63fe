// Trainer in-process: learning happens, gradient accumulation is exact,
// the LR schedule has its shape, config validation names the field.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/data/token_shard.h"
#include "runtime/trainer/config.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/trainer/trainer.h"

namespace anvil {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("anvil_trainer_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    // A learnable stream: a fixed pseudo-random 50-token phrase repeated with
    // one of 4 variations, so a tiny model can get well below uniform loss.
    std::vector<uint32_t> t;
    uint32_t x = 1;
    for (int rep = 0; rep < 400; ++rep) {
      for (int k = 0; k < 50; ++k) {
        x = x * 1103515245u + 12345u;
        t.push_back(k == 0 ? 60 + rep % 4 : (k * 37 + (rep % 4)) % 64);
      }
    }
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
    ASSERT_TRUE(WriteTokenShard((dir_ / "val_0.bin").string(), t).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The schema's defaults (lr 3e-3, AdamW 0.9/0.95/1e-8, wd 0.1, clip 1,
  // NO_SHARD fp32, ...) and a tiny model on this test's shards.
  proto::TrainConfig Config() {
    proto::TrainConfig c = DefaultTrainConfig();
    auto* m = c.mutable_model();
    m->set_n_layer(2);
    m->set_n_head(2);
    m->set_n_embd(32);
    m->set_max_seq_len(32);
    m->set_vocab_size(64);
    auto* d = c.mutable_data();
    d->set_train_pattern((dir_ / "train_*.bin").string());
    d->set_val_pattern((dir_ / "val_*.bin").string());
    d->set_batch_size(4);
    d->set_seq_len(32);
    c.mutable_optim()->set_warmup_steps(5);
    c.set_steps(150);
    c.set_seed(3);
    c.set_eval_every(0);
    c.set_eval_batches(4);
    c.set_log_every(1000);
    return c;
  }

  std::filesystem::path dir_;
  std::unique_ptr<kernels::Device> device_ = kernels::MakeCpuDevice(1);
  TrainerOptions quiet_{0, [](const std::string&) {}, {}, 0, 1};
};

TEST_F(TrainerTest, LossFallsFarBelowUniform) {
  auto t = Trainer::Create(Config(), device_.get(), quiet_);
  ASSERT_TRUE(t.ok()) << t.status();
  auto before = (*t)->Evaluate();
  ASSERT_TRUE(before.ok());
  EXPECT_NEAR(*before, std::log(64.0), 0.3);  // near-uniform at init
  auto stats = (*t)->Run();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 150u);
  auto after = (*t)->Evaluate();
  ASSERT_TRUE(after.ok());
  EXPECT_LT(*after, 1.5) << "before " << *before;
  EXPECT_GT(stats->front().grad_norm, 0);
}

TEST_F(TrainerTest, GradAccumulationEqualsOneBigBatch) {
  proto::TrainConfig big = Config();
  big.set_steps(3);
  proto::TrainConfig accum = big;
  accum.mutable_data()->set_batch_size(2);
  accum.set_grad_accum(2);
  auto a = Trainer::Create(big, device_.get(), quiet_);
  auto b = Trainer::Create(accum, device_.get(), quiet_);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int s = 0; s < 3; ++s) {
    auto ra = (*a)->Step();
    auto rb = (*b)->Step();
    ASSERT_TRUE(ra.ok() && rb.ok());
    const StepStats sa = *ra, sb = *rb;
    EXPECT_NEAR(sa.loss, sb.loss, 1e-5 * sa.loss) << s;
    EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-4 * sa.grad_norm) << s;
  }
  auto pa = (*a)->FullParams();
  auto pb = (*b)->FullParams();
  ASSERT_TRUE(pa.ok() && pb.ok());
  double max_diff = 0;
  for (size_t i = 0; i < pa->size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs((*pa)[i] - (*pb)[i])));
  }
  EXPECT_LT(max_diff, 1e-5);
}

TEST_F(TrainerTest, BadConfigNamesTheFlag) {
  struct Case {
    void (*edit)(proto::TrainConfig*);
    const char* needle;
  };
  const Case cases[] = {
      {[](proto::TrainConfig* c) { c->mutable_model()->set_n_head(3); }, "--n_head"},
      {[](proto::TrainConfig* c) { c->mutable_data()->set_seq_len(64); }, "--seq_len"},
      {[](proto::TrainConfig* c) { c->set_sharding("ZERO9"); }, "--sharding"},
      {[](proto::TrainConfig* c) { c->mutable_optim()->set_lr(-1); }, "--lr"},
      {[](proto::TrainConfig* c) { c->set_grad_accum(0); }, "--grad_accum"},
      {[](proto::TrainConfig* c) { c->set_bucket_mb(0); }, "--bucket_mb must be in 1..4096, got 0"},
      {[](proto::TrainConfig* c) { c->mutable_data()->set_train_pattern("/nonexistent/*.bin"); },
       "/nonexistent/*.bin"},
      {[](proto::TrainConfig* c) { c->mutable_model()->set_vocab_size(32); }, ">= vocab size 32"},
      // Read from the config (TrainerOptions no longer shadows it).
      {[](proto::TrainConfig* c) { c->set_init_from("/nonexistent/model.safetensors"); },
       "--init_from: "},
  };
  for (const Case& k : cases) {
    proto::TrainConfig c = Config();
    k.edit(&c);
    auto t = Trainer::Create(c, device_.get(), quiet_);
    ASSERT_FALSE(t.ok()) << k.needle;
    EXPECT_NE(t.status().message().find(k.needle), std::string::npos) << t.status();
  }
}

// Run settings come from the config alone: checkpoint_async decides whether
// a periodic save returns before its files are written.
TEST_F(TrainerTest, CheckpointAsyncIsReadFromTheConfig) {
  for (bool async : {true, false}) {
    proto::TrainConfig c = Config();
    c.set_steps(2);
    c.set_checkpoint_every(1);
    c.set_checkpoint_dir((dir_ / (async ? "ck_async" : "ck_sync")).string());
    c.set_checkpoint_async(async);
    std::vector<std::string> log;
    TrainerOptions o = quiet_;
    o.log = [&log](const std::string& line) { log.push_back(line); };
    auto t = Trainer::Create(c, device_.get(), o);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE((*t)->Run().ok());
    bool background = false;
    for (const std::string& line : log) {
      background |= line.find("checkpoint step_00000001") != std::string::npos &&
                    line.find("writing in the background") != std::string::npos;
    }
    EXPECT_EQ(background, async);
  }
}

TEST(LrScheduleTest, WarmupThenCosine) {
  LrSchedule s{1.0f, 10, 110, 0.1f};
  EXPECT_FLOAT_EQ(s.At(0), 0.1f);
  EXPECT_FLOAT_EQ(s.At(9), 1.0f);
  EXPECT_FLOAT_EQ(s.At(10), 1.0f);
  EXPECT_NEAR(s.At(60), 0.55f, 1e-6);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(s.At(110), 0.1f, 1e-6);
  EXPECT_NEAR(s.At(500), 0.1f, 1e-6);
  for (int i = 11; i < 110; ++i) EXPECT_LE(s.At(i), s.At(i - 1));
}

}  // namespace
}  // namespace anvil
