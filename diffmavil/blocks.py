"""Pre-norm transformer blocks on ``scaled_dot_product_attention``.

``SelfAttentionBlock`` is the ViT block (encoders, fusion, self-attention decoders);
``CrossAttentionBlock`` is the DiffMAE decoder block: masked-position queries attend to
visible latents, optionally followed by self-attention among the queries (cross-self).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, D] -> [B, heads, N, D / heads]."""
    batch, tokens, dim = x.shape
    return x.view(batch, tokens, heads, dim // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, d] -> [B, N, heads * d]."""
    batch, heads, tokens, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, tokens, heads * head_dim)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, N, D] -> [B, N, D]."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(
            _split_heads(q, self.heads), _split_heads(k, self.heads), _split_heads(v, self.heads)
        )
        return self.proj(_merge_heads(out))


class CrossAttention(nn.Module):
    """Multi-head attention from queries to a context, with a fused kv projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """queries [B, M, D], context [B, K, D] -> [B, M, D]."""
        k, v = self.kv(context).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(
            _split_heads(self.q(queries), self.heads),
            _split_heads(k, self.heads),
            _split_heads(v, self.heads),
        )
        return self.proj(_merge_heads(out))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SelfAttentionBlock(nn.Module):
    """x + attn(norm(x)); x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, N, D] -> [B, N, D]."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    """q + cross(norm(q), norm(ctx)); [q + self(norm(q))]; q + mlp(norm(q))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, self_attention: bool) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_context = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.cross_attn = CrossAttention(dim, heads)
        if self_attention:
            self.norm_self = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
            self.self_attn = SelfAttention(dim, heads)
        else:
            self.self_attn = None
        self.norm_mlp = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """queries [B, M, D], context [B, K, D] -> [B, M, D]."""
        x = queries + self.cross_attn(self.norm_q(queries), self.norm_context(context))
        if self.self_attn is not None:
            x = x + self.self_attn(self.norm_self(x))
        return x + self.mlp(self.norm_mlp(x))
