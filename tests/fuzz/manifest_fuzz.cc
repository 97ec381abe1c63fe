// Fuzzes the checkpoint manifest reader and what trusts it afterwards. The
// first byte picks the mode: odd, the rest is manifest.pb as it lies on disk
// (so framing, length and checksum checks are fuzzed); even, the rest is the
// serialized manifest, framed with a correct header and xxh3 (so the
// structural validation behind them is reached). A manifest that is accepted
// is then used as the loader uses it: its data files are created (when small),
// verified, and every tensor's first elements read through its slices.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "tests/fuzz/fuzz_util.h"
#include "xxhash.h"

namespace {

std::string Frame(const std::string& payload) {
  std::string out = "ANVMANI1";
  const uint64_t fields[2] = {payload.size(), XXH3_64bits(payload.data(), payload.size())};
  for (uint64_t v : fields) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return out + payload;
}

anvil::proto::CheckpointManifest SeedManifest() {
  anvil::proto::CheckpointManifest m;
  m.set_format_version(anvil::ckpt::kFormatVersion);
  m.set_step(3);
  m.set_world_size(2);
  m.set_sharding("FULL_SHARD");
  for (int r = 0; r < 2; ++r) {
    anvil::proto::ShardFile* f = m.add_files();
    f->set_name("rank" + std::to_string(r) + ".bin");
    f->set_bytes(48);
    f->set_rank(r);
  }
  for (const char* state : {"params", "adam_m"}) {
    anvil::proto::TensorEntry* t = m.add_tensors();
    t->set_name("w");
    t->set_state(state);
    t->set_dtype("F32");
    t->add_shape(2);
    t->add_shape(3);
    const int base = std::string(state) == "params" ? 0 : 24;
    for (int r = 0; r < 2; ++r) {
      anvil::proto::TensorSlice* s = t->add_slices();
      s->set_file(r);
      s->set_file_offset(base / 2);
      s->set_begin(3 * r);
      s->set_count(3);
    }
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = anvil::fuzz::SeedDir();
  if (seeds.empty()) return 0;
  const std::string payload = SeedManifest().SerializeAsString();
  anvil::fuzz::WriteSeed(seeds, "framed", std::string(1, '\0') + payload);
  anvil::fuzz::WriteSeed(seeds, "raw", std::string(1, '\1') + Frame(payload));
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string dir = anvil::fuzz::ScratchDir() + "/ckpt";
  (void)anvil::ckpt::RemoveTree(dir);
  if (!anvil::ckpt::MakeDirs(dir).ok()) std::abort();
  anvil::fuzz::WriteBytes(dir + "/manifest.pb", (data[0] & 1) ? rest : Frame(rest));
  absl::StatusOr<anvil::proto::CheckpointManifest> m = anvil::ckpt::ReadManifest(dir);
  if (!m.ok()) return 0;
  for (const anvil::proto::ShardFile& f : m->files()) {
    if (f.bytes() > (1u << 20)) continue;
    // The names come from the manifest: they must stay inside the folder.
    if (f.name().empty() || f.name().find('/') != std::string::npos || f.name() == "." ||
        f.name() == "..") {
      std::abort();
    }
    anvil::fuzz::WriteBytes(anvil::ckpt::JoinPath(dir, f.name()), std::string(f.bytes(), 'x'));
  }
  (void)anvil::ckpt::VerifyFiles(dir, *m);
  std::vector<float> buf(64);
  for (const anvil::proto::TensorEntry& t : m->tensors()) {
    (void)anvil::ckpt::ReadTensorRange(dir, *m, t, 0, buf.size(), buf.data());
  }
  return 0;
}
