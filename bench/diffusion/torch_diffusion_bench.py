#!/usr/bin/env python3
"""PyTorch eager reference for diffusion_bench: the same denoiser and training
step (forward, MSE loss, backward, grad-norm clip, AdamW with weight decay on
matrices only, EMA of the weights) on random data, CPU, eager: fp32, or with
--dtype bf16 the forward under torch.autocast("cpu", bfloat16) (fp32
parameters and optimizer, bf16 convolutions and matmuls through oneDNN).

The models are the parity-test definitions (tests/models/make_unet_reference.py
and make_dit_reference.py, imported, their module-level shape constants set
from the flags, float32 instead of float64): the UNet's functional forward as
is; the DiT's parameter list, initialisation, positions, timestep features
and modulation, with the attention through F.scaled_dot_product_attention
(what DiT's timm Attention runs) instead of the reference's explicit softmax.
Parameters are plain leaf tensors in NCHW (PyTorch's default layout).

Prints one line: `torch <name> <dtype> ms_per_step=<median> images_per_s=<...>`,
or `torch not importable: ...` when torch is missing."""
import argparse
import contextlib
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # diffusion_bench prints "no ratio"
    print(f"torch not importable: {e}")
    sys.exit(0)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "models"))
import make_dit_reference as dit_ref  # noqa: E402
import make_unet_reference as unet_ref  # noqa: E402


def ints(s):
    return [int(v) for v in s.split(",") if v.strip()]


def build_unet(a):
    r = unet_ref
    r.S, r.IC, r.CH, r.NB, r.G, r.NH, r.K = a.S, a.IC, a.CH, a.NB, a.G, a.NH, a.K
    r.MULT, r.ATTN, r.B, r.E, r.EPS = ints(a.MULT), ints(a.ATTN), a.B, 4 * a.CH, a.eps
    r.dt = torch.float32
    plist = r.param_list()
    P = {n: r.init(n, s).requires_grad_(True) for n, s in plist}

    def loss_fn(x_nchw, t, labels, target_nchw):
        return r.forward(P, x_nchw, t, labels, target_nchw)[1]

    return P, loss_fn


def build_dit(a):
    r = dit_ref
    r.L, r.NH, r.C, r.P, r.S, r.CIN, r.K, r.B = a.L, a.NH, a.C, a.P, a.S, a.IC, a.K, a.B
    r.G = a.S // a.P
    r.T = r.G * r.G
    r.dt = torch.float32
    plist = r.param_list()
    W = {n: r.init(n, s).requires_grad_(True) for n, s in plist}
    pos = torch.from_numpy(r.sincos_2d(r.C, r.G)).float().unsqueeze(0)
    B, T, C, NH, G, P, CIN = a.B, r.T, r.C, r.NH, r.G, r.P, r.CIN
    hd = C // NH

    def forward(x_nchw, t, y):
        # make_dit_reference.forward with SDPA attention.
        x = F.conv2d(x_nchw, W["x_embedder.proj.weight"], W["x_embedder.proj.bias"], stride=P)
        x = x.flatten(2).transpose(1, 2) + pos
        h = F.linear(r.timestep_embedding(t, r.FREQ), W["t_embedder.mlp.0.weight"],
                     W["t_embedder.mlp.0.bias"])
        temb = F.linear(F.silu(h), W["t_embedder.mlp.2.weight"], W["t_embedder.mlp.2.bias"])
        sc = F.silu(temb + W["y_embedder.embedding_table.weight"][y])
        for l in range(r.L):
            b = f"blocks.{l}."
            mod = F.linear(sc, W[b + "adaLN_modulation.1.weight"], W[b + "adaLN_modulation.1.bias"])
            sh_a, sc_a, g_a, sh_m, sc_m, g_m = mod.chunk(6, dim=1)
            hx = r.modulate(r.layer_norm(x), sh_a, sc_a)
            qkv = F.linear(hx, W[b + "attn.qkv.weight"], W[b + "attn.qkv.bias"])
            q, k, v = qkv.reshape(B, T, 3, NH, hd).permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
            x = x + g_a.unsqueeze(1) * F.linear(o, W[b + "attn.proj.weight"],
                                                W[b + "attn.proj.bias"])
            hm = r.modulate(r.layer_norm(x), sh_m, sc_m)
            hm = F.gelu(F.linear(hm, W[b + "mlp.fc1.weight"], W[b + "mlp.fc1.bias"]),
                        approximate="tanh")
            x = x + g_m.unsqueeze(1) * F.linear(hm, W[b + "mlp.fc2.weight"], W[b + "mlp.fc2.bias"])
        shift, scale = F.linear(sc, W["final_layer.adaLN_modulation.1.weight"],
                                W["final_layer.adaLN_modulation.1.bias"]).chunk(2, dim=1)
        x = r.modulate(r.layer_norm(x), shift, scale)
        x = F.linear(x, W["final_layer.linear.weight"], W["final_layer.linear.bias"])
        x = torch.einsum("nhwpqc->nchpwq", x.reshape(B, G, G, P, P, CIN))
        return x.reshape(B, CIN, G * P, G * P)

    def loss_fn(x_nchw, t, labels, target_nchw):
        return F.mse_loss(forward(x_nchw, t, labels).float(), target_nchw)

    return W, loss_fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["unet", "dit"], required=True)
    ap.add_argument("--name", default="")
    for name, default in [("S", 32), ("IC", 1), ("K", 10), ("B", 64), ("CH", 32), ("NB", 1),
                          ("G", 8), ("NH", 4), ("L", 4), ("C", 128), ("P", 4), ("threads", 2),
                          ("steps", 5), ("warmup", 1)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--MULT", default="1,2,2")
    ap.add_argument("--ATTN", default="8")
    for name, default in [("eps", 1e-5), ("weight_decay", 0.1), ("beta1", 0.9), ("beta2", 0.95),
                          ("adam_eps", 1e-8), ("grad_clip", 1.0), ("ema_decay", 0.999)]:
        ap.add_argument(f"--{name}", type=float, default=default)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--profile", type=int, default=0,
                    help="> 0: also print the top N ops of one more step (torch.profiler)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    params, loss_fn = (build_unet if a.model == "unet" else build_dit)(a)
    # Weight decay on matrices (conv and linear weights), not on biases,
    # norms or the class table, as the anvil layout marks them.
    decay = [p for n, p in params.items()
             if p.dim() >= 2 and "class_embed" not in n and "embedding_table" not in n]
    ids = {id(p) for p in decay}
    rest = [p for p in params.values() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(a.beta1, a.beta2), eps=a.adam_eps)
    plist = list(params.values())
    ema = [p.detach().clone() for p in plist] if a.ema_decay > 0 else []
    x = torch.randn(a.B, a.IC, a.S, a.S)
    target = torch.randn(a.B, a.IC, a.S, a.S)
    t = torch.randint(0, 1000, (a.B,))
    labels = torch.randint(0, a.K + 1, (a.B,))
    clock = time.process_time if a.clock == "cpu" else time.perf_counter

    def step(i):
        opt.zero_grad(set_to_none=True)
        ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if a.dtype == "bf16"
               else contextlib.nullcontext())
        with ctx:
            loss = loss_fn(x, t, labels, target)
        loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(plist, a.grad_clip)
        opt.step()
        if ema:  # diffusers' warm-up, as the anvil engine's EMA
            d = min(a.ema_decay, (1 + i) / (10 + i))
            with torch.no_grad():
                torch._foreach_lerp_(ema, [p.detach() for p in plist], 1 - d)
        return loss

    times = []
    for i in range(a.warmup + a.steps):
        t0 = clock()
        loss = step(i)
        if i >= a.warmup:
            times.append(clock() - t0)
    ms = statistics.median(times) * 1e3
    print(f"torch {a.name or a.model} {a.dtype} ms_per_step={ms:.1f} "
          f"images_per_s={a.B / (ms / 1e3):.1f} version={torch.__version__} "
          f"loss={loss.item():.4f}")
    if a.profile > 0:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step(a.warmup + a.steps)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.profile))


if __name__ == "__main__":
    main()
