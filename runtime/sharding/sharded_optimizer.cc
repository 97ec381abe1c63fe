#include "runtime/sharding/sharded_optimizer.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/optim.h"

namespace anvil {
namespace {
constexpr size_t kScalars = 4;
}  // namespace

float EmaDecayAt(float ema_decay, int64_t t) {
  if (t <= 0) return 0.0f;
  const double warm = (1.0 + static_cast<double>(t)) / (10.0 + static_cast<double>(t));
  return static_cast<float>(std::min(static_cast<double>(ema_decay), warm));
}

ShardedOptimizer::ShardedOptimizer(ShardingContext* ctx, const ParamLayout& layout,
                                   const ShardedOptimizerOptions& options)
    : ctx_(ctx), options_(options), scaler_(options.scaler) {
  const ShardLayout& shards = ctx->shards();
  const size_t local = shards.local_numel();
  kernels::Device* device = ctx->device();
  std::vector<const char*> names = {"params", "adam_m", "adam_v"};
  if (options_.ema_decay > 0) {
    ema_index_ = static_cast<int>(names.size());
    names.push_back("ema");
  }
  for (const char* name : names) {
    float* p = static_cast<float*>(device->Alloc(local * sizeof(float)));
    device->Memset(p, 0, local * sizeof(float));
    state_.push_back(StateBuffer{name, p, local});
  }
  ctx->memory().shard_state_bytes += state_.size() * local * sizeof(float);
  scalars_ = static_cast<float*>(device->Alloc(kScalars * sizeof(float)));
  device->Memset(scalars_, 0, kScalars * sizeof(float));
  if (ema_index_ >= 0) {
    // Bounded scratch: the update runs in chunks of at most 1M elements.
    ema_scratch_numel_ = std::min<size_t>(std::max<size_t>(local, 1), size_t{1} << 20);
    ema_scratch_ = static_cast<float*>(device->Alloc(ema_scratch_numel_ * sizeof(float)));
  }
  for (const UnitShard& s : shards.units()) {
    if (s.begin < s.end) {
      adamw_.push_back(std::make_unique<AdamW>(device, layout, s.global_offset + s.begin,
                                               s.global_offset + s.end, options_.adamw));
    } else {
      adamw_.push_back(nullptr);
    }
  }
}

ShardedOptimizer::~ShardedOptimizer() {
  for (const StateBuffer& b : state_) ctx_->device()->Free(b.data);
  if (ema_scratch_ != nullptr) ctx_->device()->Free(ema_scratch_);
  ctx_->device()->Free(scalars_);
}

void ShardedOptimizer::ResetEma() {
  if (ema_index_ < 0) return;
  ctx_->device()->Copy(ema(), params(), ctx_->shards().local_numel() * sizeof(float));
}

void ShardedOptimizer::UpdateEma(size_t offset, size_t n, float decay) {
  kernels::Device& device = *ctx_->device();
  float* e = ema() + offset;
  const float* p = params() + offset;
  for (size_t done = 0; done < n; done += ema_scratch_numel_) {
    const size_t k = std::min(ema_scratch_numel_, n - done);
    // ema = d * ema + (1 - d) * params, as fl(fl(d * ema) + fl((1 - d) * params)).
    device.Copy(ema_scratch_, p + done, k * sizeof(float));
    kernels::Scale(device, kernels::Flat(ema_scratch_, k), 1.0f - decay);
    kernels::Scale(device, kernels::Flat(e + done, k), decay);
    kernels::Accumulate(device, kernels::Flat(e + done, k),
                        kernels::Flat(static_cast<const float*>(ema_scratch_), k));
  }
}

void ShardedOptimizer::set_step(int64_t s) {
  step_ = s;
  for (auto& a : adamw_) {
    if (a != nullptr) a->set_step(s);
  }
}

int ShardedOptimizer::world_size() const {
  const ShardGroups& g = ctx_->groups();
  return g.world != nullptr ? g.world->size() : 1;
}

// Each rank adds loss / world, so the all-reduced sum is the mean.
void ShardedOptimizer::AddLoss(const kernels::TensorView& terms, double scale) {
  kernels::ReduceTo(*ctx_->device(), kernels::Flat(scalars_, 1), terms,
                    {.kind = kernels::ReduceToKind::kSum,
                     .scale = scale / world_size(),
                     .accumulate = true});
}

void ShardedOptimizer::AddHostLoss(double loss) {
  const float v = static_cast<float>(loss);
  ctx_->device()->CopyFromHost(scalars_ + 3, &v, sizeof(float));
  AddLoss(kernels::Flat(scalars_ + 3, 1), 1.0);
}

void ShardedOptimizer::SetLoss(double local_loss) {
  const float v = static_cast<float>(local_loss / world_size());
  ctx_->device()->CopyFromHost(scalars_, &v, sizeof(float));
}

absl::StatusOr<StepResult> ShardedOptimizer::Check(const float* grads) {
  kernels::Device& device = *ctx_->device();
  const ShardGroups& g = ctx_->groups();
  const size_t local = ctx_->shards().local_numel();
  StepResult res;
  res.loss_scale = backward_scale();
  // One all-reduce (sum over the world) carries all the step needs from the
  // other ranks: the mean loss, the squared global gradient norm, and how
  // many ranks found inf/NaN. Ranks of a replica group hold equal shards, so
  // each adds its squared norm divided by the number of replicas.
  const int world = world_size();
  const int shard = g.shard != nullptr ? g.shard->size() : 1;
  const kernels::TensorView view = kernels::Flat(grads, local);
  if (options_.use_scaler) {
    kernels::ReduceTo(device, kernels::Flat(scalars_ + 2, 1), view,
                      {.kind = kernels::ReduceToKind::kNonFinite});
  }
  kernels::ReduceTo(device, kernels::Flat(scalars_ + 1, 1), view,
                    {.kind = kernels::ReduceToKind::kSquares,
                     .scale = static_cast<double>(shard) / world});
  absl::Status reduced = absl::OkStatus();
  if (world > 1) {
    std::shared_ptr<CommOp> op =
        ctx_->Issue(g.world, [w = g.world, buf = scalars_](void* stream) {
          return w->AllReduce(buf, 3, {.op = ReduceOp::kSum, .stream = stream});
        });
    reduced = ctx_->ComputeWaits(*op);
  }
  float host[kScalars];
  device.CopyToHost(host, scalars_, sizeof(host));  // the step's one read-back
  device.Memset(scalars_, 0, kScalars * sizeof(float));
  RETURN_IF_ERROR(reduced);
  RETURN_IF_ERROR(ctx_->CollectErrors());
  res.loss = host[0];
  if (host[2] > 0) {
    scaler_.Update(true);
    res.skipped = true;
    res.grad_norm = NAN;
    return res;
  }
  res.grad_norm = std::sqrt(static_cast<double>(host[1])) / res.loss_scale;
  return res;
}

absl::Status ShardedOptimizer::Apply(float lr, const StepResult& checked, const float* grads,
                                     const UnitHook& after_unit) {
  float clip = 1.0f;
  if (options_.grad_clip > 0 && checked.grad_norm > options_.grad_clip) {
    clip = static_cast<float>(options_.grad_clip / (checked.grad_norm + 1e-6));
  }
  const float grad_scale = clip / checked.loss_scale;
  float* params = state_[0].data;
  float* m = state_[1].data;
  float* v = state_[2].data;
  const float decay = EmaDecayAt(options_.ema_decay, step_);
  for (size_t u = 0; u < adamw_.size(); ++u) {
    if (adamw_[u] != nullptr) {
      const UnitShard& s = ctx_->shards().unit(static_cast<int>(u));
      const size_t off = s.shard_offset;
      adamw_[u]->Step(params + off, grads + off, m + off, v + off, lr, grad_scale);
      if (ema_index_ >= 0) UpdateEma(off, s.end - s.begin, decay);
    }
    RETURN_IF_ERROR(after_unit(static_cast<int>(u)));
  }
  if (options_.use_scaler) scaler_.Update(false);
  ++step_;
  return absl::OkStatus();
}

}  // namespace anvil
