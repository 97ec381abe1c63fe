#include "runtime/checkpoint/shard_slices.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/checkpoint/manifest.h"

namespace anvil::ckpt {
namespace {

// Calls fn(param index, tensor element begin, count, local buffer offset) for
// every real element range of the local buffer [lo, hi) under `shards`.
template <typename Fn>
void ForEachRange(const ParamLayout& layout, const ShardLayout& shards, size_t lo, size_t hi,
                  Fn&& fn) {
  const auto& params = layout.params();
  size_t p = 0;
  for (size_t u = 0; u < shards.units().size(); ++u) {
    const UnitShard& s = shards.units()[u];
    // Local [s.shard_offset, s.shard_offset + (end - begin)) holds unit
    // elements [begin, end); the rest of the shard is padding.
    const size_t local_lo = std::max(lo, s.shard_offset);
    const size_t local_hi = std::min(hi, s.shard_offset + (s.end - s.begin));
    while (p < params.size() && params[p].unit < static_cast<int>(u)) ++p;
    if (local_lo >= local_hi) continue;
    const size_t x0 = s.begin + (local_lo - s.shard_offset);
    const size_t x1 = s.begin + (local_hi - s.shard_offset);
    for (size_t q = p; q < params.size() && params[q].unit == static_cast<int>(u); ++q) {
      const size_t t0 = layout.OffsetInUnit(q);
      const size_t t1 = t0 + params[q].numel;
      const size_t y0 = std::max(x0, t0), y1 = std::min(x1, t1);
      if (y0 >= y1) continue;
      fn(q, y0 - t0, y1 - y0, s.shard_offset + (y0 - s.begin));
    }
  }
}

}  // namespace

Piece WriterPiece(size_t local_numel, int replicas, int replica_rank) {
  const size_t r = static_cast<size_t>(std::max(1, replicas));
  const size_t k = static_cast<size_t>(replica_rank);
  return Piece{k * local_numel / r, (k + 1) * local_numel / r};
}

std::vector<std::string> StateNames(const StateList& state) {
  std::vector<std::string> names;
  for (const StateBuffer& b : state) names.push_back(b.name);
  return names;
}

std::vector<proto::TensorEntry> EmptyEntries(const ParamLayout& layout,
                                             const std::vector<std::string>& states) {
  std::vector<proto::TensorEntry> out;
  out.reserve(layout.params().size() * states.size());
  for (const std::string& state : states) {
    for (const ParamInfo& p : layout.params()) {
      proto::TensorEntry e;
      e.set_name(p.name);
      e.set_kind(LegacyStateKind(state));
      e.set_state(state);
      for (int64_t d : p.shape) e.add_shape(d);
      e.set_dtype("F32");
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::vector<proto::TensorEntry> DescribePiece(const ParamLayout& layout, const ShardLayout& shards,
                                              Piece piece, uint32_t file,
                                              const std::vector<std::string>& states) {
  std::vector<proto::TensorEntry> out = EmptyEntries(layout, states);
  const size_t n = layout.params().size();
  for (size_t k = 0; k < states.size(); ++k) {
    const uint64_t base = static_cast<uint64_t>(k) * piece.size() * 4;
    ForEachRange(layout, shards, piece.begin, piece.end,
                 [&](size_t q, size_t begin, size_t count, size_t local) {
                   proto::TensorSlice* s = out[k * n + q].add_slices();
                   s->set_file(file);
                   s->set_file_offset(base + (local - piece.begin) * 4);
                   s->set_begin(begin);
                   s->set_count(count);
                 });
  }
  return out;
}

absl::Status AddSlices(const std::vector<proto::TensorEntry>& from, uint32_t file,
                       std::vector<proto::TensorEntry>* into) {
  if (from.size() != into->size()) {
    return absl::DataLossError(
        absl::StrCat("a shard record lists ", from.size(), " tensors, expected ", into->size()));
  }
  for (size_t i = 0; i < from.size(); ++i) {
    proto::TensorEntry& dst = (*into)[i];
    if (from[i].name() != dst.name() || EntryStateName(from[i]) != EntryStateName(dst)) {
      return absl::DataLossError(absl::StrCat("shard record tensor ", i, " is ",
                                              EntryStateName(from[i]), " ", from[i].name(),
                                              ", expected ", EntryStateName(dst), " ", dst.name()));
    }
    for (const proto::TensorSlice& s : from[i].slices()) {
      proto::TensorSlice* t = dst.add_slices();
      *t = s;
      t->set_file(file);
    }
    std::sort(dst.mutable_slices()->begin(), dst.mutable_slices()->end(),
              [](const proto::TensorSlice& a, const proto::TensorSlice& b) {
                return a.begin() < b.begin();
              });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReadOp>> PlanShardReads(const proto::CheckpointManifest& m,
                                                   const ParamLayout& layout,
                                                   const ShardLayout& shards,
                                                   const std::string& state) {
  absl::flat_hash_map<std::string, const proto::TensorEntry*> by_name;
  for (const proto::TensorEntry& t : m.tensors()) {
    if (EntryStateName(t) == state) by_name[t.name()] = &t;
  }
  std::vector<const proto::TensorEntry*> entries;
  for (const ParamInfo& p : layout.params()) {
    auto it = by_name.find(p.name);
    if (it == by_name.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the checkpoint has no ", state, " tensor ", p.name));
    }
    std::vector<int64_t> shape(it->second->shape().begin(), it->second->shape().end());
    if (shape != p.shape) {
      return absl::FailedPreconditionError(
          absl::StrCat("tensor ", p.name, " has shape [", absl::StrJoin(shape, ","),
                       "] in the checkpoint, [", absl::StrJoin(p.shape, ","), "] in this model"));
    }
    entries.push_back(it->second);
  }
  std::vector<ReadOp> ops;
  ForEachRange(layout, shards, 0, shards.local_numel(),
               [&](size_t q, size_t begin, size_t count, size_t local) {
                 const size_t end = begin + count;
                 for (const proto::TensorSlice& s : entries[q]->slices()) {
                   const size_t lo = std::max<size_t>(begin, s.begin());
                   const size_t hi = std::min<size_t>(end, s.begin() + s.count());
                   if (lo >= hi) continue;
                   ops.push_back(ReadOp{s.file(), s.file_offset() + (lo - s.begin()) * 4,
                                        local + (lo - begin), hi - lo});
                 }
               });
  // Coalesce: a rank's shard is usually a few long runs of one file.
  std::vector<ReadOp> merged;
  for (const ReadOp& op : ops) {
    if (!merged.empty()) {
      ReadOp& b = merged.back();
      if (b.file == op.file && b.file_offset + b.count * 4 == op.file_offset &&
          b.dst + b.count == op.dst) {
        b.count += op.count;
        continue;
      }
    }
    merged.push_back(op);
  }
  return merged;
}

}  // namespace anvil::ckpt
