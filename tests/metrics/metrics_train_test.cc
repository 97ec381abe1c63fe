// `train` with the metrics switched on, as a user runs it:
//  - --tensorboard_dir: the event file read back by the C++ TFRecord reader
//    and by TensorBoard's own reader (tb_read.py; skipped where no Python
//    imports tensorboard), which must show every scalar tag at every step,
//    eval/loss at the evaluation steps, and a restarted run as one series;
//  - --metrics_jsonl: one parsable line per step whose loss is the step
//    line's;
//  - the step line's percent and ETA;
//  - a diffusion run with --sample_every: its class grids as image summaries
//    (PNG of the grid's size, at the sampling steps, not blank), one rank
//    and two FULL_SHARD ranks drawing the same grid;
//  - two ranks, one slowed by the test-only ANVIL_TEST_ONLY_SLOW_RANK hook:
//    the step line names it as the slowest with its lag, and rank 0 warns
//    once that it is persistently slow (and never about the other rank).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/data/png_io.h"
#include "runtime/data/token_shard.h"
#include "runtime/metrics/event_writer.h"
#include "runtime/metrics/tfrecord.h"
#include "tests/common/local_job.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using testing::Process;
using testing::ProcessResult;
using testing::RunProcess;

std::vector<std::string> Lines(const std::string& s, const std::string& containing) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(s, '\n')) {
    if (l.find(containing) != absl::string_view::npos) out.emplace_back(l);
  }
  return out;
}

// The number after `key` in `line` (a step line's "| loss 2.3456", a JSON
// line's "\"loss\":2.3456").
double NumberAfter(const std::string& line, const std::string& key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nan("");
  const size_t from = at + key.size();
  const size_t end = line.find_first_of(",} |", from);
  double v = std::nan("");
  if (!absl::SimpleAtod(line.substr(from, end - from), &v)) return std::nan("");
  return v;
}

std::vector<std::string> EventFiles(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What TensorBoard's reader shows: tag -> (steps, values); the exit code.
struct TensorBoardView {
  int exit_code = -1;
  std::string file_version;
  std::map<std::string, std::pair<std::vector<int>, std::vector<double>>> scalars;
  std::string out, err;
};

TensorBoardView ReadWithTensorBoard(const fs::path& logdir) {
  TensorBoardView v;
  std::vector<std::string> pythons;
  if (const char* p = std::getenv("ANVIL_TB_PYTHON")) pythons.push_back(p);
  pythons.push_back("python3");
  for (const std::string& py : pythons) {
    if (py.find('/') != std::string::npos && !fs::exists(py)) continue;
    ProcessResult r = RunProcess(py, {ANVIL_TB_READ_PY, logdir.string()}, "", 0, 120);
    v.exit_code = r.exit_code;
    v.out = r.out;
    v.err = r.err;
    if (r.exit_code != 77) break;
  }
  if (v.exit_code != 0) return v;
  for (const std::string& line : Lines(v.out, "")) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() == 2 && f[0] == "file_version") v.file_version = f[1];
    if (f.size() != 5 || f[0] != "scalar") continue;
    auto& [steps, values] = v.scalars[f[1]];
    for (absl::string_view s : absl::StrSplit(f[3], ',')) {
      int n = 0;
      EXPECT_TRUE(absl::SimpleAtoi(s, &n)) << line;
      steps.push_back(n);
    }
    for (absl::string_view s : absl::StrSplit(f[4], ',')) {
      double d = 0;
      EXPECT_TRUE(absl::SimpleAtod(s, &d)) << line;
      values.push_back(d);
    }
  }
  return v;
}

class MetricsTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("anvil_metrics_train_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<uint32_t> t(20000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 31 + i / 7) % 200);
    ASSERT_TRUE(WriteTokenShard(P("train_0.bin"), t).ok());
    ASSERT_TRUE(WriteTokenShard(P("val_0.bin"), t).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> Base(std::vector<std::string> extra) const {
    std::vector<std::string> a{"--train_pattern=" + P("train_*.bin"),
                               "--val_pattern=" + P("val_*.bin"),
                               "--n_layer=1", "--n_head=2", "--n_embd=16", "--max_seq_len=16",
                               "--seq_len=16", "--batch_size=2", "--threads=1", "--log_every=1",
                               "--warmup_steps=0", "--dist_timeout_s=30"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  fs::path dir_;
};

TEST_F(MetricsTrainTest, TensorBoardJsonlAndEtaOfARestartedRun) {
  const std::vector<std::string> metrics{"--tensorboard_dir=" + P("tb"),
                                         "--metrics_jsonl=" + P("m/metrics.jsonl"),
                                         "--checkpoint_dir=" + P("ck"), "--eval_every=3"};
  std::vector<std::string> first = metrics, second = metrics;
  first.push_back("--steps=4");   // then resumed from its final checkpoint
  second.push_back("--steps=6");  // to train steps 5 and 6 as a new process
  ProcessResult a = RunProcess(ANVIL_TRAIN_BIN, Base(first));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ProcessResult b = RunProcess(ANVIL_TRAIN_BIN, Base(second));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  ASSERT_NE(b.out.find("resumed from"), std::string::npos) << b.out;

  // The step lines: "step     2/4 (50%) | ... | eta 0s"; one rank: no spread.
  const std::regex step_line(R"(step +(\d+)/(\d+) \((\d+)%\) \| loss .* \| eta (\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)$)");
  std::vector<std::string> lines = Lines(a.out, "| loss ");
  const std::vector<std::string> more = Lines(b.out, "| loss ");
  lines.insert(lines.end(), more.begin(), more.end());
  ASSERT_EQ(lines.size(), 6u) << a.out << b.out;
  std::vector<double> line_loss;
  for (const std::string& l : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(l, m, step_line)) << l;
    const int step = std::stoi(m[1]), total = std::stoi(m[2]);
    EXPECT_EQ(std::stoi(m[3]), 100 * step / total) << l;
    if (step == total) {
      EXPECT_EQ(m[4], "0s") << l;
    }
    EXPECT_EQ(l.find("slowest"), std::string::npos) << l;
    line_loss.push_back(NumberAfter(l, "| loss "));
  }

  // JSONL: one line per step, appended across the restart, loss = the step line's.
  const std::vector<std::string> json = Lines(testing::ReadFile(P("m/metrics.jsonl")), "{");
  ASSERT_EQ(json.size(), 6u);
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string& j = json[i];
    EXPECT_EQ(j.rfind(absl::StrCat("{\"step\":", i + 1, ",\"time\":"), 0), 0u) << j;
    EXPECT_EQ(j.back(), '}') << j;
    EXPECT_NEAR(NumberAfter(j, "\"time\":"), static_cast<double>(time(nullptr)), 600) << j;
    EXPECT_NEAR(NumberAfter(j, "\"loss\":"), line_loss[i], 6e-5) << j;
    for (const char* key : {"\"lr\":", "\"grad_norm\":", "\"tokens_per_s\":", "\"step_ms\":",
                            "\"mfu\":"}) {
      EXPECT_GT(NumberAfter(j, key), 0) << key << " in " << j;
    }
    EXPECT_EQ(j.find("loss_scale"), std::string::npos) << j;  // fp32: no loss scaling
    EXPECT_EQ(j.find("eval_loss") != std::string::npos, i + 1 == 3 || i + 1 == 4 || i + 1 == 6)
        << j;  // every 3 steps and at each run's last step
  }

  // The event files, one per process start, through the C++ reader.
  const std::vector<std::string> files = EventFiles(dir_ / "tb");
  ASSERT_EQ(files.size(), 2u);
  std::vector<int64_t> steps;
  for (const std::string& f : files) {
    auto reader = metrics::TfRecordReader::Open(f);
    ASSERT_TRUE(reader.ok()) << reader.status();
    bool first_record = true;
    while (true) {
      auto r = (*reader)->Next();
      ASSERT_TRUE(r.ok()) << r.status();
      if (!r->has_value()) break;
      proto::tb::Event e;
      ASSERT_TRUE(e.ParseFromString(**r));
      if (first_record) {
        EXPECT_EQ(e.file_version(), "brain.Event:2");
        first_record = false;
        continue;
      }
      steps.push_back(e.step());
      EXPECT_EQ(e.summary().value(0).tag(), "train/loss");
    }
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));

  // What TensorBoard itself shows of the directory.
  const TensorBoardView tb = ReadWithTensorBoard(dir_ / "tb");
  if (tb.exit_code == 77) GTEST_SKIP() << "no Python here imports tensorboard";
  ASSERT_EQ(tb.exit_code, 0) << tb.err;
  std::printf("TensorBoard's EventAccumulator shows:\n%s", tb.out.c_str());
  EXPECT_EQ(tb.file_version, "2.0");  // what EventAccumulator makes of "brain.Event:2"
  std::set<std::string> tags;
  for (const auto& [tag, series] : tb.scalars) tags.insert(tag);
  EXPECT_EQ(tags, (std::set<std::string>{"eval/loss", "train/grad_norm", "train/loss", "train/lr",
                                         "train/mfu", "train/step_ms", "train/tokens_per_s"}));
  for (const auto& [tag, series] : tb.scalars) {
    const std::vector<int> want =
        tag == "eval/loss" ? std::vector<int>{3, 4, 6} : std::vector<int>{1, 2, 3, 4, 5, 6};
    EXPECT_EQ(series.first, want) << tag;
  }
  const std::vector<double>& loss = tb.scalars.at("train/loss").second;
  ASSERT_EQ(loss.size(), 6u);
  for (size_t i = 0; i < loss.size(); ++i) EXPECT_NEAR(loss[i], line_loss[i], 6e-5) << i;
}

// The image summary (for sample grids): a real PNG TensorBoard decodes the
// size of.
TEST_F(MetricsTrainTest, ImageSummaryReadsInTensorBoard) {
  std::vector<uint8_t> pixels(5 * 7);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(WritePng(P("grid.png"), 5, 7, 1, pixels.data()).ok());
  const std::string png = testing::ReadFile(P("grid.png"));
  {
    auto w = metrics::EventFileWriter::Create(P("tbimg"));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->WriteImage(7, 1.7e9, "samples/grid", png, 5, 7, 1).ok());
  }
  const TensorBoardView tb = ReadWithTensorBoard(dir_ / "tbimg");
  if (tb.exit_code == 77) GTEST_SKIP() << "no Python here imports tensorboard";
  ASSERT_EQ(tb.exit_code, 0) << tb.err;
  EXPECT_NE(tb.out.find(absl::StrCat("image samples/grid 1 7 7x5x", png.size(), "\n")),
            std::string::npos)
      << tb.out;
}

// The image summaries of a run's event files: step -> decoded PNG.
std::map<int64_t, PngImage> ImageSummaries(const fs::path& logdir, const std::string& tag,
                                           const fs::path& scratch) {
  std::map<int64_t, PngImage> out;
  for (const std::string& f : EventFiles(logdir)) {
    auto reader = metrics::TfRecordReader::Open(f);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) return out;
    while (true) {
      absl::StatusOr<std::optional<std::string>> rec = (*reader)->Next();
      EXPECT_TRUE(rec.ok()) << rec.status();
      if (!rec.ok() || !rec->has_value()) break;
      proto::tb::Event ev;
      EXPECT_TRUE(ev.ParseFromString(**rec));
      if (!ev.has_summary()) continue;
      for (const proto::tb::SummaryValue& v : ev.summary().value()) {
        if (v.tag() != tag || !v.has_image()) continue;
        const std::string png = (scratch / "summary.png").string();
        std::ofstream(png, std::ios::binary) << v.image().encoded_image_string();
        absl::StatusOr<PngImage> img = ReadPng(png);
        EXPECT_TRUE(img.ok()) << img.status();
        if (!img.ok()) continue;
        EXPECT_EQ(v.image().height(), img->height);
        EXPECT_EQ(v.image().width(), img->width);
        EXPECT_EQ(v.image().colorspace(), img->channels);
        out[ev.step()] = *img;
      }
    }
  }
  return out;
}

TEST_F(MetricsTrainTest, DiffusionSampleGridsReachTensorBoard) {
  // A tiny class-conditional UNet on Fashion-MNIST (28x28 gray, 10 classes).
  auto args = [&](const std::string& tb, const std::string& sharding) {
    return std::vector<std::string>{
        "--model=unet", "--unet_channels=8", "--unet_channel_mult=1,2", "--unet_attention_res=",
        "--norm_groups=4", "--batch_size=4", "--steps=4", "--sample_every=2", "--eval_every=0",
        "--threads=1", "--log_every=1", "--warmup_steps=0", "--lr=1e-3", "--dist_timeout_s=60",
        "--sharding=" + sharding, "--tensorboard_dir=" + P(tb)};
  };
  ProcessResult one = RunProcess(ANVIL_TRAIN_BIN, args("tb1", "NO_SHARD"), "", 0, 200);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(Lines(one.out, "samples ").size(), 2u) << one.out;
  const std::map<int64_t, PngImage> grids = ImageSummaries(dir_ / "tb1", "samples/grid", dir_);
  ASSERT_EQ(grids.size(), 2u);
  ASSERT_EQ(grids.begin()->first, 2);
  ASSERT_EQ(grids.rbegin()->first, 4);
  for (const auto& [step, img] : grids) {
    // 10 class rows x 4 columns of 28x28 with a 2-pixel border.
    EXPECT_EQ(img.height, 10 * 30 + 2) << step;
    EXPECT_EQ(img.width, 4 * 30 + 2) << step;
    EXPECT_EQ(img.channels, 1) << step;
    // The first image's pixels are samples, not a constant.
    std::set<uint8_t> values;
    for (int y = 2; y < 30; ++y) {
      for (int x = 2; x < 30; ++x) values.insert(img.pixels[static_cast<size_t>(y) * img.width + x]);
    }
    EXPECT_GT(values.size(), 8u) << step;
  }
  EXPECT_NE(grids.at(2).pixels, grids.at(4).pixels) << "training changed nothing in the samples";

  // TensorBoard's own reader shows the grid at both steps.
  const TensorBoardView tb = ReadWithTensorBoard(dir_ / "tb1");
  if (tb.exit_code != 77) {
    ASSERT_EQ(tb.exit_code, 0) << tb.err;
    EXPECT_NE(tb.out.find("image samples/grid 2 2,4 122x302x"), std::string::npos) << tb.out;
  }

  // Two FULL_SHARD ranks gather parameters for every sampling forward: both
  // take part, rank 0 writes, and the grid is the one-rank grid up to the
  // rounding sharded reductions bring.
  testing::LocalJob job;
  ASSERT_TRUE(job.Start("sample_grid_test", 2).ok());
  auto env = [&](int rank) { return job.Env(rank, {{"ANVIL_STORE_PREFIX", "a0/"}}); };
  std::vector<std::string> two_args = args("tb2", "FULL_SHARD");
  // The same global batch: 2 ranks x 2.
  for (std::string& a : two_args) {
    if (a == "--batch_size=4") a = "--batch_size=2";
  }
  Process r0(ANVIL_TRAIN_BIN, two_args, env(0));
  Process r1(ANVIL_TRAIN_BIN, two_args, env(1));
  std::vector<ProcessResult> res = testing::RunAll({&r0, &r1}, 200);
  job.Shutdown();
  ASSERT_EQ(res[0].exit_code, 0) << res[0].err;
  ASSERT_EQ(res[1].exit_code, 0) << res[1].err;
  EXPECT_FALSE(fs::exists(dir_ / "tb2") && EventFiles(dir_ / "tb2").size() != 1u)
      << "only rank 0 writes events";
  const std::map<int64_t, PngImage> sharded = ImageSummaries(dir_ / "tb2", "samples/grid", dir_);
  ASSERT_EQ(sharded.size(), 2u);
  const PngImage& a = grids.at(2);
  const PngImage& b = sharded.at(2);
  ASSERT_EQ(a.pixels.size(), b.pixels.size());
  double diff = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) diff += std::abs(int{a.pixels[i]} - int{b.pixels[i]});
  EXPECT_LT(diff / a.pixels.size(), 1.0) << "mean absolute pixel difference";
}

TEST_F(MetricsTrainTest, BadMetricsPathsAreOneLine) {
  std::ofstream(P("plain")) << "x";
  for (const auto& [flag, needle] :
       std::vector<std::pair<std::string, std::string>>{
           {"--tensorboard_dir=" + P("plain"), "--tensorboard_dir"},
           {"--metrics_jsonl=" + P("plain") + "/m.jsonl", "--metrics_jsonl"},
           {"--straggler_factor=0.5", "--straggler_factor"},
           {"--straggler_window=0", "--straggler_window"},
           {"--straggler_every=30", "--straggler_every"}}) {
    ProcessResult r = RunProcess(ANVIL_TRAIN_BIN, Base({"--steps=1", "--eval_every=0", flag}));
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
}

TEST_F(MetricsTrainTest, SlowedRankIsNamedOnTheStepLineAndWarnedOnce) {
  testing::LocalJob job;
  ASSERT_TRUE(job.Start("straggler_test", 2, "secret").ok());
  auto env = [&](int rank) {
    // TEST ONLY: rank 1 sleeps 40 ms inside every step.
    return job.Env(rank, {{"ANVIL_STORE_PREFIX", "a0/"}, {"ANVIL_TEST_ONLY_SLOW_RANK", "1:40"}});
  };
  const std::vector<std::string> args =
      Base({"--steps=12", "--eval_every=0", "--straggler_window=4", "--straggler_every=2",
            "--sharding=NO_SHARD"});
  Process r0(ANVIL_TRAIN_BIN, args, env(0));
  Process r1(ANVIL_TRAIN_BIN, args, env(1));
  std::vector<ProcessResult> res = testing::RunAll({&r0, &r1}, 120);
  job.Shutdown();
  ASSERT_EQ(res[0].exit_code, 0) << res[0].err;
  ASSERT_EQ(res[1].exit_code, 0) << res[1].err;
  const std::string& out = res[0].out;
  const std::vector<std::string> warnings = Lines(out, "is persistently slow");
  ASSERT_EQ(warnings.size(), 1u) << out;
  EXPECT_NE(warnings[0].find("straggler: rank 1 is persistently slow"), std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("over the last 4 steps"), std::string::npos) << warnings[0];
  // Every step line from the first gather (step 2) on names rank 1, 40 ms
  // behind a ~ms step: far over +50%.
  const std::vector<std::string> lines = Lines(out, "| loss ");
  ASSERT_EQ(lines.size(), 12u) << out;
  EXPECT_EQ(lines[0].find("slowest"), std::string::npos) << lines[0];
  const std::regex slowest(R"(\| slowest r(\d+) \+(\d+)%)");
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    std::smatch m;
    ASSERT_TRUE(std::regex_search(l, m, slowest)) << l;
    EXPECT_EQ(m[1], "1") << l;
    EXPECT_GT(std::stoi(m[2]), 50) << l;
  }
}

}  // namespace
}  // namespace anvil
