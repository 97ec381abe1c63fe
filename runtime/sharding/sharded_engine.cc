#include "runtime/sharding/sharded_engine.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {
namespace {

ProcessGroup* Multi(ProcessGroup* g) { return g != nullptr && g->size() > 1 ? g : nullptr; }

// strategy.h's table: which groups shard, which replicate, and resharding.
absl::StatusOr<ShardGroups> ResolveGroups(ShardingStrategy strategy, const EngineGroups& groups) {
  ShardGroups g;
  g.world = groups.world;
  switch (strategy) {
    case ShardingStrategy::kNoShard:
      g.replicate = Multi(groups.world);
      break;
    case ShardingStrategy::kShardGradOp:
      g.shard = Multi(groups.world);
      break;
    case ShardingStrategy::kFullShard:
      g.shard = Multi(groups.world);
      g.reshard = true;
      break;
    case ShardingStrategy::kHybridShard:
      if (groups.world != nullptr && groups.world->size() > 1 &&
          (groups.node_local == nullptr || groups.cross_node == nullptr)) {
        return absl::InvalidArgumentError("HYBRID_SHARD needs node-local and cross-node groups");
      }
      g.shard = Multi(groups.node_local);
      g.replicate = Multi(groups.cross_node);
      g.reshard = true;
      break;
  }
  return g;
}

}  // namespace

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
  ASSIGN_OR_RETURN(const ShardGroups g, ResolveGroups(options.strategy, groups));
  std::unique_ptr<ShardedEngine> e(new ShardedEngine(model));
  e->ctx_ = std::make_unique<ShardingContext>(device, g, model->layout(), options.overlap,
                                              options.debug_skip_event_wait_for_testing);
  ShardedOptimizerOptions oo;
  oo.adamw = options.adamw;
  oo.grad_clip = options.grad_clip;
  oo.use_scaler = options.param_dtype == DType::kF16 || options.reduce_dtype == DType::kF16;
  oo.scaler = options.scaler;
  oo.ema_decay = options.ema_decay;
  e->optimizer_ = std::make_unique<ShardedOptimizer>(e->ctx_.get(), model->layout(), oo);
  e->gatherer_ = std::make_unique<ParamGatherer>(e->ctx_.get(), model, options.param_dtype,
                                                 options.max_inflight_gathers,
                                                 e->optimizer_->params());
  GradReducerOptions ro;
  ro.reduce_dtype = options.reduce_dtype;
  ro.bucket_bytes = options.bucket_bytes;
  ro.first_bucket_bytes = options.first_bucket_bytes;
  ro.max_inflight_reduces = options.max_inflight_reduces;
  e->reducer_ = std::make_unique<GradReducer>(e->ctx_.get(), *model, ro);
  return e;
}

ShardedEngine::~ShardedEngine() {
  // No stream may still use a buffer the pieces free.
  if (ctx_ != nullptr) ctx_->Quiesce();
}

void ShardedEngine::OnStateLoaded() {
  gatherer_->ReleaseAll();
  gatherer_->RefreshComputeCopy();
}

absl::Status ShardedEngine::SetFullParams(const float* host_full) {
  gatherer_->ReleaseAll();
  float* master = optimizer_->params();
  for (const UnitShard& s : ctx_->shards().units()) {
    if (s.end > s.begin) {
      ctx_->device()->CopyFromHost(master + s.shard_offset, host_full + s.global_offset + s.begin,
                                   (s.end - s.begin) * sizeof(float));
    }
  }
  optimizer_->ResetEma();
  gatherer_->RefreshComputeCopy();
  return absl::OkStatus();
}

absl::Status ShardedEngine::InitParams(uint64_t seed) {
  std::vector<float> host(model_->layout().total_numel());
  model_->InitParams(host.data(), seed);
  return SetFullParams(host.data());
}

absl::Status ShardedEngine::GetFullParams(float* host_full) {
  return GetFullState("params", host_full);
}

absl::Status ShardedEngine::GetFullState(const std::string& name, float* host_full) {
  kernels::Device* device = ctx_->device();
  const ShardLayout& shards = ctx_->shards();
  const float* master = nullptr;
  for (const StateBuffer& b : optimizer_->state()) {
    if (b.name == name) master = b.data;
  }
  if (master == nullptr) return absl::NotFoundError(absl::StrCat("no state buffer '", name, "'"));
  ProcessGroup* group = ctx_->groups().shard;
  if (group == nullptr) {
    for (const UnitShard& s : shards.units()) {
      device->CopyToHost(host_full + s.global_offset, master + s.shard_offset,
                         s.numel * sizeof(float));
    }
    return absl::OkStatus();
  }
  const int r = shards.rank();
  for (const UnitShard& s : shards.units()) {
    float* buf = static_cast<float*>(device->Alloc(s.padded * sizeof(float)));
    device->Copy(buf + r * s.shard, master + s.shard_offset, s.shard * sizeof(float));
    absl::Status st = ctx_->RunBlocking(group, [group, buf, n = s.shard](void* stream) {
      return group->AllGather(buf, n, {.stream = stream});
    });
    if (st.ok()) device->CopyToHost(host_full + s.global_offset, buf, s.numel * sizeof(float));
    device->Free(buf);  // the host waited for both streams' use of it
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ShardedEngine::ForwardLoss() {
  RETURN_IF_ERROR(ForwardLossPass());
  return model_->Loss();
}

absl::Status ShardedEngine::ForwardLossPass() {
  const int n = model_->num_units();
  ctx_->set_phase(CommPhase::kForward);
  for (int u = 0; u < n; ++u) {
    RETURN_IF_ERROR(gatherer_->Ensure(u));
    for (int d : model_->UnitDeps(u)) RETURN_IF_ERROR(gatherer_->Ensure(d));
    gatherer_->Prefetch(u + 1, +1);
    model_->Forward(u, gatherer_->pointers());
    gatherer_->ReshardAfterForward(u);
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ShardedEngine::ForwardBackward(float loss_factor, bool last_micro) {
  RETURN_IF_ERROR(RunMicroBatch(loss_factor, last_micro));
  return model_->Loss();
}

absl::Status ShardedEngine::RunMicroBatch(float loss_factor, bool last_micro) {
  const int n = model_->num_units();
  RETURN_IF_ERROR(ForwardLossPass());
  if (const UnitModel::LossTerms t = model_->loss_terms(); t.terms.present()) {
    optimizer_->AddLoss(t.terms, t.scale * loss_factor);
  } else {
    optimizer_->AddHostLoss(model_->Loss() * loss_factor);
  }
  ctx_->set_phase(CommPhase::kBackward);
  const float scale = optimizer_->backward_scale();
  reducer_->BeginBackward();
  for (int u = n - 1; u >= 0; --u) {
    RETURN_IF_ERROR(gatherer_->Ensure(u));
    for (int d : model_->UnitDeps(u)) RETURN_IF_ERROR(gatherer_->Ensure(d));
    gatherer_->Prefetch(u - 1, -1);
    reducer_->PrepareUnit(u);
    model_->Backward(u, gatherer_->pointers(), reducer_->pointers(), loss_factor * scale);
    gatherer_->ReshardAfterBackward(u);
    if (last_micro) RETURN_IF_ERROR(reducer_->AfterBackward(u));
  }
  if (last_micro) RETURN_IF_ERROR(reducer_->FinishAll());
  gatherer_->ReshardAll();
  return absl::OkStatus();
}

absl::StatusOr<double> ShardedEngine::MeanOverRanks(double v) {
  ProcessGroup* world = ctx_->groups().world;
  if (world == nullptr || world->size() == 1) return v;
  // Through device memory and the comm stream, like every collective.
  kernels::Device* device = ctx_->device();
  float f = static_cast<float>(v);
  float* buf = static_cast<float*>(device->Alloc(sizeof(float)));
  device->CopyFromHost(buf, &f, sizeof(float));
  absl::Status st = ctx_->RunBlocking(world, [world, buf](void* stream) {
    return world->AllReduce(buf, 1, {.op = ReduceOp::kAvg, .stream = stream});
  });
  if (st.ok()) device->CopyToHost(&f, buf, sizeof(float));
  device->Free(buf);  // the host waited for both streams' use of it
  RETURN_IF_ERROR(st);
  return static_cast<double>(f);
}

absl::StatusOr<StepResult> ShardedEngine::Step(float lr, double local_loss) {
  optimizer_->SetLoss(local_loss);
  return Step(lr);
}

absl::StatusOr<StepResult> ShardedEngine::Step(float lr) {
  ctx_->set_phase(CommPhase::kBackward);
  RETURN_IF_ERROR(reducer_->FinishAll());
  ctx_->set_phase(CommPhase::kStep);
  ASSIGN_OR_RETURN(const StepResult res, optimizer_->Check(reducer_->grads()));
  if (res.skipped) {
    reducer_->ZeroGrads();
    gatherer_->ReleaseAll();
    return res;
  }
  gatherer_->ReleaseAll();  // gathered copies are stale once the optimizer runs
  // The next forward starts with the first units: gather each as soon as
  // its shard is updated, behind the optimizer's remaining work.
  gatherer_->BeginUpdate();
  RETURN_IF_ERROR(optimizer_->Apply(lr, res, reducer_->grads(),
                                    [this](int u) { return gatherer_->AfterUnitUpdated(u); }));
  reducer_->ZeroGrads();
  gatherer_->RefreshComputeCopy();
  return res;
}

}  // namespace anvil
