// CheckpointWriter: sharded, asynchronous saves with an atomic commit.
//
// Save() runs on the training thread and only (1) waits for the previous save
// to finish, (2) copies the rank's piece of each of its state buffers (the
// engine's named list: master params, AdamW m and v, ...; see
// shard_slices.h) into a preallocated host buffer and (3) hands the rest to
// a background thread. That thread, on every rank:
//   rank 0: clears and creates <dir>/step_<N>.tmp/ (fsync <dir>), publishes "go"
//   all:    write <dir>/step_<N>.tmp/rank_<r>.bin, hashing it (xxh3), fsync;
//           publish the file's record (name, size, xxh3, tensor slices)
//   rank 0: once every record is in: build and validate the manifest, write
//           and fsync manifest.pb, fsync the directory, rename .tmp -> step_<N>
//           (the commit point), fsync <dir>, replace `latest` atomically,
//           apply --keep_last, publish "done"
//   others: wait for "done", so every rank's save ends when it is committed.
// Ranks meet through the Store under a per-save key prefix; the process
// groups are never touched off the training thread. The writer thread runs
// at a lower CPU priority (nice 10) and writes the page-aligned snapshot with
// O_DIRECT, so training keeps the cores and the kernel has no gigabyte of
// dirty pages to flush behind its back.
//
// The directory belongs to the job while its writer lives: Create takes
// the directory's lock on rank 0 (dir_lock.h) and every rank checks it.
//
// Invariants: a committed checkpoint is never overwritten (saving a step that
// is already committed and verifies is a no-op); retention deletes only after
// the new checkpoint is committed, never the new one, and deletes by renaming
// to .deleting first so a half-deleted directory is never mistaken for a
// checkpoint; at most one save is in flight per rank.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kernels/device.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"
#include "runtime/checkpoint/dir_lock.h"
#include "runtime/sharding/shard_layout.h"
#include "runtime/sharding/state_buffer.h"
#include "runtime/store/store.h"

namespace anvil::ckpt {

struct CheckpointWriterOptions {
  std::string dir;
  std::string run_id;  // the launcher's run id (ANVIL_RUN_ID); recorded in the lock
  int rank = 0;
  int world_size = 1;
  std::shared_ptr<Store> store;  // required when world_size > 1
  absl::Duration timeout = absl::Minutes(5);
  int keep_last = 3;  // committed checkpoints kept; 0 keeps all
  bool async = true;  // false: Save returns after the commit
};

// The rank's shard: where it lives and how it maps onto the model.
struct ShardSource {
  const ParamLayout* layout = nullptr;
  const ShardLayout* shards = nullptr;
  int replicas = 1;      // ranks holding the same shard
  int replica_rank = 0;  // this rank among them
  kernels::Device* device = nullptr;
  // The buffers to save, by name (local_numel elements each, device memory);
  // every rank passes the same names in the same order.
  StateList state;
};

struct SaveRequest {
  int64_t step = 0;
  proto::TrainConfig config;
  proto::TrainingState state;
  ShardSource source;
};

// What the training thread paid for a save.
struct SaveTiming {
  double wait_s = 0;      // for the previous save to finish
  double snapshot_s = 0;  // copying the shard into host memory
  double stall_s = 0;     // all of Save()
  uint64_t bytes = 0;     // this rank's snapshot
};

// The outcome of a save, once it finished (committed, skipped or failed).
struct SaveReport {
  int64_t step = 0;
  absl::Status status;
  bool skipped = false;            // already committed
  uint64_t bytes = 0;              // this rank's data file
  uint64_t total_bytes = 0;        // all files (rank 0)
  double write_s = 0;              // this rank's file: create .. fsync
  double total_s = 0;              // snapshot taken .. committed
  std::vector<std::string> notes;  // retention, set-aside directories
  std::string Describe() const;    // one log line
};

class CheckpointWriter {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointWriter>> Create(CheckpointWriterOptions options);
  // Waits for the save in flight, but abandons its waits for other ranks:
  // a writer destroyed mid-save is on an error path (the trainer waits for
  // every save it means to keep), and a dead peer must not hold the process
  // until the store timeout. Local file I/O is always completed.
  ~CheckpointWriter();

  // Preallocates (and touches) the host snapshot buffer, so the first save
  // does not pay for page faults inside its stall.
  void Reserve(size_t floats);

  // See the file comment. Returns once the snapshot is taken (async) or the
  // checkpoint is committed (sync). Errors here are the snapshot's; the
  // save's own outcome comes from Wait() / TakeFinished().
  absl::StatusOr<SaveTiming> Save(SaveRequest request);

  // Waits for the save in flight and returns the reports not yet taken.
  std::vector<SaveReport> Wait();
  // Reports of saves that finished since the last call; never blocks.
  std::vector<SaveReport> TakeFinished();

  const CheckpointWriterOptions& options() const { return options_; }
  // Set when rank 0 took over a stale lock of the directory (one line).
  const std::string& lock_note() const { return lock_note_; }

 private:
  struct Job;
  explicit CheckpointWriter(CheckpointWriterOptions options) : options_(std::move(options)) {}
  void Join();
  void Run(std::unique_ptr<Job> job);
  absl::Status RunSave(Job& job, SaveReport* report);
  absl::StatusOr<std::string> PrepareDirectory(Job& job, SaveReport* report);
  absl::Status WriteShardFile(Job& job, const std::string& tmp, proto::CheckpointManifest* record,
                              SaveReport* report);
  absl::Status Commit(Job& job, const std::string& tmp, const proto::CheckpointManifest& own,
                      SaveReport* report);
  void ApplyRetention(int64_t committed_step, SaveReport* report);
  std::string Key(const Job& job, const std::string& what) const;
  // Store reads that give up early when the writer is being destroyed.
  absl::StatusOr<std::string> GetKey(const std::string& key);
  absl::StatusOr<std::vector<std::string>> GetKeys(const std::vector<std::string>& keys);

  CheckpointWriterOptions options_;
  std::unique_ptr<CheckpointDirLock> lock_;  // rank 0, for the writer's lifetime
  std::string lock_note_;
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  // Page-aligned (O_DIRECT writes straight from it), pages touched by Reserve.
  std::unique_ptr<float, FreeDeleter> staging_;
  size_t staging_floats_ = 0;
  int64_t seq_ = 0;  // saves started; identical on every rank
  std::thread thread_;
  std::atomic<bool> thread_done_{false};
  std::atomic<bool> cancel_{false};
  absl::Mutex mu_;
  std::vector<SaveReport> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace anvil::ckpt
