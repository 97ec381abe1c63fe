// Hugging Face interchange: a sharded checkpoint exports to safetensors with
// GPT-2 names and Conv1D layout, tensor by tensor; the export imports back to
// the same parameters; Python (safetensors/torch, and transformers when
// installed) loads the export and agrees on values and logits; a model saved
// by transformers imports and gives transformers' logits. Python checks skip
// when the packages are missing.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/file_io.h"
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_spec.h"
#include "runtime/checkpoint/hf_interchange.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/safetensors.h"
#include "runtime/data/token_shard.h"
#include "tests/checkpoint/thread_job.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using testing::JobSpec;
using testing::RunJob;

constexpr int kL = 2, kH = 2, kC = 16, kT = 16, kV = 64, kB = 2;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("anvil_export_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<uint32_t> t(8000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 11 + i / 5) % kV);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  proto::TrainConfig Config(int steps) const {
    proto::TrainConfig c;
    auto* m = c.mutable_model();
    m->set_kind("gpt");
    m->set_n_layer(kL);
    m->set_n_head(kH);
    m->set_n_embd(kC);
    m->set_max_seq_len(kT);
    m->set_vocab_size(kV);
    c.mutable_data()->set_train_pattern((dir_ / "train_*.bin").string());
    c.mutable_data()->set_batch_size(kB);
    c.mutable_data()->set_seq_len(kT);
    auto* o = c.mutable_optim();
    o->set_lr(1e-2f);
    o->set_beta1(0.9f);
    o->set_beta2(0.95f);
    o->set_eps(1e-8f);
    o->set_grad_clip(1.0f);
    o->set_weight_decay(0.1f);
    c.set_steps(steps);
    c.set_grad_accum(1);
    c.set_seed(3);
    c.set_eval_batches(1);
    c.set_log_every(1);
    c.set_sharding("NO_SHARD");
    c.set_param_dtype("fp32");
    c.set_reduce_dtype("fp32");
    c.set_checkpoint_dir((dir_ / "ckpt").string());
    c.set_checkpoint_async(true);  // TrainerOptions' old default
    return c;
  }

  // Logits (B,T,V) of the trainer's model on fixed tokens.
  static absl::StatusOr<std::vector<float>> Logits(Trainer& t, const std::vector<int32_t>& tokens) {
    std::vector<int32_t> targets(tokens.size(), -1);
    targets[0] = 1;
    Gpt& gpt = static_cast<Gpt&>(t.model());  // this test trains --model gpt
    RETURN_IF_ERROR(gpt.SetBatch(tokens.data(), targets.data(), kB, kT));
    auto loss = t.engine().ForwardLoss();
    if (!loss.ok()) return loss.status();
    const float* l = gpt.logits();
    return std::vector<float>(l, l + static_cast<size_t>(kB) * kT * kV);
  }

  static int RunPython(const std::string& mode, const fs::path& d) {
    const std::string cmd =
        "python3 " + std::string(ANVIL_HF_CHECK_PY) + " " + mode + " " + d.string();
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  fs::path dir_;
};

template <typename T>
void WriteRaw(const fs::path& p, const std::vector<T>& v) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::vector<int32_t> Tokens() {
  std::vector<int32_t> tokens(kB * kT);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 13 + 5) % kV);
  return tokens;
}

TEST_F(ExportTest, ShardedCheckpointExportsStreamingAndImportsBackExactly) {
  ASSERT_TRUE(testing::AllOk(RunJob(Config(3), JobSpec{"FULL_SHARD", 2},
                                    [](Trainer& t, int) { return t.Run().status(); })));
  const std::string ck = (dir_ / "ckpt" / ckpt::StepDirName(3)).string();
  auto m = ckpt::ReadManifest(ck);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files_size(), 2);  // written by two ranks
  const fs::path out = dir_ / "hf";
  fs::create_directories(out);
  auto stats = ckpt::ExportHf(ck, *m, *GptSpec().hf, (out / "model.safetensors").string());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tensors, 4 + 12 * kL + 1);
  // Streaming: the largest buffer held is a couple of tensors, not the model.
  EXPECT_LE(stats->peak_tensor_bytes, 2u * kV * kC * 4);
  EXPECT_LT(stats->peak_tensor_bytes, stats->bytes / 3);

  auto f = ckpt::ReadSafetensorsHeader((out / "model.safetensors").string());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metadata.at("format"), "pt");
  const ckpt::SafetensorsTensor* qkv = f->Find("transformer.h.1.attn.c_attn.weight");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->shape, (std::vector<int64_t>{kC, 3 * kC}));  // Conv1D: (in, out)
  ASSERT_NE(f->Find("lm_head.weight"), nullptr);
  ASSERT_NE(f->Find("transformer.ln_f.bias"), nullptr);

  // Load the checkpoint in one process (resharded) and compare everything.
  std::vector<float> params, logits;
  ASSERT_TRUE(testing::AllOk(RunJob(Config(3), JobSpec{}, [&](Trainer& t, int) -> absl::Status {
    EXPECT_EQ(t.resumed_step(), 3);
    ASSIGN_OR_RETURN(params, t.FullParams());
    ASSIGN_OR_RETURN(logits, Logits(t, Tokens()));
    auto imp = ckpt::ImportHf(out.string(), t.model().layout(), *GptSpec().hf);
    if (!imp.ok()) return imp.status();
    EXPECT_EQ(imp->ignored, std::vector<std::string>{"lm_head.weight"});
    EXPECT_EQ(std::memcmp(imp->params.data(), params.data(), params.size() * 4), 0);
    // One element by hand: ours (out=7, in=3) is HF's (in=3, out=7).
    const ParamLayout& layout = t.model().layout();
    const ParamInfo& p = layout.params()[layout.Find("h.1.attn.c_attn.weight")];
    std::vector<float> hf(qkv->numel());
    EXPECT_TRUE(ckpt::ReadSafetensorsTensor(*f, *qkv, hf.data()).ok());
    EXPECT_EQ(hf[3 * (3 * kC) + 7], params[p.offset + 7 * kC + 3]);
    return absl::OkStatus();
  })));

  // Python's view of the same file.
  std::ofstream layout_txt(out / "layout.txt");
  {
    auto device = kernels::MakeCpuDevice(1);
    auto model = Gpt::Create(GptConfig{kL, kH, kC, kT, kV}, GptOptions{kB, kT}, device.get());
    for (const ParamInfo& p : (*model)->layout().params()) {
      layout_txt << p.name << " " << p.offset;
      for (int64_t d : p.shape) layout_txt << " " << d;
      layout_txt << "\n";
    }
  }
  layout_txt.close();
  WriteRaw(out / "params.bin", params);
  WriteRaw(out / "tokens.bin", Tokens());
  WriteRaw(out / "logits.bin", logits);
  std::ofstream(out / "shape.txt") << kB << " " << kT << " " << kV;
  ASSERT_TRUE(ckpt::WriteFileAtomic((out / "config.json").string(),
                                    GptSpec().hf->config_json(m->config().model()))
                  .ok());
  const int rc = RunPython("check", out);
  if (rc == 77) GTEST_SKIP() << "python3 lacks safetensors/torch";
  EXPECT_EQ(rc, 0);
}

TEST_F(ExportTest, ImportsAModelSavedByTransformers) {
  const fs::path d = dir_ / "py";
  fs::create_directories(d);
  std::ofstream(d / "shape.txt") << kB << " " << kT << " " << kV;
  std::ofstream(d / "model.txt") << kL << " " << kH << " " << kC;
  const int rc = RunPython("make", d);
  if (rc == 77) GTEST_SKIP() << "python3 lacks torch/safetensors/transformers";
  ASSERT_EQ(rc, 0);
  std::vector<int32_t> tokens(kB * kT);
  std::vector<float> want(static_cast<size_t>(kB) * kT * kV);
  std::ifstream(d / "tokens.bin", std::ios::binary)
      .read(reinterpret_cast<char*>(tokens.data()), tokens.size() * 4);
  std::ifstream(d / "logits.bin", std::ios::binary)
      .read(reinterpret_cast<char*>(want.data()), want.size() * 4);

  proto::TrainConfig cfg = Config(1);
  cfg.set_checkpoint_dir("");
  auto device = kernels::MakeCpuDevice(1);
  TrainerOptions o;
  o.log = [](const std::string&) {};
  cfg.set_init_from((d / "hf" / "model.safetensors").string());
  auto t = Trainer::Create(cfg, device.get(), o);
  ASSERT_TRUE(t.ok()) << t.status();
  auto got = Logits(**t, tokens);
  ASSERT_TRUE(got.ok()) << got.status();
  double max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i)
    max_diff = std::max<double>(max_diff, std::fabs((*got)[i] - want[i]));
  EXPECT_LT(max_diff, 1e-4);
  std::printf("anvil logits after --init_from vs transformers: max abs diff %.3e\n", max_diff);

  // A wrong shape is named.
  cfg.mutable_model()->set_n_embd(32);
  auto bad = Trainer::Create(cfg, device.get(), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("--init_from:"), std::string::npos)
      << bad.status();
  EXPECT_NE(std::string(bad.status().message()).find("has shape"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace anvil
