// IDX and ImageFolder readers: good files generated here read back exactly;
// every kind of bad input is one line naming the file and what is wrong.
#include <png.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/data/data_source.h"
#include "runtime/data/idx_reader.h"
#include "runtime/data/image_data_config.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/png_io.h"
#include "tests/data/image_test_util.h"

namespace anvil {
namespace {

using testing::ExpectOneLineNaming;
using testing::TestPixel;

class IdxTest : public testing::TempDirTest {
 protected:
  // n images of rows x cols and labels i % 7; returns {images, labels} paths.
  std::pair<std::string, std::string> WriteSet(const std::string& stem, uint32_t n, uint32_t rows,
                                               uint32_t cols, bool gzip) {
    std::vector<uint8_t> px;
    for (uint32_t i = 0; i < n; ++i)
      for (uint32_t y = 0; y < rows; ++y)
        for (uint32_t x = 0; x < cols; ++x) px.push_back(TestPixel(i, y, x, 0));
    std::vector<uint8_t> lb;
    for (uint32_t i = 0; i < n; ++i) lb.push_back(static_cast<uint8_t>(i % 7));
    const std::string ext = gzip ? ".gz" : "";
    const std::string ip = Path(stem + "-images" + ext), lp = Path(stem + "-labels" + ext);
    EXPECT_TRUE(WriteIdx(ip, {n, rows, cols}, px, gzip).ok());
    EXPECT_TRUE(WriteIdx(lp, {n}, lb, gzip).ok());
    return {ip, lp};
  }
};

TEST_F(IdxTest, RawAndGzipReadBack) {
  for (bool gz : {false, true}) {
    auto [ip, lp] = WriteSet(gz ? "z" : "r", 9, 3, 5, gz);
    absl::StatusOr<ImageDataset> ds = ReadIdx(ip, lp);
    ASSERT_TRUE(ds.ok()) << ds.status();
    EXPECT_EQ(ds->count, 9);
    EXPECT_EQ(ds->height, 3);
    EXPECT_EQ(ds->width, 5);
    EXPECT_EQ(ds->channels, 1);
    EXPECT_EQ(ds->num_classes, 7);
    EXPECT_EQ(ds->labels[8], 1);
    EXPECT_EQ(ds->image(4)[2 * 5 + 3], TestPixel(4, 2, 3, 0));
    absl::StatusOr<ImageDataset> unl = ReadIdx(ip, "");
    ASSERT_TRUE(unl.ok());
    EXPECT_FALSE(unl->labelled());
  }
  // The .gz file really is gzip (magic 1f 8b), the raw one is not.
  EXPECT_EQ(ReadBytes(Path("z-images.gz"))[0], 0x1f);
  EXPECT_EQ(ReadBytes(Path("z-images.gz"))[1], 0x8b);
  EXPECT_EQ(ReadBytes(Path("r-images"))[2], 0x08);
}

TEST_F(IdxTest, WrongMagic) {
  auto [ip, lp] = WriteSet("a", 4, 2, 2, false);
  absl::StatusOr<ImageDataset> swapped = ReadIdx(lp, ip);
  ASSERT_FALSE(swapped.ok());
  ExpectOneLineNaming(std::string(swapped.status().message()), lp, "wrong magic 0x00000801");
  WriteBytes(Path("junk"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'});
  absl::StatusOr<ImageDataset> junk = ReadIdx(Path("junk"), "");
  ASSERT_FALSE(junk.ok());
  ExpectOneLineNaming(std::string(junk.status().message()), Path("junk"), "wrong magic");
  absl::StatusOr<ImageDataset> bad_labels = ReadIdx(ip, ip);
  ASSERT_FALSE(bad_labels.ok());
  ExpectOneLineNaming(std::string(bad_labels.status().message()), ip, "image file");
}

TEST_F(IdxTest, TruncatedAndOversized) {
  auto [ip, lp] = WriteSet("a", 4, 2, 2, false);
  std::vector<uint8_t> bytes = ReadBytes(ip);
  WriteBytes(Path("short"), std::vector<uint8_t>(bytes.begin(), bytes.end() - 3));
  absl::StatusOr<ImageDataset> s = ReadIdx(Path("short"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("short"), "truncated");
  WriteBytes(Path("header"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 9));
  s = ReadIdx(Path("header"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("header"), "truncated header");
  bytes.push_back(0);
  WriteBytes(Path("long"), bytes);
  s = ReadIdx(Path("long"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("long"), "1 bytes after");
  // A gzip stream cut in the middle.
  auto [gi, gl] = WriteSet("g", 50, 8, 8, true);
  std::vector<uint8_t> gz = ReadBytes(gi);
  WriteBytes(Path("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + gz.size() / 2));
  s = ReadIdx(Path("cut.gz"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("cut.gz"), "truncated");
  // A damaged gzip stream (bytes flipped inside the deflate data).
  for (size_t i = gz.size() / 3; i < gz.size() / 3 + 8; ++i) gz[i] ^= 0x5a;
  WriteBytes(Path("bad.gz"), gz);
  s = ReadIdx(Path("bad.gz"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("bad.gz"), "gzip");
  s = ReadIdx(Path("missing"), "");
  ASSERT_FALSE(s.ok());
  ExpectOneLineNaming(std::string(s.status().message()), Path("missing"), "no such file");
}

TEST_F(IdxTest, CountMismatch) {
  auto [ip, lp] = WriteSet("a", 5, 2, 2, false);
  auto [ip2, lp2] = WriteSet("b", 6, 2, 2, true);
  absl::StatusOr<ImageDataset> s = ReadIdx(ip, lp2);
  ASSERT_FALSE(s.ok());
  const std::string m(s.status().message());
  ExpectOneLineNaming(m, lp2, "holds 6 labels");
  EXPECT_NE(m.find(ip), std::string::npos) << m;
  EXPECT_NE(m.find("5 images"), std::string::npos) << m;
}

// The default data set, when Debian's dataset-fashion-mnist is installed.
TEST(FashionMnist, DefaultDataSetLoads) {
  proto::DataConfig d;
  if (!std::filesystem::exists(std::string(kDefaultImageDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  EXPECT_TRUE(HasImageValData(d));
  absl::StatusOr<ImageDataset> train = LoadImageData(d, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->count, 60000);
  EXPECT_EQ(train->height, 28);
  EXPECT_EQ(train->width, 28);
  EXPECT_EQ(train->num_classes, 10);
  absl::StatusOr<ImageDataset> val = LoadImageData(d, Split::kVal);
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_EQ(val->count, 10000);
  std::vector<int> per_class(10);
  for (int32_t l : train->labels) ++per_class[l];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 6000);

  // No data flags: the diffusion source trains on it, padded to 32x32.
  proto::TrainConfig config;
  config.mutable_data()->set_batch_size(64);
  config.mutable_data()->set_image_pad(32);
  DataSourceOptions o;
  o.rank = 1;
  o.world_size = 2;
  absl::StatusOr<std::unique_ptr<DataSource>> src = OpenDataSource(DataKind::kDiffusion, config, o);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->batches_per_epoch(), 468u);  // 60000 / 128
  Batch b;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*src)->Next(&b).ok());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("diffusion batches of 64 at 32x32: %.0f images/s on one thread\n", 6400 / s);
  absl::StatusOr<BatchTensor> x = b.Get("x_t", DType::kF32, 4);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->shape, (std::vector<int64_t>{64, 32, 32, 1}));
  absl::StatusOr<BatchTensor> l = b.Get("labels", DType::kI32, 1);
  ASSERT_TRUE(l.ok());
  for (int i = 0; i < 64; ++i) {
    const int32_t v = static_cast<const int32_t*>(l->data)[i];
    EXPECT_TRUE(v >= 0 && v <= 10) << v;  // 10 = the null class
  }
}

class FolderTest : public testing::TempDirTest {
 protected:
  // Writes an image of h x w x c with TestPixel(i, ...) values.
  void Png(const std::string& rel, int i, int h, int w, int c) {
    std::filesystem::create_directories(std::filesystem::path(Path(rel)).parent_path());
    std::vector<uint8_t> px;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < c; ++k) px.push_back(TestPixel(i, y, x, k));
    ASSERT_TRUE(WritePng(Path(rel), h, w, c, px.data()).ok());
  }
  std::string Error(const std::string& root) {
    absl::StatusOr<ImageDataset> ds = ReadImageFolder(root);
    EXPECT_FALSE(ds.ok());
    return ds.ok() ? "" : std::string(ds.status().message());
  }
};

TEST_F(FolderTest, ClassesSortedGrayAndRgb) {
  Png("g/zebra/1.png", 0, 4, 6, 1);
  Png("g/ant/b.png", 1, 4, 6, 1);
  Png("g/ant/a.png", 2, 4, 6, 1);
  WriteBytes(Path("g/README"), {'x'});         // files in root are ignored
  WriteBytes(Path("g/ant/.DS_Store"), {'x'});  // hidden files are skipped
  absl::StatusOr<ImageDataset> ds = ReadImageFolder(Path("g"));
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->count, 3);
  EXPECT_EQ(ds->channels, 1);
  EXPECT_EQ(ds->class_names, (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(ds->labels, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(ds->image(0)[1 * 6 + 2], TestPixel(2, 1, 2, 0));  // ant/a.png first
  EXPECT_EQ(ds->image(2)[3 * 6 + 5], TestPixel(0, 3, 5, 0));

  // One colour image makes the set RGB; gray ones are replicated.
  Png("c/a/gray.png", 3, 2, 2, 1);
  Png("c/b/rgb.png", 4, 2, 2, 3);
  ds = ReadImageFolder(Path("c"));
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->channels, 3);
  EXPECT_EQ(ds->image(0)[3 * 3 + 2], TestPixel(3, 1, 1, 0));
  EXPECT_EQ(ds->image(1)[3 * 3 + 2], TestPixel(4, 1, 1, 2));

  // RGBA through libpng directly: alpha 255 composites to the colour itself.
  std::filesystem::create_directories(Path("r/x"));
  std::vector<uint8_t> rgba = {10, 20, 30, 255, 40, 50, 60, 255};
  png_image im;
  std::memset(&im, 0, sizeof(im));
  im.version = PNG_IMAGE_VERSION;
  im.width = 2;
  im.height = 1;
  im.format = PNG_FORMAT_RGBA;
  ASSERT_TRUE(png_image_write_to_file(&im, Path("r/x/a.png").c_str(), 0, rgba.data(), 0, nullptr));
  ds = ReadImageFolder(Path("r"));
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
}

TEST_F(FolderTest, BadInput) {
  Png("e/a/1.png", 0, 4, 4, 1);
  std::filesystem::create_directories(Path("e/b"));
  ExpectOneLineNaming(Error(Path("e")), Path("e/b"), "no images");

  Png("n/a/1.png", 0, 4, 4, 1);
  WriteBytes(Path("n/a/2.jpg"), {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'});
  ExpectOneLineNaming(Error(Path("n")), Path("n/a/2.jpg"), "not a PNG");

  Png("m/a/1.png", 0, 4, 4, 1);
  Png("m/b/1.png", 0, 4, 5, 1);
  ExpectOneLineNaming(Error(Path("m")), Path("m/b/1.png"), "one size");

  Png("t/a/1.png", 0, 16, 16, 3);
  std::vector<uint8_t> bytes = ReadBytes(Path("t/a/1.png"));
  WriteBytes(Path("t/a/1.png"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 40));
  ExpectOneLineNaming(Error(Path("t")), Path("t/a/1.png"), "damaged PNG");

  Png("d/a/1.png", 0, 4, 4, 1);
  Png("d/a/deeper/2.png", 0, 4, 4, 1);
  ExpectOneLineNaming(Error(Path("d")), Path("d/a/deeper"), "folder inside a class folder");

  std::filesystem::create_directories(Path("empty"));
  ExpectOneLineNaming(Error(Path("empty")), Path("empty"), "no class folders");
  ExpectOneLineNaming(Error(Path("absent")), Path("absent"), "no such folder");
}

TEST_F(FolderTest, PngRoundTrip) {
  std::vector<uint8_t> px(7 * 5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 13);
  ASSERT_TRUE(WritePng(Path("x.png"), 7, 5, 3, px.data()).ok());
  absl::StatusOr<PngImage> im = ReadPng(Path("x.png"));
  ASSERT_TRUE(im.ok()) << im.status();
  EXPECT_EQ(im->height, 7);
  EXPECT_EQ(im->width, 5);
  EXPECT_EQ(im->channels, 3);
  EXPECT_EQ(im->pixels, px);
  EXPECT_FALSE(WritePng(Path("x.png"), 7, 5, 2, px.data()).ok());
}

}  // namespace
}  // namespace anvil
