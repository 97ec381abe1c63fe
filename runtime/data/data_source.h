// DataSource: where a model's micro-batches come from, for any kind of model.
//
// Each rank owns one source per split; Next() yields this rank's disjoint
// part of the next global batch as a Batch of named host tensors (valid
// until the next call). The source's position is part of a checkpoint:
// SaveState/RestoreState write and read it in the manifest's TrainingState,
// so a resumed run sees exactly the batches an uninterrupted one would.
// Which source feeds a model is the model's DataKind (models/model_spec.h);
// OpenDataSource builds it from the run config.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "models/batch.h"
#include "models/model_spec.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"

namespace anvil {

class DataSource {
 public:
  virtual ~DataSource() = default;
  // The next micro-batch of this rank.
  virtual absl::Status Next(Batch* batch) = 0;
  // Back to the start (evaluation passes begin at the same batches).
  virtual void Reset() = 0;
  // Global batches in one pass over the data (bounds evaluation).
  virtual uint64_t batches_per_epoch() const = 0;
  virtual void SaveState(proto::TrainingState* state) const = 0;
  // Fails when the state does not belong to this data and run.
  virtual absl::Status RestoreState(const proto::TrainingState& state) = 0;
};

enum class Split { kTrain, kVal };

struct DataSourceOptions {
  Split split = Split::kTrain;
  int rank = 0;
  int world_size = 1;
};

// The source for `kind` over the config's data fields. Errors name the flag
// or file at fault.
absl::StatusOr<std::unique_ptr<DataSource>> OpenDataSource(DataKind kind,
                                                           const proto::TrainConfig& config,
                                                           const DataSourceOptions& options);

// Whether the config names (or defaults to) a validation split for `kind`.
bool HasValidationData(DataKind kind, const proto::TrainConfig& config);

}  // namespace anvil
