#include "runtime/checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/checkpoint/file_io.h"

namespace anvil::ckpt {
namespace {

bool ParseEntry(const std::string& name, DirEntry* e) {
  if (!absl::StartsWith(name, "step_")) return false;
  const std::string rest = name.substr(5);
  const size_t dot = rest.find('.');
  const std::string digits = rest.substr(0, dot);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit))
    return false;
  if (!absl::SimpleAtoi(digits, &e->step)) return false;
  e->name = name;
  if (dot == std::string::npos) {
    e->state = EntryState::kCommitted;
  } else {
    const std::string suffix = rest.substr(dot);
    if (suffix == ".tmp") {
      e->state = EntryState::kPartial;
    } else if (suffix == ".deleting") {
      e->state = EntryState::kDeleting;
    } else if (absl::StartsWith(suffix, ".corrupt")) {
      e->state = EntryState::kSetAside;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string StepDirName(int64_t step) { return absl::StrFormat("step_%08d", step); }
std::string TmpDirName(int64_t step) { return StepDirName(step) + ".tmp"; }

std::vector<DirEntry> ListCheckpointDir(const std::string& dir) {
  std::vector<DirEntry> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    DirEntry e;
    if (ParseEntry(it->path().filename().string(), &e)) out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) {
    if (a.step != b.step) return a.step > b.step;
    if (a.state != b.state) return a.state < b.state;
    return a.name < b.name;
  });
  return out;
}

std::vector<DirEntry> CommittedCheckpoints(const std::string& dir) {
  std::vector<DirEntry> all = ListCheckpointDir(dir);
  std::erase_if(all, [](const DirEntry& e) { return e.state != EntryState::kCommitted; });
  return all;
}

absl::Status WriteLatest(const std::string& dir, const std::string& name) {
  return WriteFileAtomic(JoinPath(dir, kLatestName), name + "\n");
}

absl::StatusOr<std::string> ReadLatest(const std::string& dir) {
  absl::StatusOr<std::string> s = ReadSmallFile(JoinPath(dir, kLatestName));
  if (!s.ok()) return s.status();
  return std::string(absl::StripAsciiWhitespace(*s));
}

}  // namespace anvil::ckpt
