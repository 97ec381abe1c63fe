// ckpt_bench: checkpoint speed against references measured in the same run.
//
// For the standard CPU config (L=6 H=6 C=384 T=256 V=256) and a larger one
// (L=12 H=12 C=768):
//  save      a synchronous save (snapshot, write + xxh3, fsync, manifest,
//            rename, fsyncs, `latest`) vs write()+fsync of a file of the same
//            size with plain 16 MiB writes              target >= 80%
//  load      cold (page cache dropped for the files): verification (read +
//            xxh3 of every file) and LoadShard, vs a cold sequential read()
//  stall     what an async save costs the training thread (Save() until it
//            returns) vs a plain single-threaded memcpy of the same bytes into
//            a warm buffer                                target <= 2x
//            and the step time while the background write runs vs without
//  resume    `train` SIGKILLed right after a committed checkpoint; time from
//            the kill to the restarted process's first new step, and where it
//            goes (process start + model, resume incl. verification, step)
// Each I/O figure is the best of --repeats; the machine is shared, so the
// ratios (measured back to back) matter more than the absolute numbers.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "kernels/device.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/checkpoint_loader.h"
#include "runtime/checkpoint/checkpoint_writer.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/shard_slices.h"
#include "runtime/data/token_shard.h"
#include "runtime/trainer/trainer.h"

ABSL_FLAG(std::string, dir, "/tmp/anvil_ckpt_bench", "Scratch directory (on the disk to measure).");
ABSL_FLAG(int32_t, repeats, 3, "Repeats of each I/O measurement (best is reported).");
ABSL_FLAG(bool, larger, true, "Also run the larger config (L=12 H=12 C=768, ~1 GB of state).");
ABSL_FLAG(bool, resume, true, "Measure kill -9 -> first new step with the train binary.");
ABSL_FLAG(std::string, train_bin, ANVIL_TRAIN_BIN, "The train binary.");

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using anvil::proto::TrainConfig;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "ckpt_bench: %s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

struct Shape {
  const char* name;
  int L, H, C;
};

TrainConfig Config(const Shape& s, const std::string& data, const std::string& ckpt) {
  TrainConfig c;
  auto* m = c.mutable_model();
  m->set_kind("gpt");
  m->set_n_layer(s.L);
  m->set_n_head(s.H);
  m->set_n_embd(s.C);
  m->set_max_seq_len(256);
  m->set_vocab_size(256);
  c.mutable_data()->set_train_pattern(data);
  c.mutable_data()->set_batch_size(1);
  c.mutable_data()->set_seq_len(64);  // the state, not the batch, is what a save moves
  auto* o = c.mutable_optim();
  o->set_lr(1e-3f);
  o->set_beta1(0.9f);
  o->set_beta2(0.95f);
  o->set_eps(1e-8f);
  o->set_grad_clip(1.0f);
  o->set_weight_decay(0.1f);
  c.set_steps(1000);
  c.set_grad_accum(1);
  c.set_seed(1);
  c.set_eval_batches(1);
  c.set_log_every(1);
  c.set_sharding("NO_SHARD");
  c.set_param_dtype("fp32");
  c.set_reduce_dtype("fp32");
  c.set_checkpoint_dir(ckpt);
  c.set_keep_last(0);
  return c;
}

// write() + fsync of `bytes` from a warm buffer, as the reference writer.
double PlainWrite(const std::string& path, const std::vector<char>& buf) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (size_t off = 0; off < buf.size();) {
    const ssize_t w = ::write(fd, buf.data() + off, std::min<size_t>(16u << 20, buf.size() - off));
    if (w <= 0) std::exit(1);
    off += static_cast<size_t>(w);
  }
  ::fsync(fd);
  ::close(fd);
  return Since(t0);
}

double PlainRead(const std::string& path, std::vector<char>& buf) {
  anvil::ckpt::EvictFromPageCache(path);
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY);
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), std::min<size_t>(16u << 20, buf.size()));
    if (r <= 0) break;
  }
  ::close(fd);
  return Since(t0);
}

void EvictCheckpoint(const std::string& path) {
  for (const auto& f : fs::directory_iterator(path))
    anvil::ckpt::EvictFromPageCache(f.path().string());
}

anvil::ckpt::ShardSource Source(anvil::Trainer& t, anvil::kernels::Device* b) {
  return {&t.model().layout(), &t.engine().shard_layout(), 1, 0, b, t.engine().state()};
}

void RunConfig(const Shape& shape, const std::string& data, int repeats) {
  const std::string root = absl::GetFlag(FLAGS_dir);
  const std::string ckpt = root + "/ckpt_" + shape.name;
  fs::remove_all(ckpt);
  auto device = anvil::kernels::MakeCpuDevice(0);
  anvil::TrainerOptions o;
  o.log = [](const std::string&) {};
  TrainConfig cfg = Config(shape, data, "");  // the bench drives its own writers
  auto trainer = anvil::Trainer::Create(cfg, device.get(), o);
  Check(trainer.status(), "trainer");
  anvil::Trainer& t = **trainer;
  for (int i = 0; i < 2; ++i) Check(t.Step().status(), "step");  // m, v non-zero
  const anvil::StateList& state = t.engine().state();
  const size_t floats = state.size() * t.engine().shard_layout().local_numel();
  const size_t bytes = floats * 4;
  std::printf("\n== %s: L=%d H=%d C=%d, %zu parameters, %.1f MB of state (params, m, v)\n",
              shape.name, shape.L, shape.H, shape.C, t.num_params(), bytes / 1e6);

  // --- save vs plain write ---
  std::vector<char> buf(bytes);
  std::memcpy(buf.data(), state[0].data, std::min(bytes, state[0].numel * 4));
  double best_plain = 1e9, best_save = 1e9, best_io = 1e9, best_file = 1e9, best_snap = 1e9;
  anvil::ckpt::CheckpointWriterOptions wo;
  wo.dir = ckpt;
  wo.keep_last = 0;  // old checkpoints are removed between repeats, outside the timing
  wo.async = false;
  auto writer = anvil::ckpt::CheckpointWriter::Create(wo);
  Check(writer.status(), "writer");
  (*writer)->Reserve(floats);
  for (int r = 0; r < repeats; ++r) {
    best_plain = std::min(best_plain, PlainWrite(root + "/plain.bin", buf));
    fs::remove(root + "/plain.bin");
    if (r > 0) fs::remove_all(anvil::ckpt::JoinPath(ckpt, anvil::ckpt::StepDirName(r)));
    ::sync();
    anvil::ckpt::SaveRequest req;
    req.step = r + 1;
    req.config = cfg;
    req.source = Source(t, device.get());
    const auto t0 = Clock::now();
    auto timing = (*writer)->Save(req);
    Check(timing.status(), "save");
    const double s = Since(t0);
    for (const auto& rep : (*writer)->Wait()) {
      Check(rep.status, "save report");
      best_file = std::min(best_file, rep.write_s);
      best_io = std::min(best_io, rep.total_s);
    }
    best_save = std::min(best_save, s);
    best_snap = std::min(best_snap, timing->snapshot_s);
  }
  std::printf(
      "save   plain write+fsync %7.1f MB/s | checkpoint write+commit (what runs in the background: "
      "data file, xxh3, fsyncs, manifest, rename, latest) %7.1f MB/s = %5.1f%% (target >= 80%%)\n"
      "       data file alone %7.1f MB/s | synchronous save incl. the %.0f ms snapshot %7.1f MB/s "
      "= "
      "%5.1f%%\n",
      bytes / 1e6 / best_plain, bytes / 1e6 / best_io, 100 * best_plain / best_io,
      bytes / 1e6 / best_file, best_snap * 1e3, bytes / 1e6 / best_save,
      100 * best_plain / best_save);

  // --- load vs plain read (cold) ---
  PlainWrite(root + "/plain.bin", buf);
  double best_read = 1e9, best_verify = 1e9, best_load = 1e9, best_cold_load = 1e9;
  const std::string ck = anvil::ckpt::JoinPath(ckpt, anvil::ckpt::StepDirName(repeats));
  anvil::ckpt::ResumeOptions ro;
  ro.dir = ckpt;
  for (int r = 0; r < repeats; ++r) {
    best_read = std::min(best_read, PlainRead(root + "/plain.bin", buf));
    EvictCheckpoint(ck);
    auto t0 = Clock::now();
    auto found = anvil::ckpt::FindResumePoint(ro);
    best_verify = std::min(best_verify, Since(t0));
    Check(found.status(), "find");
    anvil::ckpt::ShardTarget target{&t.model().layout(), &t.engine().shard_layout(),
                                    device.get(), state};
    t0 = Clock::now();
    Check(anvil::ckpt::LoadShard(*found->point, target).status(), "load");
    best_load = std::min(best_load, Since(t0));
    EvictCheckpoint(ck);
    t0 = Clock::now();
    Check(anvil::ckpt::LoadShard(*found->point, target).status(), "cold load");
    best_cold_load = std::min(best_cold_load, Since(t0));
  }
  fs::remove(root + "/plain.bin");
  std::printf(
      "load   plain cold read %7.1f MB/s | verify (cold read + xxh3) %7.1f MB/s = %5.1f%% | "
      "LoadShard cold %7.1f MB/s = %5.1f%% | LoadShard after verify (cached) %7.1f MB/s\n",
      bytes / 1e6 / best_read, bytes / 1e6 / best_verify, 100 * best_read / best_verify,
      bytes / 1e6 / best_cold_load, 100 * best_read / best_cold_load, bytes / 1e6 / best_load);

  // --- async stall vs memcpy ---
  std::vector<float> dst(floats, 1.0f);
  double best_memcpy = 1e9;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    float* to = dst.data();
    for (const anvil::StateBuffer& sb : state) {
      std::memcpy(to, sb.data, sb.numel * 4);
      to += sb.numel;
    }
    best_memcpy = std::min(best_memcpy, Since(t0));
  }
  wo.async = true;
  wo.dir = ckpt + "_async";
  auto async_writer = anvil::ckpt::CheckpointWriter::Create(wo);
  Check(async_writer.status(), "writer");
  (*async_writer)->Reserve(floats);
  std::vector<double> base_steps, busy_steps, stalls;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    Check(t.Step().status(), "step");
    base_steps.push_back(Since(t0));
  }
  for (int r = 0; r < repeats; ++r) {
    anvil::ckpt::SaveRequest req;
    req.step = 100 + r;
    req.config = cfg;
    req.source = Source(t, device.get());
    auto timing = (*async_writer)->Save(req);
    Check(timing.status(), "async save");
    stalls.push_back(timing->stall_s);
    // Steps while the background write runs.
    auto t0 = Clock::now();
    Check(t.Step().status(), "step");
    busy_steps.push_back(Since(t0));
    for (const auto& rep : (*async_writer)->Wait()) Check(rep.status, "async report");
  }
  std::sort(stalls.begin(), stalls.end());
  std::sort(base_steps.begin(), base_steps.end());
  std::sort(busy_steps.begin(), busy_steps.end());
  const double stall = stalls[stalls.size() / 2];
  std::printf(
      "stall  async save stalls training %6.1f ms (median) | plain memcpy %6.1f ms | ratio %4.2fx "
      "(target <= 2x) | step %6.1f ms alone, %6.1f ms while the write runs\n",
      stall * 1e3, best_memcpy * 1e3, stall / best_memcpy, base_steps[base_steps.size() / 2] * 1e3,
      busy_steps[busy_steps.size() / 2] * 1e3);
  fs::remove_all(ckpt);
  fs::remove_all(ckpt + "_async");
}

// fork/exec with stdout+stderr into `log`.
pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Seconds until `text` shows in the log (from t0), or -1.
double WaitFor(const std::string& log, const std::string& text, Clock::time_point t0,
               double timeout) {
  while (Since(t0) < timeout) {
    if (ReadAll(log).find(text) != std::string::npos) return Since(t0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

void Resume(const std::string& data) {
  const std::string root = absl::GetFlag(FLAGS_dir);
  const std::string ckpt = root + "/resume";
  fs::remove_all(ckpt);
  const std::vector<std::string> args{absl::GetFlag(FLAGS_train_bin),
                                      "--train_pattern=" + data,
                                      "--val_pattern=",
                                      "--eval_every=0",
                                      "--n_layer=6",
                                      "--n_head=6",
                                      "--n_embd=384",
                                      "--max_seq_len=256",
                                      "--seq_len=256",
                                      "--batch_size=4",
                                      "--steps=1000",
                                      "--log_every=1",
                                      "--checkpoint_every=2",
                                      "--checkpoint_dir=" + ckpt};
  const std::string log1 = root + "/resume1.log", log2 = root + "/resume2.log";
  fs::remove(log1);  // the child truncates them too, but maybe after the first poll
  fs::remove(log2);
  const auto t_start = Clock::now();
  const pid_t first = Spawn(args, log1);
  const double first_step = WaitFor(log1, "step     1/", t_start, 300);
  if (WaitFor(log1, "checkpoint step_00000002 committed", t_start, 300) < 0) {
    std::printf("resume: the first run never committed a checkpoint\n%s", ReadAll(log1).c_str());
    ::kill(first, SIGKILL);
    ::waitpid(first, nullptr, 0);
    return;
  }
  ::kill(first, SIGKILL);
  ::waitpid(first, nullptr, 0);
  const auto t_kill = Clock::now();
  const pid_t second = Spawn(args, log2);
  const double resumed = WaitFor(log2, "resumed from", t_kill, 300);
  std::string resume_line;
  for (std::istringstream in(ReadAll(log2)); std::getline(in, resume_line);) {
    if (resume_line.find("resumed from") != std::string::npos) break;
  }
  int from = 0;
  const size_t at = resume_line.find("step_");
  if (at != std::string::npos) from = std::atoi(resume_line.c_str() + at + 5);
  const double model = WaitFor(log2, "model: GPT", t_kill, 300);
  const double step = WaitFor(log2, absl::StrFormat("step %5d/", from + 1), t_kill, 300);
  ::kill(second, SIGKILL);
  ::waitpid(second, nullptr, 0);
  std::printf(
      "\n== resume (standard config, batch 4 x 256): kill -9 after a committed checkpoint\n");
  std::printf(
      "resume %.2f s from kill -9 to training again (restarted process: start, model, resume %.2f "
      "s "
      "incl. verify+load, then the sgemm peak measurement); first new step done at %.2f s "
      "(a fresh start's first step: %.2f s after launch)\n  %s\n",
      model, resumed, step, first_step, resume_line.c_str());
  fs::remove_all(ckpt);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string root = absl::GetFlag(FLAGS_dir);
  fs::create_directories(root);
  std::vector<uint32_t> tokens(200000);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<uint32_t>((i * 7 + i / 13) % 256);
  const std::string data = root + "/train_0.bin";
  Check(anvil::WriteTokenShard(data, tokens), "data");
  const int repeats = absl::GetFlag(FLAGS_repeats);
  RunConfig(Shape{"standard", 6, 6, 384}, data, repeats);
  if (absl::GetFlag(FLAGS_larger)) RunConfig(Shape{"larger", 12, 12, 768}, data, repeats);
  if (absl::GetFlag(FLAGS_resume)) Resume(data);
  return 0;
}
