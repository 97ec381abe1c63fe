// AgentStatus as Prometheus text; see agent_status.h.
#include "launcher/agent/agent_status.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace anvil::launcher {
namespace {

std::string Escape(const std::string& v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

std::string Num(double v) { return absl::StrFormat("%.10g", v); }

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const char* name, const std::string& labels, double v) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ", Num(v), "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string RankLabels(const RankProgress& p) {
  return absl::StrCat("rank=\"", p.who.rank, "\",local_rank=\"", p.who.local_rank, "\"");
}

}  // namespace

bool AgentStatus::ready() const {
  return phase == "running" && !workers.empty() &&
         std::all_of(workers.begin(), workers.end(), [](const Worker& w) { return w.state == "running"; });
}

std::string FormatPrometheus(const AgentStatus& s, absl::Time now) {
  Writer w;
  const std::string node = absl::StrCat("host=\"", Escape(s.host), "\",run_id=\"", Escape(s.run_id), "\"");
  w.Family("anvil_agent_up", "gauge", "1 while the launcher's agent runs.");
  w.Sample("anvil_agent_up", node, 1);
  w.Family("anvil_agent_uptime_seconds", "gauge", "Seconds since the agent started.");
  w.Sample("anvil_agent_uptime_seconds", "", absl::ToDoubleSeconds(now - s.started));
  w.Family("anvil_agent_ready", "gauge", "1 when the rendezvous is complete and every local worker runs (/readyz).");
  w.Sample("anvil_agent_ready", "", s.ready() ? 1 : 0);
  w.Family("anvil_rendezvous_round", "gauge", "The rendezvous round of the current attempt (-1: none yet).");
  w.Sample("anvil_rendezvous_round", "", static_cast<double>(s.round));
  w.Family("anvil_world_size", "gauge", "Workers in the job (all nodes).");
  w.Sample("anvil_world_size", "", s.world_size);
  w.Family("anvil_nodes", "gauge", "Nodes in the current round.");
  w.Sample("anvil_nodes", "", s.group_world_size);
  w.Family("anvil_restarts_total", "counter", "Job-wide restarts of the worker group so far.");
  w.Sample("anvil_restarts_total", "", static_cast<double>(s.restarts));

  std::map<std::string, int> states = {{"running", 0}, {"succeeded", 0}, {"failed", 0}};
  for (const AgentStatus::Worker& x : s.workers) ++states[x.state];
  w.Family("anvil_workers", "gauge", "Local workers by state.");
  for (const auto& [state, n] : states) w.Sample("anvil_workers", absl::StrCat("state=\"", state, "\""), n);

  w.Family("anvil_worker_step", "gauge", "The last optimizer step a local worker reported.");
  for (const RankProgress& p : s.progress) {
    if (p.last) w.Sample("anvil_worker_step", RankLabels(p), static_cast<double>(p.last->step));
  }
  w.Family("anvil_worker_throughput_per_second", "gauge",
           "Job-wide items (unit label: tokens, images) per second of the last step, as a worker reported it.");
  for (const RankProgress& p : s.progress) {
    if (p.last && !p.last->unit.empty()) {
      w.Sample("anvil_worker_throughput_per_second", absl::StrCat(RankLabels(p), ",unit=\"", Escape(p.last->unit), "\""),
               p.last->items_per_s);
    }
  }
  w.Family("anvil_worker_heartbeat_age_seconds", "gauge",
           "Seconds since a local worker last wrote its progress line (its reporter writes at least once a second).");
  for (const RankProgress& p : s.progress) {
    if (p.last) w.Sample("anvil_worker_heartbeat_age_seconds", RankLabels(p), absl::ToDoubleSeconds(now - p.last_heartbeat));
  }
  w.Family("anvil_worker_progress_age_seconds", "gauge",
           "Seconds since a local worker's step or collective count last changed (the hang watchdog's clock).");
  for (const RankProgress& p : s.progress) {
    if (p.last) w.Sample("anvil_worker_progress_age_seconds", RankLabels(p), absl::ToDoubleSeconds(now - p.last_change));
  }
  w.Family("anvil_worker_collectives_total", "counter", "Collectives a local worker has begun.");
  for (const RankProgress& p : s.progress) {
    if (p.last) w.Sample("anvil_worker_collectives_total", RankLabels(p), static_cast<double>(p.last->collectives));
  }
  w.Family("anvil_worker_in_collective", "gauge", "1 while a local worker is inside a collective.");
  for (const RankProgress& p : s.progress) {
    if (p.last) w.Sample("anvil_worker_in_collective", RankLabels(p), p.last->in_collective ? 1 : 0);
  }
  w.Family("anvil_checkpoint_age_seconds", "gauge", "Seconds since a local worker last took a checkpoint snapshot.");
  for (const RankProgress& p : s.progress) {
    if (p.last && p.last->checkpoint_step >= 0) {
      w.Sample("anvil_checkpoint_age_seconds", RankLabels(p),
               absl::ToDoubleSeconds(now - absl::FromUnixMillis(p.last->checkpoint_unix_ms)));
    }
  }
  w.Family("anvil_checkpoint_step", "gauge", "The step of a local worker's last checkpoint snapshot.");
  for (const RankProgress& p : s.progress) {
    if (p.last && p.last->checkpoint_step >= 0) {
      w.Sample("anvil_checkpoint_step", RankLabels(p), static_cast<double>(p.last->checkpoint_step));
    }
  }
  return w.Take();
}

}  // namespace anvil::launcher
