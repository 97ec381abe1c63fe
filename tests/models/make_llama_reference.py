#!/usr/bin/env python3
"""Writes llama_reference.bin: a tiny Llama (RMSNorm, HF rotate_half RoPE,
grouped-query attention, SwiGLU, no biases, untied head) run in pure PyTorch
(float64) that the C++ parity test (llama_parity_test.cc) must reproduce.

Contents: the config, weights (Hugging Face LlamaForCausalLM names, nn.Linear
(out, in) layout, in the order of the C++ ParamLayout), input tokens and
targets (one ignored target, -1), logits, loss, the gradient of every tensor,
the losses of 10 AdamW steps (decoupled weight decay on matrices only,
global-norm clipping; the conventions of make_gpt_reference.py) with their
hyper-parameters, and the parameters after those steps.

The rotary angle is formed as transformers forms it (fp32 inverse frequency
times the fp32 position, rounded to fp32); cos/sin and everything else are
float64. When transformers is installed the script also checks this forward
against LlamaForCausalLM (float64) on the same weights and prints the gap
(about 1e-6: transformers rounds cos/sin to fp32 even in float64).

Record format: see make_gpt_reference.py (b"ANVREF01" records).

Run: python3 tests/models/make_llama_reference.py tests/models/llama_reference.bin
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

L, NH, NKV, C, FF, V, TMAX = 2, 4, 2, 32, 64, 64, 16
B, T = 2, 16
HD = C // NH
THETA, EPS_NORM = 10000.0, 1e-5
LR, BETA1, BETA2, EPS, WD, CLIP = 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0
STEPS = 10

dt = torch.float64


def param_list():
    """(name, shape, decay) in the order of the C++ ParamLayout."""
    out = [("model.embed_tokens.weight", (V, C), True)]
    for l in range(L):
        p = f"model.layers.{l}."
        out += [
            (p + "input_layernorm.weight", (C,), False),
            (p + "self_attn.q_proj.weight", (NH * HD, C), True),
            (p + "self_attn.k_proj.weight", (NKV * HD, C), True),
            (p + "self_attn.v_proj.weight", (NKV * HD, C), True),
            (p + "self_attn.o_proj.weight", (C, NH * HD), True),
            (p + "post_attention_layernorm.weight", (C,), False),
            (p + "mlp.gate_proj.weight", (FF, C), True),
            (p + "mlp.up_proj.weight", (FF, C), True),
            (p + "mlp.down_proj.weight", (C, FF), True),
        ]
    out += [("model.norm.weight", (C,), False), ("lm_head.weight", (V, C), True)]
    return out


def init(shape):
    # Norm weights near 1 (not exactly 1) and matrices large enough that
    # every path carries signal.
    if len(shape) == 1:
        return 1.0 + 0.1 * torch.randn(shape, dtype=dt)
    return torch.randn(shape, dtype=dt) * (0.3 if shape[0] == V else 0.08)


def rope_tables(theta, hd, t):
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))  # fp32, as HF
    freqs = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]  # fp32 product
    emb = torch.cat([freqs, freqs], dim=-1).to(dt)
    return emb.cos(), emb.sin()  # (t, hd)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(P, idx, targets):
    cos, sin = rope_tables(THETA, HD, T)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]  # (1,T,1,hd)
    x = P["model.embed_tokens.weight"][idx]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = f"model.layers.{l}."
        h = rmsnorm(x, P[p + "input_layernorm.weight"], EPS_NORM)
        q = (h @ P[p + "self_attn.q_proj.weight"].T).view(B, T, NH, HD)
        k = (h @ P[p + "self_attn.k_proj.weight"].T).view(B, T, NKV, HD)
        v = (h @ P[p + "self_attn.v_proj.weight"].T).view(B, T, NKV, HD)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = NH // NKV  # query head j reads kv head j // rep
        q, k, v = q.transpose(1, 2), k.repeat_interleave(rep, 2).transpose(1, 2), \
            v.repeat_interleave(rep, 2).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HD)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ P[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], EPS_NORM)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].T) * (h @ P[p + "mlp.up_proj.weight"].T)
        x = x + g @ P[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, P["model.norm.weight"], EPS_NORM)
    logits = x @ P["lm_head.weight"].T
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
    return logits, loss


def check_against_transformers(P, idx, logits):
    try:
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        print("transformers not installed: skipped the LlamaForCausalLM cross-check")
        return
    cfg = LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=FF, num_hidden_layers=L,
                      num_attention_heads=NH, num_key_value_heads=NKV, max_position_embeddings=TMAX,
                      rms_norm_eps=EPS_NORM, rope_theta=THETA, tie_word_embeddings=False,
                      attention_bias=False, mlp_bias=False)
    model = LlamaForCausalLM(cfg).to(dt).eval()
    sd = {n: P[n].detach().clone() for n, _, _ in param_list()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    with torch.no_grad():
        hf = model(input_ids=idx).logits
    gap = (hf - logits.detach()).abs().max().item()
    print(f"transformers LlamaForCausalLM float64 logits vs this forward: max abs gap {gap:.3g}")
    # transformers evaluates cos/sin in fp32 even in a float64 model (its
    # rotary embedding forces fp32): that, not the math, is the ~1e-6 gap.
    assert gap < 1e-5, gap


def write_records(path, records):
    with open(path, "wb") as f:
        f.write(b"ANVREF01")
        f.write(struct.pack("<I", len(records)))
        for name, t in records:
            is_int = t.dtype == torch.int32
            arr = t.contiguous() if is_int else t.to(torch.float32).contiguous()
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<BI", 3 if is_int else 0, arr.dim()))
            f.write(struct.pack(f"<{arr.dim()}q", *arr.shape))
            flat = arr.flatten().tolist()
            f.write(struct.pack(f"<{len(flat)}{'i' if is_int else 'f'}", *flat))


def main(path):
    torch.manual_seed(0)
    plist = param_list()
    P = {n: init(s).requires_grad_(True) for n, s, _ in plist}
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[1, 3] = -1  # ignored position

    records = [("config", torch.tensor([L, NH, NKV, C, FF, V, TMAX, 0, B, T], dtype=torch.int32)),
               ("config_f", torch.tensor([THETA, EPS_NORM], dtype=dt)),
               ("tokens", idx.to(torch.int32)), ("targets", targets.to(torch.int32))]
    records += [("param/" + n, P[n].detach().clone()) for n, _, _ in plist]

    logits, loss = forward(P, idx, targets)
    check_against_transformers(P, idx, logits)
    loss.backward()
    records += [("logits", logits.detach()), ("loss", loss.detach().reshape(1))]
    records += [("grad/" + n, P[n].grad.detach().clone()) for n, _, _ in plist]

    decay = [P[n] for n, _, d in plist if d]
    no_decay = [P[n] for n, _, d in plist if not d]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(BETA1, BETA2), eps=EPS)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        _, loss = forward(P, idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([P[n] for n, _, _ in plist], CLIP)
        opt.step()
        losses.append(loss.item())
    records += [("adamw/losses", torch.tensor(losses, dtype=dt)),
                ("adamw/hparams", torch.tensor([LR, BETA1, BETA2, EPS, WD, CLIP], dtype=dt))]
    records += [("adamw/final/" + n, P[n].detach().clone()) for n, _, _ in plist]
    write_records(path, records)
    print(f"wrote {path}: {len(records)} records, losses {losses[0]:.6f} -> {losses[-1]:.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/models/llama_reference.bin")
