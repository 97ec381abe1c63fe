// ImageFolder: a data set laid out as root/<class>/<image>.png (the
// torchvision ImageFolder convention).
//
// Classes are the sub-folders of root sorted by name (label i = i-th name);
// images within a class are read in name order, so the data set is a pure
// function of the folder's contents. Hidden entries (names starting with
// '.') are skipped; other files directly in root are ignored. Every image
// must be a PNG of the same height and width; the set is RGB when any image
// is colour (gray ones are replicated to three channels), else grayscale.
// Errors name the file or folder and what is wrong: a class folder with no
// images, a non-PNG file, a folder inside a class folder, mixed sizes.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/data/image_dataset.h"

namespace anvil {

absl::StatusOr<ImageDataset> ReadImageFolder(const std::string& root);

}  // namespace anvil
