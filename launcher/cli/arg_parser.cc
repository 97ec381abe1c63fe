// The launcher's flag table and parser; see arg_parser.h.
#include "launcher/cli/arg_parser.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <fstream>
#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "launcher/agent/log_options.h"
#include "launcher/agent/signal_names.h"
#include "launcher/cli/cluster_env.h"

extern char** environ;

namespace anvil::launcher {
namespace {

using Setter = std::function<absl::Status(LaunchConfig*, absl::string_view)>;

struct FlagSpec {
  const char* name;   // canonical, underscores
  const char* alias;  // short form without dash ("m", "r", "t") or nullptr
  bool is_bool;
  const char* help;
  Setter set;
};

absl::Status BadValue(absl::string_view flag, absl::string_view value, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad value for --", flag, ": \"", value, "\" (expected ", want, ")"));
}

absl::StatusOr<int> ParseInt(absl::string_view flag, absl::string_view v, int min) {
  int out = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &out) || out < min) {
    return BadValue(flag, v, absl::StrCat("an integer >= ", min));
  }
  return out;
}

absl::StatusOr<bool> ParseBool(absl::string_view flag, absl::string_view v) {
  bool out = false;
  if (!absl::SimpleAtob(v, &out)) return BadValue(flag, v, "true or false");
  return out;
}

// Seconds as a number ("30", "0.5") or an absl duration ("500ms", "2m").
absl::StatusOr<absl::Duration> ParseSeconds(absl::string_view flag, absl::string_view v) {
  double secs = 0;
  absl::Duration d;
  if (absl::SimpleAtod(v, &secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(v, &d)) {
    return BadValue(flag, v, "seconds, e.g. 30 or 500ms");
  }
  if (d <= absl::ZeroDuration()) return BadValue(flag, v, "a positive duration");
  return d;
}

absl::Status ParseNnodes(LaunchConfig* c, absl::string_view v) {
  std::vector<absl::string_view> parts = absl::StrSplit(v, ':');
  if (parts.size() > 2) return BadValue("nnodes", v, "N or MIN:MAX");
  ASSIGN_OR_RETURN(c->min_nodes, ParseInt("nnodes", parts[0], 1));
  c->max_nodes = c->min_nodes;
  if (parts.size() == 2) {
    ASSIGN_OR_RETURN(c->max_nodes, ParseInt("nnodes", parts[1], 1));
    if (c->max_nodes < c->min_nodes) return BadValue("nnodes", v, "MIN <= MAX");
  }
  return absl::OkStatus();
}

absl::Status ParseNproc(LaunchConfig* c, absl::string_view v) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
  if (s != "cpu" && s != "gpu" && s != "auto") {
    RETURN_IF_ERROR(ParseInt("nproc_per_node", s, 1).status().ok()
                        ? absl::OkStatus()
                        : BadValue("nproc_per_node", v, "an integer >= 1, cpu, gpu or auto"));
  }
  c->nproc_per_node = s;
  return absl::OkStatus();
}

absl::Status ParseRdzvConf(LaunchConfig* c, absl::string_view v) {
  for (absl::string_view piece : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(piece, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || absl::StripAsciiWhitespace(kv[0]).empty()) {
      return BadValue("rdzv_conf", v, "key=value,key=value");
    }
    std::string key(absl::StripAsciiWhitespace(kv[0]));
    std::string val(absl::StripAsciiWhitespace(kv[1]));
    static const std::set<std::string> kDurations = {
        "join_timeout", "last_call_timeout", "close_timeout", "read_timeout",
        "heartbeat_interval", "heartbeat_timeout", "timeout"};
    if (kDurations.contains(key)) RETURN_IF_ERROR(ParseSeconds(absl::StrCat("rdzv_conf ", key), val).status());
    if (key == "is_host") RETURN_IF_ERROR(ParseBool("rdzv_conf is_host", val).status());
    c->rdzv_conf[key] = val;
  }
  return absl::OkStatus();
}

const std::vector<FlagSpec>& Flags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"nnodes", nullptr, false, "N or MIN:MAX nodes (default 1)", ParseNnodes},
      {"nproc_per_node", nullptr, false, "workers per node: int | cpu | gpu | auto (default 1)", ParseNproc},
      {"node_rank", nullptr, false, "this node's group rank, or auto (default: assigned by rendezvous)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         // "auto" (or -1) states "let the rendezvous choose" explicitly, so
         // JOB_COMPLETION_INDEX / SLURM_NODEID do not fill it in.
         if (v == "auto" || v == "-1") {
           c->node_rank = -1;
           return absl::OkStatus();
         }
         ASSIGN_OR_RETURN(c->node_rank, ParseInt("node_rank", v, 0));
         return absl::OkStatus();
       }},
      {"rdzv_backend", nullptr, false, "anvil (aliases c10d, static)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         std::string s = absl::AsciiStrToLower(v);
         if (s != "anvil" && s != "c10d" && s != "static") {
           return BadValue("rdzv_backend", v, "anvil, c10d or static; the gRPC rendezvous replaces etcd");
         }
         c->rdzv_backend = s;
         return absl::OkStatus();
       }},
      {"rdzv_endpoint", nullptr, false, "host[:port] of the rendezvous server (port 29400)",
       [](LaunchConfig* c, absl::string_view v) { c->rdzv_endpoint = std::string(v); return absl::OkStatus(); }},
      {"rdzv_id", nullptr, false, "job id shared by all nodes (default none)",
       [](LaunchConfig* c, absl::string_view v) { c->rdzv_id = std::string(v); return absl::OkStatus(); }},
      {"rdzv_conf", nullptr, false,
       "k=v,...: join_timeout(600) last_call_timeout(30) close_timeout read_timeout "
       "heartbeat_interval heartbeat_timeout is_host",
       ParseRdzvConf},
      {"standalone", nullptr, true, "single node, local rendezvous on a free port",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->standalone, ParseBool("standalone", v));
         return absl::OkStatus();
       }},
      {"max_restarts", nullptr, false, "restarts of the worker group before failing (default 0)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->max_restarts, ParseInt("max_restarts", v, 0));
         return absl::OkStatus();
       }},
      {"monitor_interval", nullptr, false, "seconds between worker checks (default 0.1)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->monitor_interval, ParseSeconds("monitor_interval", v));
         return absl::OkStatus();
       }},
      {"start_method", nullptr, false, "accepted for torchrun compatibility; workers are always fork/exec'd",
       [](LaunchConfig*, absl::string_view) { return absl::OkStatus(); }},
      {"role", nullptr, false, "worker role name (default default)",
       [](LaunchConfig* c, absl::string_view v) { c->role = std::string(v); return absl::OkStatus(); }},
      {"module", "m", true, "entrypoint is a Python module (python -m)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->module, ParseBool("module", v));
         return absl::OkStatus();
       }},
      {"run_path", nullptr, true,
       "the entrypoint is a file path run as the worker (never looked up on PATH); .py runs with python3",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->run_path, ParseBool("run_path", v));
         return absl::OkStatus();
       }},
      {"no_python", nullptr, true, "exec the entrypoint directly even if it ends in .py",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->no_python, ParseBool("no_python", v));
         return absl::OkStatus();
       }},
      {"log_dir", nullptr, false, "per-rank logs under <log_dir>/<run_id>/attempt_<n>/<local_rank>/ (%h: host name)",
       [](LaunchConfig* c, absl::string_view v) { c->log_dir = std::string(v); return absl::OkStatus(); }},
      {"redirects", "r", false, "0-3 or local_rank:0-3,...: streams sent only to the log files",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         RETURN_IF_ERROR(ParseStdSpec(v).status());
         c->redirects = std::string(v);
         return absl::OkStatus();
       }},
      {"tee", "t", false, "0-3 or local_rank:0-3,...: streams sent to console and files",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         RETURN_IF_ERROR(ParseStdSpec(v).status());
         c->tee = std::string(v);
         return absl::OkStatus();
       }},
      {"local_ranks_filter", nullptr, false, "local ranks shown on the console, e.g. 0,2",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         RETURN_IF_ERROR(ParseLocalRanksFilter(v).status());
         c->local_ranks_filter = std::string(v);
         return absl::OkStatus();
       }},
      {"local_addr", nullptr, false, "address peers use to reach this node (default hostname)",
       [](LaunchConfig* c, absl::string_view v) { c->local_addr = std::string(v); return absl::OkStatus(); }},
      {"master_addr", nullptr, false, "static rendezvous: host of the rendezvous server",
       [](LaunchConfig* c, absl::string_view v) { c->master_addr = std::string(v); return absl::OkStatus(); }},
      {"master_port", nullptr, false, "static rendezvous: port of the rendezvous server",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->master_port, ParseInt("master_port", v, 1));
         if (c->master_port > 65535) return BadValue("master_port", v, "a port 1-65535");
         return absl::OkStatus();
       }},
      {"token", nullptr, false, "job secret shared by every node (or --token_file, or ANVIL_TOKEN)",
       [](LaunchConfig* c, absl::string_view v) { c->token = std::string(v); return absl::OkStatus(); }},
      {"token_file", nullptr, false, "file holding the job secret",
       [](LaunchConfig* c, absl::string_view v) { c->token_file = std::string(v); return absl::OkStatus(); }},
      {"tls_cert", nullptr, false, "PEM certificate (server side: this node's; enables TLS)",
       [](LaunchConfig* c, absl::string_view v) { c->tls_cert = std::string(v); return absl::OkStatus(); }},
      {"tls_key", nullptr, false, "PEM private key for --tls_cert",
       [](LaunchConfig* c, absl::string_view v) { c->tls_key = std::string(v); return absl::OkStatus(); }},
      {"tls_ca", nullptr, false, "PEM CA bundle clients verify the server against",
       [](LaunchConfig* c, absl::string_view v) { c->tls_ca = std::string(v); return absl::OkStatus(); }},
      {"forward_signals", nullptr, false, "signals forwarded to workers (default TERM,INT,HUP,USR1,USR2)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         absl::StatusOr<std::vector<int>> s = ParseSignalList(v);
         if (!s.ok()) return BadValue("forward_signals", v, s.status().message());
         c->forward_signals = *s;
         return absl::OkStatus();
       }},
      {"grace_period", nullptr, false, "seconds workers get after SIGTERM before SIGKILL (default 30)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->grace_period, ParseSeconds("grace_period", v));
         return absl::OkStatus();
       }},
      {"exit_barrier_timeout", nullptr, false, "seconds to wait for the other nodes to finish (default 300)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->exit_barrier_timeout, ParseSeconds("exit_barrier_timeout", v));
         return absl::OkStatus();
       }},
      {"hang_timeout", nullptr, false,
       "seconds a rank may make no progress (step, collective) before the group is restarted; 0: off (default)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         double secs = 0;
         if (absl::SimpleAtod(v, &secs) && secs == 0) {
           c->hang_timeout = absl::ZeroDuration();
           return absl::OkStatus();
         }
         ASSIGN_OR_RETURN(c->hang_timeout, ParseSeconds("hang_timeout", v));
         return absl::OkStatus();
       }},
      {"metrics_port", nullptr, false, "HTTP port of /metrics (Prometheus), /healthz, /readyz; 0: off (default)",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->metrics_port, ParseInt("metrics_port", v, 0));
         if (c->metrics_port > 65535) return BadValue("metrics_port", v, "a port 0-65535");
         return absl::OkStatus();
       }},
      {"dry_run", nullptr, true, "print the resolved configuration and exit",
       [](LaunchConfig* c, absl::string_view v) -> absl::Status {
         ASSIGN_OR_RETURN(c->dry_run, ParseBool("dry_run", v));
         return absl::OkStatus();
       }},
  };
  return *flags;
}

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& f : Flags()) {
    if (name == f.name || (f.alias != nullptr && name == f.alias)) return &f;
  }
  return nullptr;
}

std::string PetName(absl::string_view flag) { return absl::StrCat("PET_", absl::AsciiStrToUpper(flag)); }

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read --token_file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(ss.str()));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--token_file ", path, " is empty"));
  return token;
}

absl::StatusOr<std::string> RandomRunId() {
  unsigned char bytes[8];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) {
    return absl::InternalError("cannot read /dev/urandom");
  }
  std::string out;
  for (unsigned char b : bytes) absl::StrAppend(&out, absl::Hex(b, absl::kZeroPad2));
  return out;
}

// Everything after parsing individual values: defaults that depend on other
// settings, the cluster environment, and cross-field checks.
absl::Status Finish(const EnvMap& env, const std::set<std::string>& given, LaunchConfig* c) {
  RETURN_IF_ERROR(ApplyClusterEnv(env, given, c));
  if (c->forward_signals.empty()) c->forward_signals = DefaultForwardSignals();
  if (c->standalone) {
    if (c->max_nodes != 1) {
      return absl::InvalidArgumentError("--standalone runs one node; drop --nnodes or set it to 1");
    }
    c->rdzv_endpoint.clear();
    if (!given.contains("rdzv_id")) {
      ASSIGN_OR_RETURN(c->rdzv_id, RandomRunId());
      c->sources["rdzv_id"] = "standalone (random)";
    }
  }
  if (c->rdzv_endpoint.empty() && !c->master_addr.empty()) {
    c->rdzv_endpoint = absl::StrCat(c->master_addr, ":", c->master_port > 0 ? c->master_port : kDefaultRdzvPort);
    c->sources["rdzv_endpoint"] = "from --master_addr/--master_port";
    c->static_master = true;
  }
  if (c->rdzv_backend == "static" && !c->rdzv_endpoint.empty()) c->static_master = true;
  if (c->run_path && c->module) {
    return absl::InvalidArgumentError("--run_path and --module are exclusive: a path or a module, not both");
  }
  if (!c->rdzv_endpoint.empty()) {
    ASSIGN_OR_RETURN(auto hp, SplitHostPort(c->rdzv_endpoint, kDefaultRdzvPort));
    c->rdzv_endpoint = hp.first.find(':') != std::string::npos
                           ? absl::StrCat("[", hp.first, "]:", hp.second)
                           : absl::StrCat(hp.first, ":", hp.second);
  } else if (c->max_nodes > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nnodes=", c->min_nodes, ":", c->max_nodes,
                     " needs --rdzv_endpoint=host[:port] (or --standalone for one node)"));
  }
  if (c->node_rank >= c->max_nodes) {
    return absl::InvalidArgumentError(absl::StrCat("--node_rank=", c->node_rank, " is out of range for --nnodes=",
                                                   c->min_nodes, ":", c->max_nodes));
  }
  if (c->token.empty() && !c->token_file.empty()) {
    ASSIGN_OR_RETURN(c->token, ReadTokenFile(c->token_file));
    c->sources["token"] = "--token_file";
  }
  if (c->token.empty()) {
    auto it = env.find("ANVIL_TOKEN");
    if (it != env.end() && !it->second.empty()) {
      c->token = it->second;
      c->sources["token"] = "env ANVIL_TOKEN";
    }
  }
  if (!c->tls_cert.empty() && c->tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert needs --tls_key");
  }
  if (c->entrypoint.empty()) {
    return absl::InvalidArgumentError("missing the training program: launcher [flags] <program> [args...]");
  }
  return absl::OkStatus();
}

}  // namespace

EnvMap EnvFromEnviron() {
  EnvMap env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view endpoint, int default_port) {
  absl::string_view host = endpoint;
  absl::string_view port;
  if (absl::StartsWith(endpoint, "[")) {
    size_t close = endpoint.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad endpoint \"", endpoint, "\": unmatched '['"));
    }
    host = endpoint.substr(1, close - 1);
    absl::string_view rest = endpoint.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return absl::InvalidArgumentError(absl::StrCat("bad endpoint \"", endpoint, "\""));
      port = rest.substr(1);
    }
  } else if (std::count(endpoint.begin(), endpoint.end(), ':') == 1) {
    size_t colon = endpoint.find(':');
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("bad endpoint \"", endpoint, "\": no host"));
  if (host.find(':') != absl::string_view::npos) {
    // Only an IPv6 literal has colons in its host part; anything else would
    // be handed to the resolver and retried until the join timeout.
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad endpoint \"", endpoint, "\": \"", host,
          "\" is not an IPv6 address (use host:port, or [v6-address]:port)"));
    }
  }
  int p = default_port;
  if (!port.empty() && (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("bad endpoint \"", endpoint, "\": port must be 0-65535"));
  }
  return std::make_pair(std::string(host), p);
}

absl::StatusOr<ParsedArgs> ParseLauncherArgs(const std::vector<std::string>& args, const EnvMap& env) {
  ParsedArgs out;
  LaunchConfig& c = out.config;
  std::vector<std::pair<const FlagSpec*, std::string>> values;
  std::set<std::string> given;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;  // the training program
    absl::string_view body = a;
    if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
    absl::string_view name_part = body;
    std::optional<std::string> inline_value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name_part = body.substr(0, eq);
      inline_value = std::string(body.substr(eq + 1));
    }
    std::string name = absl::StrReplaceAll(name_part, {{"-", "_"}});
    if (name == "help" || name == "h") {
      out.help = true;
      return out;
    }
    if (name == "version") {
      out.version = true;
      return out;
    }
    const FlagSpec* spec = FindFlag(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a.substr(0, a.find('=')),
                                                     " (launcher --help lists the flags)"));
    }
    std::string value;
    if (inline_value.has_value()) {
      value = *inline_value;
    } else if (spec->is_bool) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", spec->name, " needs a value"));
    }
    values.emplace_back(spec, std::move(value));
    given.insert(spec->name);
    c.sources[spec->name] = "flag";
  }
  if (i < args.size()) {
    c.entrypoint = args[i];
    c.args.assign(args.begin() + i + 1, args.end());
  }
  // PET_* variables fill what the command line left unset, in table order.
  std::vector<std::pair<const FlagSpec*, std::string>> ordered;
  for (const FlagSpec& f : Flags()) {
    if (given.contains(f.name)) continue;
    auto it = env.find(PetName(f.name));
    if (it == env.end() || it->second.empty()) continue;
    ordered.emplace_back(&f, it->second);
    given.insert(f.name);
    c.sources[f.name] = absl::StrCat("env ", PetName(f.name));
  }
  ordered.insert(ordered.end(), values.begin(), values.end());
  for (const auto& [spec, value] : ordered) {
    absl::Status s = spec->set(&c, value);
    if (!s.ok()) {
      const std::string& src = c.sources[spec->name];
      if (absl::StartsWith(src, "env ")) {
        return absl::InvalidArgumentError(absl::StrCat(s.message(), " [from ", src.substr(4), "]"));
      }
      return s;
    }
  }
  RETURN_IF_ERROR(Finish(env, given, &c));
  return out;
}

std::string LauncherUsage() {
  std::string out =
      "usage: launcher [flags] <program> [program args...]\n"
      "Starts --nproc_per_node workers on this node and joins them with the other nodes of\n"
      "--rdzv_id through the rendezvous at --rdzv_endpoint. Flags take dashes or underscores;\n"
      "each may also come from PET_<FLAG> (e.g. PET_NNODES).\n\nflags:\n";
  for (const FlagSpec& f : Flags()) {
    std::string name = absl::StrCat("--", f.name, f.alias ? absl::StrCat(", -", f.alias) : "");
    absl::StrAppend(&out, "  ", name, std::string(name.size() < 28 ? 28 - name.size() : 1, ' '), f.help, "\n");
  }
  absl::StrAppend(&out, "  --help, --version\n");
  return out;
}

std::string DescribeConfig(const LaunchConfig& c) {
  auto src = [&](const std::string& key) {
    auto it = c.sources.find(key);
    return it == c.sources.end() ? std::string("default") : it->second;
  };
  std::vector<std::string> sigs;
  for (int s : c.forward_signals) sigs.push_back(SignalName(s));
  std::vector<std::string> conf;
  for (const auto& [k, v] : c.rdzv_conf) conf.push_back(absl::StrCat(k, "=", v));
  std::vector<std::pair<std::string, std::string>> rows = {
      {"nnodes", absl::StrCat(c.min_nodes, ":", c.max_nodes)},
      {"nproc_per_node", c.nproc_per_node},
      {"node_rank", absl::StrCat(c.node_rank)},
      {"role", c.role},
      {"rdzv_backend", c.rdzv_backend},
      {"rdzv_endpoint", c.rdzv_endpoint.empty() ? "(local, free port)" : c.rdzv_endpoint},
      {"rdzv_id", c.rdzv_id},
      {"rdzv_conf", absl::StrJoin(conf, ",")},
      {"standalone", c.standalone ? "true" : "false"},
      {"local_addr", c.local_addr},
      {"max_restarts", absl::StrCat(c.max_restarts)},
      {"monitor_interval", absl::FormatDuration(c.monitor_interval)},
      {"grace_period", absl::FormatDuration(c.grace_period)},
      {"exit_barrier_timeout", absl::FormatDuration(c.exit_barrier_timeout)},
      {"forward_signals", absl::StrJoin(sigs, ",")},
      {"hang_timeout", c.hang_timeout == absl::ZeroDuration() ? "0 (off)" : absl::FormatDuration(c.hang_timeout)},
      {"metrics_port", c.metrics_port == 0 ? "0 (off)" : absl::StrCat(c.metrics_port)},
      {"run_path", c.run_path ? "true" : "false"},
      {"log_dir", c.log_dir},
      {"redirects", c.redirects},
      {"tee", c.tee},
      {"local_ranks_filter", c.local_ranks_filter},
      {"token", c.token.empty() ? "(none)" : "(set)"},
      {"tls", c.tls_cert.empty() && c.tls_ca.empty() ? "off" : "on"},
      {"entrypoint", c.entrypoint},
      {"args", absl::StrJoin(c.args, " ")},
  };
  std::string out;
  for (const auto& [k, v] : rows) {
    std::string line = absl::StrCat(k, " = ", v);
    absl::StrAppend(&out, line, std::string(line.size() < 44 ? 44 - line.size() : 1, ' '), "(", src(k), ")\n");
  }
  return out;
}

}  // namespace anvil::launcher
