#include "runtime/data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "runtime/data/png_io.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

absl::Status Error(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

bool Hidden(const fs::path& p) { return p.filename().string().starts_with("."); }

// Sorted non-hidden entries of `dir`.
absl::StatusOr<std::vector<fs::directory_entry>> List(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Error(dir.string(), absl::StrCat("cannot list: ", ec.message()));
  std::vector<fs::directory_entry> out;
  for (const fs::directory_entry& e : it) {
    if (!Hidden(e.path())) out.push_back(e);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  return out;
}

}  // namespace

absl::StatusOr<ImageDataset> ReadImageFolder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return Error(root, fs::exists(root, ec) ? "not a folder" : "no such folder");
  }
  ASSIGN_OR_RETURN(std::vector<fs::directory_entry> entries, List(root));
  ImageDataset ds;
  ds.source = root;
  std::vector<std::pair<std::string, int32_t>> files;  // path, label
  for (const fs::directory_entry& e : entries) {
    if (!e.is_directory(ec)) continue;
    const int32_t label = static_cast<int32_t>(ds.class_names.size());
    ds.class_names.push_back(e.path().filename().string());
    ASSIGN_OR_RETURN(std::vector<fs::directory_entry> images, List(e.path()));
    size_t found = 0;
    for (const fs::directory_entry& f : images) {
      if (f.is_directory(ec)) {
        return Error(f.path().string(), "a folder inside a class folder (want root/<class>/*.png)");
      }
      files.emplace_back(f.path().string(), label);
      ++found;
    }
    if (found == 0) return Error(e.path().string(), "class folder holds no images");
  }
  if (ds.class_names.empty()) {
    return Error(root, "no class folders (want root/<class>/*.png)");
  }
  // Headers first: sizes and colour are checked before any pixel is decoded.
  bool any_color = false;
  for (size_t i = 0; i < files.size(); ++i) {
    ASSIGN_OR_RETURN(PngImage info, ReadPngInfo(files[i].first));
    if (i == 0) {
      ds.height = info.height;
      ds.width = info.width;
    } else if (info.height != ds.height || info.width != ds.width) {
      return Error(files[i].first, absl::StrCat("image is ", info.width, "x", info.height, " but ",
                                                files[0].first, " is ", ds.width, "x", ds.height,
                                                " (all images must be one size)"));
    }
    if (info.height > 16384 || info.width > 16384) {
      return Error(files[i].first, absl::StrCat("image is ", info.width, "x", info.height,
                                                "; at most 16384x16384 is supported"));
    }
    any_color = any_color || info.channels == 3;
  }
  ds.channels = any_color ? 3 : 1;
  ds.count = static_cast<int64_t>(files.size());
  ds.num_classes = static_cast<int>(ds.class_names.size());
  ds.pixels.resize(static_cast<size_t>(ds.count * ds.sample_bytes()));
  ds.labels.resize(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    ASSIGN_OR_RETURN(PngImage img, ReadPng(files[i].first));
    uint8_t* dst = ds.pixels.data() + i * ds.sample_bytes();
    const size_t hw = static_cast<size_t>(ds.height) * ds.width;
    if (img.channels == ds.channels) {
      std::copy(img.pixels.begin(), img.pixels.end(), dst);
    } else {  // gray into an RGB set
      for (size_t p = 0; p < hw; ++p) dst[3 * p] = dst[3 * p + 1] = dst[3 * p + 2] = img.pixels[p];
    }
    ds.labels[i] = files[i].second;
  }
  return ds;
}

}  // namespace anvil
