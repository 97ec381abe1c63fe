#include "runtime/data/png_io.h"

#include <png.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace anvil {
namespace {

absl::Status Error(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// Checks the 8-byte signature so a JPEG or text file gets a plain message.
absl::Status CheckSignature(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Error(path, absl::StrCat("cannot open: ", std::strerror(errno)));
  unsigned char sig[8] = {};
  const size_t got = std::fread(sig, 1, sizeof(sig), f);
  std::fclose(f);
  if (got < sizeof(sig) || png_sig_cmp(sig, 0, sizeof(sig)) != 0) {
    return Error(path, "not a PNG file (bad signature)");
  }
  return absl::OkStatus();
}

// Begins a read; on success the caller owns `image` and must finish or free it.
absl::StatusOr<PngImage> Begin(const std::string& path, png_image* image) {
  if (absl::Status s = CheckSignature(path); !s.ok()) return s;
  std::memset(image, 0, sizeof(*image));
  image->version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(image, path.c_str())) {
    const std::string msg = image->message;
    png_image_free(image);
    return Error(path, absl::StrCat("damaged PNG: ", msg));
  }
  PngImage out;
  out.height = static_cast<int>(image->height);
  out.width = static_cast<int>(image->width);
  out.channels = (image->format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  return out;
}

}  // namespace

absl::StatusOr<PngImage> ReadPngInfo(const std::string& path) {
  png_image image;
  absl::StatusOr<PngImage> out = Begin(path, &image);
  if (out.ok()) png_image_free(&image);
  return out;
}

absl::StatusOr<PngImage> ReadPng(const std::string& path) {
  png_image image;
  absl::StatusOr<PngImage> out = Begin(path, &image);
  if (!out.ok()) return out;
  image.format = out->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  out->pixels.resize(PNG_IMAGE_SIZE(image));
  png_color black = {0, 0, 0};
  if (!png_image_finish_read(&image, &black, out->pixels.data(), 0, nullptr)) {
    const std::string msg = image.message;
    png_image_free(&image);
    return Error(path, absl::StrCat("damaged PNG: ", msg));
  }
  return out;
}

namespace {

png_image WriteDescriptor(int height, int width, int channels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  return image;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(int height, int width, int channels,
                                      const uint8_t* pixels) {
  if (channels != 1 && channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG encoder takes 1 or 3 channels, got ", channels));
  }
  png_image image = WriteDescriptor(height, width, channels);
  auto failed = [&image] {
    const std::string msg = image.message;
    png_image_free(&image);
    return absl::InternalError(absl::StrCat("cannot encode PNG: ", msg));
  };
  // The first call sizes the buffer, the second fills it.
  png_alloc_size_t bytes = 0;
  if (!png_image_write_to_memory(&image, nullptr, &bytes, 0, pixels, 0, nullptr)) return failed();
  std::string out(bytes, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &bytes, 0, pixels, 0, nullptr)) {
    return failed();
  }
  out.resize(bytes);
  return out;
}

absl::Status WritePng(const std::string& path, int height, int width, int channels,
                      const uint8_t* pixels) {
  if (channels != 1 && channels != 3) {
    return Error(path, absl::StrCat("PNG writer takes 1 or 3 channels, got ", channels));
  }
  png_image image = WriteDescriptor(height, width, channels);
  if (!png_image_write_to_file(&image, path.c_str(), 0, pixels, 0, nullptr)) {
    const std::string msg = image.message;
    png_image_free(&image);
    return Error(path, absl::StrCat("cannot write PNG: ", msg));
  }
  return absl::OkStatus();
}

}  // namespace anvil
