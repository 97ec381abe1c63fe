#include "runtime/sharding/param_gatherer.h"

#include "absl/time/time.h"
#include "common/status_macros.h"

namespace anvil {

struct ParamGatherer::Unit {
  enum State { kSharded, kGathering, kReady };
  State state = kSharded;
  void* gathered = nullptr;  // param dtype, `padded` elements (W > 1)
  void* compute = nullptr;   // what the model reads (its compute dtype): the
                             // gathered buffer itself, or an fp32 copy of it
  std::shared_ptr<CommOp> gather;
};

ParamGatherer::ParamGatherer(ShardingContext* ctx, UnitModel* model, DType param_dtype,
                             int max_inflight, float* master)
    : ctx_(ctx),
      model_(model),
      param_dtype_(param_dtype),
      compute_dtype_(model->compute_dtype()),
      max_inflight_(max_inflight),
      master_(master),
      group_(ctx->groups().shard) {
  const int n = model->layout().num_units();
  units_.resize(n);
  kept_.assign(n, false);
  for (int u = 0; u < n; ++u) {
    for (int d : model->UnitDeps(u)) kept_[d] = true;
  }
  if (group_ != nullptr) return;
  // W = 1: the model reads the master shard, or a rounded copy of it.
  const ShardLayout& shards = ctx->shards();
  const size_t ces = DTypeSize(compute_dtype_);
  if (param_dtype_ != DType::kF32) {
    compute_bytes_ = shards.local_numel() * ces;
    compute_ = ctx->Alloc(compute_bytes_);
  }
  for (int u = 0; u < n; ++u) {
    const size_t off = shards.unit(u).shard_offset;
    units_[u].compute = compute_ != nullptr ? static_cast<char*>(compute_) + off * ces
                                            : static_cast<void*>(master_ + off);
    units_[u].state = Unit::kReady;
  }
}

ParamGatherer::~ParamGatherer() {
  // Collectives may still hold our buffers; let them finish before freeing.
  for (Unit& x : units_) {
    if (x.gather != nullptr && x.gather->work != nullptr) {
      x.gather->work->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  ctx_->Quiesce();
  if (group_ != nullptr) {
    for (size_t u = 0; u < units_.size(); ++u) {
      Unit& x = units_[u];
      const size_t padded = ctx_->shards().unit(static_cast<int>(u)).padded;
      if (x.compute != nullptr && x.compute != x.gathered) {
        ctx_->Free(x.compute, padded * DTypeSize(compute_dtype_));
      }
      if (x.gathered != nullptr) ctx_->Free(x.gathered, padded * DTypeSize(param_dtype_));
    }
  }
  if (compute_ != nullptr) ctx_->Free(compute_, compute_bytes_);
}

absl::Status ParamGatherer::Gather(int u) {
  Unit& x = units_[u];
  if (x.state != Unit::kSharded) return absl::OkStatus();
  const ShardLayout& shards = ctx_->shards();
  const UnitShard& s = shards.unit(u);
  const size_t es = DTypeSize(param_dtype_);
  x.gathered = ctx_->Alloc(s.padded * es);
  ctx_->Convert(static_cast<char*>(x.gathered) + shards.rank() * s.shard * es, param_dtype_,
                master_ + s.shard_offset, DType::kF32, s.shard);
  x.gather = ctx_->Issue(group_, [g = group_, buf = x.gathered, n = s.shard,
                                  dt = param_dtype_](void* stream) {
    return g->AllGather(buf, n, {.dtype = dt, .stream = stream});
  });
  ctx_->CountCollective(s.padded * es);
  x.state = Unit::kGathering;
  ++inflight_;
  if (!ctx_->overlap()) return Ensure(u);
  return absl::OkStatus();
}

absl::Status ParamGatherer::Ensure(int u) {
  Unit& x = units_[u];
  if (x.state == Unit::kReady) return absl::OkStatus();
  if (x.state == Unit::kSharded) RETURN_IF_ERROR(Gather(u));
  if (x.state == Unit::kReady) return absl::OkStatus();  // Gather waited (no overlap)
  --inflight_;
  x.state = Unit::kReady;
  absl::Status st = ctx_->ComputeWaits(*x.gather);
  x.gather = nullptr;
  const size_t padded = ctx_->shards().unit(u).padded;
  if (param_dtype_ == compute_dtype_) {
    x.compute = x.gathered;
  } else {
    x.compute = ctx_->Alloc(padded * sizeof(float));
    ctx_->Convert(x.compute, DType::kF32, x.gathered, param_dtype_, padded);
    ctx_->Free(x.gathered, padded * DTypeSize(param_dtype_));
    x.gathered = nullptr;
  }
  return st;
}

void ParamGatherer::Prefetch(int from, int direction) {
  if (group_ == nullptr) return;
  const int n = static_cast<int>(units_.size());
  for (int k = from, seen = 0; k >= 0 && k < n && seen <= max_inflight_; k += direction, ++seen) {
    std::vector<int> need = model_->UnitDeps(k);
    need.insert(need.begin(), k);
    for (int x : need) {
      if (inflight_ >= max_inflight_) return;
      if (units_[x].state == Unit::kSharded) Gather(x).IgnoreError();  // errors surface in Ensure
    }
  }
}

void ParamGatherer::Release(int u) {
  if (group_ == nullptr) return;
  Unit& x = units_[u];
  if (x.state == Unit::kSharded) return;
  if (x.state == Unit::kGathering) {
    Ensure(u).IgnoreError();  // the buffer belongs to the collective until it ends
  }
  const size_t padded = ctx_->shards().unit(u).padded;
  if (x.compute != nullptr && x.compute != x.gathered) {
    ctx_->Free(x.compute, padded * DTypeSize(compute_dtype_));
  }
  if (x.gathered != nullptr) ctx_->Free(x.gathered, padded * DTypeSize(param_dtype_));
  x.compute = nullptr;
  x.gathered = nullptr;
  x.state = Unit::kSharded;
}

void ParamGatherer::ReshardAfterForward(int u) {
  // Backward starts with the last two units: keeping them saves gathering
  // them again with nothing to hide behind.
  const int n = static_cast<int>(units_.size());
  if (ctx_->groups().reshard && !kept_[u] && u < n - 2) Release(u);
}

void ParamGatherer::ReshardAfterBackward(int u) {
  if (ctx_->groups().reshard && !kept_[u]) Release(u);
}

void ParamGatherer::ReleaseAll() {
  for (int u = 0; u < static_cast<int>(units_.size()); ++u) Release(u);
}

void ParamGatherer::ReshardAll() {
  if (ctx_->groups().reshard) ReleaseAll();
}

absl::Status ParamGatherer::AfterUnitUpdated(int u) {
  if (group_ != nullptr && next_gather_ == u && inflight_ < max_inflight_ &&
      model_->UnitDeps(next_gather_).empty()) {
    return Gather(next_gather_++);
  }
  return absl::OkStatus();
}

void ParamGatherer::RefreshComputeCopy() {
  if (compute_ == nullptr) return;
  kernels::Device* device = ctx_->device();
  const size_t n = ctx_->shards().local_numel();
  if (compute_dtype_ == param_dtype_) {  // the model reads param_dtype
    ctx_->Convert(compute_, compute_dtype_, master_, DType::kF32, n);
    return;
  }
  // Round the master weights to the parameter dtype, compute in fp32 (on
  // the compute stream only: freeing without waiting is safe).
  void* tmp = device->Alloc(n * DTypeSize(param_dtype_));
  ctx_->Convert(tmp, param_dtype_, master_, DType::kF32, n);
  ctx_->Convert(compute_, DType::kF32, tmp, param_dtype_, n);
  device->Free(tmp);
}

std::vector<void*> ParamGatherer::pointers() const {
  std::vector<void*> p;
  for (const Unit& x : units_) p.push_back(x.compute);
  return p;
}

}  // namespace anvil
