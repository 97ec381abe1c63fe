// The `train` and `tokenize` binaries on bad input: one clear line on stderr
// naming the file or flag, a non-zero exit, no hang. Also config-file
// precedence, the schema's defaults and generated flags, and the clean stop
// on SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "runtime/config/schema.h"
#include "runtime/data/token_shard.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

using Result = testing::ProcessResult;
using testing::RunProcess;

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class TrainCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("anvil_cli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::vector<uint32_t> t(20000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 31 + i / 7) % 200);
    ASSERT_TRUE(WriteTokenShard(P("train_0.bin"), t).ok());
    ASSERT_TRUE(WriteTokenShard(P("val_0.bin"), t).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> Base(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--train_pattern=" + P("train_*.bin"),
                               "--val_pattern=" + P("val_*.bin"),
                               "--n_layer=1", "--n_head=2", "--n_embd=16", "--max_seq_len=16",
                               "--seq_len=16", "--batch_size=2", "--steps=3", "--threads=1",
                               "--eval_every=0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Expects exit code 2 and exactly one stderr line containing `needle`.
  void ExpectBadInput(const std::vector<std::string>& extra, const std::string& needle) {
    Result r = RunProcess(ANVIL_TRAIN_BIN, Base(extra));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
  std::filesystem::path dir_;
};

TEST_F(TrainCliTest, RunsAndLogsOneLinePerStep) {
  Result r = RunProcess(ANVIL_TRAIN_BIN, Base({"--log_every=1", "--eval_every=3"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"step     1/3", "step     3/3", "loss", "lr", "norm", "ms", "tok/s",
                        "MFU", "val loss"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
}

TEST_F(TrainCliTest, LlamaTrainsThroughTheSameBinary) {
  Result r = RunProcess(ANVIL_TRAIN_BIN, Base({"--model=llama", "--n_kv_head=1", "--ffn_hidden=40",
                                               "--notie_embeddings", "--rope_theta=500",
                                               "--log_every=1", "--eval_every=3"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"model: Llama L=1 H=2 KV=1 C=16 F=40 T=16 V=256 theta=500,", "step     3/3",
                        "tok/s", "val loss"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  ExpectBadInput({"--model=llama", "--n_kv_head=3"}, "--n_kv_head");
  ExpectBadInput({"--model=gpt", "--n_kv_head=1"}, "--n_kv_head is not supported by --model gpt");
}

// The UNet on the default data set (Fashion-MNIST, no data flags needed).
TEST_F(TrainCliTest, UNetTrainsThroughTheSameBinary) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not installed (scripts/setup.sh installs it)";
  }
  Result r = RunProcess(ANVIL_TRAIN_BIN,
                        Base({"--model=unet", "--unet_channels=8", "--norm_groups=4",
                              "--unet_channel_mult=1,2", "--unet_attention_res=14",
                              "--log_every=1"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"model: UNet 28x28x1 ch=8 mult=1,2 blocks=1 attn=14 groups=4 heads=2 "
                        "classes=10,", "step     3/3", "img/s"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  ExpectBadInput({"--model=unet", "--unet_channel_mult=1,x"}, "--unet_channel_mult");
  ExpectBadInput({"--model=unet", "--unet_attention_res=5"}, "--unet_attention_res 5");
  ExpectBadInput({"--model=unet", "--image_pad=32"}, "--image_pad (32) must equal --image_size");
  ExpectBadInput({"--model=unet", "--unet_channels=1000000"}, "--unet_channels must be <=");
  ExpectBadInput({"--model=unet", "--image_size=16384", "--image_pad=16384",
                  "--unet_attention_res="}, "fit");
}

// The DiT on the default image data (Fashion-MNIST, no data flags; the
// token-data flags of Base() are ignored by an image model).
TEST_F(TrainCliTest, DitTrainsThroughTheSameBinary) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  Result r = RunProcess(ANVIL_TRAIN_BIN, Base({"--model=dit", "--n_embd=32", "--patch_size=7",
                                               "--log_every=1", "--eval_every=3",
                                               "--eval_batches=1"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"model: DiT L=1 H=2 C=32 p=7 image=28x28x1 T=16 classes=10,",
                        "step     3/3", "img/s", "val loss"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  ExpectBadInput({"--model=dit", "--patch_size=5"},
                 "--patch_size (5) must divide --image_size (28)");
  ExpectBadInput({"--model=dit", "--image_pad=32"}, "--image_size (28) must equal --image_pad (32)");
  ExpectBadInput({"--model=dit", "--num_classes=4"},
                 "--image_classes (10) must equal --num_classes (4)");
}

TEST_F(TrainCliTest, ModelShapeErrors) {
  ExpectBadInput({"--n_embd=18", "--n_head=4"}, "--n_head");
  ExpectBadInput({"--seq_len=32"}, "--seq_len (32) must be in 1..--max_seq_len (16)");
  ExpectBadInput({"--n_layer=0"}, "--n_layer");
  ExpectBadInput({"--sharding=ZERO9"}, "--sharding");
  ExpectBadInput({"--param_dtype=fp8"}, "--param_dtype");
}

TEST_F(TrainCliTest, DataErrorsNameTheFile) {
  ExpectBadInput({"--train_pattern=" + P("missing_*.bin")}, "missing_*.bin: no token shard matches");
  std::filesystem::copy_file(P("train_0.bin"), P("trunc.bin"));
  std::filesystem::resize_file(P("trunc.bin"), 1024 + 100);
  ExpectBadInput({"--train_pattern=" + P("trunc.bin")}, "trunc.bin: truncated");
  {
    std::ofstream f(P("magic.bin"), std::ios::binary);
    std::vector<char> junk(2048, 'x');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  ExpectBadInput({"--train_pattern=" + P("magic.bin")}, "magic.bin: not a token shard");
  ExpectBadInput({"--vocab_size=100"}, "train_0.bin: token id 199");
}

TEST_F(TrainCliTest, FlagErrors) {
  ExpectBadInput({"--bogus_flag=1"}, "unknown flag --bogus_flag");
  ExpectBadInput({"--lr=fast"}, "--lr: cannot parse 'fast'");
  ExpectBadInput({"--steps=3x"}, "--steps: cannot parse '3x'");
  ExpectBadInput({"--lr=-0.5"}, "--lr");
  ExpectBadInput({"stray.bin"}, "unexpected argument 'stray.bin'");
  ExpectBadInput({"--", "after_dashes"}, "unexpected argument 'after_dashes'");
  // A boolean's negated form and --flag value are still accepted.
  Result ok = RunProcess(ANVIL_TRAIN_BIN, Base({"--nocheckpoint_async", "--steps", "1"}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Issue 14, item 4: inputs that used to crash, hang or fill memory are
// refused up front with exit 2 and one line.
TEST_F(TrainCliTest, HostileInputIsBoundedBeforeAllocation) {
  ExpectBadInput({"--config=" + dir_.string()}, "is a directory");
  ExpectBadInput({"--threads=65536"}, "--threads must be in 0..");
  ExpectBadInput({"--threads=10000"}, "--threads must be in 0..");
  ExpectBadInput({"--n_head=4", "--n_embd=1000000"}, "does not fit in memory");
  ExpectBadInput({"--max_seq_len=2000000000"}, "does not fit in memory");
  ExpectBadInput({"--batch_size=100000000"}, "--batch_size 100000000 x --seq_len 16");
  ExpectBadInput({"--n_layer=100000000"}, "does not fit in memory");
  std::ofstream(P("plain_file")) << "x";
  ExpectBadInput({"--checkpoint_dir=" + P("plain_file")}, "is not a directory");
}

// Issue 14, item 3: a save that fails (a full disk, injected) stops the run
// after the current step with exit 3, keeps every committed checkpoint and
// leaves no step_*.tmp behind; --on_save_error=continue trains on, and the
// final save failing still exits 3.
TEST_F(TrainCliTest, FailedSaveStopsKeepsWhatWasCommittedAndLeavesNoTmp) {
  const std::vector<std::string> args = Base({"--steps=12", "--checkpoint_every=2",
                                              "--log_every=1", "--checkpoint_dir=" + P("ck")});
  testing::Process stop(ANVIL_TRAIN_BIN, args, {{"ANVIL_CKPT_FAULT", "disk_full@6"}});
  Result r = stop.Finish(60);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("checkpoint step_00000006 could not be saved"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("newest committed checkpoint is step_00000004"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("step    12/12"), std::string::npos) << r.out;  // did not train on
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(P("ck"))) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_00000002", "step_00000004"}));

  std::filesystem::remove_all(P("ck"));
  testing::Process cont(ANVIL_TRAIN_BIN,
                        [&] {
                          auto a = args;
                          a.push_back("--on_save_error=continue");
                          return a;
                        }(),
                        {{"ANVIL_CKPT_FAULT", "disk_full@6"}});
  r = cont.Finish(60);
  EXPECT_EQ(r.exit_code, 3) << r.err;  // the finished state could not be saved
  EXPECT_NE(r.out.find("step    12/12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checkpoint step_00000008 FAILED"), std::string::npos) << r.out;
  for (const auto& e : std::filesystem::directory_iterator(P("ck"))) {
    EXPECT_EQ(e.path().extension(), "") << e.path();  // no .tmp left
  }
  ExpectBadInput({"--on_save_error=retry"}, "--on_save_error must be stop or continue");
}

// Issue 14, item 1, as two real jobs: while job A trains in a checkpoint
// directory, job B (another seed) is refused with exit 2 and one line naming
// A's pid; A is unharmed.
TEST_F(TrainCliTest, SecondJobOnALiveCheckpointDirIsRefused) {
  const std::string ck = "--checkpoint_dir=" + P("ck");
  testing::Process a(ANVIL_TRAIN_BIN,
                     Base({"--steps=100000", "--log_every=100000", ck, "--checkpoint_every=50"}));
  for (int i = 0; i < 200 && !std::filesystem::exists(P("ck/latest")); ++i) {
    usleep(50 * 1000);
  }
  ASSERT_TRUE(std::filesystem::exists(P("ck/latest")));
  Result b = RunProcess(ANVIL_TRAIN_BIN, Base({"--seed=9", ck}));
  EXPECT_EQ(b.exit_code, 2) << b.err;
  EXPECT_EQ(Lines(b.err), 1) << b.err;
  EXPECT_NE(b.err.find("is in use by another job"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("pid " + std::to_string(a.pid())), std::string::npos) << b.err;
  ::kill(a.pid(), SIGTERM);
  Result ra = a.Finish(60);
  EXPECT_EQ(ra.exit_code, 75) << ra.err;
  // Later, B still does not silently continue A's run.
  Result later = RunProcess(ANVIL_TRAIN_BIN, Base({"--seed=9", ck}));
  EXPECT_EQ(later.exit_code, 2) << later.err;
  EXPECT_NE(later.err.find("of another run"), std::string::npos) << later.err;
  EXPECT_NE(later.err.find("--seed 1337 -> 9"), std::string::npos) << later.err;
}

TEST_F(TrainCliTest, ConfigFilePrecedenceAndErrors) {
  {
    std::ofstream f(P("run.textproto"));
    f << "model { n_layer: 3 n_head: 2 }\nsteps: 50\noptim { lr: 0.01 }\neval_every: 0\n";
  }
  Result r = RunProcess(ANVIL_TRAIN_BIN, {"--config=" + P("run.textproto"), "--steps=7", "--print_config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("n_layer: 3"), std::string::npos) << r.out;  // from the file
  EXPECT_NE(r.out.find("steps: 7"), std::string::npos) << r.out;    // flag wins
  EXPECT_NE(r.out.find("lr: 0.01"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n_embd: 128"), std::string::npos) << r.out;  // flag default
  EXPECT_NE(r.out.find("eval_every: 0"), std::string::npos) << r.out;  // a zero in the file wins
  {
    std::ofstream f(P("bad.textproto"));
    f << "model {\n  n_layers: 3\n}\n";
  }
  Result bad = RunProcess(ANVIL_TRAIN_BIN, {"--config=" + P("bad.textproto")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(Lines(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("bad.textproto: line 2"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("n_layers"), std::string::npos) << bad.err;
}

// The defaults `train` runs with are DefaultTrainConfig(), the ones library
// callers get: --print_config with no flags parses back to it.
TEST_F(TrainCliTest, PrintedDefaultsAreDefaultTrainConfig) {
  Result r = RunProcess(ANVIL_TRAIN_BIN, {"--print_config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  proto::TrainConfig printed;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(r.out, &printed)) << r.out;
  std::string report;
  google::protobuf::util::MessageDifferencer diff;
  diff.ReportDifferencesToString(&report);
  EXPECT_TRUE(diff.Compare(DefaultTrainConfig(), printed)) << report;

  // Dashes or underscores, the old --kind spelling, bool forms.
  r = RunProcess(ANVIL_TRAIN_BIN, {"--n-layer=3", "--kind", "gpt", "--nocheckpoint-async",
                                   "--print_config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("n_layer: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checkpoint_async: false"), std::string::npos) << r.out;

  Result help = RunProcess(ANVIL_TRAIN_BIN, {"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("  --n_layer (default: 4)"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("  --model, --kind (default: gpt)"), std::string::npos) << help.out;

  ExpectBadInput({"--model=bert"}, "--model must be one of classifier, dit, gpt, llama, unet, got 'bert'");
}

TEST_F(TrainCliTest, SigtermStopsAtAStepBoundary) {
  Result r = RunProcess(ANVIL_TRAIN_BIN, Base({"--steps=100000", "--log_every=1"}), "step     2/", SIGTERM);
  EXPECT_EQ(r.exit_code, 75) << r.err;
  EXPECT_NE(r.out.find("stopping at step"), std::string::npos) << r.out;
}

TEST_F(TrainCliTest, TokenizeRejectsInvalidUtf8) {
  {
    std::ofstream f(P("bad.txt"), std::ios::binary);
    f << "hello \xff world";
  }
  Result r = RunProcess(ANVIL_TOKENIZE_BIN, {"--out_dir=" + P("tok"), P("bad.txt")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("bad.txt: invalid UTF-8 at byte 6"), std::string::npos) << r.err;
  {
    std::ofstream f(P("good.txt"));
    for (int i = 0; i < 100; ++i) f << "The quick brown fox. ";
  }
  Result ok = RunProcess(ANVIL_TOKENIZE_BIN, {"--out_dir=" + P("tok"), "--val_fraction=0.25", P("good.txt")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto train = TokenShard::Open(P("tok/train_000000.bin"), 256);
  auto val = TokenShard::Open(P("tok/val_000000.bin"), 256);
  ASSERT_TRUE(train.ok() && val.ok());
  EXPECT_EQ(train->size() + val->size(), 2102u);  // 2100 bytes + "\n\n"
  EXPECT_EQ((*train)[0], 'T');
}

}  // namespace
}  // namespace anvil
