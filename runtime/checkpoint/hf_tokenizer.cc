#include "runtime/checkpoint/hf_tokenizer.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace anvil::ckpt {
namespace {

bool Printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

std::string Utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// A JSON string literal of a byte-level symbol or token name.
std::string Quoted(const std::string& utf8) {
  std::string s = "\"";
  for (char ch : utf8) {
    if (ch == '"' || ch == '\\') s += '\\';
    s += ch;
  }
  return s + "\"";
}

std::string SpecialName(int id, int vocab_size) {
  return id == vocab_size - 1 ? "<|endoftext|>" : absl::StrCat("<|extra_", id - 256, "|>");
}

// The text of token `id`: a byte's symbol, or a special token past the bytes.
std::string TokenText(int id, int vocab_size) {
  return id < 256 ? Utf8(ByteLevelChar(id)) : SpecialName(id, vocab_size);
}

}  // namespace

char32_t ByteLevelChar(int b) {
  if (Printable(b)) return static_cast<char32_t>(b);
  int shifted = 0;  // how many non-printable bytes come before b
  for (int i = 0; i < b; ++i) shifted += Printable(i) ? 0 : 1;
  return static_cast<char32_t>(256 + shifted);
}

absl::StatusOr<std::string> ByteLevelTokenizerJson(int vocab_size) {
  if (vocab_size < 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a byte-level tokenizer needs a vocabulary of at least 256 ids, the model has ",
        vocab_size));
  }
  const char* byte_level =
      R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false})";
  std::string added = "[";
  for (int id = 256; id < vocab_size; ++id) {
    absl::StrAppend(&added, id > 256 ? ",\n    " : "\n    ", "{\"id\": ", id,
                    ", \"content\": ", Quoted(SpecialName(id, vocab_size)),
                    ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                    "\"normalized\": false, \"special\": true}");
  }
  added += vocab_size > 256 ? "\n  ]" : "]";
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    absl::StrAppend(&vocab, b > 0 ? ",\n      " : "\n      ", Quoted(Utf8(ByteLevelChar(b))), ": ",
                    b);
  }
  return absl::StrCat(
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n",
      "  \"added_tokens\": ", added, ",\n  \"normalizer\": null,\n",
      "  \"pre_tokenizer\": ", byte_level, ",\n  \"post_processor\": null,\n",
      "  \"decoder\": ", byte_level, ",\n",
      "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n",
      "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n",
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n",
      "    \"vocab\": {", vocab, "\n    },\n    \"merges\": []\n  }\n}\n");
}

std::string ByteLevelTokenizerConfigJson(int vocab_size, int max_seq_len, int bos_id,
                                         int eos_id) {
  return absl::StrCat("{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n",
                      "  \"model_max_length\": ", max_seq_len, ",\n  \"bos_token\": ",
                      Quoted(TokenText(bos_id, vocab_size)), ",\n  \"eos_token\": ",
                      Quoted(TokenText(eos_id, vocab_size)), ",\n  \"clean_up_tokenization_spaces\": false\n}\n");
}

int JsonIntField(const std::string& json, const std::string& key, int fallback) {
  const std::string quoted = "\"" + key + "\":";
  const size_t at = json.find(quoted);
  if (at == std::string::npos) return fallback;
  int v = fallback;
  return std::sscanf(json.c_str() + at + quoted.size(), " %d", &v) == 1 ? v : fallback;
}

}  // namespace anvil::ckpt
