#!/usr/bin/env python3
"""Writes the llama_hf_tiny/ fixture: a tiny LlamaForCausalLM made and saved
by transformers itself, for llama_hf_test.cc (which loads model.safetensors
by name identity into the C++ Llama and must match the logits).

The model: random init (torch.manual_seed(0), initializer_range 0.2 so the
logits are far from uniform, norm weights jittered around 1), grouped-query
attention (4 query heads, 2 kv heads), tied embeddings (the file then holds
no lm_head.weight), a non-default rope_theta and rms_norm_eps. Saved with
save_pretrained(safe_serialization=True) in float32; logits.bin holds the
config as the C++ test reads it, the tokens and the model's float32 logits
(record format of make_gpt_reference.py). generation_config.json is
dropped (the test does not need it).

Run: python3 tests/models/make_llama_hf_fixture.py tests/models/llama_hf_tiny
"""
import os
import sys

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

from make_llama_reference import write_records

L, NH, NKV, C, FF, V, TMAX = 2, 4, 2, 32, 64, 64, 32
THETA, EPS = 500.0, 1e-6
B, T = 2, 16


def main(out_dir):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=FF, num_hidden_layers=L,
                      num_attention_heads=NH, num_key_value_heads=NKV, max_position_embeddings=TMAX,
                      rms_norm_eps=EPS, rope_theta=THETA, tie_word_embeddings=True,
                      initializer_range=0.2, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    gen = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    idx = torch.randint(0, V, (B, T))
    with torch.no_grad():
        logits = model(input_ids=idx).logits
    records = [("config", torch.tensor([L, NH, NKV, C, FF, V, TMAX, 1, B, T], dtype=torch.int32)),
               ("config_f", torch.tensor([THETA, EPS], dtype=torch.float64)),
               ("tokens", idx.to(torch.int32)), ("logits", logits)]
    write_records(os.path.join(out_dir, "logits.bin"), records)
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"wrote {out_dir} with transformers {transformers.__version__}, torch {torch.__version__}: "
          f"{sorted(os.listdir(out_dir))}, {total} bytes")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/models/llama_hf_tiny")
