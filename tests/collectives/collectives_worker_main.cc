// collectives_worker: one rank of the multi-process collectives tests, run
// by collectives_process_test as a real process over loopback, meeting its
// peers through the gRPC store of an in-process RendezvousServer.
// Scenarios (--scenario):
//   matrix  every collective on a reduced dtype x size set, checked against
//           the reference; prints "OK" or "FAIL <what>".
//   hybrid  SplitHybrid(--local_size) and all-reduces in both sub-groups.
//   victim  barrier, prints "READY", then all-reduces (or broadcasts from
//           rank 0, --op) in a loop until one fails; prints
//           "ERROR <code> <ms since the last success>".
// Exit status: 0 when the scenario ran to its end (victim: an error was
// seen), 1 on a check failure, 2 on set-up failure.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/store/grpc_store.h"
#include "tests/collectives/reference.h"
#include "tests/collectives/test_util.h"

ABSL_FLAG(std::string, store, "", "host:port of the store server");
ABSL_FLAG(std::string, run_id, "collectives", "store namespace");
ABSL_FLAG(int, rank, -1, "rank");
ABSL_FLAG(int, size, 0, "world size");
ABSL_FLAG(std::string, scenario, "matrix", "matrix | hybrid | victim");
ABSL_FLAG(int, timeout_ms, 10000, "group timeout");
ABSL_FLAG(int, local_size, 2, "ranks per node for the hybrid scenario");
ABSL_FLAG(int, count, 1 << 16, "victim: floats per collective");
ABSL_FLAG(std::string, op, "allreduce", "victim: allreduce | broadcast (from rank 0)");

namespace anvil::testing {
namespace {

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int Fail(const std::string& what) {
  Say("FAIL " + what);
  return 1;
}

int RunMatrix(ProcessGroup& pg) {
  const int world = pg.size();
  const std::vector<size_t> sizes = {0, 1, 7, 1031, 65537};
  for (const ReduceCase& c : ReduceCases(sizes)) {
    // All-reduce.
    TypedBuffer buf(c.dtype, c.count);
    for (size_t i = 0; i < c.count; ++i) buf.Set(i, InputValue(c.dtype, c.seed, pg.rank(), i));
    absl::Status st =
        pg.AllReduce(buf.data(), c.count, {.dtype = c.dtype, .op = c.op, .accumulation = c.acc})
            ->Wait();
    if (!st.ok()) return Fail(st.ToString());
    for (size_t i = 0; i < c.count; ++i) {
      std::string err = CheckReduced(c, world, buf.Get(i), buf.GetInt(i), i);
      if (!err.empty()) return Fail("allreduce " + err);
    }
    // Reduce-scatter with the same count as the shard.
    TypedBuffer full(c.dtype, c.count * world);
    for (size_t i = 0; i < c.count * world; ++i) {
      full.Set(i, InputValue(c.dtype, c.seed, pg.rank(), i));
    }
    st = pg.ReduceScatter(full.data(), c.count,
                          {.dtype = c.dtype, .op = c.op, .accumulation = c.acc})
             ->Wait();
    if (!st.ok()) return Fail(st.ToString());
    for (size_t j = 0; j < c.count; ++j) {
      const size_t i = pg.rank() * c.count + j;
      std::string err = CheckReduced(c, world, full.Get(i), full.GetInt(i), i);
      if (!err.empty()) return Fail("reduce_scatter " + err);
    }
    // All-gather and broadcast move bytes: check them bit for bit.
    std::memset(full.data(), 0, c.count * world * DTypeSize(c.dtype));
    for (size_t j = 0; j < c.count; ++j) {
      full.Set(pg.rank() * c.count + j, InputValue(c.dtype, c.seed, pg.rank(), j));
    }
    st = pg.AllGather(full.data(), c.count, {.dtype = c.dtype})->Wait();
    if (!st.ok()) return Fail(st.ToString());
    for (int r = 0; r < world; ++r) {
      TypedBuffer want(c.dtype, c.count);
      for (size_t j = 0; j < c.count; ++j) want.Set(j, InputValue(c.dtype, c.seed, r, j));
      const size_t bytes = c.count * DTypeSize(c.dtype);
      if (std::memcmp(full.bytes() + r * bytes, want.bytes(), bytes) != 0) {
        return Fail(absl::StrCat("allgather ", Describe(c, world), ": slice ", r));
      }
    }
    const int root = static_cast<int>(c.seed % world);
    for (size_t i = 0; i < c.count; ++i) buf.Set(i, InputValue(c.dtype, c.seed + 7, pg.rank(), i));
    st = pg.Broadcast(buf.data(), c.count, {.dtype = c.dtype, .root = root})->Wait();
    if (!st.ok()) return Fail(st.ToString());
    for (size_t i = 0; i < c.count; ++i) {
      TypedBuffer want(c.dtype, 1);
      want.Set(0, InputValue(c.dtype, c.seed + 7, root, i));
      if (std::memcmp(buf.bytes() + i * DTypeSize(c.dtype), want.bytes(), DTypeSize(c.dtype)) != 0) {
        return Fail(absl::StrCat("broadcast ", Describe(c, world), " root ", root, " index ", i));
      }
    }
  }
  absl::Status st = pg.Barrier({})->Wait();
  if (!st.ok()) return Fail(st.ToString());
  Say("OK");
  return 0;
}

int RunHybrid(ProcessGroup& pg, int local_size) {
  absl::StatusOr<HybridGroups> groups = SplitHybrid(pg, local_size);
  if (!groups.ok()) return Fail(groups.status().ToString());
  const int node = pg.rank() / local_size;
  const int local = pg.rank() % local_size;
  const int nodes = pg.size() / local_size;
  if (groups->node_local->rank() != local || groups->node_local->size() != local_size ||
      groups->cross_node->rank() != node || groups->cross_node->size() != nodes) {
    return Fail("hybrid: wrong ranks/sizes");
  }
  // Sum of world ranks within my node, and across nodes at my local rank.
  std::vector<int64_t> a(5, pg.rank());
  std::vector<int64_t> b(5, pg.rank());
  auto wa = groups->node_local->AllReduce(a.data(), a.size(), {.dtype = DType::kI64});
  auto wb = groups->cross_node->AllReduce(b.data(), b.size(), {.dtype = DType::kI64});
  if (!wa->Wait().ok() || !wb->Wait().ok()) return Fail("hybrid: collective failed");
  int64_t want_a = 0;
  for (int l = 0; l < local_size; ++l) want_a += node * local_size + l;
  int64_t want_b = 0;
  for (int n = 0; n < nodes; ++n) want_b += n * local_size + local;
  if (a[4] != want_a || b[4] != want_b) {
    return Fail(absl::StrCat("hybrid: got ", a[4], "/", b[4], " want ", want_a, "/", want_b));
  }
  Say("OK");
  return 0;
}

int RunVictim(ProcessGroup& pg) {
  if (!pg.Barrier({})->Wait().ok()) return Fail("victim: first barrier");
  Say("READY");
  std::vector<float> buf(static_cast<size_t>(absl::GetFlag(FLAGS_count)), 1.0f);
  absl::Time last_ok = absl::Now();
  while (true) {
    absl::Status st = absl::GetFlag(FLAGS_op) == "broadcast"
                          ? pg.Broadcast(buf.data(), buf.size(), {.root = 0})->Wait()
                          : pg.AllReduce(buf.data(), buf.size(), {})->Wait();
    if (!st.ok()) {
      Say(absl::StrCat("ERROR ", absl::StatusCodeToString(st.code()), " ",
                       absl::ToInt64Milliseconds(absl::Now() - last_ok)));
      std::fprintf(stderr, "rank %d: %s\n", pg.rank(), st.ToString().c_str());
      return 0;
    }
    for (float& x : buf) x = 1.0f;
    last_ok = absl::Now();
  }
}

int Main() {
  GrpcStoreOptions store_options;
  store_options.address = absl::GetFlag(FLAGS_store);
  store_options.run_id = absl::GetFlag(FLAGS_run_id);
  absl::StatusOr<std::unique_ptr<GrpcStore>> store = GrpcStore::Create(store_options);
  if (!store.ok()) {
    Say("FAIL store: " + store.status().ToString());
    return 2;
  }
  GlooOptions options;
  options.store = std::shared_ptr<Store>(std::move(*store));
  options.rank = absl::GetFlag(FLAGS_rank);
  options.size = absl::GetFlag(FLAGS_size);
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.name = absl::GetFlag(FLAGS_scenario);
  options.hostname = "127.0.0.1";
  absl::StatusOr<std::unique_ptr<GlooProcessGroup>> pg = GlooProcessGroup::Create(options);
  if (!pg.ok()) {
    Say("FAIL group: " + pg.status().ToString());
    return 2;
  }
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  if (scenario == "matrix") return RunMatrix(**pg);
  if (scenario == "hybrid") return RunHybrid(**pg, absl::GetFlag(FLAGS_local_size));
  if (scenario == "victim") return RunVictim(**pg);
  Say("FAIL unknown scenario " + scenario);
  return 2;
}

}  // namespace
}  // namespace anvil::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return anvil::testing::Main();
}
