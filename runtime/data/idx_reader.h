// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed
// (zlib reads both transparently).
//
// Layout: a big-endian magic 0x00000803 (unsigned bytes, 3 dimensions:
// images) or 0x00000801 (1 dimension: labels), then one big-endian uint32
// per dimension, then the values row-major. Images become a 1-channel
// ImageDataset; labels must number as many as the images. Every error is
// one line naming the file and what is wrong (wrong magic, truncated, extra
// bytes, count mismatch, a damaged gzip stream).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/data/image_dataset.h"

namespace anvil {

// Reads images (and, when labels_path is not empty, their labels).
absl::StatusOr<ImageDataset> ReadIdx(const std::string& images_path,
                                     const std::string& labels_path);

// For tests and conversions: writes an IDX file (gzip when `gzip`).
// dims = {n, rows, cols} for images, {n} for labels.
absl::Status WriteIdx(const std::string& path, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& values, bool gzip);

}  // namespace anvil
