// NcclProcessGroup implementation. Lock order: the issue lock (mu_) before
// Shared::mu. Only paths holding mu_ touch the communicator (enqueue, abort,
// destroy), so an abort can never race an enqueue on the same comm.
#include "runtime/collectives/nccl/nccl_process_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "runtime/collectives/nccl/nccl_kernels.h"
#include "runtime/collectives/reduce_kernels.h"
#include "runtime/collectives/split_plan.h"
#include "runtime/store/prefix_store.h"

namespace anvil {
namespace {

constexpr char kUniqueIdKey[] = "nccl_unique_id";
constexpr absl::Duration kPoll = absl::Milliseconds(1);

// Sets the calling thread's device for a scope and restores it after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }

 private:
  int previous_ = -1;
};

absl::Status CudaError(cudaError_t e, const char* expr) {
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(e), " (",
                                          cudaGetErrorString(e), ") in ", expr));
}

absl::Status NcclError(ncclResult_t r, ncclComm_t comm, const char* expr) {
  const char* last = comm != nullptr ? ncclGetLastError(comm) : "";
  const std::string msg = absl::StrCat("NCCL error ", ncclGetErrorString(r), " in ", expr,
                                       (last != nullptr && *last) ? ": " : "",
                                       last != nullptr ? last : "");
  switch (r) {
    case ncclRemoteError:
    case ncclSystemError: return absl::UnavailableError(msg);
    case ncclInvalidArgument:
    case ncclInvalidUsage: return absl::InvalidArgumentError(msg);
    default: return absl::InternalError(msg);
  }
}

#define ANVIL_CUDA_RETURN(expr)                                                     \
  do {                                                                              \
    cudaError_t _anvil_e = (expr);                                                  \
    if (_anvil_e != cudaSuccess) {                                                  \
      return ::anvil::AnnotateStatus(CudaError(_anvil_e, #expr), __FILE__, __LINE__); \
    }                                                                               \
  } while (0)

// A non-blocking communicator may answer ncclInProgress; poll until the call
// has been taken in (or failed), bounded by `deadline`.
absl::Status SettleNccl(ncclComm_t comm, ncclResult_t r, const char* expr, absl::Time deadline) {
  while (r == ncclInProgress) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("NCCL ", expr, " still in progress at deadline"));
    }
    absl::SleepFor(absl::Microseconds(50));
    ncclResult_t state = ncclSuccess;
    const ncclResult_t q = ncclCommGetAsyncError(comm, &state);
    r = q != ncclSuccess ? q : state;
  }
  return r == ncclSuccess ? absl::OkStatus() : NcclError(r, comm, expr);
}

#define ANVIL_NCCL_RETURN(comm, deadline, expr)                                          \
  do {                                                                                   \
    absl::Status _anvil_st = SettleNccl((comm), (expr), #expr, (deadline));              \
    if (!_anvil_st.ok()) return ::anvil::AnnotateStatus(_anvil_st, __FILE__, __LINE__); \
  } while (0)

ncclDataType_t ToNccl(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
    case DType::kU8: return ncclUint8;
  }
  return ncclUint8;
}

bool StagedInFp32(DType dtype, ReduceOp op, Accumulation acc) {
  return (dtype == DType::kBF16 || dtype == DType::kF16) && op != ReduceOp::kMax &&
         acc == Accumulation::kFloat32;
}

// One issued collective: its completion event and final status.
struct OpState {
  cudaEvent_t done = nullptr;
  std::atomic<bool> finished{false};
  absl::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);

  ~OpState() {
    if (done != nullptr) cudaEventDestroy(done);
  }
  // First call wins: a Work completes exactly once.
  void Finish(absl::Status st) {
    absl::MutexLock lock(&mu);
    if (finished.load(std::memory_order_relaxed)) return;
    status = std::move(st);
    finished.store(true, std::memory_order_release);
  }
  absl::Status Status() {
    absl::MutexLock lock(&mu);
    return status;
  }
};

struct Pending {
  std::shared_ptr<OpState> op;
  absl::Time deadline;
  std::string what;
};

}  // namespace

struct NcclProcessGroup::Shared {
  explicit Shared(int d) : device(d) {}
  const int device;
  absl::Mutex mu;
  absl::Status broken ABSL_GUARDED_BY(mu);
  std::deque<Pending> pending ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  // The communicator; written only with the group's issue lock held too.
  ncclComm_t comm = nullptr;

  // Records the first error, aborts the communicator and fails every
  // pending op. Caller holds the group's issue lock (so no enqueue runs).
  void Break(absl::Status st) {
    absl::MutexLock lock(&mu);
    if (broken.ok()) broken = st;
    if (comm != nullptr) {
      ncclCommAbort(comm);
      comm = nullptr;
    }
    for (Pending& p : pending) p.op->Finish(broken);
    pending.clear();
  }
};

namespace {

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<OpState> op, cudaStream_t caller,
           std::shared_ptr<NcclProcessGroup::Shared> shared)
      : op_(std::move(op)), caller_(caller), shared_(std::move(shared)) {}

  absl::Status Wait(absl::Duration /*timeout*/) override {
    DeviceGuard guard(shared_->device);
    ANVIL_CUDA_RETURN(cudaStreamWaitEvent(caller_, op_->done, 0));
    if (op_->finished.load(std::memory_order_acquire)) return op_->Status();
    absl::MutexLock lock(&shared_->mu);
    return shared_->broken;
  }

  bool IsCompleted() override {
    if (op_->finished.load(std::memory_order_acquire)) return true;
    absl::MutexLock lock(&shared_->mu);
    if (!shared_->broken.ok()) {
      op_->Finish(shared_->broken);
      return true;
    }
    DeviceGuard guard(shared_->device);
    const cudaError_t q = cudaEventQuery(op_->done);
    if (q == cudaErrorNotReady) return false;
    op_->Finish(q == cudaSuccess ? absl::OkStatus() : CudaError(q, "cudaEventQuery"));
    return true;
  }

 private:
  std::shared_ptr<OpState> op_;
  cudaStream_t caller_;
  std::shared_ptr<NcclProcessGroup::Shared> shared_;
};

std::shared_ptr<Work> DoneWork(absl::Status st) {
  // A Work that is already complete; needs no CUDA state.
  class Done : public Work {
   public:
    explicit Done(absl::Status s) : st_(std::move(s)) {}
    absl::Status Wait(absl::Duration) override { return st_; }
    bool IsCompleted() override { return true; }

   private:
    absl::Status st_;
  };
  return std::make_shared<Done>(std::move(st));
}

absl::Status CheckBuffer(const void* data, size_t count) {
  if (data == nullptr && count > 0) {
    return absl::InvalidArgumentError("collective: null buffer with a non-zero count");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<NcclProcessGroup>> NcclProcessGroup::Create(
    const NcclOptions& options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("NcclOptions.store is null");
  if (options.size <= 0 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(absl::StrCat("NcclOptions: rank ", options.rank,
                                                   " is not in [0, size=", options.size, ")"));
  }
  int device = options.device;
  if (device < 0) ANVIL_CUDA_RETURN(cudaGetDevice(&device));
  DeviceGuard guard(device);
  const absl::Time deadline = absl::Now() + options.timeout;

  // Unique id through the store.
  PrefixStore store(options.name, options.store);
  ncclUniqueId id;
  if (options.rank == 0) {
    ANVIL_NCCL_RETURN(nullptr, deadline, ncclGetUniqueId(&id));
    RETURN_IF_ERROR_HERE(store.Set(kUniqueIdKey, std::string_view(id.internal, sizeof(id.internal))));
  } else {
    ASSIGN_OR_RETURN(std::string bytes, store.Get(kUniqueIdKey, options.timeout));
    if (bytes.size() != sizeof(id.internal)) {
      return absl::InternalError(absl::StrCat("NCCL unique id in the store has ", bytes.size(),
                                              " bytes, want ", sizeof(id.internal)));
    }
    std::memcpy(id.internal, bytes.data(), bytes.size());
  }

  // Non-blocking init, polled so that a missing rank becomes a timeout.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, options.size, id, options.rank, &config);
  absl::Status st = SettleNccl(comm, r, "ncclCommInitRankConfig", deadline);
  if (!st.ok()) {
    if (comm != nullptr) ncclCommAbort(comm);
    return AnnotateStatus(
        absl::Status(st.code(), absl::StrCat("group '", options.name, "' rank ", options.rank, "/",
                                             options.size, ": ", st.message())),
        __FILE__, __LINE__);
  }

  cudaStream_t stream = nullptr;
  void* barrier_buf = nullptr;
  cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMalloc(&barrier_buf, sizeof(int32_t));
  if (e != cudaSuccess) {
    ncclCommAbort(comm);
    return AnnotateStatus(CudaError(e, "stream/barrier buffer"), __FILE__, __LINE__);
  }
  return std::unique_ptr<NcclProcessGroup>(
      new NcclProcessGroup(options, device, comm, stream, barrier_buf));
}

NcclProcessGroup::NcclProcessGroup(const NcclOptions& options, int device, ncclComm_t comm,
                                   cudaStream_t stream, void* barrier_buf)
    : base_store_(options.store),
      store_(std::make_shared<PrefixStore>(options.name, options.store)),
      name_(options.name),
      rank_(options.rank),
      size_(options.size),
      device_(device),
      timeout_(options.timeout),
      stream_(stream),
      barrier_buf_(barrier_buf),
      shared_(std::make_shared<Shared>(device)) {
  shared_->comm = comm;
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

NcclProcessGroup::~NcclProcessGroup() {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stop = true;
  }
  watchdog_.join();
  DeviceGuard guard(device_);
  absl::MutexLock issue(&mu_);
  // Let queued work drain, bounded by the timeout; abort what hangs.
  const absl::Time deadline = absl::Now() + timeout_;
  while (cudaStreamQuery(stream_) == cudaErrorNotReady && absl::Now() < deadline) {
    absl::SleepFor(kPoll);
  }
  if (cudaStreamQuery(stream_) == cudaErrorNotReady) {
    shared_->Break(absl::DeadlineExceededError(
        absl::StrCat("group '", name_, "' destroyed with collectives still running")));
  }
  {
    absl::MutexLock lock(&shared_->mu);
    for (Pending& p : shared_->pending) p.op->Finish(absl::OkStatus());
    shared_->pending.clear();
    if (shared_->comm != nullptr) {
      ncclCommDestroy(shared_->comm);
      shared_->comm = nullptr;
    }
    if (shared_->broken.ok()) shared_->broken = absl::CancelledError("process group destroyed");
  }
  cudaStreamSynchronize(stream_);
  if (scratch_ != nullptr) cudaFree(scratch_);
  cudaFree(barrier_buf_);
  cudaStreamDestroy(stream_);
}

void NcclProcessGroup::WatchdogLoop() {
  DeviceGuard guard(device_);
  while (true) {
    absl::Status failure;
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->stop) return;
      const absl::Time now = absl::Now();
      while (!shared_->pending.empty()) {
        Pending& p = shared_->pending.front();
        const cudaError_t q = cudaEventQuery(p.op->done);
        if (q == cudaSuccess) {
          p.op->Finish(absl::OkStatus());
          shared_->pending.pop_front();
          continue;
        }
        if (q != cudaErrorNotReady) {
          failure = CudaError(q, "cudaEventQuery");
        } else if (now > p.deadline) {
          failure = absl::DeadlineExceededError(
              absl::StrCat("NCCL ", p.what, " (group '", name_, "', rank ", rank_, "/", size_,
                           ") did not finish within its timeout; communicator aborted"));
        }
        break;  // later ops run after this one on the stream
      }
    }
    // Asynchronous NCCL errors (a peer vanished, a network error). TryLock:
    // never wait behind an enqueue; the next round will look again.
    if (failure.ok() && mu_.TryLock()) {
      ncclComm_t comm = shared_->comm;
      if (comm != nullptr) {
        ncclResult_t state = ncclSuccess;
        const ncclResult_t q = ncclCommGetAsyncError(comm, &state);
        const ncclResult_t r = q != ncclSuccess ? q : state;
        if (r != ncclSuccess && r != ncclInProgress) {
          failure = NcclError(r, comm, "ncclCommGetAsyncError");
        }
      }
      mu_.Unlock();
    }
    if (!failure.ok()) {
      absl::MutexLock issue(&mu_);
      shared_->Break(AnnotateStatus(failure, __FILE__, __LINE__));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status NcclProcessGroup::EnsureScratch(size_t elems, cudaStream_t stream) {
  if (scratch_elems_ >= elems) return absl::OkStatus();
  if (scratch_ != nullptr) ANVIL_CUDA_RETURN(cudaFreeAsync(scratch_, stream));
  scratch_ = nullptr;
  scratch_elems_ = 0;
  ANVIL_CUDA_RETURN(cudaMallocAsync(reinterpret_cast<void**>(&scratch_), elems * sizeof(float), stream));
  scratch_elems_ = elems;
  return absl::OkStatus();
}

std::shared_ptr<Work> NcclProcessGroup::Issue(const char* what, void* caller_stream,
                                              absl::Duration timeout, const Enqueue& enqueue) {
  DeviceGuard guard(device_);
  absl::MutexLock issue(&mu_);
  {
    absl::MutexLock lock(&shared_->mu);
    if (!shared_->broken.ok()) {
      return DoneWork(absl::Status(shared_->broken.code(),
                                   absl::StrCat("process group '", name_, "' is broken: ",
                                                shared_->broken.message())));
    }
  }
  cudaStream_t caller = static_cast<cudaStream_t>(caller_stream);
  auto op = std::make_shared<OpState>();
  absl::Status st = [&]() -> absl::Status {
    cudaEvent_t ready = nullptr;
    ANVIL_CUDA_RETURN(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    cudaError_t e = cudaEventRecord(ready, caller);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(stream_, ready, 0);
    cudaEventDestroy(ready);
    ANVIL_CUDA_RETURN(e);
    RETURN_IF_ERROR(enqueue(stream_));
    ANVIL_CUDA_RETURN(cudaEventCreateWithFlags(&op->done, cudaEventDisableTiming));
    ANVIL_CUDA_RETURN(cudaEventRecord(op->done, stream_));
    return absl::OkStatus();
  }();
  if (!st.ok()) {
    // The stream's state is unknown after a failed enqueue: break the group.
    shared_->Break(st);
    return DoneWork(st);
  }
  {
    absl::MutexLock lock(&shared_->mu);
    const absl::Duration t = timeout > absl::ZeroDuration() ? timeout : timeout_;
    shared_->pending.push_back({op, absl::Now() + t, what});
  }
  return std::make_shared<NcclWork>(op, caller, shared_);
}

std::shared_ptr<Work> NcclProcessGroup::AllReduce(void* data, size_t count,
                                                  const AllReduceOptions& o) {
  absl::Status st = CheckBuffer(data, count);
  if (st.ok()) st = collectives_internal::CheckReducible(o.dtype, o.op);
  if (!st.ok()) return DoneWork(st);
  const absl::Time deadline = absl::Now() + (o.timeout > absl::ZeroDuration() ? o.timeout : timeout_);
  const int divisor = o.op == ReduceOp::kAvg ? size_ : 1;
  return Issue("allreduce", o.stream, o.timeout, [&, this](cudaStream_t s) -> absl::Status {
    ncclComm_t comm = shared_->comm;
    if (StagedInFp32(o.dtype, o.op, o.accumulation)) {
      RETURN_IF_ERROR(EnsureScratch(count, s));
      ANVIL_CUDA_RETURN(nccl_internal::LaunchWiden(o.dtype, data, scratch_, count, s));
      ANVIL_NCCL_RETURN(comm, deadline,
                        ncclAllReduce(scratch_, scratch_, count, ncclFloat32, ncclSum, comm, s));
      ANVIL_CUDA_RETURN(nccl_internal::LaunchNarrow(o.dtype, scratch_, data, count, divisor, s));
      return absl::OkStatus();
    }
    const ncclRedOp_t op = o.op == ReduceOp::kMax ? ncclMax : ncclSum;
    ANVIL_NCCL_RETURN(comm, deadline, ncclAllReduce(data, data, count, ToNccl(o.dtype), op, comm, s));
    if (divisor != 1) ANVIL_CUDA_RETURN(nccl_internal::LaunchDivide(o.dtype, data, count, divisor, s));
    return absl::OkStatus();
  });
}

std::shared_ptr<Work> NcclProcessGroup::ReduceScatter(void* data, size_t shard,
                                                      const ReduceScatterOptions& o) {
  absl::Status st = CheckBuffer(data, shard);
  if (st.ok()) st = collectives_internal::CheckReducible(o.dtype, o.op);
  if (!st.ok()) return DoneWork(st);
  const absl::Time deadline = absl::Now() + (o.timeout > absl::ZeroDuration() ? o.timeout : timeout_);
  const int divisor = o.op == ReduceOp::kAvg ? size_ : 1;
  void* own = static_cast<uint8_t*>(data) + rank_ * shard * DTypeSize(o.dtype);
  return Issue("reduce_scatter", o.stream, o.timeout, [&, this](cudaStream_t s) -> absl::Status {
    ncclComm_t comm = shared_->comm;
    if (StagedInFp32(o.dtype, o.op, o.accumulation)) {
      const size_t total = shard * size_;
      RETURN_IF_ERROR(EnsureScratch(total, s));
      float* own_f = scratch_ + rank_ * shard;
      ANVIL_CUDA_RETURN(nccl_internal::LaunchWiden(o.dtype, data, scratch_, total, s));
      ANVIL_NCCL_RETURN(comm, deadline,
                        ncclReduceScatter(scratch_, own_f, shard, ncclFloat32, ncclSum, comm, s));
      ANVIL_CUDA_RETURN(nccl_internal::LaunchNarrow(o.dtype, own_f, own, shard, divisor, s));
      return absl::OkStatus();
    }
    const ncclRedOp_t op = o.op == ReduceOp::kMax ? ncclMax : ncclSum;
    ANVIL_NCCL_RETURN(comm, deadline,
                      ncclReduceScatter(data, own, shard, ToNccl(o.dtype), op, comm, s));
    if (divisor != 1) ANVIL_CUDA_RETURN(nccl_internal::LaunchDivide(o.dtype, own, shard, divisor, s));
    return absl::OkStatus();
  });
}

std::shared_ptr<Work> NcclProcessGroup::AllGather(void* data, size_t shard,
                                                  const AllGatherOptions& o) {
  absl::Status st = CheckBuffer(data, shard);
  if (!st.ok()) return DoneWork(st);
  const absl::Time deadline = absl::Now() + (o.timeout > absl::ZeroDuration() ? o.timeout : timeout_);
  const void* own = static_cast<uint8_t*>(data) + rank_ * shard * DTypeSize(o.dtype);
  return Issue("allgather", o.stream, o.timeout, [&, this](cudaStream_t s) -> absl::Status {
    ncclComm_t comm = shared_->comm;
    ANVIL_NCCL_RETURN(comm, deadline, ncclAllGather(own, data, shard, ToNccl(o.dtype), comm, s));
    return absl::OkStatus();
  });
}

std::shared_ptr<Work> NcclProcessGroup::Broadcast(void* data, size_t count,
                                                  const BroadcastOptions& o) {
  absl::Status st = CheckBuffer(data, count);
  if (st.ok() && (o.root < 0 || o.root >= size_)) {
    st = absl::InvalidArgumentError(
        absl::StrCat("Broadcast: root ", o.root, " is not in [0, ", size_, ")"));
  }
  if (!st.ok()) return DoneWork(st);
  const absl::Time deadline = absl::Now() + (o.timeout > absl::ZeroDuration() ? o.timeout : timeout_);
  return Issue("broadcast", o.stream, o.timeout, [&, this](cudaStream_t s) -> absl::Status {
    ncclComm_t comm = shared_->comm;
    ANVIL_NCCL_RETURN(comm, deadline,
                      ncclBroadcast(data, data, count, ToNccl(o.dtype), o.root, comm, s));
    return absl::OkStatus();
  });
}

std::shared_ptr<Work> NcclProcessGroup::Barrier(const BarrierOptions& o) {
  const absl::Time deadline = absl::Now() + (o.timeout > absl::ZeroDuration() ? o.timeout : timeout_);
  return Issue("barrier", nullptr, o.timeout, [&, this](cudaStream_t s) -> absl::Status {
    ncclComm_t comm = shared_->comm;
    ANVIL_NCCL_RETURN(comm, deadline,
                      ncclAllReduce(barrier_buf_, barrier_buf_, 1, ncclInt32, ncclSum, comm, s));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<ProcessGroup>> NcclProcessGroup::Split(const SplitOptions& options) {
  const absl::Duration timeout =
      options.timeout > absl::ZeroDuration() ? options.timeout : timeout_;
  ASSIGN_OR_RETURN(SplitPlan plan,
                   PlanSplit(*store_, name_, split_seq_++, rank_, size_, options, timeout));
  NcclOptions child;
  child.store = base_store_;
  child.rank = plan.rank;
  child.size = plan.size();
  child.device = device_;
  child.timeout = timeout_;
  child.name = plan.name;
  ASSIGN_OR_RETURN(std::unique_ptr<NcclProcessGroup> group, Create(child));
  return std::unique_ptr<ProcessGroup>(std::move(group));
}

}  // namespace anvil
