#!/usr/bin/env python3
"""Writes dit_reference.bin: a tiny DiT (Peebles & Xie, the structure of
facebookresearch/DiT models.py: patch conv, fixed 2-D sin-cos positions,
timestep MLP + class table, adaLN-Zero blocks with LayerNorm without affine
(eps 1e-6), non-causal attention, GELU-tanh MLP, final adaLN layer,
unpatchify) in plain PyTorch (float64, NCHW as the original) that the C++
parity test (dit_parity_test.cc) must reproduce in fp32.

Every adaLN and the final linear are non-zero (random), so every gradient
is meaningful (adaLN-Zero would zero most of them).

Contents: the config, the weights (models.py names, the C++ ParamLayout's
order), x_t (B,H,W,C) NHWC, timesteps, labels (one the null class), the
target (NHWC), the prediction (NHWC), the MSE loss, and the gradient of
every tensor. Record format: see make_gpt_reference.py (b"ANVREF01").

Run: python3 tests/models/make_dit_reference.py tests/models/dit_reference.bin
"""
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

L, NH, C, P, S, CIN, K, FREQ = 2, 4, 32, 2, 8, 3, 5, 256
B = 3
EPS = 1e-6
G = S // P
T = G * G

dt = torch.float64


def param_list():
    """(name, shape) in the order of the C++ ParamLayout."""
    out = [("x_embedder.proj.weight", (C, CIN, P, P)), ("x_embedder.proj.bias", (C,)),
           ("t_embedder.mlp.0.weight", (C, FREQ)), ("t_embedder.mlp.0.bias", (C,)),
           ("t_embedder.mlp.2.weight", (C, C)), ("t_embedder.mlp.2.bias", (C,)),
           ("y_embedder.embedding_table.weight", (K + 1, C))]
    for l in range(L):
        b = f"blocks.{l}."
        out += [(b + "attn.qkv.weight", (3 * C, C)), (b + "attn.qkv.bias", (3 * C,)),
                (b + "attn.proj.weight", (C, C)), (b + "attn.proj.bias", (C,)),
                (b + "mlp.fc1.weight", (4 * C, C)), (b + "mlp.fc1.bias", (4 * C,)),
                (b + "mlp.fc2.weight", (C, 4 * C)), (b + "mlp.fc2.bias", (C,)),
                (b + "adaLN_modulation.1.weight", (6 * C, C)),
                (b + "adaLN_modulation.1.bias", (6 * C,))]
    out += [("final_layer.adaLN_modulation.1.weight", (2 * C, C)),
            ("final_layer.adaLN_modulation.1.bias", (2 * C,)),
            ("final_layer.linear.weight", (P * P * CIN, C)),
            ("final_layer.linear.bias", (P * P * CIN,))]
    return out


def init(name, shape):
    if len(shape) == 1:
        return 0.1 * torch.randn(shape, dtype=dt)
    fan_in = int(np.prod(shape[1:]))
    return torch.randn(shape, dtype=dt) / math.sqrt(fan_in)


def sincos_1d(dim, pos):
    omega = np.arange(dim // 2, dtype=np.float64)
    omega /= dim / 2.0
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size):
    gh = np.arange(grid_size, dtype=np.float32)
    gw = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(gw, gh), axis=0).reshape([2, 1, grid_size, grid_size])
    return np.concatenate([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], axis=1)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dt)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=EPS)


def forward(W, x_nchw, t, y, pos):
    x = F.conv2d(x_nchw, W["x_embedder.proj.weight"], W["x_embedder.proj.bias"], stride=P)
    x = x.flatten(2).transpose(1, 2) + pos  # (B,T,C)
    h = F.linear(timestep_embedding(t, FREQ), W["t_embedder.mlp.0.weight"],
                 W["t_embedder.mlp.0.bias"])
    temb = F.linear(F.silu(h), W["t_embedder.mlp.2.weight"], W["t_embedder.mlp.2.bias"])
    c = temb + W["y_embedder.embedding_table.weight"][y]
    sc = F.silu(c)
    hd = C // NH
    for l in range(L):
        b = f"blocks.{l}."
        mod = F.linear(sc, W[b + "adaLN_modulation.1.weight"], W[b + "adaLN_modulation.1.bias"])
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = mod.chunk(6, dim=1)
        hx = modulate(layer_norm(x), sh_a, sc_a)
        qkv = F.linear(hx, W[b + "attn.qkv.weight"], W[b + "attn.qkv.bias"])
        qkv = qkv.reshape(B, T, 3, NH, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(hd), dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, C)
        a = F.linear(a, W[b + "attn.proj.weight"], W[b + "attn.proj.bias"])
        x = x + g_a.unsqueeze(1) * a
        hm = modulate(layer_norm(x), sh_m, sc_m)
        hm = F.gelu(F.linear(hm, W[b + "mlp.fc1.weight"], W[b + "mlp.fc1.bias"]),
                    approximate="tanh")
        hm = F.linear(hm, W[b + "mlp.fc2.weight"], W[b + "mlp.fc2.bias"])
        x = x + g_m.unsqueeze(1) * hm
    shift, scale = F.linear(sc, W["final_layer.adaLN_modulation.1.weight"],
                            W["final_layer.adaLN_modulation.1.bias"]).chunk(2, dim=1)
    x = modulate(layer_norm(x), shift, scale)
    x = F.linear(x, W["final_layer.linear.weight"], W["final_layer.linear.bias"])
    # unpatchify (models.py): (B,T,p*p*c) -> (B,c,H,W)
    x = x.reshape(B, G, G, P, P, CIN)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(B, CIN, G * P, G * P)


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
    # Round weights to fp32 first so both sides start from the same values.
    W = {n: init(n, s).float().to(dt).requires_grad_(True) for n, s in plist}
    pos = torch.from_numpy(sincos_2d(C, G)).to(dt).unsqueeze(0)
    x_nhwc = torch.randn(B, S, S, CIN).to(dt)
    target = torch.randn(B, S, S, CIN).to(dt)
    t = torch.tensor([3, 517, 999], dtype=torch.int32)
    y = torch.tensor([1, K, 4], dtype=torch.int32)  # image 1 is unconditional
    pred = forward(W, x_nhwc.permute(0, 3, 1, 2), t, y.long(), pos).permute(0, 2, 3, 1)
    loss = F.mse_loss(pred, target)
    loss.backward()
    print(f"loss {loss.item():.6f}")
    records = [("config", torch.tensor([L, NH, C, P, S, CIN, K, FREQ, B], dtype=torch.int32))]
    records += [("param/" + n, W[n].detach()) for n, _ in plist]
    records += [("x_t", x_nhwc), ("timesteps", t), ("labels", y), ("target", target),
                ("pred", pred.detach()), ("loss", loss.detach().reshape(1))]
    records += [("grad/" + n, W[n].grad) for n, _ in plist]
    write_records(path, records)


if __name__ == "__main__":
    main(sys.argv[1])
