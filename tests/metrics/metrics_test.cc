// runtime/metrics/ without a trainer: CRC-32C against its catalogue check
// values, TFRecord framing read back by the C++ reader (and a flipped byte
// in either CRC or the data reported as DataLoss), the TensorBoard event
// file (first record the file version, then one Event per step with its
// scalars), the JSONL line, the ETA text and the straggler detector's
// spread and persistence rule.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/metrics/crc32c.h"
#include "runtime/metrics/event_writer.h"
#include "runtime/metrics/jsonl_writer.h"
#include "runtime/metrics/progress.h"
#include "runtime/metrics/straggler.h"
#include "runtime/metrics/tfrecord.h"

namespace anvil::metrics {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("anvil_metrics_" + std::to_string(getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> ReadAll(const std::string& path, absl::Status* error) {
  std::vector<std::string> records;
  auto reader = TfRecordReader::Open(path);
  if (!reader.ok()) {
    *error = reader.status();
    return records;
  }
  while (true) {
    absl::StatusOr<std::optional<std::string>> r = (*reader)->Next();
    if (!r.ok()) {
      *error = r.status();
      return records;
    }
    if (!r->has_value()) return records;
    records.push_back(**r);
  }
}

std::string FileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

TEST(Crc32cTest, CatalogueCheckValuesAndPieces) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("56789", Crc32c("1234")), Crc32c("123456789"));
  for (uint32_t c : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu}) EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(c)), c);
  EXPECT_NE(MaskCrc32c(0xE3069283u), 0xE3069283u);
}

TEST(TfRecordTest, FrameLayoutIsLengthCrcDataCrc) {
  const std::string f = FrameTfRecord("abc");
  ASSERT_EQ(f.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(f.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  uint32_t len_crc = 0, data_crc = 0;
  for (int i = 0; i < 4; ++i) {
    len_crc |= static_cast<uint32_t>(static_cast<unsigned char>(f[8 + i])) << (8 * i);
    data_crc |= static_cast<uint32_t>(static_cast<unsigned char>(f[15 + i])) << (8 * i);
  }
  EXPECT_EQ(len_crc, MaskCrc32c(Crc32c(f.data(), 8, 0)));
  EXPECT_EQ(f.substr(12, 3), "abc");
  EXPECT_EQ(data_crc, MaskCrc32c(Crc32c("abc")));
}

TEST(TfRecordTest, WritesAndReadsBackAndDetectsEveryCorruption) {
  TempDir dir;
  const std::string path = (dir.path() / "r.tfrecord").string();
  const std::vector<std::string> want = {"first", std::string(1000, 'x'), "", "last"};
  {
    auto w = TfRecordWriter::Create(path);
    ASSERT_TRUE(w.ok()) << w.status();
    for (const std::string& r : want) ASSERT_TRUE((*w)->Write(r).ok());
  }
  EXPECT_TRUE(absl::IsAlreadyExists(TfRecordWriter::Create(path).status()));
  absl::Status error;
  EXPECT_EQ(ReadAll(path, &error), want);
  EXPECT_TRUE(error.ok()) << error;

  const std::string good = FileBytes(path);
  // Byte offsets in the second record (the first is 16 + 5 bytes long).
  const size_t second = 21;
  struct Case {
    size_t offset;
    const char* why;
  } cases[] = {{second + 0, "length CRC mismatch"},   // its length
               {second + 9, "length CRC mismatch"},   // its length's CRC
               {second + 12 + 500, "data CRC mismatch"},  // its data
               {second + 12 + 1000 + 2, "data CRC mismatch"}};  // its data's CRC
  for (const Case& c : cases) {
    std::string bad = good;
    bad[c.offset] ^= 0x20;
    WriteBytes(path, bad);
    absl::Status e;
    const std::vector<std::string> got = ReadAll(path, &e);
    EXPECT_TRUE(absl::IsDataLoss(e)) << c.offset << ": " << e;
    EXPECT_NE(e.message().find(c.why), std::string::npos) << e;
    EXPECT_NE(e.message().find("offset 21"), std::string::npos) << e;
    EXPECT_EQ(got, std::vector<std::string>{"first"});  // nothing after the damage
  }
  WriteBytes(path, good.substr(0, good.size() - 3));
  absl::Status e;
  EXPECT_EQ(ReadAll(path, &e).size(), 3u);
  EXPECT_TRUE(absl::IsDataLoss(e)) << e;
}

TEST(EventFileTest, FileVersionFirstThenOneEventPerStep) {
  TempDir dir;
  const fs::path logdir = dir.path() / "tb" / "run1";  // created, parents too
  std::string path;
  {
    auto w = EventFileWriter::Create(logdir.string());
    ASSERT_TRUE(w.ok()) << w.status();
    path = (*w)->path();
    for (int step = 1; step <= 3; ++step) {
      StepRecord r;
      r.step = step;
      r.wall_time = 1.7e9 + step;
      r.scalars = {{"train/loss", 5.0 - step}, {"train/lr", 1e-3}};
      if (step == 3) r.scalars.push_back({"eval/loss", 2.5});
      ASSERT_TRUE((*w)->Write(r).ok());
    }
    ASSERT_TRUE((*w)->WriteImage(3, 1.7e9 + 3, "samples", "\x89PNG", 2, 3, 1).ok());
  }
  const std::string name = fs::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(fs::path(path).parent_path(), logdir);
  absl::Status error;
  const std::vector<std::string> records = ReadAll(path, &error);
  ASSERT_TRUE(error.ok()) << error;
  ASSERT_EQ(records.size(), 5u);
  proto::tb::Event e;
  ASSERT_TRUE(e.ParseFromString(records[0]));
  EXPECT_EQ(e.file_version(), "brain.Event:2");
  EXPECT_GT(e.wall_time(), 1.7e9);
  for (int step = 1; step <= 3; ++step) {
    ASSERT_TRUE(e.ParseFromString(records[step]));
    EXPECT_EQ(e.step(), step);
    EXPECT_DOUBLE_EQ(e.wall_time(), 1.7e9 + step);
    ASSERT_EQ(e.summary().value_size(), step == 3 ? 3 : 2);
    EXPECT_EQ(e.summary().value(0).tag(), "train/loss");
    EXPECT_FLOAT_EQ(e.summary().value(0).simple_value(), 5.0f - step);
    EXPECT_FLOAT_EQ(e.summary().value(1).simple_value(), 1e-3f);
  }
  ASSERT_TRUE(e.ParseFromString(records[4]));
  EXPECT_EQ(e.summary().value(0).image().width(), 3);
  EXPECT_EQ(e.summary().value(0).image().encoded_image_string(), "\x89PNG");

  // A second writer in the same directory: its own file, the first intact.
  auto again = EventFileWriter::Create(logdir.string());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE((*again)->path(), path);
  EXPECT_EQ(ReadAll(path, &error).size(), 5u);
}

TEST(EventFileTest, UnusableDirectoryIsOneClearError) {
  TempDir dir;
  WriteBytes((dir.path() / "file").string(), "x");
  auto w = EventFileWriter::Create((dir.path() / "file" / "sub").string());
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("--tensorboard_dir"), std::string::npos) << w.status();
}

TEST(JsonlTest, OneObjectPerLineKeysFromTagsNonFiniteAsNull) {
  StepRecord r;
  r.step = 7;
  r.wall_time = 1765000000.25;
  r.scalars = {{"train/loss", 2.5}, {"train/tokens_per_s", 1234.5}, {"eval/loss", 2.25},
               {"train/grad_norm", std::nan("")}};
  EXPECT_EQ(JsonLine(r),
            "{\"step\":7,\"time\":1765000000.250,\"loss\":2.5,\"tokens_per_s\":1234.5,"
            "\"eval_loss\":2.25,\"grad_norm\":null}");
  TempDir dir;
  const std::string path = (dir.path() / "sub" / "m.jsonl").string();
  for (int i = 0; i < 2; ++i) {  // a restart appends
    auto w = JsonlWriter::Open(path);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Write(r).ok());
  }
  EXPECT_EQ(FileBytes(path), JsonLine(r) + "\n" + JsonLine(r) + "\n");
}

TEST(ProgressTest, DurationText) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(44.6), "45s");
  EXPECT_EQ(FormatDuration(192), "3m12s");
  EXPECT_EQ(FormatDuration(3600 + 5 * 60 + 20), "1h05m");
  EXPECT_EQ(FormatDuration(3 * 86400 + 4 * 3600 + 59), "3d04h");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(std::nan("")), "?");
}

TEST(ProgressTest, EtaFromSmoothedStepTimeIgnoringTheFirstStep) {
  Progress p(2000);
  EXPECT_EQ(p.EtaText(), "eta ?");
  p.Add(1, 30.0);  // set-up: used only until step 2
  EXPECT_DOUBLE_EQ(p.eta_s(), 1999 * 30.0);
  p.Add(2, 0.1);
  EXPECT_DOUBLE_EQ(p.smoothed_step_s(), 0.1);
  for (int s = 3; s <= 120; ++s) p.Add(s, 0.1);
  EXPECT_EQ(p.percent(), 6);
  EXPECT_NEAR(p.eta_s(), 1880 * 0.1, 1e-6);
  EXPECT_EQ(p.EtaText(), "eta 3m08s");
  p.Add(121, 1.1);  // one slow step (an evaluation) moves the estimate by kAlpha of it
  EXPECT_NEAR(p.smoothed_step_s(), 0.1 + Progress::kAlpha * 1.0, 1e-9);
  p.Add(2000, 0.1);
  EXPECT_EQ(p.percent(), 100);
  EXPECT_EQ(p.eta_s(), 0);
}

TEST(StragglerTest, SpreadIsSlowestAgainstTheMedianOfTheOthers) {
  StragglerDetector d(4, 1.5, 3);
  EXPECT_EQ(d.spread().slowest, -1);
  d.Add({10, 12, 11, 13});
  Spread s = d.spread();
  EXPECT_EQ(s.slowest, 3);
  EXPECT_NEAR(s.lag, 13.0 / 11.0 - 1, 1e-6);  // median of 10, 12, 11
  EXPECT_TRUE(d.newly_slow().empty());
  StragglerDetector one(1, 1.5, 3);
  one.Add({5});
  EXPECT_EQ(one.spread().slowest, -1);
}

TEST(StragglerTest, PersistentlySlowRankReportedOnceAfterAFullWindow) {
  StragglerDetector d(2, 1.5, 4);
  std::vector<int> reported_at;
  auto add = [&](int step, float r0, float r1) {
    d.Add({r0, r1});
    for (const SlowRank& s : d.newly_slow()) {
      EXPECT_EQ(s.rank, 1);
      reported_at.push_back(step);
    }
  };
  add(1, 10, 30);
  add(2, 10, 30);
  add(3, 10, 30);
  EXPECT_TRUE(reported_at.empty());  // the window is not full yet
  add(4, 10, 30);
  EXPECT_EQ(reported_at, std::vector<int>{4});
  EXPECT_NEAR(d.spread().lag, 2.0, 1e-6);
  for (int s = 5; s <= 10; ++s) add(s, 10, 30);
  EXPECT_EQ(reported_at.size(), 1u);  // still slow: not repeated
  // One slow step among fast ones is not persistent.
  for (int s = 11; s <= 14; ++s) add(s, 10, 10);
  add(15, 10, 25);  // window mean 13.75 vs 10: under the factor
  EXPECT_EQ(reported_at.size(), 1u);
  // Slow again for a whole window after recovering: reported again.
  for (int s = 16; s <= 19; ++s) add(s, 10, 20);
  EXPECT_EQ(reported_at.size(), 2u);
  EXPECT_GE(reported_at.back(), 16);
}

}  // namespace
}  // namespace anvil::metrics
