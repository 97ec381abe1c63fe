// Fuzzes `train`'s command line and config file: the input is either a
// command line (arguments separated by newlines) or, after a leading '#', a
// text-format config file handed to --config. Whatever parses is resolved
// and validated as train_main does (including the up-front memory bound).
// Every outcome must be a status: no crash, no abort, no huge allocation.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/train_flags.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = anvil::fuzz::SeedDir();
  if (seeds.empty()) return 0;
  using anvil::fuzz::WriteSeed;
  WriteSeed(seeds, "gpt", "--model=gpt\n--n_layer=2\n--n_embd=64\n--n_head=4\n--seq_len=32");
  WriteSeed(seeds, "llama", "--model\nllama\n--n_kv_head\n2\n--ffn_hidden=96\n--param_dtype=bf16");
  WriteSeed(seeds, "unet", "--model=unet\n--image_size=28\n--unet_channels=16\n--threads=2");
  WriteSeed(seeds, "ckpt", "--checkpoint_dir=/nonexistent/x\n--save_every=5\n--nosave_on_exit");
  WriteSeed(seeds, "config", "#model { n_layer: 2 n_embd: 32 }\noptim { lr: 0.001 }\n");
  WriteSeed(seeds, "help", "--help");
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  if (!text.empty() && text[0] == '#') {
    const std::string path = anvil::fuzz::ScratchDir() + "/config.txtpb";
    anvil::fuzz::WriteBytes(path, std::string_view(text).substr(1));
    args = {"--config", path};
  } else {
    args = absl::StrSplit(text, '\n');
  }
  absl::StatusOr<anvil::TrainArgs> parsed = anvil::ParseTrainArgs(args);
  if (!parsed.ok()) return 0;
  absl::StatusOr<anvil::proto::TrainConfig> config = anvil::ResolveTrainConfig(*parsed);
  if (!config.ok()) return 0;
  (void)anvil::ValidateTrainConfig(*config);
  (void)anvil::ConfigToText(*config);
  return 0;
}
