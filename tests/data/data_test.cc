// Token shards and the batch sampler: format checks with clear errors,
// determinism, rank-disjointness, equivalence to one big rank, and restore.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/data/sampler.h"
#include "runtime/data/token_shard.h"
#include "runtime/data/utf8.h"

namespace anvil {
namespace {

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("anvil_data_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string WriteShard(const std::string& name, size_t n, uint32_t mod = 256) {
    std::vector<uint32_t> t(n);
    // Pseudo-random content, so distinct windows have distinct tokens.
    for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>(((i * 2654435761u) >> 7) % mod);
    EXPECT_TRUE(WriteTokenShard(Path(name), t).ok());
    return Path(name);
  }
  std::filesystem::path dir_;
};

TEST_F(DataTest, RoundTripU16AndU32) {
  const std::string p = WriteShard("a.bin", 1000);
  auto s = TokenShard::Open(p, 256);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 1000u);
  EXPECT_EQ((*s)[10], ((10 * 2654435761u) >> 7) % 256);
  EXPECT_EQ(std::filesystem::file_size(p), 1024u + 2 * 1000);
  std::vector<uint32_t> big{1, 70000, 3};
  ASSERT_TRUE(WriteTokenShard(Path("b.bin"), big).ok());
  EXPECT_EQ(std::filesystem::file_size(Path("b.bin")), 1024u + 4 * 3);
  auto b = TokenShard::Open(Path("b.bin"), 100000);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)[1], 70000);
}

TEST_F(DataTest, BadFilesGiveOneClearError) {
  auto missing = TokenShard::Open(Path("nope.bin"), 256);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.bin"), std::string::npos);

  const std::string p = WriteShard("t.bin", 100);
  std::filesystem::resize_file(p, 1024 + 150);  // truncated body
  auto trunc = TokenShard::Open(p, 256);
  ASSERT_FALSE(trunc.ok());
  EXPECT_NE(trunc.status().message().find("truncated"), std::string::npos) << trunc.status();

  std::filesystem::resize_file(p, 100);  // truncated header
  auto hdr = TokenShard::Open(p, 256);
  ASSERT_FALSE(hdr.ok());
  EXPECT_NE(hdr.status().message().find("header"), std::string::npos) << hdr.status();

  const std::string q = WriteShard("m.bin", 10);
  {
    std::fstream f(q, std::ios::in | std::ios::out | std::ios::binary);
    int32_t bad = 12345;
    f.write(reinterpret_cast<const char*>(&bad), 4);
  }
  auto magic = TokenShard::Open(q, 256);
  ASSERT_FALSE(magic.ok());
  EXPECT_NE(magic.status().message().find("magic 12345"), std::string::npos) << magic.status();

  const std::string v = WriteShard("v.bin", 50, 256);
  auto vocab = TokenShard::Open(v, 100);
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.status().message().find(">= vocab size 100"), std::string::npos)
      << vocab.status();

  auto none = OpenShards(Path("zzz_*.bin"), 256);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no token shard"), std::string::npos);
}

std::vector<int32_t> Batches(BatchSampler& s, int steps, int B, int T) {
  std::vector<int32_t> all, in(B * T), tg(B * T);
  for (int i = 0; i < steps; ++i) {
    s.Next(in.data(), tg.data());
    all.insert(all.end(), in.begin(), in.end());
  }
  return all;
}

TEST_F(DataTest, SamplerDeterministicTargetsShiftedAndEpochs) {
  WriteShard("s0.bin", 5000);
  WriteShard("s1.bin", 3001);
  auto shards = OpenShards(Path("s*.bin"), 256);
  ASSERT_TRUE(shards.ok());
  SamplerOptions o{4, 16, 0, 1, 42, true};
  auto a = BatchSampler::Create(&*shards, o);
  auto b = BatchSampler::Create(&*shards, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->num_windows(), 5000 / 16 - (5000 % 16 == 0) + 3000 / 16);
  EXPECT_EQ(Batches(*a, 7, 4, 16), Batches(*b, 7, 4, 16));
  std::vector<int32_t> in(64), tg(64);
  a->Next(in.data(), tg.data());
  for (int i = 0; i + 1 < 16; ++i) EXPECT_EQ(tg[i], in[i + 1]);
  o.seed = 43;
  auto c = BatchSampler::Create(&*shards, o);
  a->Reset();
  EXPECT_NE(Batches(*a, 3, 4, 16), Batches(*c, 3, 4, 16));
  // Running past one epoch moves to epoch 1 with a different order.
  a->Reset();
  const uint64_t steps_per_epoch = a->num_windows() / 4;
  Batches(*a, static_cast<int>(steps_per_epoch) + 1, 4, 16);
  EXPECT_EQ(a->state().epoch, 1u);
}

TEST_F(DataTest, RanksAreDisjointAndConcatenateToOneBigRank) {
  WriteShard("r.bin", 20000);
  auto shards = OpenShards(Path("r.bin"), 256);
  ASSERT_TRUE(shards.ok());
  const int B = 3, T = 8, W = 4;
  auto big = BatchSampler::Create(&*shards, SamplerOptions{B * W, T, 0, 1, 9, true});
  ASSERT_TRUE(big.ok());
  std::vector<BatchSampler> ranks;
  for (int r = 0; r < W; ++r) ranks.push_back(*BatchSampler::Create(&*shards, {B, T, r, W, 9, true}));
  std::vector<int32_t> big_in(B * W * T), big_tg(B * W * T), in(B * T), tg(B * T);
  std::set<std::vector<int32_t>> seen;
  for (int step = 0; step < 5; ++step) {
    big->Next(big_in.data(), big_tg.data());
    for (int r = 0; r < W; ++r) {
      ranks[r].Next(in.data(), tg.data());
      EXPECT_TRUE(std::equal(in.begin(), in.end(), big_in.begin() + r * B * T)) << step << " " << r;
      for (int b = 0; b < B; ++b) {
        EXPECT_TRUE(seen.insert(std::vector<int32_t>(in.begin() + b * T, in.begin() + (b + 1) * T)).second);
      }
    }
  }
}

TEST_F(DataTest, RestoreGivesIdenticalBatches) {
  WriteShard("x.bin", 4000);
  auto shards = OpenShards(Path("x.bin"), 256);
  ASSERT_TRUE(shards.ok());
  SamplerOptions o{2, 10, 1, 2, 77, true};
  auto s = BatchSampler::Create(&*shards, o);
  ASSERT_TRUE(s.ok());
  Batches(*s, 250, 2, 10);  // crosses an epoch boundary (199 windows / 4 per step)
  const SamplerState st = s->state();
  EXPECT_GE(st.epoch, 1u);
  const auto expected = Batches(*s, 30, 2, 10);
  auto fresh = BatchSampler::Create(&*shards, o);
  ASSERT_TRUE(fresh->Restore(st).ok());
  EXPECT_EQ(Batches(*fresh, 30, 2, 10), expected);
  SamplerState wrong = st;
  wrong.seed = 1;
  EXPECT_FALSE(fresh->Restore(wrong).ok());
}

TEST_F(DataTest, TooSmallDataSetIsAnError) {
  WriteShard("tiny.bin", 30);
  auto shards = OpenShards(Path("tiny.bin"), 256);
  ASSERT_TRUE(shards.ok());
  auto s = BatchSampler::Create(&*shards, SamplerOptions{4, 16, 0, 1, 0, true});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("too small"), std::string::npos) << s.status();
}

TEST(Utf8, FindsFirstInvalidByte) {
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), -1);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), -1);
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"), 2);
  EXPECT_EQ(FirstInvalidUtf8("ab\xc3"), 2);          // truncated sequence
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0);        // overlong
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1);   // surrogate
}

}  // namespace
}  // namespace anvil
