#include "runtime/data/data_source.h"

#include "runtime/data/image_data_config.h"
#include "runtime/data/token_source.h"

namespace anvil {

absl::StatusOr<std::unique_ptr<DataSource>> OpenDataSource(DataKind kind,
                                                           const proto::TrainConfig& config,
                                                           const DataSourceOptions& options) {
  const proto::DataConfig& d = config.data();
  switch (kind) {
    case DataKind::kTokens: {
      SamplerOptions so;
      so.batch_size = d.batch_size();
      so.seq_len = d.seq_len();
      so.seed = config.seed();
      so.rank = options.rank;
      so.world_size = options.world_size;
      so.shuffle = options.split == Split::kTrain;
      const std::string& pattern =
          options.split == Split::kTrain ? d.train_pattern() : d.val_pattern();
      absl::StatusOr<std::unique_ptr<TokenSource>> s =
          TokenSource::Open(pattern, config.model().vocab_size(), so);
      if (!s.ok()) return s.status();
      return std::unique_ptr<DataSource>(std::move(*s));
    }
    case DataKind::kImages:
    case DataKind::kDiffusion:
      return OpenImageSource(kind, config, options);
  }
  return absl::InvalidArgumentError("unknown data kind");
}

bool HasValidationData(DataKind kind, const proto::TrainConfig& config) {
  if (kind == DataKind::kTokens) return !config.data().val_pattern().empty();
  return HasImageValData(config.data());
}

}  // namespace anvil
