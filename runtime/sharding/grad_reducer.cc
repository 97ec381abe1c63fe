#include "runtime/sharding/grad_reducer.h"

#include <algorithm>

#include "absl/time/time.h"
#include "common/status_macros.h"

namespace anvil {

struct GradReducer::Unit {
  float* grad = nullptr;  // fp32, padded (W > 1) or a slice of grads_ (W = 1)
  void* wire = nullptr;   // gradients in reduce dtype while reducing
  std::shared_ptr<CommOp> reduce;
  std::shared_ptr<CommOp> replicate;
};

struct GradReducer::BucketWork {
  void* wire = nullptr;  // reduce dtype copy while reducing (reduce dtype != fp32)
  std::shared_ptr<CommOp> work;
};

GradReducer::GradReducer(ShardingContext* ctx, const UnitModel& model,
                         const GradReducerOptions& options)
    : ctx_(ctx),
      model_(model),
      options_(options),
      shard_group_(ctx->groups().shard),
      replicate_group_(ctx->groups().replicate) {
  const ShardLayout& shards = ctx->shards();
  const size_t local = shards.local_numel();
  kernels::Device* device = ctx->device();
  grads_ = static_cast<float*>(device->Alloc(local * sizeof(float)));
  device->Memset(grads_, 0, local * sizeof(float));
  ctx->memory().shard_state_bytes += local * sizeof(float);

  const int n = model.layout().num_units();
  units_.resize(n);
  final_at_.resize(n);
  for (int u = 0; u < n; ++u) final_at_[u] = u;
  for (int u = 0; u < n; ++u) {
    for (int d : model.UnitDeps(u)) final_at_[d] = std::min(final_at_[d], u);
  }
  if (shard_group_ != nullptr) return;
  for (int u = 0; u < n; ++u) units_[u].grad = grads_ + shards.unit(u).shard_offset;
  if (replicate_group_ != nullptr) {
    bucketer_ = std::make_unique<Bucketer>(shards, options_.first_bucket_bytes,
                                           options_.bucket_bytes);
    bucket_work_.resize(bucketer_->buckets().size());
  }
}

GradReducer::~GradReducer() {
  // Collectives may still hold our buffers; let them finish before freeing.
  for (Unit& x : units_) {
    for (auto* w : {&x.reduce, &x.replicate}) {
      if (*w != nullptr && (*w)->work != nullptr) (*w)->work->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  for (BucketWork& b : bucket_work_) {
    if (b.work != nullptr && b.work->work != nullptr) {
      b.work->work->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  ctx_->Quiesce();
  const size_t es = DTypeSize(options_.reduce_dtype);
  if (shard_group_ != nullptr) {
    for (size_t u = 0; u < units_.size(); ++u) {
      Unit& x = units_[u];
      const size_t padded = ctx_->shards().unit(static_cast<int>(u)).padded;
      if (x.grad != nullptr) ctx_->Free(x.grad, padded * sizeof(float));
      if (x.wire != nullptr) ctx_->Free(x.wire, padded * es);
    }
  }
  for (size_t i = 0; i < bucket_work_.size(); ++i) {
    if (bucket_work_[i].wire != nullptr) {
      ctx_->Free(bucket_work_[i].wire, bucketer_->buckets()[i].numel * es);
    }
  }
  ctx_->device()->Free(grads_);  // after Quiesce: no stream uses it
}

void GradReducer::BeginBackward() {
  if (bucketer_ != nullptr) bucketer_->Begin();
  next_to_finish_ = static_cast<int>(units_.size()) - 1;
}

void GradReducer::PrepareUnit(int u) {
  if (shard_group_ == nullptr) return;
  std::vector<int> need = model_.UnitDeps(u);
  need.insert(need.begin(), u);
  for (int k : need) {
    Unit& x = units_[k];
    if (x.grad != nullptr) continue;
    const size_t bytes = ctx_->shards().unit(k).padded * sizeof(float);
    x.grad = static_cast<float*>(ctx_->Alloc(bytes));
    ctx_->device()->Memset(x.grad, 0, bytes);
  }
}

std::vector<float*> GradReducer::pointers() const {
  std::vector<float*> p;
  for (const Unit& x : units_) p.push_back(x.grad);
  return p;
}

void GradReducer::ZeroGrads() {
  ctx_->device()->Memset(grads_, 0, ctx_->shards().local_numel() * sizeof(float));
}

absl::Status GradReducer::AfterBackward(int u) {
  const int n = static_cast<int>(units_.size());
  for (int x = 0; x < n; ++x) {
    if (final_at_[x] != u) continue;
    if (shard_group_ != nullptr) {
      RETURN_IF_ERROR(IssueReduce(x));
    } else if (bucketer_ != nullptr) {
      if (const int b = bucketer_->MarkReady(x); b >= 0) RETURN_IF_ERROR(IssueBucket(b));
    }
  }
  // Retire reduce-scatters oldest first, so the replica all-reduces start
  // in the same order on every rank: finished ones without blocking, and
  // beyond max_inflight_reduces by waiting, to bound gradient memory.
  while (shard_group_ != nullptr && next_to_finish_ > u) {
    int pending = 0;
    for (int k = next_to_finish_; k > u; --k) pending += units_[k].reduce != nullptr;
    Unit& x = units_[next_to_finish_];
    const bool block = pending > options_.max_inflight_reduces;
    if (!block && x.reduce != nullptr && !ctx_->Completed(*x.reduce)) break;
    RETURN_IF_ERROR(FinishReduce(next_to_finish_, block));
    --next_to_finish_;
  }
  return absl::OkStatus();
}

absl::Status GradReducer::IssueReduce(int u) {
  Unit& x = units_[u];
  const UnitShard& s = ctx_->shards().unit(u);
  void* buf = x.grad;
  DType dt = DType::kF32;
  if (options_.reduce_dtype != DType::kF32) {
    dt = options_.reduce_dtype;
    x.wire = ctx_->Alloc(s.padded * DTypeSize(dt));
    ctx_->Convert(x.wire, dt, x.grad, DType::kF32, s.padded);
    ctx_->Free(x.grad, s.padded * sizeof(float));
    x.grad = nullptr;
    buf = x.wire;
  }
  x.reduce = ctx_->Issue(shard_group_, [g = shard_group_, buf, n = s.shard, dt](void* stream) {
    return g->ReduceScatter(buf, n,
                            {.dtype = dt,
                             .op = ReduceOp::kAvg,
                             .accumulation = Accumulation::kWireDType,
                             .stream = stream});
  });
  ctx_->CountCollective(s.padded * DTypeSize(dt));
  if (!ctx_->overlap()) return FinishReduce(u, true);
  return absl::OkStatus();
}

// Copies this rank's reduced slice into the gradient shard, frees the unit's
// buffers and, with replicas, starts the cross-replica all-reduce of the slice.
absl::Status GradReducer::FinishReduce(int u, bool block) {
  Unit& x = units_[u];
  if (x.reduce == nullptr) return absl::OkStatus();
  if (!block && !ctx_->Completed(*x.reduce)) return absl::OkStatus();
  const ShardLayout& shards = ctx_->shards();
  const UnitShard& s = shards.unit(u);
  absl::Status st = ctx_->ComputeWaits(*x.reduce);
  x.reduce = nullptr;
  float* dst = grads_ + s.shard_offset;
  const size_t slice = static_cast<size_t>(shards.rank()) * s.shard;
  if (x.wire != nullptr) {
    const size_t es = DTypeSize(options_.reduce_dtype);
    ctx_->Convert(dst, DType::kF32, static_cast<char*>(x.wire) + slice * es,
                  options_.reduce_dtype, s.shard);
    ctx_->Free(x.wire, s.padded * es);
    x.wire = nullptr;
  } else {
    ctx_->device()->Copy(dst, x.grad + slice, s.shard * sizeof(float));
    ctx_->Free(x.grad, s.padded * sizeof(float));
    x.grad = nullptr;
  }
  RETURN_IF_ERROR(st);
  if (replicate_group_ != nullptr) {
    x.replicate = ctx_->Issue(replicate_group_,
                              [g = replicate_group_, dst, n = s.shard](void* stream) {
                                return g->AllReduce(dst, n,
                                                    {.op = ReduceOp::kAvg, .stream = stream});
                              });
    ctx_->CountCollective(s.shard * sizeof(float));
    if (!ctx_->overlap()) {
      RETURN_IF_ERROR(ctx_->ComputeWaits(*x.replicate));
      x.replicate = nullptr;
    }
  }
  return absl::OkStatus();
}

absl::Status GradReducer::IssueBucket(int i) {
  const Bucket& b = bucketer_->buckets()[i];
  BucketWork& w = bucket_work_[i];
  void* buf = grads_ + b.offset;
  DType dt = DType::kF32;
  if (options_.reduce_dtype != DType::kF32) {
    dt = options_.reduce_dtype;
    w.wire = ctx_->Alloc(b.numel * DTypeSize(dt));
    ctx_->Convert(w.wire, dt, grads_ + b.offset, DType::kF32, b.numel);
    buf = w.wire;
  }
  w.work = ctx_->Issue(replicate_group_, [g = replicate_group_, buf, n = b.numel, dt](void* stream) {
    return g->AllReduce(buf, n,
                        {.dtype = dt,
                         .op = ReduceOp::kAvg,
                         .accumulation = Accumulation::kWireDType,
                         .stream = stream});
  });
  ctx_->CountCollective(b.numel * DTypeSize(dt));
  if (!ctx_->overlap()) RETURN_IF_ERROR(ctx_->ComputeWaits(*w.work));
  return absl::OkStatus();
}

absl::Status GradReducer::FinishAll() {
  absl::Status first = absl::OkStatus();
  auto keep = [&first](absl::Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  for (int u = static_cast<int>(units_.size()) - 1; u >= 0; --u) keep(FinishReduce(u, true));
  for (Unit& x : units_) {
    if (x.replicate != nullptr) {
      keep(ctx_->ComputeWaits(*x.replicate));
      x.replicate = nullptr;
    }
  }
  for (size_t i = 0; i < bucket_work_.size(); ++i) {
    BucketWork& w = bucket_work_[i];
    if (w.work == nullptr) continue;
    keep(ctx_->ComputeWaits(*w.work));
    w.work = nullptr;
    if (w.wire != nullptr) {
      const Bucket& b = bucketer_->buckets()[i];
      ctx_->Convert(grads_ + b.offset, DType::kF32, w.wire, options_.reduce_dtype, b.numel);
      ctx_->Free(w.wire, b.numel * DTypeSize(options_.reduce_dtype));
      w.wire = nullptr;
    }
  }
  return first;
}

}  // namespace anvil
