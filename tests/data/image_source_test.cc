// ImageSampler and ImageSource: deterministic, rank-disjoint, the ranks'
// concatenation equal to one rank's global batch, resume-identical, flips as
// a pure function of (seed, epoch, item); batches of the kImages and
// kDiffusion sources (padding, flip, noise keyed on the global sample).
#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/config/schema.h"
#include "runtime/data/data_source.h"
#include "runtime/data/image_dataset.h"
#include "runtime/data/idx_reader.h"
#include "runtime/data/image_sampler.h"
#include "tests/data/image_test_util.h"

namespace anvil {
namespace {

using testing::TestPixel;

std::vector<ImageDraw> Take(ImageSampler& s, int steps, int batch) {
  std::vector<ImageDraw> out;
  for (int i = 0; i < steps; ++i) {
    std::vector<ImageDraw> d(batch);
    s.Next(d.data());
    out.insert(out.end(), d.begin(), d.end());
  }
  return out;
}

bool Same(const std::vector<ImageDraw>& a, const std::vector<ImageDraw>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].item != b[i].item || a[i].flip != b[i].flip) return false;
  }
  return true;
}

ImageSampler Make(uint64_t n, int batch, int rank, int world, uint64_t seed, bool hflip = true) {
  ImageSamplerOptions o;
  o.batch_size = batch;
  o.rank = rank;
  o.world_size = world;
  o.seed = seed;
  o.hflip = hflip;
  absl::StatusOr<ImageSampler> s = ImageSampler::Create(n, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

TEST(ImageSampler, DeterministicPermutationPerEpoch) {
  ImageSampler a = Make(100, 10, 0, 1, 7), b = Make(100, 10, 0, 1, 7), c = Make(100, 10, 0, 1, 8);
  const std::vector<ImageDraw> da = Take(a, 30, 10), db = Take(b, 30, 10), dc = Take(c, 30, 10);
  EXPECT_TRUE(Same(da, db));
  EXPECT_FALSE(Same(da, dc));
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::set<uint64_t> items;
    for (int i = 0; i < 100; ++i) items.insert(da[epoch * 100 + i].item);
    EXPECT_EQ(items.size(), 100u) << "epoch " << epoch << " is not a permutation";
  }
  // Epochs are shuffled differently, and not in file order.
  std::vector<uint64_t> e0, e1;
  for (int i = 0; i < 100; ++i) {
    e0.push_back(da[i].item);
    e1.push_back(da[100 + i].item);
  }
  EXPECT_NE(e0, e1);
  std::vector<uint64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(e0, sorted);
}

TEST(ImageSampler, RanksDisjointAndConcatenateToOneRank) {
  const int world = 3, B = 4;
  ImageSampler one = Make(50, B * world, 0, 1, 3);
  std::vector<ImageSampler> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(Make(50, B, r, world, 3));
  for (int step = 0; step < 20; ++step) {  // 4 steps per epoch (tail of 2 dropped): crosses epochs
    std::vector<ImageDraw> global(B * world), concat;
    uint64_t g1 = 0;
    one.Next(global.data(), &g1);
    std::set<uint64_t> seen;
    for (int r = 0; r < world; ++r) {
      std::vector<ImageDraw> d(B);
      uint64_t g = 0;
      ranks[r].Next(d.data(), &g);
      EXPECT_EQ(g, g1);
      EXPECT_EQ(g, static_cast<uint64_t>(step));
      for (const ImageDraw& x : d) seen.insert(x.item);
      concat.insert(concat.end(), d.begin(), d.end());
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(B * world)) << "ranks overlap at step " << step;
    EXPECT_TRUE(Same(concat, global)) << "step " << step;
  }
}

TEST(ImageSampler, ResumeGivesIdenticalBatches) {
  ImageSampler full = Make(37, 4, 1, 2, 11);
  const std::vector<ImageDraw> expect = Take(full, 25, 4);
  ImageSampler first = Make(37, 4, 1, 2, 11);
  std::vector<ImageDraw> got = Take(first, 11, 4);
  const ImageSamplerState st = first.state();
  EXPECT_EQ(st.epoch, 2u);  // 4 steps per epoch
  ImageSampler resumed = Make(37, 4, 1, 2, 11);
  ASSERT_TRUE(resumed.Restore(st).ok());
  const std::vector<ImageDraw> rest = Take(resumed, 14, 4);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_TRUE(Same(got, expect));
  EXPECT_FALSE(resumed.Restore({0, 38}).ok());
  resumed.Reset();
  EXPECT_TRUE(
      Same(Take(resumed, 3, 4), std::vector<ImageDraw>(expect.begin(), expect.begin() + 12)));
}

TEST(ImageSampler, FlipIsAFunctionOfSeedEpochItem) {
  ImageSampler s = Make(1000, 100, 0, 1, 5);
  const std::vector<ImageDraw> d = Take(s, 20, 100);  // 2 epochs
  int flips = 0;
  std::vector<int> flip_of(1000, -1);
  for (int i = 0; i < 1000; ++i) {
    flips += d[i].flip;
    flip_of[d[i].item] = d[i].flip;
  }
  EXPECT_NEAR(flips, 500, 60);
  // Rank and batch size do not change an item's flip within an epoch.
  ImageSampler r = Make(1000, 25, 3, 4, 5);
  for (const ImageDraw& x : Take(r, 10, 25)) EXPECT_EQ(x.flip, flip_of[x.item] == 1);
  // The next epoch draws flips anew.
  int same = 0;
  for (int i = 1000; i < 2000; ++i) same += (d[i].flip == (flip_of[d[i].item] == 1));
  EXPECT_LT(same, 600);
  EXPECT_GT(same, 400);
  ImageSampler off = Make(1000, 100, 0, 1, 5, /*hflip=*/false);
  for (const ImageDraw& x : Take(off, 3, 100)) EXPECT_FALSE(x.flip);
}

TEST(ImageSampler, RejectsBadOptions) {
  ImageSamplerOptions o;
  o.batch_size = 8;
  o.world_size = 2;
  EXPECT_FALSE(ImageSampler::Create(15, o).ok());  // one step needs 16
  o.rank = 2;
  EXPECT_FALSE(ImageSampler::Create(100, o).ok());
  o.rank = 0;
  o.batch_size = 0;
  EXPECT_FALSE(ImageSampler::Create(100, o).ok());
}

class SourceTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::vector<uint8_t> px, lb;
    for (uint32_t i = 0; i < kN; ++i) {
      lb.push_back(static_cast<uint8_t>(i % 3));
      for (int y = 0; y < kH; ++y)
        for (int x = 0; x < kW; ++x) px.push_back(TestPixel(i, y, x, 0));
    }
    ASSERT_TRUE(WriteIdx(Path("img.gz"), {kN, kH, kW}, px, true).ok());
    ASSERT_TRUE(WriteIdx(Path("lab"), {kN}, lb, false).ok());
    config_ = DefaultTrainConfig();  // what flags and config files start from
    config_.set_seed(21);
    config_.mutable_data()->set_train_images(Path("img.gz"));
    config_.mutable_data()->set_train_labels(Path("lab"));
    config_.mutable_data()->set_val_images(Path("img.gz"));
    config_.mutable_data()->set_val_labels(Path("lab"));
    config_.mutable_data()->set_batch_size(4);
  }
  std::unique_ptr<DataSource> Open(DataKind kind, int rank = 0, int world = 1,
                                   Split split = Split::kTrain) {
    DataSourceOptions o;
    o.rank = rank;
    o.world_size = world;
    o.split = split;
    absl::StatusOr<std::unique_ptr<DataSource>> s = OpenDataSource(kind, config_, o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static std::vector<float> F32(const Batch& b, const char* name, int rank) {
    absl::StatusOr<BatchTensor> t = b.Get(name, DType::kF32, rank);
    EXPECT_TRUE(t.ok()) << t.status();
    int64_t n = 1;
    for (int64_t d : t->shape) n *= d;
    const float* p = static_cast<const float*>(t->data);
    return std::vector<float>(p, p + n);
  }
  static std::vector<int32_t> I32(const Batch& b, const char* name) {
    absl::StatusOr<BatchTensor> t = b.Get(name, DType::kI32, 1);
    EXPECT_TRUE(t.ok()) << t.status();
    const int32_t* p = static_cast<const int32_t*>(t->data);
    return std::vector<int32_t>(p, p + t->shape[0]);
  }
  static constexpr uint32_t kN = 40;
  static constexpr int kH = 5, kW = 6;
  proto::TrainConfig config_;
};

TEST_F(SourceTest, ImagesBatchPaddedAndFlipped) {
  config_.mutable_data()->set_image_pad(9);
  config_.mutable_data()->set_hflip(true);
  std::unique_ptr<DataSource> s = Open(DataKind::kImages, 0, 1, Split::kVal);  // in order, no flip
  ASSERT_TRUE(s);
  EXPECT_TRUE(HasValidationData(DataKind::kImages, config_));
  EXPECT_EQ(s->batches_per_epoch(), 10u);
  Batch b;
  ASSERT_TRUE(s->Next(&b).ok());
  absl::StatusOr<BatchTensor> t = b.Get("images", DType::kF32, 4);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4, 9, 9, 1}));
  const std::vector<float> img = F32(b, "images", 4);
  EXPECT_EQ(I32(b, "labels"), (std::vector<int32_t>{0, 1, 2, 0}));
  // Image 1, pixel (y=3, x=4) sits at (3+2, 4+1) of the 9x9 canvas; the border is -1.
  EXPECT_FLOAT_EQ(img[81 + 5 * 9 + 5], TestPixel(1, 3, 4, 0) * (2.0f / 255) - 1);
  EXPECT_EQ(img[81 + 0], -1.0f);
  EXPECT_EQ(img[81 + 8 * 9 + 8], -1.0f);
  for (float v : img) ASSERT_TRUE(v >= -1 && v <= 1);

  // Training split with flips: each image is its item mirrored or not.
  std::unique_ptr<DataSource> tr = Open(DataKind::kImages);
  ASSERT_TRUE(tr);
  int flipped = 0;
  for (int step = 0; step < 10; ++step) {
    ASSERT_TRUE(tr->Next(&b).ok());
    const std::vector<float> x = F32(b, "images", 4);
    const std::vector<int32_t> labels = I32(b, "labels");
    for (int i = 0; i < 4; ++i) {
      // Find the item: its (0,0) or mirrored (0,W-1) pixel and the label agree.
      bool found = false;
      for (uint32_t item = 0; item < kN && !found; ++item) {
        if (static_cast<int>(item % 3) != labels[i]) continue;
        for (int flip = 0; flip < 2 && !found; ++flip) {
          bool all = true;
          for (int y = 0; y < kH && all; ++y)
            for (int xx = 0; xx < kW && all; ++xx) {
              const int sx = flip ? kW - 1 - xx : xx;
              all = x[i * 81 + (y + 2) * 9 + xx + 1] == ToUnitRange(TestPixel(item, y, sx, 0));
            }
          if (all) {
            found = true;
            flipped += flip;
          }
        }
      }
      EXPECT_TRUE(found) << "step " << step << " sample " << i;
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);
}

TEST_F(SourceTest, DiffusionBatchIsRankIndependentAndResumable) {
  config_.mutable_diffusion()->set_label_dropout(0.25f);
  std::unique_ptr<DataSource> one = Open(DataKind::kDiffusion);
  config_.mutable_data()->set_batch_size(2);
  std::unique_ptr<DataSource> r0 = Open(DataKind::kDiffusion, 0, 2);
  std::unique_ptr<DataSource> r1 = Open(DataKind::kDiffusion, 1, 2);
  int dropped = 0;
  for (int step = 0; step < 25; ++step) {  // crosses epochs
    Batch b, b0, b1;
    ASSERT_TRUE(one->Next(&b).ok());
    ASSERT_TRUE(r0->Next(&b0).ok());
    ASSERT_TRUE(r1->Next(&b1).ok());
    for (const char* name : {"x_t", "target"}) {
      std::vector<float> cat = F32(b0, name, 4), c1 = F32(b1, name, 4);
      cat.insert(cat.end(), c1.begin(), c1.end());
      EXPECT_EQ(cat, F32(b, name, 4)) << name << " step " << step;
    }
    for (const char* name : {"timesteps", "labels"}) {
      std::vector<int32_t> cat = I32(b0, name), c1 = I32(b1, name);
      cat.insert(cat.end(), c1.begin(), c1.end());
      EXPECT_EQ(cat, I32(b, name)) << name << " step " << step;
    }
    for (int32_t l : I32(b, "labels")) {
      EXPECT_TRUE(l >= 0 && l <= 3);
      dropped += l == 3;  // the null class is num_classes = 3
    }
    for (int32_t t : I32(b, "timesteps")) EXPECT_TRUE(t >= 0 && t < 1000);
  }
  EXPECT_GT(dropped, 10);  // 100 labels at p = 0.25
  EXPECT_LT(dropped, 45);

  // Resume on rank 1: a fresh source restored from the saved state continues identically.
  proto::TrainingState st;
  r1->SaveState(&st);
  EXPECT_EQ(st.train_sampler().epoch(), 2u);  // 40 images: 10 global batches of 4 per epoch
  EXPECT_EQ(st.train_sampler().cursor(), 20u);
  std::unique_ptr<DataSource> again = Open(DataKind::kDiffusion, 1, 2);
  ASSERT_TRUE(again->RestoreState(st).ok());
  for (int step = 0; step < 7; ++step) {
    Batch a, b;
    ASSERT_TRUE(r1->Next(&a).ok());
    ASSERT_TRUE(again->Next(&b).ok());
    EXPECT_EQ(F32(a, "x_t", 4), F32(b, "x_t", 4));
    EXPECT_EQ(F32(a, "target", 4), F32(b, "target", 4));
    EXPECT_EQ(I32(a, "timesteps"), I32(b, "timesteps"));
    EXPECT_EQ(I32(a, "labels"), I32(b, "labels"));
  }
}

TEST_F(SourceTest, DiffusionTargetsAndLabels) {
  // No label dropout: x_t = sqrt(abar) x0 + sqrt(1-abar) target with the data's labels.
  config_.mutable_diffusion()->set_label_dropout(0);
  config_.mutable_diffusion()->set_schedule("cosine");
  config_.mutable_diffusion()->set_timesteps(50);
  std::unique_ptr<DataSource> plain = Open(DataKind::kImages, 0, 1, Split::kVal);
  std::unique_ptr<DataSource> diff = Open(DataKind::kDiffusion, 0, 1, Split::kVal);
  Batch p, d;
  ASSERT_TRUE(plain->Next(&p).ok());
  ASSERT_TRUE(diff->Next(&d).ok());
  EXPECT_EQ(I32(p, "labels"), I32(d, "labels"));
  const std::vector<float> x0 = F32(p, "images", 4), xt = F32(d, "x_t", 4),
                           eps = F32(d, "target", 4);
  const std::vector<int32_t> ts = I32(d, "timesteps");
  const int per = kH * kW;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ts[i] >= 0 && ts[i] < 50);
    const double T = 50, s = 0.008;
    auto f = [&](double t) { return std::pow(std::cos((t / T + s) / (1 + s) * M_PI / 2), 2); };
    const double abar = ts[i] == 49 ? -1 : f(ts[i] + 1) / f(0);  // t = T-1 is clipped
    if (abar < 0) continue;
    for (int j = 0; j < per; ++j) {
      EXPECT_NEAR(xt[i * per + j],
                  std::sqrt(abar) * x0[i * per + j] + std::sqrt(1 - abar) * eps[i * per + j], 1e-5);
    }
  }
  // Validation noise is the same at every evaluation (Reset).
  diff->Reset();
  Batch again;
  ASSERT_TRUE(diff->Next(&again).ok());
  EXPECT_EQ(F32(again, "x_t", 4), xt);

  // Unlabelled data or num_classes = 0: every label is the null class.
  config_.mutable_data()->clear_train_labels();
  std::unique_ptr<DataSource> unl = Open(DataKind::kDiffusion);
  ASSERT_TRUE(unl->Next(&d).ok());
  EXPECT_EQ(I32(d, "labels"), (std::vector<int32_t>{0, 0, 0, 0}));
  config_.mutable_data()->set_train_labels(Path("lab"));
  config_.mutable_diffusion()->set_num_classes(10);
  std::unique_ptr<DataSource> ten = Open(DataKind::kDiffusion, 0, 1, Split::kVal);
  ASSERT_TRUE(ten->Next(&d).ok());
  EXPECT_EQ(I32(d, "labels"), (std::vector<int32_t>{0, 1, 2, 0}));
  config_.mutable_diffusion()->set_label_dropout(1);
  std::unique_ptr<DataSource> all = Open(DataKind::kDiffusion);
  ASSERT_TRUE(all->Next(&d).ok());
  EXPECT_EQ(I32(d, "labels"), (std::vector<int32_t>{10, 10, 10, 10}));
}

TEST_F(SourceTest, BadConfigIsOneLine) {
  DataSourceOptions o;
  auto err = [&](DataKind kind) {
    absl::StatusOr<std::unique_ptr<DataSource>> s = OpenDataSource(kind, config_, o);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : std::string(s.status().message());
  };
  config_.mutable_diffusion()->set_num_classes(2);
  EXPECT_NE(err(DataKind::kDiffusion).find("--num_classes 2"), std::string::npos);
  config_.mutable_diffusion()->set_num_classes(-1);  // the data set's classes
  config_.mutable_diffusion()->set_schedule("quadratic");
  EXPECT_NE(err(DataKind::kDiffusion).find("--schedule"), std::string::npos);
  config_.mutable_diffusion()->clear_schedule();
  config_.mutable_diffusion()->set_prediction("x0");
  EXPECT_NE(err(DataKind::kDiffusion).find("--prediction"), std::string::npos);
  config_.mutable_diffusion()->clear_prediction();
  config_.mutable_data()->set_batch_size(41);
  const std::string small = err(DataKind::kImages);
  EXPECT_NE(small.find(Path("img.gz") + ": data set too small: 40 images"), std::string::npos)
      << small;
  config_.mutable_data()->set_batch_size(4);
  config_.mutable_data()->set_image_pad(4);
  EXPECT_NE(err(DataKind::kImages).find("--image_pad 4"), std::string::npos);
  config_.mutable_data()->clear_image_pad();
  config_.mutable_data()->clear_train_labels();
  EXPECT_NE(err(DataKind::kImages).find("needs labels"), std::string::npos);
  config_.mutable_data()->set_image_root(Path("nope"));
  EXPECT_NE(err(DataKind::kImages).find("pick one"), std::string::npos);
  config_.mutable_data()->clear_train_images();
  EXPECT_NE(err(DataKind::kImages).find(Path("nope")), std::string::npos);
  EXPECT_FALSE(HasValidationData(DataKind::kImages, config_));
  config_.mutable_data()->set_val_image_root(Path("v"));
  EXPECT_TRUE(HasValidationData(DataKind::kImages, config_));
  config_.mutable_data()->set_val_pattern("");
  EXPECT_FALSE(HasValidationData(DataKind::kTokens, config_));
}

}  // namespace
}  // namespace anvil
