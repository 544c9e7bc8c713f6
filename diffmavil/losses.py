"""Reconstruction and contrastive losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

FeatureGather = Callable[[torch.Tensor], torch.Tensor]
"""Gathers [B, D] features from every rank into [world * B, D], keeping gradients (DDP)."""


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch normalisation of targets (MAE's norm_pix_loss): [..., P] -> [..., P]."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True, unbiased=True)
    return (patches - mean) / (var + eps).sqrt()


def masked_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked patches: prediction, target [B, M, P] -> scalar."""
    return F.mse_loss(prediction.float(), target.float())


def info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float,
    gather: FeatureGather | None = None,
    rank: int = 0,
) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of a, b [B, D] (L2-normalised here).

    With ``gather`` (DDP), each rank scores its B rows against the features of all ranks;
    the positive of local row i is global row ``rank * B + i``.
    """
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    all_a = gather(a) if gather is not None else a
    all_b = gather(b) if gather is not None else b
    targets = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    logits_ab = a @ all_b.T / temperature
    logits_ba = b @ all_a.T / temperature
    return 0.5 * (F.cross_entropy(logits_ab, targets) + F.cross_entropy(logits_ba, targets))
