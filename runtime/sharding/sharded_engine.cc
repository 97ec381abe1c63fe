#include "runtime/sharding/sharded_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/optim.h"

namespace anvil {

struct ShardedEngine::Unit {
  enum State { kSharded, kGathering, kReady };
  State state = kSharded;
  void* gathered = nullptr;  // param dtype, `padded` elements (W > 1)
  void* compute = nullptr;   // what the model reads (its compute dtype): the
                             // gathered buffer itself, or an fp32 copy of it
  std::shared_ptr<Work> gather;
  float* grad = nullptr;     // fp32, padded (W > 1) or a slice of grads_ (W = 1)
  void* wire = nullptr;      // gradients in reduce dtype while reducing
  std::shared_ptr<Work> reduce;
  std::shared_ptr<Work> replicate;
};

struct ShardedEngine::Bucket {
  int lo = 0, hi = 0;  // units [lo, hi]
  size_t offset = 0, numel = 0;
  int remaining = 0;
  void* wire = nullptr;
  std::shared_ptr<Work> work;
};

ShardedEngine::ShardedEngine(UnitModel* model, kernels::Device* device,
                             const EngineOptions& options)
    : model_(model),
      device_(device),
      options_(options),
      compute_dtype_(model->compute_dtype()),
      scaler_(options.scaler) {}

void ShardedEngine::Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n) {
  kernels::Convert(*device_, kernels::Flat(dst, dst_type, n), kernels::Flat(src, src_type, n));
}

ShardedEngine::~ShardedEngine() {
  // Collectives may still hold our buffers; let them finish before freeing.
  for (Unit& x : units_) {
    for (auto* w : {&x.gather, &x.reduce, &x.replicate}) {
      if (*w != nullptr) (*w)->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  for (Bucket& b : buckets_) {
    if (b.work != nullptr) b.work->Wait(absl::Seconds(30)).IgnoreError();
  }
  const size_t W = shards_ ? static_cast<size_t>(shards_->world()) : 1;
  for (size_t u = 0; u < units_.size(); ++u) {
    Unit& x = units_[u];
    const size_t padded = shards_->unit(static_cast<int>(u)).padded;
    if (W > 1) {
      if (x.compute != nullptr && x.compute != x.gathered) {
        Free(x.compute, padded * DTypeSize(compute_dtype_));
      }
      if (x.gathered != nullptr) Free(x.gathered, padded * DTypeSize(options_.param_dtype));
      if (x.grad != nullptr) Free(x.grad, padded * 4);
      if (x.wire != nullptr) Free(x.wire, padded * DTypeSize(options_.reduce_dtype));
    }
  }
  for (Bucket& b : buckets_) {
    if (b.wire != nullptr) Free(b.wire, b.numel * DTypeSize(options_.reduce_dtype));
  }
  for (void* p : {static_cast<void*>(master_), static_cast<void*>(grads_), static_cast<void*>(m_),
                  static_cast<void*>(v_), compute_}) {
    if (p != nullptr) device_->Free(p);
  }
}

absl::StatusOr<std::unique_ptr<ShardedEngine>> ShardedEngine::Create(UnitModel* model,
                                                                     kernels::Device* device,
                                                                     const EngineGroups& groups,
                                                                     const EngineOptions& options) {
  if (options.max_inflight_gathers < 1) {
    return absl::InvalidArgumentError("max_inflight_gathers must be >= 1");
  }
  // The model computes either in the parameter dtype (gathered buffers are
  // handed over as they are) or in fp32 (on params rounded to param_dtype).
  const DType cd = model->compute_dtype();
  if (cd != DType::kF32 && cd != options.param_dtype) {
    return absl::InvalidArgumentError(absl::StrCat("the model computes in ",
                                                   std::string(DTypeName(cd)),
                                                   " but --param_dtype is ",
                                                   std::string(DTypeName(options.param_dtype))));
  }
  std::unique_ptr<ShardedEngine> e(new ShardedEngine(model, device, options));
  RETURN_IF_ERROR(e->Init(groups));
  return e;
}

absl::Status ShardedEngine::Init(const EngineGroups& groups) {
  auto multi = [](ProcessGroup* g) { return g != nullptr && g->size() > 1 ? g : nullptr; };
  world_ = groups.world;
  switch (options_.strategy) {
    case ShardingStrategy::kNoShard:
      replicate_group_ = multi(groups.world);
      break;
    case ShardingStrategy::kShardGradOp:
      shard_group_ = multi(groups.world);
      break;
    case ShardingStrategy::kFullShard:
      shard_group_ = multi(groups.world);
      reshard_ = true;
      break;
    case ShardingStrategy::kHybridShard:
      if (groups.world != nullptr && groups.world->size() > 1 &&
          (groups.node_local == nullptr || groups.cross_node == nullptr)) {
        return absl::InvalidArgumentError("HYBRID_SHARD needs node-local and cross-node groups");
      }
      shard_group_ = multi(groups.node_local);
      replicate_group_ = multi(groups.cross_node);
      reshard_ = true;
      break;
  }
  use_scaler_ = options_.param_dtype == DType::kF16 || options_.reduce_dtype == DType::kF16;
  const ParamLayout& layout = model_->layout();
  const int W = shard_group_ ? shard_group_->size() : 1;
  const int r = shard_group_ ? shard_group_->rank() : 0;
  shards_ = std::make_unique<ShardLayout>(layout, W, r);
  const size_t local = shards_->local_numel();
  for (float** p : {&master_, &grads_, &m_, &v_}) {
    *p = static_cast<float*>(device_->Alloc(local * sizeof(float)));
    device_->Memset(*p, 0, local * sizeof(float));
  }
  memory_.shard_state_bytes = 4 * local * sizeof(float);

  const int n = layout.num_units();
  units_.resize(n);
  final_at_.resize(n);
  shared_.assign(n, false);
  for (int u = 0; u < n; ++u) final_at_[u] = u;
  for (int u = 0; u < n; ++u) {
    for (int d : model_->UnitDeps(u)) {
      final_at_[d] = std::min(final_at_[d], u);
      shared_[d] = true;
    }
  }
  for (int u = 0; u < n; ++u) {
    const UnitShard& s = shards_->unit(u);
    if (s.begin < s.end) {
      adamw_.push_back(std::make_unique<AdamW>(device_, layout, s.global_offset + s.begin,
                                               s.global_offset + s.end, options_.adamw));
    } else {
      adamw_.push_back(nullptr);
    }
  }
  if (W == 1) {
    const size_t ces = DTypeSize(compute_dtype_);
    if (options_.param_dtype != DType::kF32) compute_ = Alloc(local * ces);
    for (int u = 0; u < n; ++u) {
      Unit& x = units_[u];
      const size_t off = shards_->unit(u).shard_offset;
      x.compute = compute_ != nullptr ? static_cast<char*>(compute_) + off * ces
                                      : static_cast<void*>(master_ + off);
      x.grad = grads_ + off;
      x.state = Unit::kReady;
    }
    if (replicate_group_ != nullptr) {
      // Buckets of consecutive units in backward order; the first is small so
      // communication starts early.
      size_t limit = options_.first_bucket_bytes;
      for (int u = n - 1; u >= 0;) {
        Bucket b;
        b.hi = u;
        size_t bytes = 0;
        while (u >= 0 && (bytes == 0 || bytes < limit)) {
          bytes += shards_->unit(u).numel * sizeof(float);
          --u;
        }
        b.lo = u + 1;
        b.offset = shards_->unit(b.lo).shard_offset;
        b.numel = bytes / sizeof(float);
        buckets_.push_back(b);
        limit = options_.bucket_bytes;
      }
      unit_bucket_.assign(n, -1);
      for (size_t i = 0; i < buckets_.size(); ++i) {
        for (int u = buckets_[i].lo; u <= buckets_[i].hi; ++u) unit_bucket_[u] = static_cast<int>(i);
      }
    }
  }
  return absl::OkStatus();
}

void* ShardedEngine::Alloc(size_t bytes) {
  memory_.gathered_bytes += bytes;
  memory_.gathered_peak_bytes = std::max(memory_.gathered_peak_bytes, memory_.gathered_bytes);
  return device_->Alloc(bytes);
}

void ShardedEngine::Free(void* p, size_t bytes) {
  memory_.gathered_bytes -= bytes;
  device_->Free(p);
}

absl::Status ShardedEngine::Wait(const std::shared_ptr<Work>& w) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s = w->Wait();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  comm_.exposed_wait_s += waited;
  *phase_wait_ += waited;
  return s;
}

void ShardedEngine::RefreshComputeCopy() {
  if (compute_ == nullptr) return;
  const size_t n = shards_->local_numel();
  if (compute_dtype_ == options_.param_dtype) {  // the model reads param_dtype
    Convert(compute_, compute_dtype_, master_, DType::kF32, n);
    return;
  }
  // Round the master weights to the parameter dtype, compute in fp32.
  void* tmp = device_->Alloc(n * DTypeSize(options_.param_dtype));
  Convert(tmp, options_.param_dtype, master_, DType::kF32, n);
  Convert(compute_, DType::kF32, tmp, options_.param_dtype, n);
  device_->Free(tmp);
}

absl::Status ShardedEngine::SetFullParams(const float* host_full) {
  ReleaseAllParams();
  for (const UnitShard& s : shards_->units()) {
    if (s.end > s.begin) {
      device_->CopyFromHost(master_ + s.shard_offset, host_full + s.global_offset + s.begin,
                             (s.end - s.begin) * sizeof(float));
    }
  }
  RefreshComputeCopy();
  return absl::OkStatus();
}

absl::Status ShardedEngine::InitParams(uint64_t seed) {
  std::vector<float> host(model_->layout().total_numel());
  model_->InitParams(host.data(), seed);
  return SetFullParams(host.data());
}

absl::Status ShardedEngine::GetFullParams(float* host_full) {
  if (shard_group_ == nullptr) {
    for (const UnitShard& s : shards_->units()) {
      device_->CopyToHost(host_full + s.global_offset, master_ + s.shard_offset,
                          s.numel * sizeof(float));
    }
    return absl::OkStatus();
  }
  const int r = shards_->rank();
  for (const UnitShard& s : shards_->units()) {
    float* buf = static_cast<float*>(device_->Alloc(s.padded * sizeof(float)));
    device_->Copy(buf + r * s.shard, master_ + s.shard_offset, s.shard * sizeof(float));
    absl::Status st = shard_group_->AllGather(buf, s.shard, {})->Wait();
    if (st.ok()) device_->CopyToHost(host_full + s.global_offset, buf, s.numel * sizeof(float));
    device_->Free(buf);
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

// ---- parameters ------------------------------------------------------------

absl::Status ShardedEngine::IssueGather(int u) {
  Unit& x = units_[u];
  if (x.state != Unit::kSharded) return absl::OkStatus();
  const UnitShard& s = shards_->unit(u);
  const DType dt = options_.param_dtype;
  const size_t es = DTypeSize(dt);
  x.gathered = Alloc(s.padded * es);
  Convert(static_cast<char*>(x.gathered) + shards_->rank() * s.shard * es, dt,
          master_ + s.shard_offset, DType::kF32, s.shard);
  x.gather = shard_group_->AllGather(x.gathered, s.shard, {.dtype = dt});
  ++comm_.collectives;
  comm_.bytes += static_cast<int64_t>(s.padded * es);
  x.state = Unit::kGathering;
  ++inflight_gathers_;
  if (!options_.overlap) return EnsureParams(u);
  return absl::OkStatus();
}

absl::Status ShardedEngine::EnsureParams(int u) {
  Unit& x = units_[u];
  if (x.state == Unit::kReady) return absl::OkStatus();
  if (x.state == Unit::kSharded) RETURN_IF_ERROR(IssueGather(u));
  if (x.state == Unit::kReady) return absl::OkStatus();  // IssueGather waited (no overlap)
  --inflight_gathers_;
  x.state = Unit::kReady;
  absl::Status st = Wait(x.gather);
  x.gather = nullptr;
  const size_t padded = shards_->unit(u).padded;
  if (options_.param_dtype == compute_dtype_) {
    x.compute = x.gathered;
  } else {
    x.compute = Alloc(padded * sizeof(float));
    Convert(x.compute, DType::kF32, x.gathered, options_.param_dtype, padded);
    Free(x.gathered, padded * DTypeSize(options_.param_dtype));
    x.gathered = nullptr;
  }
  return st;
}

void ShardedEngine::Prefetch(int from, int direction) {
  if (shard_group_ == nullptr) return;
  const int n = static_cast<int>(units_.size());
  for (int k = from, seen = 0; k >= 0 && k < n && seen <= options_.max_inflight_gathers;
       k += direction, ++seen) {
    std::vector<int> need = model_->UnitDeps(k);
    need.insert(need.begin(), k);
    for (int x : need) {
      if (inflight_gathers_ >= options_.max_inflight_gathers) return;
      if (units_[x].state == Unit::kSharded) IssueGather(x).IgnoreError();  // errors surface in EnsureParams
    }
  }
}

void ShardedEngine::ReleaseParams(int u) {
  if (shard_group_ == nullptr) return;
  Unit& x = units_[u];
  if (x.state == Unit::kSharded) return;
  if (x.state == Unit::kGathering) {
    EnsureParams(u).IgnoreError();  // the buffer belongs to the collective until it ends
  }
  const size_t padded = shards_->unit(u).padded;
  if (x.compute != nullptr && x.compute != x.gathered) {
    Free(x.compute, padded * DTypeSize(compute_dtype_));
  }
  if (x.gathered != nullptr) Free(x.gathered, padded * DTypeSize(options_.param_dtype));
  x.compute = nullptr;
  x.gathered = nullptr;
  x.state = Unit::kSharded;
}

void ShardedEngine::ReleaseAllParams() {
  for (int u = 0; u < static_cast<int>(units_.size()); ++u) ReleaseParams(u);
}

std::vector<void*> ShardedEngine::ParamPointers() const {
  std::vector<void*> p;
  for (const Unit& x : units_) p.push_back(x.compute);
  return p;
}

std::vector<float*> ShardedEngine::GradPointers() const {
  std::vector<float*> p;
  for (const Unit& x : units_) p.push_back(x.grad);
  return p;
}

// ---- gradients -------------------------------------------------------------

void ShardedEngine::EnsureGradBuffer(int u) {
  Unit& x = units_[u];
  if (shard_group_ == nullptr || x.grad != nullptr) return;
  const size_t bytes = shards_->unit(u).padded * sizeof(float);
  x.grad = static_cast<float*>(Alloc(bytes));
  device_->Memset(x.grad, 0, bytes);
}

absl::Status ShardedEngine::IssueReduce(int u) {
  Unit& x = units_[u];
  const UnitShard& s = shards_->unit(u);
  void* buf = x.grad;
  DType dt = DType::kF32;
  if (options_.reduce_dtype != DType::kF32) {
    dt = options_.reduce_dtype;
    x.wire = Alloc(s.padded * DTypeSize(dt));
    Convert(x.wire, dt, x.grad, DType::kF32, s.padded);
    Free(x.grad, s.padded * sizeof(float));
    x.grad = nullptr;
    buf = x.wire;
  }
  x.reduce = shard_group_->ReduceScatter(
      buf, s.shard, {.dtype = dt, .op = ReduceOp::kAvg, .accumulation = Accumulation::kWireDType});
  ++comm_.collectives;
  comm_.bytes += static_cast<int64_t>(s.padded * DTypeSize(dt));
  if (!options_.overlap) return FinishReduce(u, true);
  return absl::OkStatus();
}

// Copies this rank's reduced slice into the gradient shard, frees the unit's
// buffers and, with replicas, starts the cross-replica all-reduce of the slice.
absl::Status ShardedEngine::FinishReduce(int u, bool block) {
  Unit& x = units_[u];
  if (x.reduce == nullptr) return absl::OkStatus();
  if (!block && !x.reduce->IsCompleted()) return absl::OkStatus();
  const UnitShard& s = shards_->unit(u);
  absl::Status st = Wait(x.reduce);
  x.reduce = nullptr;
  float* dst = grads_ + s.shard_offset;
  const size_t slice = static_cast<size_t>(shards_->rank()) * s.shard;
  if (x.wire != nullptr) {
    const size_t es = DTypeSize(options_.reduce_dtype);
    Convert(dst, DType::kF32, static_cast<char*>(x.wire) + slice * es, options_.reduce_dtype,
            s.shard);
    Free(x.wire, s.padded * es);
    x.wire = nullptr;
  } else {
    device_->Copy(dst, x.grad + slice, s.shard * sizeof(float));
    Free(x.grad, s.padded * sizeof(float));
    x.grad = nullptr;
  }
  RETURN_IF_ERROR(st);
  if (replicate_group_ != nullptr) {
    x.replicate = replicate_group_->AllReduce(dst, s.shard, {.op = ReduceOp::kAvg});
    ++comm_.collectives;
    comm_.bytes += static_cast<int64_t>(s.shard * sizeof(float));
    if (!options_.overlap) {
      RETURN_IF_ERROR(Wait(x.replicate));
      x.replicate = nullptr;
    }
  }
  return absl::OkStatus();
}

absl::Status ShardedEngine::IssueBucket(Bucket& b) {
  void* buf = grads_ + b.offset;
  DType dt = DType::kF32;
  if (options_.reduce_dtype != DType::kF32) {
    dt = options_.reduce_dtype;
    b.wire = Alloc(b.numel * DTypeSize(dt));
    Convert(b.wire, dt, grads_ + b.offset, DType::kF32, b.numel);
    buf = b.wire;
  }
  b.work = replicate_group_->AllReduce(
      buf, b.numel, {.dtype = dt, .op = ReduceOp::kAvg, .accumulation = Accumulation::kWireDType});
  ++comm_.collectives;
  comm_.bytes += static_cast<int64_t>(b.numel * DTypeSize(dt));
  if (!options_.overlap) RETURN_IF_ERROR(Wait(b.work));
  return absl::OkStatus();
}

absl::Status ShardedEngine::FinishAllReduces() {
  absl::Status first = absl::OkStatus();
  auto keep = [&first](absl::Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  for (int u = static_cast<int>(units_.size()) - 1; u >= 0; --u) keep(FinishReduce(u, true));
  for (Unit& x : units_) {
    if (x.replicate != nullptr) {
      keep(Wait(x.replicate));
      x.replicate = nullptr;
    }
  }
  for (Bucket& b : buckets_) {
    if (b.work == nullptr) continue;
    keep(Wait(b.work));
    b.work = nullptr;
    if (b.wire != nullptr) {
      Convert(grads_ + b.offset, DType::kF32, b.wire, options_.reduce_dtype, b.numel);
      Free(b.wire, b.numel * DTypeSize(options_.reduce_dtype));
      b.wire = nullptr;
    }
  }
  return first;
}

// ---- the step --------------------------------------------------------------

absl::StatusOr<double> ShardedEngine::ForwardLoss() {
  const int n = static_cast<int>(units_.size());
  phase_wait_ = &comm_.exposed_forward_s;
  for (int u = 0; u < n; ++u) {
    RETURN_IF_ERROR(EnsureParams(u));
    for (int d : model_->UnitDeps(u)) RETURN_IF_ERROR(EnsureParams(d));
    Prefetch(u + 1, +1);
    model_->Forward(u, ParamPointers());
    // Backward starts with the last two units: keeping them saves gathering
    // them again with nothing to hide behind.
    if (reshard_ && !shared_[u] && u < n - 2) ReleaseParams(u);
  }
  return model_->Loss();
}

absl::StatusOr<double> ShardedEngine::ForwardBackward(float loss_factor, bool last_micro) {
  const int n = static_cast<int>(units_.size());
  ASSIGN_OR_RETURN(const double loss, ForwardLoss());
  phase_wait_ = &comm_.exposed_backward_s;
  const float scale = use_scaler_ ? scaler_.scale() : 1.0f;
  for (Bucket& b : buckets_) b.remaining = b.hi - b.lo + 1;
  int next_to_finish = n - 1;  // reduce-scatters are finished in issue order
  for (int u = n - 1; u >= 0; --u) {
    RETURN_IF_ERROR(EnsureParams(u));
    for (int d : model_->UnitDeps(u)) RETURN_IF_ERROR(EnsureParams(d));
    Prefetch(u - 1, -1);
    EnsureGradBuffer(u);
    for (int d : model_->UnitDeps(u)) EnsureGradBuffer(d);
    model_->Backward(u, ParamPointers(), GradPointers(), loss_factor * scale);
    if (reshard_ && !shared_[u]) ReleaseParams(u);
    if (!last_micro) continue;
    for (int x = 0; x < n; ++x) {
      if (final_at_[x] != u) continue;
      if (shard_group_ != nullptr) {
        RETURN_IF_ERROR(IssueReduce(x));
      } else if (replicate_group_ != nullptr && --buckets_[unit_bucket_[x]].remaining == 0) {
        RETURN_IF_ERROR(IssueBucket(buckets_[unit_bucket_[x]]));
      }
    }
    // Retire reduce-scatters oldest first, so the replica all-reduces start
    // in the same order on every rank: finished ones without blocking, and
    // beyond max_inflight_reduces by waiting, to bound gradient memory.
    while (shard_group_ != nullptr && next_to_finish > u) {
      int pending = 0;
      for (int k = next_to_finish; k > u; --k) pending += units_[k].reduce != nullptr;
      Unit& x = units_[next_to_finish];
      const bool block = pending > options_.max_inflight_reduces;
      if (!block && x.reduce != nullptr && !x.reduce->IsCompleted()) break;
      RETURN_IF_ERROR(FinishReduce(next_to_finish, block));
      --next_to_finish;
    }
  }
  if (last_micro) RETURN_IF_ERROR(FinishAllReduces());
  if (reshard_) ReleaseAllParams();
  return loss;
}

absl::StatusOr<double> ShardedEngine::AllReduceScalar(ProcessGroup* g, double v, ReduceOp op) {
  float f = static_cast<float>(v);
  RETURN_IF_ERROR(Wait(g->AllReduce(&f, 1, {.op = op})));
  return static_cast<double>(f);
}

absl::StatusOr<double> ShardedEngine::MeanOverRanks(double v) {
  if (world_ == nullptr || world_->size() == 1) return v;
  return AllReduceScalar(world_, v, ReduceOp::kAvg);
}

void ShardedEngine::PoisonGradShard(size_t index, float value) {
  float host;
  device_->CopyToHost(&host, grads_ + index, sizeof(float));
  host += value;
  device_->CopyFromHost(grads_ + index, &host, sizeof(float));
}

void ShardedEngine::set_step(int64_t s) {
  step_ = s;
  for (auto& a : adamw_) {
    if (a != nullptr) a->set_step(s);
  }
}

absl::StatusOr<StepResult> ShardedEngine::Step(float lr, double local_loss) {
  phase_wait_ = &comm_.exposed_backward_s;
  RETURN_IF_ERROR(FinishAllReduces());
  phase_wait_ = &comm_.exposed_step_s;
  const size_t local = shards_->local_numel();
  StepResult res;
  res.loss_scale = use_scaler_ ? scaler_.scale() : 1.0f;
  // One all-reduce (sum over the world) carries all the step needs from the
  // other ranks: the mean loss, the squared global gradient norm, and how
  // many ranks found inf/NaN. Ranks of a replica group hold equal shards, so
  // each adds its squared norm divided by the number of replicas.
  const int world = world_ != nullptr ? world_->size() : 1;
  const int shard = shard_group_ != nullptr ? shard_group_->size() : 1;
  const kernels::TensorView grads = kernels::Flat(grads_, local);
  const bool found_local = use_scaler_ && kernels::HasNonFinite(*device_, grads);
  const double sq_local = found_local ? 0.0 : kernels::SquaredNorm(*device_, grads);
  float sums[3] = {static_cast<float>(local_loss / world),
                   static_cast<float>(sq_local * shard / world), found_local ? 1.0f : 0.0f};
  if (world > 1) RETURN_IF_ERROR(Wait(world_->AllReduce(sums, 3, {.op = ReduceOp::kSum})));
  res.loss = world > 1 ? sums[0] : local_loss;
  if (sums[2] > 0) {
    scaler_.Update(true);
    device_->Memset(grads_, 0, local * sizeof(float));
    res.skipped = true;
    res.grad_norm = NAN;
    ReleaseAllParams();
    return res;
  }
  const double sq = world > 1 ? sums[1] : sq_local;
  res.grad_norm = std::sqrt(sq) / res.loss_scale;
  float clip = 1.0f;
  if (options_.grad_clip > 0 && res.grad_norm > options_.grad_clip) {
    clip = static_cast<float>(options_.grad_clip / (res.grad_norm + 1e-6));
  }
  const float grad_scale = clip / res.loss_scale;
  ReleaseAllParams();  // gathered copies are stale once the optimizer runs
  // The next forward starts with the first units: gather each as soon as
  // its shard is updated, behind the optimizer's remaining work.
  int next_gather = 0;
  for (size_t u = 0; u < adamw_.size(); ++u) {
    if (adamw_[u] != nullptr) {
      const size_t off = shards_->unit(static_cast<int>(u)).shard_offset;
      adamw_[u]->Step(master_ + off, grads_ + off, m_ + off, v_ + off, lr, grad_scale);
    }
    if (shard_group_ != nullptr && next_gather == static_cast<int>(u) &&
        inflight_gathers_ < options_.max_inflight_gathers && model_->UnitDeps(next_gather).empty()) {
      RETURN_IF_ERROR(IssueGather(next_gather++));
    }
  }
  if (use_scaler_) scaler_.Update(false);
  device_->Memset(grads_, 0, local * sizeof(float));
  ++step_;
  RefreshComputeCopy();
  return res;
}

}  // namespace anvil
