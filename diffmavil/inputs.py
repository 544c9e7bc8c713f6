"""Random model inputs at a config's sizes: the one maker used by FLOP counting, timing,
profiling and the tests."""

from __future__ import annotations

import torch

from diffmavil.config import ModelConfig


def random_inputs(
    config: ModelConfig, batch_size: int, device: str | torch.device = "cpu", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """audio [B, T, F] and video [B, C, T, H, W], standard normal from a CPU generator seeded
    with ``seed`` (the same values on every device); on ``meta``, empty tensors."""
    v = config.video
    audio_shape = (batch_size, config.audio.target_frames, config.audio.mel_bins)
    video_shape = (batch_size, v.channels, v.frames, v.height, v.width)
    if torch.device(device).type == "meta":
        return torch.empty(audio_shape, device="meta"), torch.empty(video_shape, device="meta")
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(audio_shape, generator=generator)
    video = torch.randn(video_shape, generator=generator)
    return audio.to(device), video.to(device)
