"""Modality encoders (visible patches only) and the joint audio-video fusion encoder."""

from __future__ import annotations

import torch
from torch import nn

from diffmavil.blocks import LAYER_NORM_EPS, SelfAttentionBlock
from diffmavil.config import TransformerSize
from diffmavil.masking import gather_tokens
from diffmavil.patching import sincos_positions


class ModalityEncoder(nn.Module):
    """ViT encoder of one modality: patch embedding of the visible patches, fixed sin-cos
    positions (2-D audio, 3-D video), a CLS token, pre-norm blocks and a final norm."""

    def __init__(self, patch_dim: int, grid: tuple[int, ...], size: TransformerSize) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(patch_dim, size.dim)
        self.register_buffer("positions", sincos_positions(size.dim, grid), persistent=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size.dim))
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(size.dim, size.heads, size.mlp_dim) for _ in range(size.depth)
        )
        self.norm = nn.LayerNorm(size.dim, eps=LAYER_NORM_EPS)

    def forward(self, visible_patches: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """visible_patches [B, K, P], keep [B, K] grid indices -> tokens [B, 1 + K, D]."""
        positions = self.positions[keep]
        x = self.patch_embed(visible_patches) + positions.to(visible_patches.dtype)
        cls = self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def embed_all(self, patches: torch.Tensor) -> torch.Tensor:
        """Unmasked path: patches [B, L, P] -> tokens [B, 1 + L, D]."""
        keep = torch.arange(patches.shape[1], device=patches.device).expand(patches.shape[0], -1)
        return self(patches, keep)


class FusionEncoder(nn.Module):
    """Joint blocks over the concatenated audio and video tokens (MAViL), then a norm;
    the output is split back per modality."""

    def __init__(self, size: TransformerSize) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(size.dim, size.heads, size.mlp_dim) for _ in range(size.depth)
        )
        self.norm = nn.LayerNorm(size.dim, eps=LAYER_NORM_EPS)

    def forward(self, *streams: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """streams [B, N_i, D] each -> the same shapes after joint attention."""
        lengths = [s.shape[1] for s in streams]
        x = torch.cat(streams, dim=1)
        for block in self.blocks:
            x = block(x)
        return tuple(self.norm(x).split(lengths, dim=1))


def mean_pool_patches(tokens: torch.Tensor) -> torch.Tensor:
    """tokens [B, 1 + N, D] (CLS first) -> [B, D], the mean over the N patch tokens."""
    return tokens[:, 1:].mean(dim=1)


__all__ = ["FusionEncoder", "ModalityEncoder", "gather_tokens", "mean_pool_patches"]
