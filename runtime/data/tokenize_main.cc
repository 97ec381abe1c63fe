// tokenize: UTF-8 text files -> byte-level (vocab 256) token shards.
//
//   tokenize --out_dir data/licenses --val_fraction 0.1 FILE...
// writes <out_dir>/train_000000.bin ... and <out_dir>/val_000000.bin.
// Each file contributes its first (1 - val_fraction) bytes to train and the
// rest to val, so both splits see every kind of document. Files are joined
// with a blank line. Invalid UTF-8 is an error naming the file and offset.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/command_line.h"
#include "runtime/data/token_shard.h"
#include "runtime/data/utf8.h"

ABSL_FLAG(std::string, out_dir, "data/tokens", "Directory for the shards (created if missing).");
ABSL_FLAG(double, val_fraction, 0.1, "Fraction of each file's bytes that go to the val split.");
ABSL_FLAG(int64_t, shard_tokens, 100'000'000, "Maximum tokens per shard file.");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "tokenize: %s\n", msg.c_str());
  return 2;
}

absl::Status WriteSplit(const std::string& dir, const std::string& split,
                        const std::vector<uint32_t>& tokens, int64_t per_shard) {
  size_t index = 0;
  for (size_t begin = 0; begin < tokens.size() || index == 0; begin += per_shard, ++index) {
    const size_t n = std::min<size_t>(per_shard, tokens.size() - begin);
    const std::string path = absl::StrFormat("%s/%s_%06d.bin", dir, split, index);
    absl::Status s = anvil::WriteTokenShard(
        path, absl::MakeConstSpan(tokens.data() + begin, n));
    if (!s.ok()) return s;
    std::printf("tokenize: wrote %s (%zu tokens)\n", path.c_str(), n);
    if (n == 0) break;
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("tokenize --out_dir DIR [--val_fraction F] FILE...");
  if (auto checked = anvil::CheckCommandLine(argc, argv); !checked.ok()) {
    return Fail(std::string(checked.status().message()));
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return Fail("no input files (usage: tokenize --out_dir DIR FILE...)");
  const double val_fraction = absl::GetFlag(FLAGS_val_fraction);
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    return Fail(absl::StrCat("--val_fraction must be in [0, 1), got ", val_fraction));
  }
  const int64_t per_shard = absl::GetFlag(FLAGS_shard_tokens);
  if (per_shard <= 0) return Fail("--shard_tokens must be > 0");
  std::vector<uint32_t> train, val;
  for (size_t i = 1; i < args.size(); ++i) {
    std::error_code kind_ec;
    if (!std::filesystem::is_regular_file(args[i], kind_ec)) {
      // Reading a directory through an ifstream throws inside libstdc++.
      return Fail(absl::StrCat(args[i], std::filesystem::is_directory(args[i], kind_ec)
                                            ? ": is a directory, not a text file"
                                            : ": cannot open (not a regular file)"));
    }
    std::ifstream in(args[i], std::ios::binary);
    if (!in) return Fail(absl::StrCat(args[i], ": cannot open"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (int64_t bad = anvil::FirstInvalidUtf8(text); bad >= 0) {
      return Fail(absl::StrCat(args[i], ": invalid UTF-8 at byte ", bad));
    }
    text += "\n\n";
    const size_t cut = text.size() - static_cast<size_t>(text.size() * val_fraction);
    for (size_t k = 0; k < text.size(); ++k) {
      (k < cut ? train : val).push_back(static_cast<unsigned char>(text[k]));
    }
  }
  const std::string dir = absl::GetFlag(FLAGS_out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(absl::StrCat(dir, ": cannot create directory: ", ec.message()));
  for (auto [split, tokens] : {std::pair{"train", &train}, std::pair{"val", &val}}) {
    if (absl::Status s = WriteSplit(dir, split, *tokens, per_shard); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  return 0;
}
