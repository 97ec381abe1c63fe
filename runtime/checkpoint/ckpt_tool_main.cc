// ckpt_tool: inspect, verify and export checkpoints written by `train`.
//
//   ckpt_tool list   DIR               every entry and its state (manifest and
//                                      file sizes checked; verify adds checksums)
//   ckpt_tool verify DIR [--step N]    manifest + size + xxh3 of every file
//   ckpt_tool show   DIR [--step N]    manifest summary (config, files, tensors,
//                                      state buffers: params, adam_m, adam_v, ema)
//   ckpt_tool export DIR OUT [--step N]
//       OUT/model.safetensors (HF GPT-2 names, Conv1D layout, lm_head tied)
//       and OUT/config.json: GPT2LMHeadModel.from_pretrained(OUT) loads it;
//       for language models on byte-level tokens also OUT/tokenizer.json and
//       tokenizer_config.json (AutoTokenizer and pipeline() load them).
// Without --step: the newest checkpoint that verifies. Exit codes: 0 ok,
// 1 a checkpoint failed verification or an error, 2 bad usage.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/command_line.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/file_io.h"
#include "models/model_registry.h"
#include "runtime/checkpoint/hf_interchange.h"
#include "runtime/checkpoint/hf_tokenizer.h"
#include "runtime/checkpoint/manifest.h"

ABSL_FLAG(int64_t, step, -1, "Checkpoint step (default: the newest that verifies).");

namespace {

using anvil::ckpt::DirEntry;
using anvil::ckpt::EntryState;

const char* StateName(EntryState s) {
  switch (s) {
    case EntryState::kCommitted:
      return "committed";
    case EntryState::kPartial:
      return "partial (never committed)";
    case EntryState::kDeleting:
      return "being deleted";
    case EntryState::kSetAside:
      return "set aside (failed verification)";
  }
  return "?";
}

// What `list` can tell without hashing: a committed directory whose manifest
// does not read, or whose files are missing or of the wrong size, is not a
// checkpoint anything could resume from. (`verify` adds the checksums.)
std::string Describe(const std::string& dir, const DirEntry& e) {
  if (e.state != EntryState::kCommitted) return StateName(e.state);
  const std::string path = anvil::ckpt::JoinPath(dir, e.name);
  absl::StatusOr<anvil::proto::CheckpointManifest> m = anvil::ckpt::ReadManifest(path);
  if (!m.ok()) return absl::StrCat("INVALID: ", m.status().message());
  for (const auto& f : m->files()) {
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(anvil::ckpt::JoinPath(path, f.name()), ec);
    if (ec) return absl::StrCat("INVALID: ", f.name(), " is missing");
    if (size != f.bytes()) {
      return absl::StrCat("INVALID: ", f.name(), " is ", size, " bytes, the manifest says ",
                          f.bytes());
    }
  }
  return "committed";
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ckpt_tool: %s\n", msg.c_str());
  return 1;
}

absl::Status Verify(const std::string& path, anvil::proto::CheckpointManifest* out) {
  absl::StatusOr<anvil::proto::CheckpointManifest> m = anvil::ckpt::ReadManifest(path);
  if (!m.ok()) return m.status();
  if (absl::Status s = anvil::ckpt::VerifyFiles(path, *m); !s.ok()) return s;
  if (out != nullptr) *out = *std::move(m);
  return absl::OkStatus();
}

// The checkpoint --step names, or the newest that verifies.
absl::StatusOr<std::string> Pick(const std::string& dir, anvil::proto::CheckpointManifest* m) {
  const int64_t want = absl::GetFlag(FLAGS_step);
  for (const DirEntry& e : anvil::ckpt::CommittedCheckpoints(dir)) {
    if (want >= 0 && e.step != want) continue;
    const std::string path = anvil::ckpt::JoinPath(dir, e.name);
    absl::Status s = Verify(path, m);
    if (s.ok()) return path;
    std::fprintf(stderr, "ckpt_tool: skipping %s: %s\n", e.name.c_str(),
                 std::string(s.message()).c_str());
    if (want >= 0) return s;
  }
  return absl::NotFoundError("no checkpoint that verifies in " + dir);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("ckpt_tool list|verify|show|export DIR [OUT] [--step N]");
  if (auto checked = anvil::CheckCommandLine(argc, argv); !checked.ok()) {
    std::fprintf(stderr, "ckpt_tool: %s\n", std::string(checked.status().message()).c_str());
    return 2;
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 3) {
    std::fprintf(stderr, "usage: ckpt_tool list|verify|show|export DIR [OUT] [--step N]\n");
    return 2;
  }
  const std::string cmd = args[1], dir = args[2];
  if (cmd == "list") {
    absl::StatusOr<std::string> latest = anvil::ckpt::ReadLatest(dir);
    for (const DirEntry& e : anvil::ckpt::ListCheckpointDir(dir)) {
      std::printf("%-36s step %8lld  %s%s\n", e.name.c_str(), static_cast<long long>(e.step),
                  Describe(dir, e).c_str(),
                  latest.ok() && *latest == e.name ? "  <- latest" : "");
    }
    return 0;
  }
  if (cmd == "verify") {
    int bad = 0, n = 0;
    for (const DirEntry& e : anvil::ckpt::CommittedCheckpoints(dir)) {
      if (absl::GetFlag(FLAGS_step) >= 0 && e.step != absl::GetFlag(FLAGS_step)) continue;
      ++n;
      absl::Status s = Verify(anvil::ckpt::JoinPath(dir, e.name), nullptr);
      std::printf("%s: %s\n", e.name.c_str(), s.ok() ? "ok" : std::string(s.message()).c_str());
      bad += !s.ok();
    }
    if (n == 0) return Fail("no committed checkpoint in " + dir);
    return bad == 0 ? 0 : 1;
  }
  anvil::proto::CheckpointManifest m;
  absl::StatusOr<std::string> path = Pick(dir, &m);
  if (!path.ok()) return Fail(std::string(path.status().message()));
  if (cmd == "show") {
    std::printf("%s: step %lld, saved by %d rank(s) with %s\n", path->c_str(),
                static_cast<long long>(m.step()), m.world_size(), m.sharding().c_str());
    std::printf("%s", m.config().DebugString().c_str());
    for (const auto& f : m.files()) {
      std::printf("file %s: %llu bytes, xxh3 %016llx, rank %d (shard %d/%d, replica %d/%d)\n",
                  f.name().c_str(), static_cast<unsigned long long>(f.bytes()),
                  static_cast<unsigned long long>(f.xxh3()), f.rank(), f.shard_rank(),
                  f.shard_world(), f.replica_rank(), f.replicas());
    }
    std::printf("%d tensor entries, %llu parameters\n", m.tensors_size(),
                static_cast<unsigned long long>(m.total_numel()));
    // The state buffers, in the order they were saved ("ema": the weights'
    // EMA, which `sample` uses).
    std::vector<std::pair<std::string, int>> states;
    for (const auto& t : m.tensors()) {
      const std::string name = anvil::ckpt::EntryStateName(t);
      auto it = std::find_if(states.begin(), states.end(),
                             [&](const auto& s) { return s.first == name; });
      if (it == states.end()) {
        states.emplace_back(name, 1);
      } else {
        ++it->second;
      }
    }
    std::string line;
    for (const auto& [name, count] : states) {
      absl::StrAppend(&line, line.empty() ? "" : ", ", name, " (", count, " tensors)");
    }
    std::printf("state buffers: %s%s\n", line.c_str(),
                m.config().optim().ema_decay() > 0
                    ? absl::StrFormat("; EMA decay %g", m.config().optim().ema_decay()).c_str()
                    : "");
    return 0;
  }
  if (cmd == "export") {
    if (args.size() < 4) {
      std::fprintf(stderr, "usage: ckpt_tool export DIR OUT [--step N]\n");
      return 2;
    }
    const std::string out = args[3];
    // Checkpoints from before the model registry name no kind: they are GPTs.
    const std::string kind = m.config().model().kind().empty() ? "gpt" : m.config().model().kind();
    auto spec = anvil::FindModel(kind);
    if (!spec.ok()) return Fail(std::string(spec.status().message()));
    if (!(*spec)->hf.has_value()) {
      return Fail("model '" + kind + "' has no Hugging Face naming to export with");
    }
    if (absl::Status s = anvil::ckpt::MakeDirs(out); !s.ok()) return Fail(std::string(s.message()));
    auto stats = anvil::ckpt::ExportHf(*path, m, *(*spec)->hf,
                                       anvil::ckpt::JoinPath(out, "model.safetensors"));
    if (!stats.ok()) return Fail(std::string(stats.status().message()));
    const std::string config_json = (*spec)->hf->config_json(m.config().model());
    absl::Status s =
        anvil::ckpt::WriteFileAtomic(anvil::ckpt::JoinPath(out, "config.json"), config_json);
    if (!s.ok()) return Fail(std::string(s.message()));
    // Language models on byte-level tokens: the tokenizer too, so that
    // pipeline("text-generation", OUT) works.
    const int vocab = m.config().model().vocab_size();
    if ((*spec)->data == anvil::DataKind::kTokens && vocab >= 256) {
      auto tok = anvil::ckpt::ByteLevelTokenizerJson(vocab);
      if (!tok.ok()) return Fail(std::string(tok.status().message()));
      const int eos = anvil::ckpt::JsonIntField(config_json, "eos_token_id", vocab - 1);
      const int bos = anvil::ckpt::JsonIntField(config_json, "bos_token_id", eos);
      for (const auto& [name, text] :
           {std::pair{"tokenizer.json", *tok},
            {"tokenizer_config.json",
             anvil::ckpt::ByteLevelTokenizerConfigJson(vocab, m.config().model().max_seq_len(),
                                                       bos, eos)}}) {
        s = anvil::ckpt::WriteFileAtomic(anvil::ckpt::JoinPath(out, name), text);
        if (!s.ok()) return Fail(std::string(s.message()));
      }
    }
    std::printf("exported %s -> %s/model.safetensors: %d tensors, %.1f MB, at most %.1f MB held\n",
                path->c_str(), out.c_str(), stats->tensors, stats->bytes / 1e6,
                stats->peak_tensor_bytes / 1e6);
    return 0;
  }
  std::fprintf(stderr, "ckpt_tool: unknown command '%s'\n", cmd.c_str());
  return 2;
}
