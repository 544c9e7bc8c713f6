"""MAE random masking with per-sample, batch-independent randomness.

Each sample's mask is the argsort of counter-based random bits keyed by (seed, sample id),
so a sample gets the same mask in any batch composition, on any rank, after a resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffmavil import rng
from diffmavil.tokens import keep_count, masked_count

__all__ = ["MaskIndices", "gather_tokens", "keep_count", "masked_count", "random_masking"]


@dataclass(frozen=True)
class MaskIndices:
    """Indices of one modality's kept and masked patches (both sorted ascending).

    keep: [B, K] visible patch indices; masked: [B, M] masked ones; restore: [B, L]
    permutation that puts ``cat([visible, masked], dim=1)`` back into grid order.
    """

    keep: torch.Tensor
    masked: torch.Tensor
    restore: torch.Tensor

    @property
    def num_tokens(self) -> int:
        return self.restore.shape[1]

    def as_bool(self) -> torch.Tensor:
        """[B, L] True where a patch is masked."""
        mask = torch.zeros(self.restore.shape, dtype=torch.bool, device=self.restore.device)
        return mask.scatter(1, self.masked, True)


def random_masking(
    num_tokens: int,
    mask_ratio: float,
    sample_ids: torch.Tensor,
    *,
    seed: int,
    stream: int,
) -> MaskIndices:
    """Choose ``keep_count(num_tokens, mask_ratio)`` visible patches per sample.

    sample_ids: [B] int64 global sample ids (the position of the sample in the stream of
    samples seen, so that a sample seen twice gets two masks).
    """
    kept = keep_count(num_tokens, mask_ratio)
    bits = rng.random_bits(seed, sample_ids, stream, num_tokens)
    shuffle = torch.argsort(bits, dim=1, stable=True)
    keep = torch.sort(shuffle[:, :kept], dim=1).values
    masked = torch.sort(shuffle[:, kept:], dim=1).values
    restore = torch.argsort(torch.cat([keep, masked], dim=1), dim=1)
    return MaskIndices(keep=keep, masked=masked, restore=restore)


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """tokens [B, L, D], indices [B, K] -> [B, K, D]."""
    return torch.gather(tokens, 1, indices[..., None].expand(-1, -1, tokens.shape[-1]))
