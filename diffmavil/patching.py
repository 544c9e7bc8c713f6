"""Patchify audio spectrograms and video clips, and the fixed sin-cos positions of patches.

Shapes: audio [B, T, F] (fbank frames x mel bins) -> [B, L_a, patch_time * patch_freq];
video [B, C, T, H, W] -> [B, L_v, tubelet * patch * patch * C]. Patch order is row-major
over the grid (time first), which is the order of the position tables.
"""

from __future__ import annotations

import math

import torch

from diffmavil.config import AudioSpec, VideoSpec


def patchify_audio(audio: torch.Tensor, spec: AudioSpec) -> torch.Tensor:
    """[B, T, F] -> [B, T/pt * F/pf, pt * pf]."""
    batch = audio.shape[0]
    grid_t, grid_f = spec.grid
    x = audio.reshape(batch, grid_t, spec.patch_time, grid_f, spec.patch_freq)
    x = x.permute(0, 1, 3, 2, 4)
    return x.reshape(batch, grid_t * grid_f, spec.patch_dim)


def unpatchify_audio(patches: torch.Tensor, spec: AudioSpec) -> torch.Tensor:
    """[B, L_a, pt * pf] -> [B, T, F]."""
    batch = patches.shape[0]
    grid_t, grid_f = spec.grid
    x = patches.reshape(batch, grid_t, grid_f, spec.patch_time, spec.patch_freq)
    return x.permute(0, 1, 3, 2, 4).reshape(batch, spec.target_frames, spec.mel_bins)


def patchify_video(video: torch.Tensor, spec: VideoSpec) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, T/t * H/p * W/p, t * p * p * C]."""
    batch = video.shape[0]
    grid_t, grid_h, grid_w = spec.grid
    x = video.reshape(
        batch, spec.channels, grid_t, spec.tubelet, grid_h, spec.patch, grid_w, spec.patch
    )
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.reshape(batch, grid_t * grid_h * grid_w, spec.patch_dim)


def unpatchify_video(patches: torch.Tensor, spec: VideoSpec) -> torch.Tensor:
    """[B, L_v, t * p * p * C] -> [B, C, T, H, W]."""
    batch = patches.shape[0]
    grid_t, grid_h, grid_w = spec.grid
    x = patches.reshape(
        batch, grid_t, grid_h, grid_w, spec.tubelet, spec.patch, spec.patch, spec.channels
    )
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(batch, spec.channels, spec.frames, spec.height, spec.width)


def _sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[N] positions -> [N, dim] (sin half, cos half), MAE's frequencies."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_positions(dim: int, grid: tuple[int, ...]) -> torch.Tensor:
    """Fixed sin-cos positions for a 1-, 2- or 3-D grid: [prod(grid), dim] (float32).

    The width is split across axes (the first axes get the remainder, in steps of 2), each
    axis encoded 1-D as in MAE; 2-D for audio (time, frequency), 3-D for video (t, h, w).
    """
    axes = len(grid)
    share = (dim // axes) // 2 * 2
    widths = [share] * axes
    widths[0] += dim - share * axes
    if any(w <= 0 or w % 2 for w in widths):
        raise ValueError(f"cannot split width {dim} into even sin-cos parts for grid {grid}")
    coords = torch.meshgrid(*[torch.arange(n) for n in grid], indexing="ij")
    parts = [_sincos_1d(w, c.reshape(-1)) for w, c in zip(widths, coords, strict=True)]
    return torch.cat(parts, dim=1).to(torch.float32)


def num_positions(grid: tuple[int, ...]) -> int:
    return math.prod(grid)
