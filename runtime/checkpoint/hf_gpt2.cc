#include "runtime/checkpoint/hf_gpt2.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/safetensors.h"

namespace anvil::ckpt {
namespace {

constexpr char kPrefix[] = "transformer.";

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

std::vector<int64_t> HfShape(const std::string& name, std::vector<int64_t> shape) {
  if (IsHfConv1DWeight(name) && shape.size() == 2) std::swap(shape[0], shape[1]);
  return shape;
}

}  // namespace

bool IsHfConv1DWeight(const std::string& name) {
  for (const char* s :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    if (absl::EndsWith(name, s)) return true;
  }
  return false;
}

absl::StatusOr<ExportStats> ExportHfGpt2(const std::string& checkpoint_path,
                                         const proto::CheckpointManifest& m,
                                         const std::string& out_path) {
  std::vector<const proto::TensorEntry*> params;
  const proto::TensorEntry* wte = nullptr;
  for (const proto::TensorEntry& t : m.tensors()) {
    if (t.kind() != proto::STATE_KIND_PARAM) continue;
    params.push_back(&t);
    if (t.name() == "wte.weight") wte = &t;
  }
  if (wte == nullptr) return absl::FailedPreconditionError("the checkpoint has no wte.weight");
  std::vector<SafetensorsTensor> decl;
  std::vector<const proto::TensorEntry*> sources;
  for (const proto::TensorEntry* t : params) {
    decl.push_back({absl::StrCat(kPrefix, t->name()), "F32",
                    HfShape(t->name(), {t->shape().begin(), t->shape().end()})});
    sources.push_back(t);
  }
  decl.push_back({"lm_head.weight", "F32", {wte->shape().begin(), wte->shape().end()}});
  sources.push_back(wte);

  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"anvil_step", absl::StrCat(m.step())}, {"anvil_layout", "hf_gpt2"}};
  ASSIGN_OR_RETURN(SafetensorsWriter w, SafetensorsWriter::Create(out_path, decl, meta));
  ExportStats stats;
  std::vector<float> buf, tbuf;
  for (const proto::TensorEntry* t : sources) {
    uint64_t n = 1;
    for (int64_t d : t->shape()) n *= static_cast<uint64_t>(d);
    buf.resize(n);
    RETURN_IF_ERROR(ReadTensorRange(checkpoint_path, m, *t, 0, n, buf.data()));
    const float* out = buf.data();
    if (IsHfConv1DWeight(t->name()) && t->shape_size() == 2) {
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

std::string HfGpt2ConfigJson(const proto::ModelConfig& c) {
  return absl::StrCat(
      "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n",
      "  \"vocab_size\": ", c.vocab_size(), ",\n  \"n_positions\": ", c.max_seq_len(),
      ",\n  \"n_embd\": ", c.n_embd(), ",\n  \"n_layer\": ", c.n_layer(),
      ",\n  \"n_head\": ", c.n_head(),
      ",\n  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n"
      "  \"layer_norm_epsilon\": 1e-05,\n  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n"
      "  \"attn_pdrop\": 0.0,\n  \"tie_word_embeddings\": true,\n  \"torch_dtype\": "
      "\"float32\"\n}\n");
}

absl::StatusOr<ImportReport> ImportHfGpt2(const std::string& path, const ParamLayout& layout) {
  ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensorsHeader(path));
  ImportReport rep;
  rep.params.assign(layout.total_numel(), 0.0f);
  std::map<std::string, bool> used;
  for (const SafetensorsTensor& t : f.tensors) used[t.name] = false;
  std::vector<float> buf;
  for (const ParamInfo& p : layout.params()) {
    const SafetensorsTensor* t = f.Find(kPrefix + p.name);
    if (t == nullptr) t = f.Find(p.name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat(path, " has no tensor ", kPrefix, p.name));
    }
    used[t->name] = true;
    const std::vector<int64_t> want = HfShape(p.name, p.shape);
    if (t->shape != want) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": tensor ", t->name, " has shape [", absl::StrJoin(t->shape, ","),
                       "], this model needs [", absl::StrJoin(want, ","),
                       "] (check --n_layer/--n_embd/--vocab_size/--max_seq_len)"));
    }
    float* dst = rep.params.data() + p.offset;
    if (IsHfConv1DWeight(p.name) && want.size() == 2) {
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
