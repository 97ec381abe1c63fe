// The tokenizer files of a Hugging Face export for this project's byte-level
// tokens (`tokenize`: token id = the UTF-8 byte, vocab 256), so that
// AutoTokenizer.from_pretrained(OUT) and pipeline("text-generation", OUT)
// work on an exported folder.
//
// tokenizer.json is the `tokenizers` library's format: a BPE model with no
// merges over the 256 byte symbols (each spelled as GPT-2's byte-level
// pre-tokenizer spells that byte, so symbol id b is byte b), ByteLevel
// pre-tokenizer and decoder. Ids from 256 to vocab-1 (a padded vocabulary)
// are added special tokens "<|extra_N|>", the last one "<|endoftext|>".
// bos/eos are the ids config.json names (GPT: vocab-1, with vocab 256 byte
// 0xFF, which never occurs in UTF-8 text; Llama: HF's 1 and 2).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace anvil::ckpt {

// The character GPT-2's byte-level encoding uses for byte b (0..255):
// printable Latin-1 bytes stand for themselves, the others are shifted to
// U+0100 and up, in byte order.
char32_t ByteLevelChar(int b);

// tokenizer.json for a byte-level model of `vocab_size` ids (>= 256, else an
// error: the bytes need 256 ids).
absl::StatusOr<std::string> ByteLevelTokenizerJson(int vocab_size);

// tokenizer_config.json: PreTrainedTokenizerFast, model_max_length, and the
// bos/eos tokens of those ids (in [0, vocab_size)).
std::string ByteLevelTokenizerConfigJson(int vocab_size, int max_seq_len, int bos_id,
                                         int eos_id);

// The integer after "key": in a config.json text, or `fallback`.
int JsonIntField(const std::string& json, const std::string& key, int fallback);

}  // namespace anvil::ckpt
