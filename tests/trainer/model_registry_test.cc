// The model registry: a model defined only in this test (the MLP of
// tests/sharding) registers itself and trains through the trainer's own code
// path, so adding a model needs no edit in runtime/; unknown kinds and
// batches from the wrong data source fail with one line.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/batch.h"
#include "models/model_registry.h"
#include "runtime/data/token_shard.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/trainer.h"
#include "tests/sharding/mlp_model.h"

namespace anvil {
namespace {

constexpr int kVocab = 29;

ModelSpec TestMlpSpec() {
  ModelSpec s;
  s.kind = "test_mlp";
  s.data = DataKind::kTokens;
  s.validate = [](const proto::TrainConfig& c) {
    return c.model().vocab_size() == kVocab
               ? absl::OkStatus()
               : absl::InvalidArgumentError("--vocab_size must be 29 for test_mlp");
  };
  s.describe = [](const proto::ModelConfig&) { return std::string("test MLP"); };
  s.param_count = [](const proto::ModelConfig&) { return 2000.0; };
  s.activation_bytes = [](const proto::TrainConfig&) { return 1e5; };
  s.create = [](const proto::ModelConfig&, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    return std::unique_ptr<UnitModel>(std::make_unique<testing::MlpModel>(
        testing::MlpConfig{kVocab, 13, 3, o.max_batch * o.max_seq}, device));
  };
  return s;
}

class ModelRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RegisterModel(TestMlpSpec()).ok()); }
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("anvil_registry_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    // Token t+1 = (3 t + 1) mod V: a deterministic successor the MLP (which
    // sees one token at a time) can learn exactly.
    std::vector<uint32_t> t = {0};
    for (int i = 1; i < 8000; ++i) t.push_back((3 * t.back() + 1) % kVocab);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  proto::TrainConfig Config() {
    proto::TrainConfig c;
    c.mutable_model()->set_kind("test_mlp");
    c.mutable_model()->set_vocab_size(kVocab);
    c.mutable_data()->set_train_pattern((dir_ / "train_*.bin").string());
    c.mutable_data()->set_batch_size(4);
    c.mutable_data()->set_seq_len(16);
    auto* o = c.mutable_optim();
    o->set_lr(1e-2f);
    o->set_min_lr_ratio(0.1f);
    o->set_warmup_steps(5);
    o->set_beta1(0.9f);
    o->set_beta2(0.95f);
    o->set_eps(1e-8f);
    o->set_grad_clip(1.0f);
    c.set_steps(120);
    c.set_grad_accum(1);
    c.set_seed(5);
    c.set_eval_batches(1);
    c.set_log_every(1000);
    c.set_sharding("NO_SHARD");
    c.set_param_dtype("fp32");
    c.set_reduce_dtype("fp32");
    return c;
  }

  std::filesystem::path dir_;
  std::unique_ptr<kernels::Device> device_ = kernels::MakeCpuDevice(1);
};

TEST_F(ModelRegistryTest, AModelDefinedInATestTrainsThroughTheTrainer) {
  const proto::TrainConfig c = Config();
  ASSERT_TRUE(ValidateTrainConfig(c).ok()) << ValidateTrainConfig(c);
  std::vector<std::string> lines;
  TrainerOptions o;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  auto t = Trainer::Create(c, device_.get(), o);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->model_spec().kind, "test_mlp");
  EXPECT_EQ((*t)->num_params(), (*t)->model().layout().total_numel());
  auto stats = (*t)->Run();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 120u);
  // Uniform is log(29) = 3.37; the successor is deterministic.
  EXPECT_GT(stats->front().loss, 3.0);
  EXPECT_LT(stats->back().loss, 0.5) << "first " << stats->front().loss;
  // Throughput in the model's own unit: 4 x 16 tokens per step.
  EXPECT_STREQ(stats->back().unit, "tokens");
  EXPECT_NEAR(stats->back().items_per_s, 64.0 / (stats->back().ms / 1e3),
              1e-6 * stats->back().items_per_s);
  bool saw_step_line = false;
  for (const std::string& l : lines) saw_step_line |= absl::StrContains(l, "tok/s");
  EXPECT_TRUE(saw_step_line);
}

TEST_F(ModelRegistryTest, TheModelsOwnValidationRuns) {
  proto::TrainConfig c = Config();
  c.mutable_model()->set_vocab_size(30);
  const absl::Status s = ValidateTrainConfig(c);
  EXPECT_TRUE(absl::StrContains(s.message(), "--vocab_size must be 29 for test_mlp")) << s;
}

TEST_F(ModelRegistryTest, UnknownKindListsTheRegisteredOnes) {
  proto::TrainConfig c = Config();
  c.mutable_model()->set_kind("resnet");
  const absl::Status s = ValidateTrainConfig(c);
  EXPECT_TRUE(absl::StrContains(s.message(), "--model must be one of")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "gpt")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "test_mlp")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'resnet'")) << s;
  EXPECT_FALSE(RegisterModel(TestMlpSpec()).ok());  // a kind registers once
}

TEST(BatchTest, AWrongBatchIsOneLineNotGarbage) {
  std::vector<float> images(2 * 4);
  Batch b;
  b.Set("images", {DType::kF32, {2, 1, 2, 2}, images.data()});
  EXPECT_EQ(b.samples(), 2);
  auto device = kernels::MakeCpuDevice(1);
  testing::MlpModel m(testing::MlpConfig{kVocab, 13, 3, 64}, device.get());
  absl::Status s = static_cast<UnitModel&>(m).SetBatch(b);
  EXPECT_TRUE(absl::StrContains(s.message(), "no tensor 'tokens' (it has: images)")) << s;
  std::vector<int32_t> ids(8);
  b.Set("tokens", {DType::kF32, {2, 4}, ids.data()});
  s = static_cast<UnitModel&>(m).SetBatch(b);
  EXPECT_TRUE(absl::StrContains(s.message(), "'tokens' is F32 [2,4], the model needs I32")) << s;
}

}  // namespace
}  // namespace anvil
