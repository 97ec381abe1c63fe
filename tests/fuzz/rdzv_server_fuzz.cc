// Fuzzes the rendezvous server's gRPC handlers (rendezvous and store) over a
// real loopback connection to an in-process RendezvousServer (multi-tenant,
// short timeouts). The input is a sequence of calls, each
//   [method byte][run-id byte][length byte][length bytes of request proto];
// bytes that do not parse as the request leave it empty. Every call must end
// with a status within its deadline; the server must stay up and answer a
// health-style store round trip after each input.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "launcher/server/server.h"
#include "proto/rendezvous.grpc.pb.h"
#include "proto/store.grpc.pb.h"
#include "runtime/store/grpc_channel.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

struct Fixture {
  anvil::RendezvousServer server;  // never destroyed: the process exits with it up
  std::unique_ptr<anvil::proto::RendezvousService::Stub> rdzv;
  std::unique_ptr<anvil::proto::StoreService::Stub> store;
};

Fixture& Get() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    anvil::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.rendezvous.join_timeout = absl::Milliseconds(200);
    o.rendezvous.last_call_timeout = absl::Milliseconds(50);
    o.rendezvous.heartbeat_timeout = absl::Milliseconds(300);
    absl::StatusOr<int> port = fx->server.Start(o);
    if (!port.ok()) std::abort();
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                  grpc::InsecureChannelCredentials());
    fx->rdzv = anvil::proto::RendezvousService::NewStub(ch);
    fx->store = anvil::proto::StoreService::NewStub(ch);
    return fx;
  }();
  return *f;
}

void Prepare(grpc::ClientContext& ctx, uint8_t run) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  if (run % 5 != 4) ctx.AddMetadata(anvil::kRunIdMetadataKey, "run" + std::to_string(run % 5));
}

template <typename Req, typename Resp, typename Call>
void Unary(uint8_t run, const std::string& bytes, Call call) {
  Req req;
  if (!req.ParseFromString(bytes)) req.Clear();
  Resp resp;
  grpc::ClientContext ctx;
  Prepare(ctx, run);
  (void)call(&ctx, req, &resp);
}

// One unary call of `stub`'s method M with a <Prefix>M<Request> made of the bytes.
#define ANVIL_FUZZ_UNARY(stub, Prefix, M)               \
  Unary<p::Prefix##M##Request, p::Prefix##M##Response>( \
      run, bytes, [&](auto* c, auto& q, auto* a) { return stub->M(c, q, a); })

void OneCall(Fixture& f, uint8_t op, uint8_t run, const std::string& bytes) {
  namespace p = anvil::proto;
  auto* r = f.rdzv.get();
  auto* s = f.store.get();
  switch (op % 12) {
    case 0:
      ANVIL_FUZZ_UNARY(r, Rdzv, Join);
      break;
    case 1:
      ANVIL_FUZZ_UNARY(r, Rdzv, Heartbeat);
      break;
    case 2:
      ANVIL_FUZZ_UNARY(r, Rdzv, Leave);
      break;
    case 3: {
      p::RdzvWatchRequest req;
      if (!req.ParseFromString(bytes)) req.Clear();
      grpc::ClientContext ctx;
      Prepare(ctx, run);
      std::unique_ptr<grpc::ClientReader<p::RdzvEvent>> reader = r->Watch(&ctx, req);
      p::RdzvEvent ev;
      (void)reader->Read(&ev);
      ctx.TryCancel();
      (void)reader->Finish();
      break;
    }
    case 4:
      ANVIL_FUZZ_UNARY(s, Store, Set);
      break;
    case 5:
      ANVIL_FUZZ_UNARY(s, Store, Get);
      break;
    case 6:
      ANVIL_FUZZ_UNARY(s, Store, Add);
      break;
    case 7:
      ANVIL_FUZZ_UNARY(s, Store, CompareSet);
      break;
    case 8:
      ANVIL_FUZZ_UNARY(s, Store, Wait);
      break;
    case 9:
      ANVIL_FUZZ_UNARY(s, Store, Delete);
      break;
    case 10:
      ANVIL_FUZZ_UNARY(s, Store, MultiGet);
      break;
    default:
      ANVIL_FUZZ_UNARY(s, Store, MultiSet);
      break;
  }
}

std::string Record(uint8_t op, uint8_t run, const std::string& payload) {
  return std::string{static_cast<char>(op), static_cast<char>(run),
                     static_cast<char>(payload.size())} +
         payload;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = anvil::fuzz::SeedDir();
  if (seeds.empty()) return 0;
  namespace p = anvil::proto;
  p::RdzvJoinRequest join;
  join.mutable_node()->set_node_id("n0");
  join.mutable_node()->set_host("localhost");
  join.mutable_node()->set_nproc(2);
  join.mutable_node()->set_requested_node_rank(-1);
  join.set_min_nodes(1);
  join.set_max_nodes(2);
  join.set_join_timeout_ms(100);
  join.set_want_rank_table(true);
  p::RdzvHeartbeatRequest hb;
  hb.set_node_id("n0");
  p::StoreSetRequest set;
  set.set_key("k");
  set.set_value("v");
  p::StoreGetRequest get;
  get.set_key("k");
  get.set_timeout_ms(10);
  p::StoreAddRequest add;
  add.set_key("c");
  add.set_delta(5);
  p::StoreMultiSetRequest mset;
  mset.add_keys("a");
  mset.add_values("1");
  p::StoreWaitRequest wait;
  wait.add_keys("a");
  wait.set_timeout_ms(10);
  anvil::fuzz::WriteSeed(seeds, "join",
                         Record(0, 0, join.SerializeAsString()) +
                             Record(1, 0, hb.SerializeAsString()) + Record(3, 0, ""));
  anvil::fuzz::WriteSeed(
      seeds, "store",
      Record(4, 1, set.SerializeAsString()) + Record(5, 1, get.SerializeAsString()) +
          Record(6, 1, add.SerializeAsString()) + Record(11, 1, mset.SerializeAsString()) +
          Record(8, 1, wait.SerializeAsString()));
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  size_t i = 0;
  for (int calls = 0; calls < 8 && i + 3 <= size; ++calls) {
    const uint8_t op = data[i], run = data[i + 1];
    const size_t len = std::min<size_t>(data[i + 2], size - i - 3);
    OneCall(f, op, run, std::string(reinterpret_cast<const char*>(data) + i + 3, len));
    i += 3 + len;
  }
  // The server still answers.
  anvil::proto::StoreAddRequest req;
  req.set_key("alive");
  req.set_delta(1);
  anvil::proto::StoreAddResponse resp;
  grpc::ClientContext ctx;
  Prepare(ctx, 0);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!f.store->Add(&ctx, req, &resp).ok()) std::abort();
  return 0;
}
