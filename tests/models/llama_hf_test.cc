// Hugging Face interop: a tiny LlamaForCausalLM made and saved by
// transformers (llama_hf_tiny/, written by make_llama_hf_fixture.py: GQA,
// tied embeddings, rope_theta 500, rms_norm_eps 1e-6) loads into the C++
// Llama by tensor-name identity (every layout tensor found with its shape,
// no file tensor left over) and reproduces transformers' fp32 logits; and
// LlamaHfConfigJson writes the values transformers wrote in config.json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/llama/llama.h"
#include "models/llama/llama_hf.h"
#include "runtime/checkpoint/safetensors.h"
#include "tests/models/reference_file.h"

namespace anvil {
namespace {

#define FIXTURE_DIR ANVIL_TEST_DATA_DIR "/llama_hf_tiny"

struct Fixture {
  LlamaConfig config;
  int B = 0, T = 0;
  std::vector<int32_t> tokens;
  std::vector<float> logits;
};

Fixture ReadFixture() {
  auto ref = testing::ReadReferenceFile(FIXTURE_DIR "/logits.bin");
  EXPECT_TRUE(ref.ok()) << ref.status();
  Fixture f;
  if (!ref.ok()) return f;
  const auto& c = ref->at("config").i;
  const auto& cf = ref->at("config_f").f;
  f.config = LlamaConfig{.n_layer = c[0], .n_head = c[1], .n_kv_head = c[2], .n_embd = c[3],
                         .ffn_hidden = c[4], .vocab_size = c[5], .max_seq_len = c[6],
                         .rope_theta = cf[0], .norm_eps = cf[1], .tie_embeddings = c[7] != 0};
  f.B = c[8];
  f.T = c[9];
  f.tokens = ref->at("tokens").i;
  f.logits = ref->at("logits").f;
  return f;
}

TEST(LlamaHf, TransformersModelLoadsByNameAndMatchesLogits) {
  const Fixture fx = ReadFixture();
  ASSERT_FALSE(fx.tokens.empty());
  ASSERT_TRUE(fx.config.tie_embeddings);  // the fixture covers the tied head
  auto device = kernels::MakeCpuDevice(2);
  auto m = Llama::Create(fx.config, LlamaOptions{fx.B, fx.T}, device.get());
  ASSERT_TRUE(m.ok()) << m.status();
  Llama& model = **m;
  auto file = ckpt::ReadSafetensorsHeader(FIXTURE_DIR "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const ParamLayout& layout = model.layout();
  std::vector<float> params(layout.total_numel(), 0.f);
  for (const ParamInfo& p : layout.params()) {
    const ckpt::SafetensorsTensor* t = file->Find(p.name);  // the names ARE HF's
    ASSERT_NE(t, nullptr) << p.name << " missing from model.safetensors";
    ASSERT_EQ(t->shape, p.shape) << p.name;
    ASSERT_TRUE(ckpt::ReadSafetensorsTensor(*file, *t, params.data() + p.offset).ok()) << p.name;
  }
  EXPECT_EQ(file->tensors.size(), layout.params().size());  // nothing in the file left over

  ASSERT_TRUE(model.SetBatch(fx.tokens.data(), nullptr, fx.B, fx.T).ok());
  model.ForwardAll(params.data());
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < fx.logits.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(fx.logits[i])));
    max_err = std::max(max_err, std::fabs(static_cast<double>(model.logits()[i]) - fx.logits[i]));
  }
  std::printf("llama hf: transformers logits max |ref| %.4g, max abs err %.3g\n", max_ref, max_err);
  EXPECT_GT(max_ref, 1.0);  // logits far from uniform: the comparison means something
  EXPECT_LE(max_err, 1e-4 * std::max(1.0, max_ref));
}

// The text after "key": in a JSON document, up to the next , } or newline
// (enough for the flat scalar fields compared here).
std::string JsonValue(const std::string& json, const std::string& key) {
  const size_t k = json.find("\"" + key + "\"");
  if (k == std::string::npos) return "<missing>";
  size_t v = json.find(':', k) + 1;
  while (json[v] == ' ') ++v;
  const size_t e = json.find_first_of(",}\n", v);
  return json.substr(v, e - v);
}

TEST(LlamaHf, ConfigJsonAgreesWithTransformers) {
  const Fixture fx = ReadFixture();
  std::ifstream in(FIXTURE_DIR "/config.json");
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string hf = ss.str();
  const std::string ours = LlamaHfConfigJson(fx.config);
  for (const char* key : {"model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
                          "max_position_embeddings", "tie_word_embeddings", "vocab_size",
                          "attention_bias", "mlp_bias", "bos_token_id", "eos_token_id"}) {
    EXPECT_EQ(JsonValue(ours, key), JsonValue(hf, key)) << key;
  }
  for (const char* key : {"rms_norm_eps", "rope_theta"}) {  // numbers, however spelled
    EXPECT_EQ(std::strtod(JsonValue(ours, key).c_str(), nullptr),
              std::strtod(JsonValue(hf, key).c_str(), nullptr))
        << key;
  }
  EXPECT_NE(ours.find("\"LlamaForCausalLM\""), std::string::npos);
  EXPECT_EQ(JsonValue(ours, "torch_dtype"), "\"float32\"");
  // bos/eos stay inside a tiny vocab.
  LlamaConfig two = fx.config;
  two.vocab_size = 2;
  EXPECT_EQ(JsonValue(LlamaHfConfigJson(two), "eos_token_id"), "1");
}

}  // namespace
}  // namespace anvil
