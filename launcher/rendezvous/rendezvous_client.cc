// RendezvousClient: blocking Join over a shared channel, a heartbeat thread,
// and watch streams each read by their own thread.
// Invariants: the heartbeat thread exists from the first successful Join
// until Leave or destruction and never holds mu_ during an RPC; a watch owns
// a reference to the channel, so it stays valid even past the client.
#include "launcher/rendezvous/rendezvous_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "proto/rendezvous.grpc.pb.h"

namespace anvil {
namespace {

// Lets the server's own timeout answer (which names who is missing) arrive
// before the client gives up on its own.
constexpr absl::Duration kJoinSlack = absl::Seconds(1);

// A port that was free on `addr` a moment ago (bind to port 0, read it back).
int PickFreePort(const std::string& addr) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (!addr.empty() && inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    len = sizeof(*v6);
  } else {
    v4->sin_family = AF_INET;
    if (addr.empty() || inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) != 1) {
      v4->sin_addr.s_addr = htonl(INADDR_ANY);
    }
    len = sizeof(*v4);
  }
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    port = ntohs(family == AF_INET6 ? v6->sin6_port : v4->sin_port);
  }
  close(fd);
  return port;
}

RendezvousEvent FromProto(const proto::RdzvEvent& p) {
  RendezvousEvent e;
  switch (p.type()) {
    case proto::RdzvEvent::SNAPSHOT: e.type = RendezvousEventType::kSnapshot; break;
    case proto::RdzvEvent::ROUND_COMPLETE: e.type = RendezvousEventType::kRoundComplete; break;
    case proto::RdzvEvent::NODE_WAITING: e.type = RendezvousEventType::kNodeWaiting; break;
    case proto::RdzvEvent::NODE_DEAD: e.type = RendezvousEventType::kNodeDead; break;
    case proto::RdzvEvent::NODE_LEFT: e.type = RendezvousEventType::kNodeLeft; break;
    case proto::RdzvEvent::ROUND_REOPENED: e.type = RendezvousEventType::kRoundReopened; break;
    case proto::RdzvEvent::SERVER_SHUTDOWN: e.type = RendezvousEventType::kServerShutdown; break;
    default: e.type = RendezvousEventType::kUnknown; break;
  }
  e.round = p.round();
  e.round_complete = p.round_complete();
  e.num_nodes = p.num_nodes();
  e.num_waiting = p.num_waiting();
  e.node_id = p.node_id();
  e.host = p.host();
  e.group_rank = p.group_rank();
  e.reason = p.reason();
  return e;
}

RendezvousRound FromProto(const proto::RdzvJoinResponse& p, const std::string& run_id) {
  RendezvousRound r;
  r.round = p.round();
  r.run_id = run_id;
  r.group_rank = p.group_rank();
  r.group_world_size = p.group_world_size();
  r.world_size = p.world_size();
  r.master_addr = p.master_addr();
  r.master_port = p.master_port();
  for (const proto::RdzvRankEntry& e : p.rank_table()) {
    RankTableEntry t;
    t.group_rank = e.group_rank();
    t.node_id = e.node_id();
    t.host = e.host();
    t.local_addr = e.local_addr();
    t.local_world_size = e.local_world_size();
    t.global_rank_offset = e.global_rank_offset();
    if (t.group_rank == r.group_rank) {
      r.local_world_size = t.local_world_size;
      r.global_rank_offset = t.global_rank_offset;
    }
    r.rank_table.push_back(std::move(t));
  }
  return r;
}

// One watch stream, read by its own thread.
class WatchImpl final : public RendezvousWatch {
 public:
  WatchImpl(std::shared_ptr<grpc::Channel> channel, const ChannelOptions& copts,
            std::string node_id, WatchOptions options)
      : channel_(std::move(channel)),
        stub_(proto::RendezvousService::NewStub(channel_)),
        address_(copts.address),
        options_(std::move(options)) {
    ctx_.AddMetadata(kRunIdMetadataKey, copts.run_id);
    ctx_.AddMetadata(kTokenMetadataKey, copts.token);
    request_.set_node_id(std::move(node_id));
    thread_ = std::thread([this] { Loop(); });
  }

  ~WatchImpl() override {
    Cancel();
    thread_.join();
  }

  // Waits until the stream delivered its first event or ended.
  absl::Status AwaitStart(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto started = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return got_first_ || ended_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&started), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "rendezvous at ", address_, ": no answer to Watch within ",
          absl::FormatDuration(timeout)));
    }
    if (!got_first_) return end_status_;
    return absl::OkStatus();
  }

  absl::StatusOr<RendezvousEvent> Next(absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || ended_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("no rendezvous event within ", absl::FormatDuration(timeout)));
    }
    if (!queue_.empty()) {
      RendezvousEvent e = std::move(queue_.front());
      queue_.pop_front();
      return e;
    }
    return end_status_;
  }

  void Cancel() override { ctx_.TryCancel(); }

 private:
  void Loop() {
    std::unique_ptr<grpc::ClientReader<proto::RdzvEvent>> reader = stub_->Watch(&ctx_, request_);
    proto::RdzvEvent ev;
    while (reader->Read(&ev)) {
      RendezvousEvent e = FromProto(ev);
      if (options_.on_event) options_.on_event(e);
      absl::MutexLock lock(&mu_);
      got_first_ = true;
      if (!options_.on_event) queue_.push_back(std::move(e));
    }
    grpc::Status s = reader->Finish();
    absl::Status end;
    if (s.ok()) {
      end = absl::UnavailableError(absl::StrCat("rendezvous at ", address_, " ended the watch"));
    } else if (s.error_code() == grpc::StatusCode::CANCELLED) {
      end = absl::CancelledError("watch cancelled");
    } else {
      end = ContextualizeRpcError(s, *channel_, "rendezvous", address_);
    }
    if (options_.on_end) options_.on_end(end);
    absl::MutexLock lock(&mu_);
    ended_ = true;
    end_status_ = std::move(end);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<proto::RendezvousService::Stub> stub_;
  const std::string address_;
  const WatchOptions options_;
  grpc::ClientContext ctx_;
  proto::RdzvWatchRequest request_;
  absl::Mutex mu_;
  std::deque<RendezvousEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool got_first_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

struct RendezvousClient::Impl {
  Impl(RendezvousClientOptions o, NodeInfo n, ServiceClient<proto::RendezvousService> c)
      : options(std::move(o)), node(std::move(n)), client(std::move(c)) {}

  RendezvousClientOptions options;
  NodeInfo node;
  ServiceClient<proto::RendezvousService> client;

  mutable absl::Mutex mu;
  std::optional<RendezvousRound> last_round ABSL_GUARDED_BY(mu);
  absl::Status heartbeat_status ABSL_GUARDED_BY(mu);
  bool stop_heartbeat ABSL_GUARDED_BY(mu) = false;
  std::thread heartbeat_thread;  // started/joined under join_mu
  absl::Mutex thread_mu;

  void StartHeartbeats() {
    absl::MutexLock tl(&thread_mu);
    if (heartbeat_thread.joinable()) return;
    {
      absl::MutexLock lock(&mu);
      stop_heartbeat = false;
    }
    heartbeat_thread = std::thread([this] { HeartbeatLoop(); });
  }

  void StopHeartbeats() {
    absl::MutexLock tl(&thread_mu);
    {
      absl::MutexLock lock(&mu);
      stop_heartbeat = true;
    }
    if (heartbeat_thread.joinable()) heartbeat_thread.join();
  }

  void HeartbeatLoop() {
    absl::Duration rpc_timeout =
        std::min(options.rpc_timeout, std::max(options.heartbeat_interval, absl::Seconds(1)));
    while (true) {
      int64_t round = 0;
      {
        absl::MutexLock lock(&mu);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stop_heartbeat; };
        mu.AwaitWithTimeout(absl::Condition(&stopping), options.heartbeat_interval);
        if (stop_heartbeat) return;
        if (last_round) round = last_round->round;
      }
      proto::RdzvHeartbeatRequest req;
      req.set_node_id(node.node_id);
      req.set_round(round);
      proto::RdzvHeartbeatResponse resp;
      absl::Status st =
          client.Call(&proto::RendezvousService::Stub::Heartbeat, req, &resp, rpc_timeout);
      absl::MutexLock lock(&mu);
      heartbeat_status = std::move(st);
    }
  }
};

absl::StatusOr<std::unique_ptr<RendezvousClient>> RendezvousClient::Create(
    RendezvousClientOptions options, NodeInfo node) {
  if (options.endpoint.empty()) {
    return absl::InvalidArgumentError("no rendezvous endpoint (--rdzv_endpoint host[:port])");
  }
  if (options.run_id.empty()) return absl::InvalidArgumentError("no rendezvous id (--rdzv_id)");
  if (node.nproc < 1) {
    return absl::InvalidArgumentError(absl::StrCat("nproc must be >= 1, got ", node.nproc));
  }
  if (node.host.empty()) return absl::InvalidArgumentError("NodeInfo.host is empty");
  if (options.min_nodes < 0 || options.max_nodes < 0 ||
      (options.max_nodes > 0 && options.min_nodes > options.max_nodes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --nnodes ", options.min_nodes, ":", options.max_nodes));
  }
  if (options.heartbeat_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat_interval must be > 0");
  }
  if (node.node_id.empty()) {
    absl::BitGen gen;
    node.node_id = absl::StrFormat("%s-%d-%06x", node.host, getpid(),
                                   absl::Uniform<uint32_t>(gen, 0, 1u << 24));
  }
  absl::StatusOr<ServiceClient<proto::RendezvousService>> client =
      ServiceClient<proto::RendezvousService>::Open(
          ChannelOptions{options.endpoint, options.run_id, options.token, options.tls},
          "rendezvous");
  if (!client.ok()) return client.status();
  auto impl = std::make_unique<Impl>(std::move(options), std::move(node), *std::move(client));
  return std::unique_ptr<RendezvousClient>(new RendezvousClient(std::move(impl)));
}

RendezvousClient::RendezvousClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RendezvousClient::~RendezvousClient() { impl_->StopHeartbeats(); }

absl::StatusOr<RendezvousRound> RendezvousClient::Join() {
  const NodeInfo& n = impl_->node;
  proto::RdzvJoinRequest req;
  proto::RdzvNode* pn = req.mutable_node();
  pn->set_node_id(n.node_id);
  pn->set_host(n.host);
  pn->set_local_addr(n.local_addr);
  pn->set_nproc(n.nproc);
  pn->set_requested_node_rank(n.requested_node_rank);
  pn->set_master_port(n.master_port != 0 ? n.master_port
                                         : PickFreePort(n.local_addr.empty() ? "" : n.local_addr));
  pn->set_is_endpoint_host(n.is_endpoint_host);
  req.set_min_nodes(impl_->options.min_nodes);
  req.set_max_nodes(impl_->options.max_nodes);
  req.set_join_timeout_ms(absl::ToInt64Milliseconds(impl_->options.join_timeout));
  req.set_endpoint_host(HostOfAddress(impl_->client.options().address));
  req.set_want_rank_table(impl_->options.want_rank_table);

  proto::RdzvJoinResponse resp;
  if (absl::Status s = impl_->client.Call(&proto::RendezvousService::Stub::Join, req, &resp,
                                          impl_->options.join_timeout + kJoinSlack);
      !s.ok()) {
    return s;
  }
  RendezvousRound round = FromProto(resp, impl_->options.run_id);
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->last_round = round;
    impl_->heartbeat_status = absl::OkStatus();
  }
  impl_->StartHeartbeats();
  return round;
}

absl::Status RendezvousClient::Leave(absl::Duration timeout) {
  impl_->StopHeartbeats();
  proto::RdzvLeaveRequest req;
  req.set_node_id(impl_->node.node_id);
  proto::RdzvLeaveResponse resp;
  return impl_->client.Call(&proto::RendezvousService::Stub::Leave, req, &resp,
                            timeout > absl::ZeroDuration() ? timeout : impl_->options.rpc_timeout);
}

absl::StatusOr<std::unique_ptr<RendezvousWatch>> RendezvousClient::Watch(WatchOptions options) {
  auto watch = std::make_unique<WatchImpl>(impl_->client.channel(), impl_->client.options(),
                                           impl_->node.node_id, std::move(options));
  absl::Status started = watch->AwaitStart(impl_->options.rpc_timeout);
  if (!started.ok()) return started;
  return std::unique_ptr<RendezvousWatch>(std::move(watch));
}

absl::Status RendezvousClient::HeartbeatStatus() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->heartbeat_status;
}

const NodeInfo& RendezvousClient::node() const { return impl_->node; }

const RendezvousClientOptions& RendezvousClient::options() const { return impl_->options; }

absl::StatusOr<RendezvousRound> RendezvousClient::last_round() const {
  absl::MutexLock lock(&impl_->mu);
  if (!impl_->last_round) return absl::NotFoundError("no round joined yet");
  return *impl_->last_round;
}

}  // namespace anvil
