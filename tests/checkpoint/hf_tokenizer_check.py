#!/usr/bin/env python3
"""Loads anvil's exported tokenizer (and model) with Hugging Face's own code.

  hf_tokenizer_check.py tokenizer DIR   AutoTokenizer.from_pretrained(DIR): a
                                        text's ids are its UTF-8 bytes and
                                        decoding gives the text back.
  hf_tokenizer_check.py pipeline DIR    pipeline("text-generation", DIR)
                                        generates 8 new tokens from a prompt.
Exit codes: 0 pass, 1 mismatch, 77 skip (transformers/torch missing).
"""
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")


def main():
    mode, d = sys.argv[1], sys.argv[2]
    try:
        import transformers
    except Exception as e:  # noqa: BLE001 - any import failure means skip
        print(f"skip: cannot import transformers: {e}")
        return 77
    tok = transformers.AutoTokenizer.from_pretrained(d)
    text = "Héllo, wörld!\n\tGPL ≥ 3"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    want = list(text.encode("utf-8"))
    if ids != want:
        print(f"ids {ids} != UTF-8 bytes {want}")
        return 1
    back = tok.decode(ids)
    if back != text:
        print(f"decode gave {back!r}, not {text!r}")
        return 1
    if mode == "tokenizer":
        print(f"ok: {len(ids)} ids, eos {tok.eos_token_id}, vocab {len(tok)}")
        return 0
    try:
        import torch  # noqa: F401
    except Exception as e:  # noqa: BLE001
        print(f"skip: cannot import torch: {e}")
        return 77
    gen = transformers.pipeline("text-generation", model=d, tokenizer=d, device="cpu")
    out = gen("The licence", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    if not out.startswith("The licence"):
        print(f"generated text does not continue the prompt: {out!r}")
        return 1
    print(f"ok: generated {out!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
