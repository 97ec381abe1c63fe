// Fuzzes the image readers. The first byte picks the file the rest is:
// 0, an IDX image file (raw or gzip); 1, an IDX label file read with a valid
// 3-image file; 2, a PNG (header, then pixels). Accepted data must be
// self-consistent: as many pixels as count x height x width x channels,
// labels below num_classes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/data/idx_reader.h"
#include "runtime/data/png_io.h"
#include "tests/common/process.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void CheckDataset(const anvil::ImageDataset& d) {
  if (static_cast<int64_t>(d.pixels.size()) != d.count * d.sample_bytes()) std::abort();
  if (d.channels != 1 && d.channels != 3) std::abort();
  if (d.labelled()) {
    if (static_cast<int64_t>(d.labels.size()) != d.count) std::abort();
    for (int32_t l : d.labels) {
      if (l < 0 || l >= d.num_classes) std::abort();
    }
  }
}

const std::string& ThreeImages() {
  static const std::string path = [] {
    std::string p = anvil::fuzz::ScratchDir() + "/three-images-idx3-ubyte";
    if (!anvil::WriteIdx(p, {3, 2, 2}, std::vector<uint8_t>(12, 7), false).ok()) std::abort();
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = anvil::fuzz::SeedDir();
  if (seeds.empty()) return 0;
  const std::string tmp = anvil::fuzz::ScratchDir() + "/seed";
  std::vector<uint8_t> pixels(2 * 4 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 11);
  for (bool gz : {false, true}) {
    if (!anvil::WriteIdx(tmp, {2, 4, 3}, pixels, gz).ok()) std::abort();
    anvil::fuzz::WriteSeed(seeds, gz ? "images_gz" : "images", std::string(1, '\0') + anvil::testing::ReadFile(tmp));
    if (!anvil::WriteIdx(tmp, {3}, {0, 9, 4}, gz).ok()) std::abort();
    anvil::fuzz::WriteSeed(seeds, gz ? "labels_gz" : "labels", std::string(1, '\1') + anvil::testing::ReadFile(tmp));
  }
  for (int c : {1, 3}) {
    if (!anvil::WritePng(tmp, 2, 4, c, pixels.data()).ok()) std::abort();
    anvil::fuzz::WriteSeed(seeds, "png" + std::to_string(c), std::string(1, '\2') + anvil::testing::ReadFile(tmp));
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string path = anvil::fuzz::ScratchDir() + "/input";
  anvil::fuzz::WriteBytes(path, rest);
  switch (data[0] % 3) {
    case 0: {
      absl::StatusOr<anvil::ImageDataset> d = anvil::ReadIdx(path, "");
      if (d.ok()) CheckDataset(*d);
      break;
    }
    case 1: {
      absl::StatusOr<anvil::ImageDataset> d = anvil::ReadIdx(ThreeImages(), path);
      if (d.ok()) CheckDataset(*d);
      break;
    }
    default: {
      absl::StatusOr<anvil::PngImage> info = anvil::ReadPngInfo(path);
      absl::StatusOr<anvil::PngImage> img = anvil::ReadPng(path);
      if (img.ok()) {
        if (img->channels != 1 && img->channels != 3) std::abort();
        if (img->pixels.size() != static_cast<size_t>(img->height) * img->width * img->channels)
          std::abort();
        if (!info.ok() || info->height != img->height || info->width != img->width) std::abort();
      }
      break;
    }
  }
  return 0;
}
