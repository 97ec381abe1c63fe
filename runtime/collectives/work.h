// Work: the handle of one issued collective: completion, error and timeout.
// Invariants: a Work completes exactly once, with OK or an error Status, and
// IsCompleted() never goes back to false. The buffers given to the collective
// belong to it until IsCompleted() is true (CPU backends) or until the
// stream passed in the options has passed the collective (NCCL); dropping the
// Work does not cancel the collective.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace anvil {

class Work {
 public:
  virtual ~Work() = default;

  // Makes the result usable by the caller, or reports why it is not.
  //  - CPU backends (Gloo): blocks the calling thread until the collective
  //    has finished and returns its Status; if `timeout` passes first,
  //    returns DeadlineExceeded and the collective carries on (its own
  //    options timeout still bounds it).
  //  - NCCL: does not block the host. Orders the options' stream after the
  //    collective (cudaStreamWaitEvent) and returns the group's status so
  //    far: an error if the collective or the group already failed.
  virtual absl::Status Wait(absl::Duration timeout = absl::InfiniteDuration()) = 0;

  // True once the collective finished, successfully or not (NCCL: its
  // completion event has fired, or the communicator was aborted).
  virtual bool IsCompleted() = 0;
};

}  // namespace anvil
