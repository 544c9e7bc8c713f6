"""Forward diffusion of masked patches (DiffMAE-style) and the timestep embedding.

x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t ~ U{1..T} per sample, target x_0.
**choice**: T = 1000 with the cosine schedule of Nichol & Dhariwal by default.

The ``linear`` schedule is DDPM's: its betas are given for T = 1000 and scaled by 1000/T
for other T (as in Nichol & Dhariwal's code), so the noisiest step destroys the signal
whatever T is. User-set ``linear_beta_start``/``linear_beta_end`` are scaled the same way.
Every beta of either schedule is clamped to at most ``MAX_BETA``, so none reaches 1 at
small T (a beta of 1 would zero abar_t for every later t).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffmavil.config import DiffusionSpec

MAX_BETA = 0.999
"""Largest beta either schedule produces (Nichol & Dhariwal's clip)."""

REFERENCE_TIMESTEPS = 1000
"""The T at which the linear schedule's betas are given (DDPM's)."""


def betas(spec: DiffusionSpec) -> torch.Tensor:
    """[T] float64 beta_t for t = 1..T, each in (0, MAX_BETA]."""
    steps = spec.timesteps
    if spec.schedule == "cosine":
        offset = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    scale = REFERENCE_TIMESTEPS / steps
    start, end = scale * spec.linear_beta_start, scale * spec.linear_beta_end
    return torch.linspace(start, end, steps, dtype=torch.float64).clamp(max=MAX_BETA)


def alphas_cumprod(spec: DiffusionSpec) -> torch.Tensor:
    """[T + 1] float64 abar_t with abar_0 = 1 (t = 0 means no noise)."""
    abar = torch.cumprod(1 - betas(spec), dim=0)
    return torch.cat([torch.ones(1, dtype=torch.float64), abar])


class NoiseSchedule(nn.Module):
    """Holds abar_t as a buffer and noises x_0 (no parameters, no matmuls)."""

    def __init__(self, spec: DiffusionSpec) -> None:
        super().__init__()
        self.timesteps = spec.timesteps
        self.register_buffer("abar", alphas_cumprod(spec).to(torch.float32), persistent=False)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x0, noise [B, M, P], t [B] in 1..T -> x_t [B, M, P]."""
        abar = self.abar[t].to(x0.dtype)[:, None, None]
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def sinusoidal_timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t [B] -> [B, dim] (cos half, sin half), as in DDPM/ADM."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    if dim % 2:
        embedding = torch.nn.functional.pad(embedding, (0, 1))
    return embedding
