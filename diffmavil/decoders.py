"""Decoders: where masked patches are reconstructed.

Every decoder owns its whole component (docs/model.md): the projection of the encoder latents
to decoder width, the masked-position inputs ([MASK] token, or noised-patch embedding plus
a timestep MLP), the blocks, the norm and the prediction head, which runs on masked
positions only.

- ``SelfAttentionDecoder`` (kind ``self``): MAE decoder; self-attention over all L + 1
  positions, so its blocks cost the same at any mask ratio.
- ``CrossAttentionDecoder`` (kinds ``cross`` and ``cross-self``): the DiffMAE decoder; the
  queries are only the M masked positions, each block cross-attends to the K + 1 projected
  visible latents (and ``cross-self`` adds self-attention among the queries).
"""

from __future__ import annotations

import torch
from torch import nn

from diffmavil.blocks import LAYER_NORM_EPS, CrossAttentionBlock, SelfAttentionBlock
from diffmavil.config import DecoderSpec
from diffmavil.diffusion import sinusoidal_timestep_embedding
from diffmavil.masking import MaskIndices, gather_tokens
from diffmavil.patching import sincos_positions


class MaskedPositionInputs(nn.Module):
    """Decoder inputs at masked positions: a learned [MASK] token (MAViL), or the noised
    patch x_t embedded by a linear layer plus a sinusoidal timestep embedding through a
    small MLP (diffusion)."""

    def __init__(self, patch_dim: int, dim: int, diffusion: bool) -> None:
        super().__init__()
        self.diffusion = diffusion
        if diffusion:
            self.noisy_patch_embed = nn.Linear(patch_dim, dim)
            self.timestep_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(
        self,
        num_masked: int,
        batch: int,
        noisy_patches: torch.Tensor | None,
        timesteps: torch.Tensor | None,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """-> [B, M, D]. noisy_patches [B, M, P] and timesteps [B] for diffusion only."""
        if not self.diffusion:
            return self.mask_token.to(dtype).expand(batch, num_masked, -1)
        if noisy_patches is None or timesteps is None:
            raise ValueError("a diffusion decoder needs noisy_patches and timesteps")
        width = self.timestep_mlp[0].in_features
        time = self.timestep_mlp(sinusoidal_timestep_embedding(timesteps, width).to(dtype))
        return self.noisy_patch_embed(noisy_patches) + time[:, None, :]


class _Decoder(nn.Module):
    """Shared parts: latent projection, masked inputs, fixed positions, norm, head."""

    def __init__(
        self, encoder_dim: int, patch_dim: int, grid: tuple[int, ...], spec: DecoderSpec
    ) -> None:
        super().__init__()
        self.latent_proj = nn.Linear(encoder_dim, spec.dim)
        self.masked_inputs = MaskedPositionInputs(patch_dim, spec.dim, spec.diffusion)
        self.register_buffer("positions", sincos_positions(spec.dim, grid), persistent=False)
        self.norm = nn.LayerNorm(spec.dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(spec.dim, patch_dim)
        self.blocks = nn.ModuleList(self._block(spec) for _ in range(spec.depth))

    def _block(self, spec: DecoderSpec) -> nn.Module:
        raise NotImplementedError

    def _decode(
        self, visible: torch.Tensor, queries: torch.Tensor, mask: MaskIndices
    ) -> torch.Tensor:
        """visible [B, 1 + K, Dd], queries [B, M, Dd] -> decoded queries [B, M, Dd]."""
        raise NotImplementedError

    def forward(
        self,
        latents: torch.Tensor,
        mask: MaskIndices,
        noisy_patches: torch.Tensor | None = None,
        timesteps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """latents [B, 1 + K, De] -> predicted patches at masked positions [B, M, P]."""
        visible, queries = self._inputs(latents, mask, noisy_patches, timesteps)
        return self.head(self.norm(self._decode(visible, queries, mask)))

    def _inputs(
        self,
        latents: torch.Tensor,
        mask: MaskIndices,
        noisy_patches: torch.Tensor | None,
        timesteps: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> visible tokens [B, 1 + K, Dd] (CLS first, no position) and masked queries
        [B, M, Dd], both with their fixed positions added."""
        visible = self.latent_proj(latents)
        positions = self.positions.to(visible.dtype)
        visible_positions = positions[mask.keep]
        visible = torch.cat([visible[:, :1], visible[:, 1:] + visible_positions], dim=1)
        queries = self.masked_inputs(
            mask.masked.shape[1], latents.shape[0], noisy_patches, timesteps, visible.dtype
        )
        return visible, queries + positions[mask.masked]


class SelfAttentionDecoder(_Decoder):
    """MAE decoder: self-attention over CLS + all L positions in grid order."""

    def _block(self, spec: DecoderSpec) -> nn.Module:
        return SelfAttentionBlock(spec.dim, spec.heads, spec.mlp_dim)

    def _decode(
        self, visible: torch.Tensor, queries: torch.Tensor, mask: MaskIndices
    ) -> torch.Tensor:
        patches = gather_tokens(torch.cat([visible[:, 1:], queries], dim=1), mask.restore)
        x = torch.cat([visible[:, :1], patches], dim=1)
        for block in self.blocks:
            x = block(x)
        return gather_tokens(x[:, 1:], mask.masked)


class CrossAttentionDecoder(_Decoder):
    """DiffMAE decoder: masked-position queries cross-attend to the visible latents."""

    def _block(self, spec: DecoderSpec) -> nn.Module:
        return CrossAttentionBlock(
            spec.dim, spec.heads, spec.mlp_dim, self_attention=spec.kind == "cross-self"
        )

    def _decode(
        self, visible: torch.Tensor, queries: torch.Tensor, mask: MaskIndices
    ) -> torch.Tensor:
        x = queries
        for block in self.blocks:
            x = block(x, visible)
        return x


def build_decoder(
    encoder_dim: int, patch_dim: int, grid: tuple[int, ...], spec: DecoderSpec
) -> SelfAttentionDecoder | CrossAttentionDecoder:
    if spec.kind == "self":
        return SelfAttentionDecoder(encoder_dim, patch_dim, grid, spec)
    return CrossAttentionDecoder(encoder_dim, patch_dim, grid, spec)
