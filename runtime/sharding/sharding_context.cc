#include "runtime/sharding/sharding_context.h"

#include <algorithm>
#include <chrono>

#include "kernels/ops/convert.h"

namespace anvil {

ShardingContext::ShardingContext(kernels::Device* device, const ShardGroups& groups,
                                 const ParamLayout& layout, bool overlap, int debug_skip_wait)
    : device_(device),
      groups_(groups),
      shards_(layout, groups.shard != nullptr ? groups.shard->size() : 1,
              groups.shard != nullptr ? groups.shard->rank() : 0),
      overlap_(overlap),
      debug_skip_wait_(debug_skip_wait) {
  if (device_->asynchronous()) comm_stream_ = device_->NewStream();
}

ShardingContext::~ShardingContext() { Quiesce(); }

void* ShardingContext::Alloc(size_t bytes) {
  memory_.gathered_bytes += bytes;
  memory_.gathered_peak_bytes = std::max(memory_.gathered_peak_bytes, memory_.gathered_bytes);
  return device_->Alloc(bytes);
}

void ShardingContext::Free(void* p, size_t bytes) {
  memory_.gathered_bytes -= bytes;
  device_->Free(p);
}

void ShardingContext::Quiesce() { device_->Synchronize(); }

std::shared_ptr<CommOp> ShardingContext::Issue(ProcessGroup* g, IssueFn issue) {
  auto op = std::make_shared<CommOp>();
  if (!device_->asynchronous()) {
    op->work = issue(nullptr);
    return op;
  }
  if ((debug_skip_wait_ & kSkipCommWaitsCompute) == 0) {
    device_->WaitEvent(comm_stream_, *device_->RecordEvent(kernels::kComputeStream));
  }
  if (g->backend() == "nccl") {
    // NCCL runs the collective on the group's own stream, ordered after the
    // comm stream; its Work::Wait (no host wait) orders the comm stream
    // after the collective, so `done` below follows it.
    op->work = issue(device_->native_stream(comm_stream_));
    op->status = std::make_shared<absl::Status>(op->work->Wait());
  } else {
    auto status = std::make_shared<absl::Status>();
    op->status = status;
    device_->HostFunc(comm_stream_, [issue = std::move(issue), status] {
      *status = issue(nullptr)->Wait();
    });
  }
  op->done = device_->RecordEvent(comm_stream_);
  unchecked_.push_back(op);
  return op;
}

absl::Status ShardingContext::ComputeWaits(CommOp& op) {
  if (op.done == nullptr) return Wait(op.work);
  if ((debug_skip_wait_ & kSkipComputeWaitsComm) == 0) {
    device_->WaitEvent(kernels::kComputeStream, *op.done);
  }
  return op.done->Done() ? *op.status : absl::OkStatus();
}

bool ShardingContext::Completed(const CommOp& op) const {
  return op.done != nullptr ? op.done->Done() : op.work->IsCompleted();
}

absl::Status ShardingContext::RunBlocking(ProcessGroup* g, IssueFn issue) {
  std::shared_ptr<CommOp> op = Issue(g, std::move(issue));
  if (op->done == nullptr) return Wait(op->work);
  op->done->Wait();
  return *op->status;
}

absl::Status ShardingContext::CollectErrors() {
  absl::Status first = absl::OkStatus();
  size_t kept = 0;
  for (std::shared_ptr<CommOp>& op : unchecked_) {
    if (!op->done->Done()) {
      unchecked_[kept++] = std::move(op);
      continue;
    }
    // NCCL: the group may have failed since the issue.
    if (op->work != nullptr) *op->status = op->work->Wait();
    if (first.ok() && !op->status->ok()) first = *op->status;
  }
  unchecked_.resize(kept);
  return first;
}

absl::Status ShardingContext::Wait(const std::shared_ptr<Work>& w) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status s = w->Wait();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  comm_.exposed_wait_s += waited;
  switch (phase_) {
    case CommPhase::kForward:
      comm_.exposed_forward_s += waited;
      break;
    case CommPhase::kBackward:
      comm_.exposed_backward_s += waited;
      break;
    case CommPhase::kStep:
      comm_.exposed_step_s += waited;
      break;
  }
  return s;
}

void ShardingContext::Convert(void* dst, DType dst_type, const void* src, DType src_type,
                              size_t n) {
  kernels::Convert(*device_, kernels::Flat(dst, dst_type, n), kernels::Flat(src, src_type, n));
}

}  // namespace anvil
