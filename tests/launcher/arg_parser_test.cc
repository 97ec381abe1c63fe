// The launcher's flag parsing: torchrun spellings, PET_* precedence, Slurm and
// Kubernetes mapping, and one-line errors for bad input.
#include "launcher/cli/arg_parser.h"
#include "launcher/cli/agent_options_builder.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>

namespace anvil::launcher {
namespace {

using Args = std::vector<std::string>;

LaunchConfig Parse(const Args& args, const EnvMap& env = {}) {
  absl::StatusOr<ParsedArgs> p = ParseLauncherArgs(args, env);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? p->config : LaunchConfig{};
}

std::string Error(const Args& args, const EnvMap& env = {}) {
  absl::StatusOr<ParsedArgs> p = ParseLauncherArgs(args, env);
  EXPECT_FALSE(p.ok());
  if (p.ok()) return "";
  EXPECT_EQ(p.status().message().find('\n'), absl::string_view::npos) << "error must be one line";
  return std::string(p.status().message());
}

TEST(ArgParser, DashesUnderscoresAndSpaceSeparatedValues) {
  LaunchConfig c = Parse({"--nproc-per-node", "4", "--nnodes=2:3", "--rdzv_endpoint", "h1",
                          "--rdzv-id=job7", "--max-restarts=2", "train", "--lr", "0.1", "-x"});
  EXPECT_EQ(c.nproc_per_node, "4");
  EXPECT_EQ(c.min_nodes, 2);
  EXPECT_EQ(c.max_nodes, 3);
  EXPECT_EQ(c.rdzv_endpoint, "h1:29400");
  EXPECT_EQ(c.rdzv_id, "job7");
  EXPECT_EQ(c.max_restarts, 2);
  EXPECT_EQ(c.entrypoint, "train");
  EXPECT_EQ(c.args, Args({"--lr", "0.1", "-x"}));  // the program's flags are not ours
}

TEST(ArgParser, DoubleDashEndsFlags) {
  LaunchConfig c = Parse({"--standalone", "--", "--weird-name", "a"});
  EXPECT_EQ(c.entrypoint, "--weird-name");
  EXPECT_EQ(c.args, Args({"a"}));
}

TEST(ArgParser, NprocForms) {
  for (const char* v : {"3", "cpu", "gpu", "auto", "GPU"}) {
    EXPECT_FALSE(Parse({"--nproc_per_node", v, "w"}).nproc_per_node.empty());
  }
  EXPECT_NE(Error({"--nproc_per_node=0", "w"}).find("nproc_per_node"), std::string::npos);
  EXPECT_NE(Error({"--nproc_per_node=tpu", "w"}).find("cpu, gpu or auto"), std::string::npos);
}

TEST(ArgParser, RdzvConfAndDurations) {
  LaunchConfig c = Parse({"--rdzv_conf=join_timeout=5,last_call_timeout=0.5,is_host=true",
                          "--grace-period=500ms", "--exit_barrier_timeout=7", "--monitor_interval=0.05", "w"});
  EXPECT_EQ(c.rdzv_conf["join_timeout"], "5");
  EXPECT_EQ(c.rdzv_conf["is_host"], "true");
  EXPECT_EQ(c.grace_period, absl::Milliseconds(500));
  EXPECT_EQ(c.exit_barrier_timeout, absl::Seconds(7));
  EXPECT_EQ(c.monitor_interval, absl::Milliseconds(50));
  EXPECT_NE(Error({"--rdzv_conf=join_timeout", "w"}).find("key=value"), std::string::npos);
  EXPECT_NE(Error({"--rdzv_conf=join_timeout=soon", "w"}).find("join_timeout"), std::string::npos);
}

TEST(ArgParser, EndpointForms) {
  EXPECT_EQ(Parse({"--nnodes=2", "--rdzv_endpoint=10.0.0.1:1234", "w"}).rdzv_endpoint, "10.0.0.1:1234");
  EXPECT_EQ(Parse({"--nnodes=2", "--rdzv_endpoint=[::1]", "w"}).rdzv_endpoint, "[::1]:29400");
  EXPECT_EQ(Parse({"--nnodes=2", "--master_addr=m0", "--master_port=29500", "w"}).rdzv_endpoint, "m0:29500");
  EXPECT_NE(Error({"--nnodes=2", "--rdzv_endpoint=h:99999", "w"}).find("port"), std::string::npos);
  EXPECT_NE(Error({"--nnodes=2", "w"}).find("--rdzv_endpoint"), std::string::npos);
  // Issue 14: colons that are no IPv6 literal are refused at once, not
  // handed to the resolver until the join timeout.
  EXPECT_NE(Error({"--nnodes=2", "--rdzv_endpoint=::::", "w"}).find("not an IPv6 address"),
            std::string::npos);
  EXPECT_EQ(Parse({"--nnodes=2", "--rdzv_endpoint=fe80::1", "w"}).rdzv_endpoint, "[fe80::1]:29400");
}

TEST(ArgParser, SignalsAndLogs) {
  LaunchConfig c = Parse({"--forward_signals=TERM,SIGUSR1,12", "--redirects=0:3,1:2", "--tee", "1",
                          "--local-ranks-filter=0,2", "w"});
  EXPECT_EQ(c.forward_signals, std::vector<int>({SIGTERM, SIGUSR1, SIGUSR2}));
  EXPECT_EQ(Parse({"w"}).forward_signals, std::vector<int>({SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}));
  EXPECT_NE(Error({"--forward_signals=KILL", "w"}).find("SIGKILL"), std::string::npos);
  EXPECT_NE(Error({"--redirects=4", "w"}).find("0-3"), std::string::npos);
  EXPECT_NE(Error({"--local_ranks_filter=a", "w"}).find("local_ranks_filter"), std::string::npos);
}

TEST(ArgParser, BadInputIsOneClearLine) {
  EXPECT_NE(Error({"--bogus=1", "w"}).find("unknown flag --bogus"), std::string::npos);
  EXPECT_NE(Error({"--nnodes"}).find("needs a value"), std::string::npos);
  EXPECT_NE(Error({"--nnodes=3:2", "w"}).find("MIN <= MAX"), std::string::npos);
  EXPECT_NE(Error({"--standalone"}).find("missing the training program"), std::string::npos);
  EXPECT_NE(Error({"--rdzv_backend=etcd", "w"}).find("etcd"), std::string::npos);
  EXPECT_NE(Error({"--nnodes=2", "--rdzv_endpoint=h", "--node_rank=2", "w"}).find("out of range"),
            std::string::npos);
  EXPECT_NE(Error({"--token_file=/nonexistent/tok", "w"}).find("token_file"), std::string::npos);
}

TEST(ArgParser, HelpAndVersion) {
  absl::StatusOr<ParsedArgs> p = ParseLauncherArgs({"--help"}, {});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->help);
  EXPECT_NE(LauncherUsage().find("--nproc_per_node"), std::string::npos);
}

TEST(ArgParser, PetVariablesActLikeFlagsButFlagsWin) {
  EnvMap env = {{"PET_NNODES", "1:4"}, {"PET_NPROC_PER_NODE", "2"}, {"PET_RDZV_ENDPOINT", "svc"},
                {"PET_MAX_RESTARTS", "3"}, {"PET_NODE_RANK", "1"}};
  LaunchConfig c = Parse({"--max_restarts=5", "w"}, env);
  EXPECT_EQ(c.min_nodes, 1);
  EXPECT_EQ(c.max_nodes, 4);
  EXPECT_EQ(c.nproc_per_node, "2");
  EXPECT_EQ(c.rdzv_endpoint, "svc:29400");
  EXPECT_EQ(c.node_rank, 1);
  EXPECT_EQ(c.max_restarts, 5);
  EXPECT_EQ(c.sources["nnodes"], "env PET_NNODES");
  EXPECT_EQ(c.sources["max_restarts"], "flag");
  EXPECT_NE(Error({"w"}, {{"PET_NNODES", "x"}}).find("PET_NNODES"), std::string::npos);
}

TEST(ArgParser, SlurmFillsWhatIsUnset) {
  EnvMap env = {{"SLURM_JOB_ID", "4242"}, {"SLURM_NNODES", "4"}, {"SLURM_NODEID", "2"},
                {"SLURM_JOB_NODELIST", "node[07-09],gpu-a"}};
  LaunchConfig c = Parse({"--nproc_per_node=8", "train"}, env);
  EXPECT_EQ(c.min_nodes, 4);
  EXPECT_EQ(c.max_nodes, 4);
  EXPECT_EQ(c.node_rank, 2);
  EXPECT_EQ(c.rdzv_id, "4242");
  EXPECT_EQ(c.rdzv_endpoint, "node07:29400");
  EXPECT_EQ(c.sources["rdzv_endpoint"], "slurm SLURM_JOB_NODELIST (first host)");

  // Explicit values win; SLURM_JOB_NUM_NODES is the fallback name.
  EnvMap env2 = {{"SLURM_JOB_ID", "9"}, {"SLURM_JOB_NUM_NODES", "3"}, {"SLURM_NODEID", "1"},
                 {"SLURM_JOB_NODELIST", "a[1-3]"}};
  LaunchConfig d = Parse({"--rdzv_endpoint=login:5000", "--rdzv_id=mine", "--node_rank=0", "w"}, env2);
  EXPECT_EQ(d.max_nodes, 3);
  EXPECT_EQ(d.node_rank, 0);
  EXPECT_EQ(d.rdzv_id, "mine");
  EXPECT_EQ(d.rdzv_endpoint, "login:5000");

  // --standalone ignores the allocation; a malformed nodelist is one clear error.
  EXPECT_EQ(Parse({"--standalone", "w"}, env).max_nodes, 1);
  EXPECT_NE(Error({"w"}, {{"SLURM_JOB_ID", "1"}, {"SLURM_NNODES", "2"}, {"SLURM_JOB_NODELIST", "n[1-"}})
                .find("SLURM_JOB_NODELIST"),
            std::string::npos);
}

TEST(ArgParser, KubernetesIndexedJob) {
  EnvMap env = {{"JOB_COMPLETION_INDEX", "3"}, {"PET_NNODES", "4"}, {"PET_RDZV_ENDPOINT", "job-0.svc:29400"}};
  LaunchConfig c = Parse({"train"}, env);
  EXPECT_EQ(c.node_rank, 3);
  EXPECT_EQ(c.max_nodes, 4);
  EXPECT_EQ(c.rdzv_endpoint, "job-0.svc:29400");
  EXPECT_EQ(c.sources["node_rank"], "kubernetes JOB_COMPLETION_INDEX");
  // PET_NODE_RANK outranks the completion index; "auto" leaves it to the server.
  env["PET_NODE_RANK"] = "1";
  EXPECT_EQ(Parse({"train"}, env).node_rank, 1);
  env["PET_NODE_RANK"] = "auto";
  EXPECT_EQ(Parse({"train"}, env).node_rank, -1);
}

TEST(ArgParser, TokenFromFlagFileOrEnv) {
  std::string path = ::testing::TempDir() + "/anvil_token";
  std::ofstream(path) << "s3cret\n";
  EXPECT_EQ(Parse({"--token_file", path, "w"}).token, "s3cret");
  EXPECT_EQ(Parse({"w"}, {{"ANVIL_TOKEN", "envtok"}}).token, "envtok");
  EXPECT_EQ(Parse({"--token=flagtok", "w"}, {{"ANVIL_TOKEN", "envtok"}}).token, "flagtok");
  std::remove(path.c_str());
}

TEST(ArgParser, StandaloneGetsRandomRunId) {
  LaunchConfig a = Parse({"--standalone", "w"});
  LaunchConfig b = Parse({"--standalone", "w"});
  EXPECT_EQ(a.rdzv_id.size(), 16u);
  EXPECT_NE(a.rdzv_id, b.rdzv_id);
  EXPECT_TRUE(a.rdzv_endpoint.empty());
}

// Issue 13: torchrun's --run-path, static master address/port, and the
// operations flags.
TEST(ArgParser, RunPathStaticMasterAndOperationsFlags) {
  LaunchConfig c = Parse({"--run-path", "--nnodes=2", "--node_rank=0", "--master-addr=m0", "--master-port=29500",
                          "--metrics-port=9090", "--hang-timeout=30", "train", "--x"});
  EXPECT_TRUE(c.run_path);
  EXPECT_TRUE(c.static_master);
  EXPECT_EQ(c.metrics_port, 9090);
  EXPECT_EQ(c.hang_timeout, absl::Seconds(30));
  absl::StatusOr<AgentOptions> o = MakeAgentOptions(c, {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->argv, Args({"./train", "--x"}));  // a path: never a PATH lookup
  EXPECT_EQ(o->master_addr, "m0");
  EXPECT_EQ(o->master_port, 29500);
  EXPECT_EQ(o->metrics_port, 9090);
  EXPECT_EQ(o->hang_timeout, absl::Seconds(30));
  // --run_path takes precedence over --no_python for a .py path.
  o = MakeAgentOptions(Parse({"--run_path", "--no_python", "/abs/s.py"}), {});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->argv, Args({"python3", "-u", "/abs/s.py"}));
  // A dynamic rendezvous leaves MASTER_ADDR/PORT to the rendezvous.
  LaunchConfig d = Parse({"--nnodes=2", "--rdzv_endpoint=h:1234", "w"});
  EXPECT_FALSE(d.static_master);
  EXPECT_TRUE(Parse({"--nnodes=2", "--rdzv_backend=static", "--rdzv_endpoint=h:1234", "w"}).static_master);
  EXPECT_EQ(Parse({"--hang_timeout=0", "w"}).hang_timeout, absl::ZeroDuration());
  EXPECT_EQ(Parse({"w"}).metrics_port, 0);
  EXPECT_NE(Error({"--run_path", "-m", "mod"}).find("exclusive"), std::string::npos);
  EXPECT_NE(Error({"--metrics_port=70000", "w"}).find("metrics_port"), std::string::npos);
  EXPECT_NE(Error({"--hang_timeout=soon", "w"}).find("hang_timeout"), std::string::npos);
}

}  // namespace
}  // namespace anvil::launcher
