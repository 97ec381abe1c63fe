// rdzv_server: the rendezvous + store server as its own process, for a
// Kubernetes Service or a login node hosting the job's rendezvous apart
// from the training nodes. Flags accept dashes or underscores.
// Exit codes: 0 after SIGINT/SIGTERM, 1 on bad flags, 2 when it cannot serve
// (port in use, missing TLS file); errors are one line on stderr.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "launcher/server/server.h"
#include "runtime/store/grpc_channel.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to bind.");
ABSL_FLAG(int, port, 29400, "Port to bind (0: any free port, printed at start).");
ABSL_FLAG(std::string, rdzv_id, "",
          "Serve only this run id (--rdzv_id of the launchers); empty: any run id.");
ABSL_FLAG(std::string, token, "", "Shared secret every request must carry.");
ABSL_FLAG(std::string, token_file, "", "File holding the token (first line).");
ABSL_FLAG(std::string, nnodes, "",
          "N or MIN:MAX; empty: taken from the first launcher that joins a run.");
ABSL_FLAG(std::string, join_timeout, "600", "Default join timeout (seconds, or 10m, 30s).");
ABSL_FLAG(std::string, last_call_timeout, "30",
          "Wait after MIN nodes joined before closing the round (seconds).");
ABSL_FLAG(std::string, heartbeat_timeout, "30",
          "A node silent this long is declared dead (seconds).");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain (enables TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle; when set clients need certificates.");
ABSL_FLAG(bool, verbose, false, "Keep gRPC's own log lines.");

namespace {

[[noreturn]] void Die(int code, const std::string& msg) {
  std::fprintf(stderr, "rdzv_server: %s\n", msg.c_str());
  std::exit(code);
}

// "600", "0.5" (seconds) or an absl duration ("10m", "1m30s").
absl::Duration ParseSeconds(const std::string& flag, const std::string& text) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && seconds >= 0) return absl::Seconds(seconds);
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()) return d;
  Die(1, absl::StrCat("--", flag, "=", text, ": expected seconds or a duration like 30s"));
}

void ParseNnodes(const std::string& text, int& min_nodes, int& max_nodes) {
  if (text.empty()) return;
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  bool ok = parts.size() <= 2 && absl::SimpleAtoi(parts[0], &min_nodes) &&
            (parts.size() == 1 ? (max_nodes = min_nodes, true)
                               : absl::SimpleAtoi(parts[1], &max_nodes));
  if (!ok || min_nodes < 1 || max_nodes < min_nodes) {
    Die(1, absl::StrCat("--nnodes=", text, ": expected N or MIN:MAX with 1 <= MIN <= MAX"));
  }
}

std::string ReadToken() {
  std::string token = absl::GetFlag(FLAGS_token);
  std::string file = absl::GetFlag(FLAGS_token_file);
  if (token.empty() && !file.empty()) {
    std::ifstream in(file);
    if (!in) Die(1, absl::StrCat("--token_file: cannot read '", file, "'"));
    std::getline(in, token);
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) Die(1, absl::StrCat("--token_file: '", file, "' is empty"));
  }
  if (token.empty()) {
    if (const char* env = std::getenv("ANVIL_TOKEN")) token = env;  // as the launcher reads it
  }
  return token;
}

// torchrun users type --last-call-timeout; Abseil wants underscores.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& a = storage[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    size_t end = a.find('=');
    for (size_t j = 2; j < std::min(end, a.size()); ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> out;
  for (std::string& s : storage) out.push_back(s.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "rdzv_server --port=29400 --nnodes=MIN:MAX --token_file=FILE [--rdzv_id=ID]\n"
      "Hosts the anvil rendezvous and key-value store for launchers started with\n"
      "--rdzv_endpoint=<this host>:<port>.");
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeFlagNames(argc, argv, storage);
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (rest.size() > 1) Die(1, absl::StrCat("unexpected argument '", rest[1], "'"));
  if (!absl::GetFlag(FLAGS_verbose)) anvil::SilenceGrpcLogging();

  anvil::ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.run_id = absl::GetFlag(FLAGS_rdzv_id);
  options.token = ReadToken();
  options.tls.cert_chain_path = absl::GetFlag(FLAGS_tls_cert);
  options.tls.private_key_path = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  ParseNnodes(absl::GetFlag(FLAGS_nnodes), options.rendezvous.min_nodes,
              options.rendezvous.max_nodes);
  options.rendezvous.join_timeout =
      ParseSeconds("join_timeout", absl::GetFlag(FLAGS_join_timeout));
  options.rendezvous.last_call_timeout =
      ParseSeconds("last_call_timeout", absl::GetFlag(FLAGS_last_call_timeout));
  options.rendezvous.heartbeat_timeout =
      ParseSeconds("heartbeat_timeout", absl::GetFlag(FLAGS_heartbeat_timeout));

  // Signals are taken synchronously by the main thread below; block them
  // before gRPC starts its threads so none of those receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  anvil::RendezvousServer server;
  absl::StatusOr<int> port = server.Start(options);
  if (!port.ok()) Die(2, std::string(port.status().message()));
  const anvil::RendezvousSettings& r = options.rendezvous;
  std::printf(
      "rdzv_server: listening on %s:%d run %s nnodes %s%s%s\n", options.host.c_str(), *port,
      options.run_id.empty() ? "(any)" : options.run_id.c_str(),
      r.max_nodes == 0 ? "(from first joiner)"
                       : (r.min_nodes == r.max_nodes ? absl::StrCat(r.max_nodes)
                                                     : absl::StrCat(r.min_nodes, ":", r.max_nodes))
                             .c_str(),
      options.tls.cert_chain_path.empty() ? "" : " tls", options.token.empty() ? " no-token" : "");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "rdzv_server: signal %d, shutting down\n", sig);
  server.Shutdown();
  return 0;
}
