#!/usr/bin/env python3
"""torchrun + FSDP2 reference for shard_bench: the same GPT (bench/train/
torch_train_bench.py), each block and the root wrapped with fully_shard, gloo on
CPU, one thread per rank. --dtype bf16 uses
MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32) and runs the
forward under torch.autocast("cpu", bfloat16). Rank 0 prints
`fsdp2 ms_per_step=... tokens_per_s=<whole job> peak_rss_mb=<max over ranks>`."""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from torch_train_bench import GPT  # noqa: E402

try:
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
except ImportError:  # older torch
    from torch.distributed._composable.fsdp import MixedPrecisionPolicy, fully_shard


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("L", 6), ("H", 6), ("C", 384), ("T", 256), ("V", 256), ("B", 8),
                          ("steps", 4), ("warmup", 1)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = GPT(a.L, a.H, a.C, a.T, a.V)
    kw = {}
    if a.dtype == "bf16":
        kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.h:
        fully_shard(block, **kw)
    fully_shard(model, **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(rank)
    idx = torch.randint(0, a.V, (a.B, a.T), generator=g)
    tgt = torch.randint(0, a.V, (a.B, a.T), generator=g)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if a.dtype == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(idx, tgt)
        else:
            loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    ms = torch.tensor([statistics.median(times) * 1e3])
    rss = torch.tensor([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0])
    dist.all_reduce(ms, op=dist.ReduceOp.MAX)
    dist.all_reduce(rss, op=dist.ReduceOp.MAX)
    if rank == 0:
        tps = world * a.B * a.T / (ms.item() / 1e3)
        print(f"fsdp2 {a.dtype} ms_per_step={ms.item():.1f} tokens_per_s={tps:.1f} peak_rss_mb={rss.item():.0f} "
              f"world={world} torch={torch.__version__}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
