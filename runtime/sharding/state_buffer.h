// StateBuffer: one named buffer of a rank's persistent training state.
//
// Every buffer is fp32 in device memory with the rank's ShardLayout: element
// i of the buffer belongs to the same parameter element as element i of the
// local parameter shard, shard padding included (padding stays zero). The
// optimizer's state is a list of them ("params": the fp32 master weights,
// "adam_m", "adam_v"; an EMA of the weights is one more entry), and
// checkpoints save and load whatever the list holds, by name.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace anvil {

struct StateBuffer {
  std::string name;
  float* data = nullptr;  // device memory, ShardLayout::local_numel() elements
  size_t numel = 0;
};

using StateList = std::vector<StateBuffer>;

}  // namespace anvil
