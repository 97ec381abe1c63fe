#!/usr/bin/env python3
"""Writes unet_reference.bin: a tiny DDPM-style UNet run in plain PyTorch
(float64, NCHW internally) that the C++ parity test (unet_parity_test.cc)
must reproduce: the same plan as models/unet/unet_config.h (stem; per level
residual blocks pushed as skips, a stride-2 3x3 conv downsampling every level
but the lowest; two mid blocks; per level blocks+1 up blocks on
concat(h, skip) along channels, nearest 2x + 3x3 conv upsampling; GroupNorm,
SiLU, 3x3 conv out), the time embedding sinusoid (DDPM convention: sin first,
frequencies exp(-ln(10000) i / (half - 1)), computed in fp32 as the C++ op
and diffusers do) -> linear -> SiLU -> linear, plus a class embedding row
(K + 1 rows, the last the null class), and the MSE loss against a target.

Contents: the config, every parameter (the C++ layout's names, order and
shapes: conv weights (OC, IC, KH, KW), linear weights (out, in)), x_t and
target (written NHWC), timesteps, labels (one the null class), the prediction
(NHWC), the loss and the gradient of every parameter. Parameters are random
(no zero-initialised tensors) so that every gradient is informative.

Record format: see make_gpt_reference.py (b"ANVREF01" records).

Run: python3 tests/models/make_unet_reference.py tests/models/unet_reference.bin
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

S, IC, CH, NB, G, NH, K = 8, 2, 8, 1, 2, 2, 3
MULT = [1, 2]
ATTN = [4]
B = 3
E = 4 * CH
EPS = 1e-5

dt = torch.float64


def plan():
    """The stages of unet_config.h's BuildUNetPlan: dicts with name, cin,
    cout, res, attn, resample, concat (whether the input is concat(h, skip))."""
    stages, skips = [], [CH]
    cur_c, res = CH, S
    L = len(MULT)
    for l in range(L):
        cout = CH * MULT[l]
        for i in range(NB):
            s = dict(name=f"down.{l}.{i}", cin=cur_c, cout=cout, res=res, attn=res in ATTN,
                     resample=None, concat=False)
            skips.append(cout)
            cur_c = cout
            if i == NB - 1 and l != L - 1:
                s["resample"] = "down"
                res //= 2
                skips.append(cout)
            stages.append(s)
    for i in range(2):
        stages.append(dict(name=f"mid.{i}", cin=cur_c, cout=cur_c, res=res,
                           attn=(i == 0 and res in ATTN), resample=None, concat=False))
    for l in reversed(range(L)):
        cout = CH * MULT[l]
        for i in range(NB + 1):
            skip_c = skips.pop()
            s = dict(name=f"up.{l}.{i}", cin=cur_c + skip_c, cout=cout, res=res,
                     attn=res in ATTN, resample=None, concat=True)
            cur_c = cout
            if i == NB and l != 0:
                s["resample"] = "up"
                res *= 2
            stages.append(s)
    return stages


def param_list():
    """(name, shape) in the C++ layout's order."""
    out = []

    def lin(n, o, i):
        out.extend([(n + ".weight", (o, i)), (n + ".bias", (o,))])

    def conv(n, o, i, k):
        out.extend([(n + ".weight", (o, i, k, k)), (n + ".bias", (o,))])

    def norm(n, c):
        out.extend([(n + ".weight", (c,)), (n + ".bias", (c,))])

    lin("time_embed.0", E, CH)
    lin("time_embed.2", E, E)
    if K > 0:
        out.append(("class_embed.weight", (K + 1, E)))
    conv("stem", CH, IC, 3)
    for s in plan():
        p = s["name"] + "."
        norm(p + "norm1", s["cin"])
        conv(p + "conv1", s["cout"], s["cin"], 3)
        lin(p + "temb", s["cout"], E)
        norm(p + "norm2", s["cout"])
        conv(p + "conv2", s["cout"], s["cout"], 3)
        if s["cin"] != s["cout"]:
            conv(p + "skip", s["cout"], s["cin"], 1)
        if s["attn"]:
            norm(p + "attn.norm", s["cout"])
            lin(p + "attn.qkv", 3 * s["cout"], s["cout"])
            lin(p + "attn.proj", s["cout"], s["cout"])
        if s["resample"]:
            conv(p + s["resample"], s["cout"], s["cout"], 3)
    norm("out.norm", CH)
    conv("out.conv", IC, CH, 3)
    return out


def init(name, shape):
    if name.endswith("norm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight"):
        return 1 + 0.1 * torch.randn(shape, dtype=dt)
    if len(shape) == 1:
        return 0.1 * torch.randn(shape, dtype=dt)
    if name == "class_embed.weight":
        return torch.randn(shape, dtype=dt)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, dtype=dt) / math.sqrt(fan_in)


def timestep_embedding(t, dim):
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32)
    exponent = exponent / (half - 1.0)
    arg = t.to(torch.float32)[:, None] * torch.exp(exponent)[None, :]
    arg = arg.to(dt)
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


def forward(P, x_nchw, t, labels, target_nchw):
    gn = lambda x, n: F.group_norm(x, G, P[n + ".weight"], P[n + ".bias"], eps=EPS)
    conv = lambda x, n, stride=1, pad=1: F.conv2d(x, P[n + ".weight"], P[n + ".bias"],
                                                  stride=stride, padding=pad)
    lin = lambda x, n: F.linear(x, P[n + ".weight"], P[n + ".bias"])

    temb = lin(F.silu(lin(timestep_embedding(t, CH), "time_embed.0")), "time_embed.2")
    if K > 0:
        temb = temb + P["class_embed.weight"][labels]
    temb_silu = F.silu(temb)

    def resblock(x, s):
        p = s["name"] + "."
        h = conv(F.silu(gn(x, p + "norm1")), p + "conv1")
        h = h + lin(temb_silu, p + "temb")[:, :, None, None]
        h = conv(F.silu(gn(h, p + "norm2")), p + "conv2")
        skip = conv(x, p + "skip", pad=0) if s["cin"] != s["cout"] else x
        return skip + h

    def attention(x, s):
        p = s["name"] + ".attn."
        b, c, hh, ww = x.shape
        tok = gn(x, p + "norm").permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        qkv = lin(tok, p + "qkv")
        hd = c // NH
        q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(b, hh * ww, NH, hd).transpose(1, 2)
                   for i in range(3))
        o = F.scaled_dot_product_attention(q, k, v)  # non-causal, scale 1/sqrt(hd)
        o = lin(o.transpose(1, 2).reshape(b, hh * ww, c), p + "proj")
        return x + o.reshape(b, hh, ww, c).permute(0, 3, 1, 2)

    h = conv(x_nchw, "stem")
    skips = [h]
    for s in plan():
        if s["concat"]:
            h = torch.cat([h, skips.pop()], dim=1)
        h = resblock(h, s)
        if s["attn"]:
            h = attention(h, s)
        if s["name"].startswith("down"):
            skips.append(h)
        if s["resample"] == "down":
            h = conv(h, s["name"] + ".down", stride=2)
            skips.append(h)
        elif s["resample"] == "up":
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"), s["name"] + ".up")
    pred = conv(F.silu(gn(h, "out.norm")), "out.conv")
    return pred, F.mse_loss(pred, target_nchw)


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
    # Parameters, inputs and targets are drawn in fp32 (what the file holds)
    # so that the float64 run sees exactly what the C++ model reads.
    P = {n: init(n, s).float().to(dt).requires_grad_(True) for n, s in plist}
    x_t = torch.randn(B, S, S, IC).to(dt)       # NHWC
    target = torch.randn(B, S, S, IC).to(dt)    # NHWC
    t = torch.tensor([0, 517, 999], dtype=torch.int64)
    labels = torch.tensor([1, K, 0], dtype=torch.int64)  # one null-class label

    pred, loss = forward(P, x_t.permute(0, 3, 1, 2), t, labels, target.permute(0, 3, 1, 2))
    loss.backward()
    config = [S, IC, CH, NB, G, NH, K, B, len(MULT)] + MULT + [len(ATTN)] + ATTN
    records = [("config", torch.tensor(config, dtype=torch.int32)),
               ("x_t", x_t), ("target", target),
               ("timesteps", t.to(torch.int32)), ("labels", labels.to(torch.int32))]
    records += [("param/" + n, P[n].detach().clone()) for n, _ in plist]
    records += [("pred", pred.detach().permute(0, 2, 3, 1)), ("loss", loss.detach().reshape(1))]
    records += [("grad/" + n, P[n].grad.detach().clone()) for n, _ in plist]
    write_records(path, records)
    print(f"wrote {path}: {len(records)} records, {sum(math.prod(s) for _, s in plist)} "
          f"parameters, loss {loss.item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/models/unet_reference.bin")
