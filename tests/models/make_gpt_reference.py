#!/usr/bin/env python3
"""Writes gpt_reference.bin: a tiny GPT-2 run in PyTorch (float64) that the C++
parity test (gpt_parity_test.cc) must reproduce.

Contents: the config, weights (nn.Linear layout, names as in models/gpt/gpt.cc),
input tokens and targets (one ignored target, -1), logits, loss, the gradient
of every tensor, and the losses of 10 AdamW steps (decoupled weight decay on
matrices only, global-norm clipping) with their hyper-parameters.

Record format (little-endian): b"ANVREF01", u32 count, then per record
u32 name_len, name, u8 dtype (0 f32, 3 i32), u32 ndim, i64 dims[ndim], data.

Run: python3 tests/models/make_gpt_reference.py tests/models/gpt_reference.bin
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

L, H, C, TMAX, V = 2, 4, 32, 16, 64
B, T = 2, 12
LR, BETA1, BETA2, EPS, WD, CLIP = 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0
STEPS = 10

torch.manual_seed(0)
dt = torch.float64


def param_list():
    """(name, shape, decay, init) in the order of the C++ ParamLayout."""
    out = [("wte.weight", (V, C), True, "normal"), ("wpe.weight", (TMAX, C), True, "normal")]
    for l in range(L):
        p = f"h.{l}."
        out += [
            (p + "ln_1.weight", (C,), False, "ones"), (p + "ln_1.bias", (C,), False, "small"),
            (p + "attn.c_attn.weight", (3 * C, C), True, "normal"), (p + "attn.c_attn.bias", (3 * C,), False, "small"),
            (p + "attn.c_proj.weight", (C, C), True, "proj"), (p + "attn.c_proj.bias", (C,), False, "small"),
            (p + "ln_2.weight", (C,), False, "ones"), (p + "ln_2.bias", (C,), False, "small"),
            (p + "mlp.c_fc.weight", (4 * C, C), True, "normal"), (p + "mlp.c_fc.bias", (4 * C,), False, "small"),
            (p + "mlp.c_proj.weight", (C, 4 * C), True, "proj"), (p + "mlp.c_proj.bias", (C,), False, "small"),
        ]
    out += [("ln_f.weight", (C,), False, "ones"), ("ln_f.bias", (C,), False, "small")]
    return out


def init(shape, kind):
    # Biases and norms get small random values (not GPT-2's zeros/ones) so
    # every gradient path is exercised with non-trivial numbers.
    if kind == "normal":
        return torch.randn(shape, dtype=dt) * 0.02
    if kind == "proj":
        return torch.randn(shape, dtype=dt) * 0.02 / math.sqrt(2 * L)
    if kind == "ones":
        return 1.0 + 0.1 * torch.randn(shape, dtype=dt)
    return 0.01 * torch.randn(shape, dtype=dt)


def forward(P, idx, targets):
    x = P["wte.weight"][idx] + P["wpe.weight"][:T]
    hs = C // H
    for l in range(L):
        p = f"h.{l}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
        qkv = h @ P[p + "attn.c_attn.weight"].T + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, H, hs).transpose(1, 2)
        k = k.view(B, T, H, hs).transpose(1, 2)
        v = v.view(B, T, H, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + y @ P[p + "attn.c_proj.weight"].T + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
        h = F.gelu(h @ P[p + "mlp.c_fc.weight"].T + P[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ P[p + "mlp.c_proj.weight"].T + P[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], 1e-5)
    logits = x @ P["wte.weight"].T
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
    return logits, loss


def main(path):
    plist = param_list()
    P = {n: init(s, k).requires_grad_(True) for n, s, _, k in plist}
    idx = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[1, 3] = -1  # ignored position

    records = [("config", torch.tensor([L, H, C, TMAX, V, B, T], dtype=torch.int32)),
               ("tokens", idx.to(torch.int32)), ("targets", targets.to(torch.int32))]
    records += [("param/" + n, P[n].detach().clone()) for n, _, _, _ in plist]

    logits, loss = forward(P, idx, targets)
    loss.backward()
    records += [("logits", logits.detach()), ("loss", loss.detach().reshape(1))]
    records += [("grad/" + n, P[n].grad.detach().clone()) for n, _, _, _ in plist]

    decay = [P[n] for n, _, d, _ in plist if d]
    no_decay = [P[n] for n, _, d, _ in plist if not d]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(BETA1, BETA2), eps=EPS)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        _, loss = forward(P, idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([P[n] for n, _, _, _ in plist], CLIP)
        opt.step()
        losses.append(loss.item())
    records += [("adamw/losses", torch.tensor(losses, dtype=dt)),
                ("adamw/hparams", torch.tensor([LR, BETA1, BETA2, EPS, WD, CLIP], dtype=dt))]
    records += [("adamw/final/" + n, P[n].detach().clone()) for n, _, _, _ in plist]

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
    print(f"wrote {path}: {len(records)} records, losses {losses[0]:.6f} -> {losses[-1]:.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/models/gpt_reference.bin")
