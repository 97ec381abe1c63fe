// The byte-level tokenizer files of an HF export (runtime/checkpoint/
// hf_tokenizer.h): GPT-2's byte-to-character table at the bytes its
// tokenizer is known for, one vocabulary entry per byte with id = byte, the
// padded vocabulary's special tokens, the tokenizer config's bos/eos; and,
// where Python has transformers (ANVIL_PYTHON, else python3), HF's own
// AutoTokenizer reads the files: a text's ids are its UTF-8 bytes.
#include "runtime/checkpoint/hf_tokenizer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace anvil::ckpt {
namespace {

namespace fs = std::filesystem;

int Count(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

TEST(HfTokenizer, Gpt2ByteTable) {
  EXPECT_EQ(ByteLevelChar('A'), U'A');
  EXPECT_EQ(ByteLevelChar(' '), U'\u0120');   // GPT-2's "Ġ"
  EXPECT_EQ(ByteLevelChar('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(ByteLevelChar(0), U'\u0100');
  EXPECT_EQ(ByteLevelChar(173), U'\u0143');  // the soft hyphen: "Ń"
  EXPECT_EQ(ByteLevelChar(255), U'\u00FF');
  std::set<char32_t> all;
  for (int b = 0; b < 256; ++b) all.insert(ByteLevelChar(b));
  EXPECT_EQ(all.size(), 256u);  // a bijection
}

TEST(HfTokenizer, VocabularyAndSpecialTokens) {
  auto j = ByteLevelTokenizerJson(256);
  ASSERT_TRUE(j.ok());
  EXPECT_NE(j->find("\"A\": 65,"), std::string::npos);
  EXPECT_NE(j->find("\"\u0120\": 32,"), std::string::npos);
  EXPECT_NE(j->find("\"\\\\\": 92,"), std::string::npos);  // backslash, escaped
  EXPECT_NE(j->find("\"\\\"\": 34,"), std::string::npos);  // quote, escaped
  EXPECT_NE(j->find("\"merges\": []"), std::string::npos);
  EXPECT_EQ(Count(*j, "\"special\": true"), 0);
  auto padded = ByteLevelTokenizerJson(260);
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(Count(*padded, "\"special\": true"), 4);
  EXPECT_NE(padded->find("{\"id\": 259, \"content\": \"<|endoftext|>\""), std::string::npos);
  EXPECT_NE(padded->find("{\"id\": 256, \"content\": \"<|extra_0|>\""), std::string::npos);
  auto small = ByteLevelTokenizerJson(100);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(std::string(small.status().message()).find("at least 256"), std::string::npos);

  const std::string c = ByteLevelTokenizerConfigJson(256, 128, 255, 255);
  EXPECT_NE(c.find("\"eos_token\": \"\u00FF\""), std::string::npos) << c;
  EXPECT_NE(c.find("\"model_max_length\": 128"), std::string::npos) << c;
  const std::string l = ByteLevelTokenizerConfigJson(260, 64, 1, 2);
  EXPECT_NE(l.find("\"bos_token\": \"\u0101\""), std::string::npos) << l;
  EXPECT_NE(l.find("\"eos_token\": \"\u0102\""), std::string::npos) << l;
  EXPECT_EQ(JsonIntField("{\n  \"eos_token_id\": 255,\n}", "eos_token_id", -1), 255);
  EXPECT_EQ(JsonIntField("{}", "eos_token_id", 7), 7);
}

TEST(HfTokenizer, TransformersReadsTheFiles) {
  const fs::path d = fs::temp_directory_path() / ("anvil_hf_tok_" + std::to_string(getpid()));
  fs::create_directories(d);
  std::ofstream(d / "tokenizer.json") << *ByteLevelTokenizerJson(256);
  std::ofstream(d / "tokenizer_config.json") << ByteLevelTokenizerConfigJson(256, 128, 255, 255);
  const char* py = std::getenv("ANVIL_PYTHON");
  const std::string cmd = std::string(py != nullptr ? py : "python3") + " " +
                          ANVIL_HF_TOKENIZER_CHECK_PY + " tokenizer " + d.string();
  const int rc = std::system(cmd.c_str());
  fs::remove_all(d);
  const int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  if (code == 77) GTEST_SKIP() << "no Python with transformers (set ANVIL_PYTHON)";
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace anvil::ckpt
