#include "runtime/checkpoint/hf_interchange.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/safetensors.h"

namespace anvil::ckpt {
namespace {

// (rows, cols) -> (cols, rows)
void Transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t kBlock = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const int64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
}

std::vector<int64_t> HfShape(const HfNaming& naming, const std::string& name,
                             std::vector<int64_t> shape) {
  if (naming.transposed(name) && shape.size() == 2) std::swap(shape[0], shape[1]);
  return shape;
}

}  // namespace

absl::StatusOr<ExportStats> ExportHf(const std::string& checkpoint_path,
                                     const proto::CheckpointManifest& m, const HfNaming& naming,
                                     const std::string& out_path) {
  std::vector<SafetensorsTensor> decl;
  std::vector<const proto::TensorEntry*> sources;
  std::vector<bool> transpose;
  auto find_param = [&m](const std::string& name) -> const proto::TensorEntry* {
    for (const proto::TensorEntry& t : m.tensors()) {
      if (t.kind() == proto::STATE_KIND_PARAM && t.name() == name) return &t;
    }
    return nullptr;
  };
  for (const proto::TensorEntry& t : m.tensors()) {
    if (t.kind() != proto::STATE_KIND_PARAM) continue;
    const bool tr = naming.transposed(t.name()) && t.shape_size() == 2;
    decl.push_back({naming.name(t.name()), "F32",
                    HfShape(naming, t.name(), {t.shape().begin(), t.shape().end()})});
    sources.push_back(&t);
    transpose.push_back(tr);
  }
  for (const auto& [hf_name, layout_name] : naming.tied_copies(m.config().model())) {
    const proto::TensorEntry* t = find_param(layout_name);
    if (t == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("the checkpoint has no ", layout_name, " (for ", hf_name, ")"));
    }
    decl.push_back({hf_name, "F32", {t->shape().begin(), t->shape().end()}});
    sources.push_back(t);
    transpose.push_back(false);
  }

  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"anvil_step", absl::StrCat(m.step())}, {"anvil_model", m.config().model().kind()}};
  ASSIGN_OR_RETURN(SafetensorsWriter w, SafetensorsWriter::Create(out_path, decl, meta));
  ExportStats stats;
  std::vector<float> buf, tbuf;
  for (size_t i = 0; i < sources.size(); ++i) {
    const proto::TensorEntry* t = sources[i];
    uint64_t n = 1;
    for (int64_t d : t->shape()) n *= static_cast<uint64_t>(d);
    buf.resize(n);
    RETURN_IF_ERROR(ReadTensorRange(checkpoint_path, m, *t, 0, n, buf.data()));
    const float* out = buf.data();
    if (transpose[i]) {
      tbuf.resize(n);
      Transpose(buf.data(), t->shape(0), t->shape(1), tbuf.data());
      out = tbuf.data();
    }
    RETURN_IF_ERROR(w.WriteNext(out, n));
    ++stats.tensors;
    stats.bytes += n * 4;
    stats.peak_tensor_bytes =
        std::max<uint64_t>(stats.peak_tensor_bytes, (buf.capacity() + tbuf.capacity()) * 4);
  }
  RETURN_IF_ERROR(w.Finish());
  return stats;
}

absl::StatusOr<ImportReport> ImportHf(const std::string& path_arg, const ParamLayout& layout,
                                      const HfNaming& naming) {
  std::string path = path_arg;
  std::error_code ec;
  if (std::filesystem::is_directory(path_arg, ec)) {
    path = (std::filesystem::path(path_arg) / "model.safetensors").string();
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat(path_arg, " is a folder without model.safetensors"));
    }
  }
  ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensorsHeader(path));
  ImportReport rep;
  rep.file = path;
  rep.params.assign(layout.total_numel(), 0.0f);
  std::map<std::string, bool> used;
  for (const SafetensorsTensor& t : f.tensors) used[t.name] = false;
  std::vector<float> buf;
  for (const ParamInfo& p : layout.params()) {
    const std::string hf_name = naming.name(p.name);
    const SafetensorsTensor* t = f.Find(hf_name);
    if (t == nullptr) t = f.Find(p.name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat(path, " has no tensor ", hf_name));
    }
    used[t->name] = true;
    const std::vector<int64_t> want = HfShape(naming, p.name, p.shape);
    if (t->shape != want) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": tensor ", t->name, " has shape [", absl::StrJoin(t->shape, ","),
                       "], this model needs [", absl::StrJoin(want, ","),
                       "] (check the model flags: --n_layer, --n_embd, --vocab_size, ...)"));
    }
    float* dst = rep.params.data() + p.offset;
    if (naming.transposed(p.name) && want.size() == 2) {
      buf.resize(p.numel);
      RETURN_IF_ERROR(ReadSafetensorsTensor(f, *t, buf.data()));
      Transpose(buf.data(), want[0], want[1], dst);
    } else {
      RETURN_IF_ERROR(ReadSafetensorsTensor(f, *t, dst));
    }
  }
  for (const auto& [name, was_used] : used) {
    if (!was_used) rep.ignored.push_back(name);
  }
  return rep;
}

}  // namespace anvil::ckpt
