// comm_bench --device cuda: the NCCL half of comm_bench (nccl_bench.cc,
// built only when CUDA and NCCL are found). Plain C++: no CUDA headers.
//
// One process per GPU (rank r on GPU r). Each rank holds the ProcessGroup
// (NcclProcessGroup) and a raw NCCL communicator of its own, both
// bootstrapped through the same store. For each collective and size, blocks
// of back-to-back calls alternate direct NCCL / ProcessGroup on one stream,
// timed with CUDA events as nccl-tests times them (in place, fp32, sum);
// busbw follows nccl-tests' formulas. A world of one GPU has busbw 0 by
// those formulas; its algbw is the local copy rate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/store/store.h"

namespace anvil {

struct NcclBenchOptions {
  int rank = 0;
  int world = 1;
  std::shared_ptr<Store> store;
  int64_t min_bytes = 1024;
  int64_t max_bytes = int64_t{256} << 20;
  int rounds = 5;
};

// Whether this build has the NCCL bench (false: comm_bench --device cuda
// prints a skip line).
bool NcclBenchBuilt();
// GPUs this process sees; 0 with `why` set when none is usable.
int NcclBenchGpus(std::string* why);
// Runs the tables on this rank (rank 0 prints them). Returns the exit code.
int NcclBenchWorker(const NcclBenchOptions& options);

}  // namespace anvil
