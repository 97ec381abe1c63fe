// GlooProcessGroup implementation: argument checks on the caller's thread,
// Gloo calls in the OpQueue executor.
#include "runtime/collectives/gloo/gloo_process_group.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "kernels/cpu/ops.h"
#include "runtime/collectives/gloo/abortable_transport.h"
#include "runtime/collectives/gloo/device_address.h"
#include "runtime/collectives/gloo/direct_reduce_scatter.h"
#include "runtime/collectives/gloo/gloo_store_adapter.h"
#include "runtime/collectives/gloo/halving_reduce_scatter.h"
#include "runtime/collectives/gloo/ring_reduce_scatter.h"
#include "runtime/collectives/reduce_kernels.h"
#include "runtime/collectives/split_plan.h"
#include "runtime/collectives/stop_abort.h"
#include "runtime/store/prefix_store.h"

namespace anvil {
namespace {

using collectives_internal::CheckReducible;
using collectives_internal::DivideFloats;
using collectives_internal::DivideInPlace;
using collectives_internal::GetReduceFn;

// Chunks up to this size use the one-step direct reduce-scatter.
constexpr size_t kDirectReduceScatterMaxChunkBytes = 32 << 10;

bool IsHalf(DType t) { return t == DType::kBF16 || t == DType::kF16; }

bool StagedInFp32(DType dtype, ReduceOp op, Accumulation acc) {
  return IsHalf(dtype) && op != ReduceOp::kMax && acc == Accumulation::kFloat32;
}

void SetAllreduceOutput(gloo::AllreduceOptions& o, void* data, size_t count, size_t es) {
  switch (es) {
    case 2: o.setOutput(static_cast<uint16_t*>(data), count); break;
    case 4: o.setOutput(static_cast<uint32_t*>(data), count); break;
    case 8: o.setOutput(static_cast<uint64_t*>(data), count); break;
    default: o.setOutput(static_cast<uint8_t*>(data), count * es); break;
  }
}

absl::Status CheckBuffer(const void* data, size_t count) {
  if (data == nullptr && count > 0) {
    return absl::InvalidArgumentError("collective: null buffer with a non-zero count");
  }
  return absl::OkStatus();
}

// Gloo writes to sockets with writev, which raises SIGPIPE when a peer has
// died; the default action would kill this process silently instead of
// letting the write fail with EPIPE and become an error Status. Python
// ignores SIGPIPE, which is why Gloo itself never needed to.
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current = {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

absl::Status FromGlooException(const char* what, const std::string& where, const char* msg,
                               bool is_io) {
  const std::string text = absl::StrCat("gloo ", what, " (", where, "): ", msg);
  if (absl::StrContains(msg, "Timed out") || absl::StrContains(msg, "timed out") ||
      absl::StrContains(msg, "timeout")) {
    return absl::DeadlineExceededError(text);
  }
  return is_io ? absl::UnavailableError(text) : absl::InternalError(text);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GlooProcessGroup>> GlooProcessGroup::Create(
    const GlooOptions& options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("GlooOptions.store is null");
  if (options.size <= 0 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(absl::StrCat("GlooOptions: rank ", options.rank,
                                                   " is not in [0, size=", options.size, ")"));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("GlooOptions.timeout must be positive");
  }
  IgnoreSigpipeOnce();
  // Gloo gets an interface or a numeric address known to bind (it crashes
  // on a name that does not resolve).
  DeviceAddressRequest request;
  request.iface = options.iface;
  request.address = options.hostname;
  request.single_node = options.single_node;
  ASSIGN_OR_RETURN(const DeviceAddress where, ChooseDeviceAddress(request));
  if (!where.note.empty() && options.rank == 0) {
    std::fprintf(stderr, "gloo: %s\n", where.note.c_str());
  }
  gloo::transport::tcp::attr attr;
  if (!where.iface.empty()) {
    attr.iface = where.iface;
  } else {
    attr.hostname = where.address;
  }
  std::shared_ptr<gloo::transport::Device> device;
  try {
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return AnnotateStatus(
        absl::UnavailableError(absl::StrCat("gloo: cannot create TCP device for ",
                                            attr.iface.empty() ? attr.hostname : attr.iface, ": ",
                                            e.what())),
        __FILE__, __LINE__);
  }
  return Connect(Bootstrap{options.store, std::move(device), options.name, options.rank,
                           options.size, options.timeout});
}

absl::StatusOr<std::unique_ptr<GlooProcessGroup>> GlooProcessGroup::Connect(Bootstrap b) {
  auto store = std::make_shared<PrefixStore>(b.name, b.base_store);
  auto context = std::make_shared<gloo::rendezvous::Context>(b.rank, b.size);
  // The context's timeout bounds every wait that names none of its own.
  context->setTimeout(absl::ToChronoMilliseconds(b.timeout));
  GlooStoreAdapter adapter(store, b.timeout);
  auto abort_state = std::make_shared<collectives_internal::AbortState>();
  try {
    std::shared_ptr<gloo::transport::Device> device =
        collectives_internal::MakeAbortableDevice(b.device, abort_state);
    context->connectFullMesh(adapter, device);
  } catch (const std::exception& e) {
    return AnnotateStatus(
        FromGlooException("connectFullMesh",
                          absl::StrCat("group '", b.name, "', rank ", b.rank, "/", b.size),
                          e.what(), /*is_io=*/true),
        __FILE__, __LINE__);
  }
  collectives_internal::WatchForStop(abort_state);
  return std::unique_ptr<GlooProcessGroup>(
      new GlooProcessGroup(std::move(b), std::move(context), std::move(abort_state)));
}

GlooProcessGroup::GlooProcessGroup(Bootstrap b, std::shared_ptr<gloo::Context> context,
                                   std::shared_ptr<collectives_internal::AbortState> abort_state)
    : base_store_(b.base_store),
      store_(std::make_shared<PrefixStore>(b.name, b.base_store)),
      device_(std::move(b.device)),
      name_(b.name),
      rank_(b.rank),
      size_(b.size),
      timeout_(b.timeout),
      trace_(b.name),
      abort_(std::move(abort_state)),
      context_(std::move(context)),
      queue_(b.name) {}

GlooProcessGroup::~GlooProcessGroup() = default;

std::chrono::milliseconds GlooProcessGroup::OpTimeout(absl::Duration requested) const {
  return absl::ToChronoMilliseconds(requested > absl::ZeroDuration() ? requested : timeout_);
}

float* GlooProcessGroup::Fp32Scratch(size_t n) {
  if (fp32_scratch_size_ < n) {
    fp32_scratch_.reset(new float[n]);  // uninitialised on purpose: always overwritten
    fp32_scratch_size_ = n;
  }
  return fp32_scratch_.get();
}

absl::Status GlooProcessGroup::RunGloo(const char* what, uint32_t tag, uint64_t bytes,
                                       const std::function<void()>& body) {
  if (context_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("gloo ", what, ": group '", name_,
                                                      "' has no connections (earlier failure)"));
  }
  std::string error;
  bool io = true;
  // A group aborted while idle (its peer's connection closed, or a stop)
  // fails its next collective without touching the network.
  struct Bracket {
    collectives_internal::AbortState& state;
    CollectiveTrace& trace;
    Bracket(collectives_internal::AbortState& s, CollectiveTrace& t, uint32_t tag, const char* op,
            uint64_t bytes)
        : state(s), trace(t) {
      state.OpStarted();
      trace.Enter(tag, op, bytes);
    }
    ~Bracket() {
      trace.Exit();
      state.OpFinished();
    }
  };
  try {
    Bracket bracket(*abort_, trace_, tag, what, bytes);
    if (abort_->aborted()) throw gloo::IoException(abort_->reason());
    body();
    return absl::OkStatus();
  } catch (const gloo::IoException& e) {
    error = e.what();
  } catch (const gloo::EnforceNotMet& e) {
    error = e.what();
    io = false;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  const std::string where =
      absl::StrCat("group '", name_, "', rank ", rank_, "/", size_, ", op #", tag);
  absl::Status st = FromGlooException(what, where, error.c_str(), io);
  // Publish what this rank issued before closing its connections: a peer
  // that fails because they closed finds it already in the store.
  const bool published = store_->Set(absl::StrCat("trace/", rank_), EncodeTrace(trace_.Recent())).ok();
  // Close every connection now: peers blocked on this rank fail at once
  // instead of at their own timeout, and nothing can write into the
  // caller's buffers after the error is reported. Buffers registered with
  // the context go first (they hold references to it).
  rs_scratch_.reset();
  context_.reset();
  // Every failing rank says what it issued. A rank that timed out waits a
  // few seconds for the others' traces; a rank whose peer closed the
  // connection (that peer timed out, or died) reads those already there.
  // Either way a mismatch is named, not guessed.
  std::string diagnosis = trace_.Describe();
  if (st.code() == absl::StatusCode::kDeadlineExceeded || st.code() == absl::StatusCode::kUnavailable) {
    const absl::Duration wait = st.code() == absl::StatusCode::kDeadlineExceeded
                                    ? std::min(timeout_, absl::Seconds(3))
                                    : absl::ZeroDuration();
    absl::StrAppend(&diagnosis, "; ",
                    published ? CompareTraces(wait) : "could not publish this rank's trace");
  }
  std::fprintf(stderr, "collectives: rank %d: %s\n", rank_, diagnosis.c_str());
  std::fflush(stderr);
  st = absl::Status(st.code(), absl::StrCat(st.message(), "; ", diagnosis));
  return AnnotateStatus(st, __FILE__, __LINE__);
}

std::string GlooProcessGroup::CompareTraces(absl::Duration wait) {
  std::map<int, std::vector<CollectiveEntry>> by_rank;
  by_rank[rank_] = trace_.Recent();
  const absl::Time deadline = absl::Now() + wait;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    absl::StatusOr<std::string> v =
        store_->Get(absl::StrCat("trace/", r), std::max(deadline - absl::Now(), absl::Milliseconds(1)));
    if (v.ok()) by_rank[r] = DecodeTrace(*v);
  }
  return anvil::CompareTraces(by_rank, size_);
}

std::shared_ptr<Work> GlooProcessGroup::AllReduce(void* data, size_t count,
                                                  const AllReduceOptions& options) {
  absl::Status st = CheckBuffer(data, count);
  if (st.ok()) st = CheckReducible(options.dtype, options.op);
  if (!st.ok()) return CpuWork::Done(std::move(st));
  return queue_.Enqueue([=, this] { return DoAllReduce(data, count, options); });
}

std::shared_ptr<Work> GlooProcessGroup::ReduceScatter(void* data, size_t shard_count,
                                                      const ReduceScatterOptions& options) {
  absl::Status st = CheckBuffer(data, shard_count);
  if (st.ok()) st = CheckReducible(options.dtype, options.op);
  if (!st.ok()) return CpuWork::Done(std::move(st));
  return queue_.Enqueue([=, this] { return DoReduceScatter(data, shard_count, options); });
}

std::shared_ptr<Work> GlooProcessGroup::AllGather(void* data, size_t shard_count,
                                                  const AllGatherOptions& options) {
  absl::Status st = CheckBuffer(data, shard_count);
  if (!st.ok()) return CpuWork::Done(std::move(st));
  return queue_.Enqueue([=, this] { return DoAllGather(data, shard_count, options); });
}

std::shared_ptr<Work> GlooProcessGroup::Broadcast(void* data, size_t count,
                                                  const BroadcastOptions& options) {
  absl::Status st = CheckBuffer(data, count);
  if (st.ok() && (options.root < 0 || options.root >= size_)) {
    st = absl::InvalidArgumentError(
        absl::StrCat("Broadcast: root ", options.root, " is not in [0, ", size_, ")"));
  }
  if (!st.ok()) return CpuWork::Done(std::move(st));
  return queue_.Enqueue([=, this] { return DoBroadcast(data, count, options); });
}

std::shared_ptr<Work> GlooProcessGroup::Barrier(const BarrierOptions& options) {
  return queue_.Enqueue([=, this] { return DoBarrier(options); });
}

absl::StatusOr<std::unique_ptr<ProcessGroup>> GlooProcessGroup::Split(const SplitOptions& options) {
  const absl::Duration timeout =
      options.timeout > absl::ZeroDuration() ? options.timeout : timeout_;
  ASSIGN_OR_RETURN(SplitPlan plan,
                   PlanSplit(*store_, name_, split_seq_++, rank_, size_, options, timeout));
  ASSIGN_OR_RETURN(std::unique_ptr<GlooProcessGroup> child,
                   Connect(Bootstrap{base_store_, device_, plan.name, plan.rank, plan.size(),
                                     timeout_}));
  return std::unique_ptr<ProcessGroup>(std::move(child));
}

absl::Status GlooProcessGroup::DoAllReduce(void* data, size_t count, AllReduceOptions o) {
  const uint32_t tag = NextTag();
  if (count == 0 || size_ == 1) return absl::OkStatus();
  const auto timeout = OpTimeout(o.timeout);
  if (StagedInFp32(o.dtype, o.op, o.accumulation)) {
    float* f = Fp32Scratch(count);
    kernels::cpu::Convert(1, f, DType::kF32, data, o.dtype, count);
    RETURN_IF_ERROR_HERE(RunGloo("allreduce", tag, count * DTypeSize(o.dtype), [&] {
      gloo::AllreduceOptions g(context_);
      g.setOutput(f, count);
      g.setReduceFunction(GetReduceFn(DType::kF32, ReduceOp::kSum));
      g.setTag(tag);
      g.setTimeout(timeout);
      gloo::allreduce(g);
    }));
    if (o.op == ReduceOp::kAvg) DivideFloats(f, count, size_);
    kernels::cpu::Convert(1, data, o.dtype, f, DType::kF32, count);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR_HERE(RunGloo("allreduce", tag, count * DTypeSize(o.dtype), [&] {
    gloo::AllreduceOptions g(context_);
    SetAllreduceOutput(g, data, count, DTypeSize(o.dtype));
    g.setReduceFunction(GetReduceFn(o.dtype, o.op));
    g.setTag(tag);
    g.setTimeout(timeout);
    gloo::allreduce(g);
  }));
  if (o.op == ReduceOp::kAvg) DivideInPlace(data, count, o.dtype, size_);
  return absl::OkStatus();
}

absl::Status GlooProcessGroup::DoReduceScatter(void* data, size_t shard_count,
                                               ReduceScatterOptions o) {
  const uint32_t tag = NextTag();
  if (shard_count == 0 || size_ == 1) return absl::OkStatus();
  const size_t es = DTypeSize(o.dtype);
  collectives_internal::ReduceScatterArgs args;
  args.chunk_elems = shard_count;
  args.tag = tag;
  args.timeout = OpTimeout(o.timeout);
  void* own = static_cast<uint8_t*>(data) + rank_ * shard_count * es;
  if (StagedInFp32(o.dtype, o.op, o.accumulation)) {
    const size_t total = shard_count * size_;
    float* f = Fp32Scratch(total);
    kernels::cpu::Convert(1, f, DType::kF32, data, o.dtype, total);
    args.data = f;
    args.elem_size = sizeof(float);
    args.reduce = GetReduceFn(DType::kF32, ReduceOp::kSum);
    RETURN_IF_ERROR_HERE(
        RunGloo("reduce_scatter", tag, shard_count * size_ * es, [&] { RunReduceScatter(args); }));
    float* own_f = f + rank_ * shard_count;
    if (o.op == ReduceOp::kAvg) DivideFloats(own_f, shard_count, size_);
    kernels::cpu::Convert(1, own, o.dtype, own_f, DType::kF32, shard_count);
    return absl::OkStatus();
  }
  args.data = data;
  args.elem_size = es;
  args.reduce = GetReduceFn(o.dtype, o.op);
  RETURN_IF_ERROR_HERE(
        RunGloo("reduce_scatter", tag, shard_count * size_ * es, [&] { RunReduceScatter(args); }));
  if (o.op == ReduceOp::kAvg) DivideInPlace(own, shard_count, o.dtype, size_);
  return absl::OkStatus();
}

void GlooProcessGroup::RunReduceScatter(collectives_internal::ReduceScatterArgs args) {
  // Segments: 1 MiB, or an eighth of a chunk up to 8 MiB, so that a large
  // reduce-scatter is not paced by one wake-up per MiB.
  const size_t chunk_bytes = args.chunk_elems * args.elem_size;
  args.max_segment_bytes = std::clamp<size_t>(chunk_bytes / 8, size_t{1} << 20, size_t{8} << 20);
  // Power-of-two groups beyond 2: recursive halving, log2(n) rounds (the
  // exchanges of Gloo's own halving-doubling). Otherwise one direct step
  // while latency dominates, the pipelined ring after. (With 2 ranks all
  // three are the same single exchange.)
  if (size_ > 2 && collectives_internal::IsPowerOfTwo(size_)) {
    collectives_internal::HalvingReduceScatter(context_, args, &rs_scratch_);
  } else if (chunk_bytes <= kDirectReduceScatterMaxChunkBytes) {
    collectives_internal::DirectReduceScatter(context_, args, &rs_scratch_);
  } else {
    collectives_internal::RingReduceScatter(context_, args, &rs_scratch_);
  }
}

absl::Status GlooProcessGroup::DoAllGather(void* data, size_t shard_count, AllGatherOptions o) {
  const uint32_t tag = NextTag();
  if (shard_count == 0 || size_ == 1) return absl::OkStatus();
  const size_t bytes = shard_count * DTypeSize(o.dtype) * size_;
  return RunGloo("allgather", tag, bytes, [&] {
    gloo::AllgatherOptions g(context_);
    g.setOutput(static_cast<uint8_t*>(data), bytes);
    g.setTag(tag);
    g.setTimeout(OpTimeout(o.timeout));
    gloo::allgather(g);
  });
}

absl::Status GlooProcessGroup::DoBroadcast(void* data, size_t count, BroadcastOptions o) {
  const uint32_t tag = NextTag();
  if (count == 0 || size_ == 1) return absl::OkStatus();
  return RunGloo("broadcast", tag, count * DTypeSize(o.dtype), [&] {
    gloo::BroadcastOptions g(context_);
    g.setOutput(static_cast<uint8_t*>(data), count * DTypeSize(o.dtype));
    g.setRoot(o.root);
    g.setTag(tag);
    g.setTimeout(OpTimeout(o.timeout));
    gloo::broadcast(g);
  });
}

absl::Status GlooProcessGroup::DoBarrier(BarrierOptions o) {
  const uint32_t tag = NextTag();
  if (size_ == 1) return absl::OkStatus();
  return RunGloo("barrier", tag, 0, [&] {
    gloo::BarrierOptions g(context_);
    g.setTag(tag);
    g.setTimeout(OpTimeout(o.timeout));
    gloo::barrier(g);
  });
}

}  // namespace anvil
