#!/usr/bin/env python3
"""Writes diffusers_fixture.txt: reference values from Hugging Face diffusers'
DDPMScheduler and DDIMScheduler for diffusers_parity_test.cc, so that CI
checks our schedules and sampler steps against diffusers without Python.

    pip install torch diffusers
    python3 tests/diffusion/make_diffusers_fixture.py > tests/diffusion/diffusers_fixture.txt

Format: one record per line, `name count v0 v1 ...` (floats as %.9g).
Step records come in groups: <case>.x_t, .out (model output), .noise,
.prev (the scheduler's result) and .meta (schedule 0 linear / 1 cosine,
prediction 0 eps / 1 v, clip, t, t_prev, eta).
"""
import sys

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor

SCHEDULES = {0: "linear", 1: "squaredcos_cap_v2"}
PREDICTIONS = {0: "epsilon", 1: "v_prediction"}
SHAPE = (2, 3, 3, 2)  # (B, H, W, C); the steps are elementwise


def emit(name, values):
    vals = [float(v) for v in torch.as_tensor(values).flatten()]
    print(name, len(vals), " ".join("%.9g" % v for v in vals))


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(SHAPE, generator=g)
    out = torch.randn(SHAPE, generator=g) * 0.8
    return x_t, out


def main():
    ts = [0, 1, 10, 499, 500, 998, 999]
    emit("schedule.t", ts)
    for sid, name in SCHEDULES.items():
        s = DDPMScheduler(num_train_timesteps=1000, beta_schedule=name)
        emit(f"schedule{sid}.beta", s.betas[ts])
        emit(f"schedule{sid}.alpha_bar", s.alphas_cumprod[ts])

    ddim = DDIMScheduler(num_train_timesteps=1000)
    ddim.set_timesteps(50)
    emit("ddim50.timesteps", ddim.timesteps)

    ddpm_cases = [  # schedule, prediction, clip, t
        (0, 0, 1, 500), (1, 1, 0, 10), (0, 0, 0, 0), (0, 0, 1, 999), (1, 0, 1, 700), (0, 1, 1, 250)]
    for i, (sid, pid, clip, t) in enumerate(ddpm_cases):
        s = DDPMScheduler(num_train_timesteps=1000, beta_schedule=SCHEDULES[sid],
                          prediction_type=PREDICTIONS[pid], clip_sample=bool(clip),
                          variance_type="fixed_small")
        s.set_timesteps(1000)
        x_t, out = inputs(100 + i)
        noise = randn_tensor(SHAPE, generator=torch.Generator().manual_seed(200 + i))
        prev = s.step(out, t, x_t, generator=torch.Generator().manual_seed(200 + i)).prev_sample
        emit(f"ddpm{i}.x_t", x_t)
        emit(f"ddpm{i}.out", out)
        emit(f"ddpm{i}.noise", noise)
        emit(f"ddpm{i}.prev", prev)
        emit(f"ddpm{i}.meta", [sid, pid, clip, t, t - 1, 1.0])

    ddim_cases = [  # schedule, prediction, clip, t, eta (50 steps: t_prev = t - 20)
        (0, 0, 0, 500, 0.0), (1, 1, 1, 980, 0.5), (0, 0, 1, 20, 1.0), (0, 0, 0, 0, 0.0),
        (1, 0, 1, 960, 1.0), (0, 1, 0, 300, 0.3)]
    for i, (sid, pid, clip, t, eta) in enumerate(ddim_cases):
        s = DDIMScheduler(num_train_timesteps=1000, beta_schedule=SCHEDULES[sid],
                          prediction_type=PREDICTIONS[pid], clip_sample=bool(clip),
                          set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
        s.set_timesteps(50)
        x_t, out = inputs(300 + i)
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(400 + i))
        prev = s.step(out, t, x_t, eta=eta, use_clipped_model_output=True,
                      variance_noise=noise).prev_sample
        emit(f"ddim{i}.x_t", x_t)
        emit(f"ddim{i}.out", out)
        emit(f"ddim{i}.noise", noise)
        emit(f"ddim{i}.prev", prev)
        emit(f"ddim{i}.meta", [sid, pid, clip, t, t - 20, eta])


if __name__ == "__main__":
    sys.exit(main())
