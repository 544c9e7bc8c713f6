"""The speed peer: DiffMAViL's architecture assembled from ``torch.nn`` layers.

Self-attention blocks (encoders, fusion, self decoders) are
``nn.TransformerEncoderLayer(norm_first=True, activation="gelu", dropout=0,
dim_feedforward=4*d, batch_first=True)``; cross and cross-self decoder blocks compose
``nn.MultiheadAttention`` into pre-norm blocks (``nn`` has no cross-only layer). Everything
else (patching, masking, embeddings, positions, noising, heads, losses) is our code: the
peer is ``DiffMAViL`` with its blocks swapped, so a speed ratio measures the blocks.
Parameter counts and FLOPs equal ours (tests assert both), and ``peer_state_dict`` maps our
weights onto the peer so the two agree numerically.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from diffmavil.blocks import LAYER_NORM_EPS
from diffmavil.config import ModelConfig
from diffmavil.decoders import CrossAttentionDecoder
from diffmavil.model import DiffMAViL


def peer_self_attention_block(dim: int, heads: int, mlp_dim: int) -> nn.TransformerEncoderLayer:
    """x + attn(norm(x)); x + mlp(norm(x)) as torch's own layer."""
    return nn.TransformerEncoderLayer(
        d_model=dim,
        nhead=heads,
        dim_feedforward=mlp_dim,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=LAYER_NORM_EPS,
        batch_first=True,
        norm_first=True,
    )


class PeerCrossAttentionBlock(nn.Module):
    """q + cross(norm(q), norm(ctx)); [q + self(norm(q))]; q + mlp(norm(q)) from nn layers."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, self_attention: bool) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_context = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        if self_attention:
            self.norm_self = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
            self.self_attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        else:
            self.self_attn = None
        self.norm_mlp = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """queries [B, M, D], context [B, K, D] -> [B, M, D]."""
        context = self.norm_context(context)
        attended, _ = self.cross_attn(self.norm_q(queries), context, context, need_weights=False)
        x = queries + attended
        if self.self_attn is not None:
            h = self.norm_self(x)
            x = x + self.self_attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class PeerDiffMAViL(DiffMAViL):
    """``DiffMAViL`` whose transformer blocks are ``torch.nn`` layers (see module doc)."""

    implementation = "peer"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        enc = config.encoder
        for component in (self.audio_encoder, self.video_encoder, self.fusion):
            component.blocks = nn.ModuleList(
                peer_self_attention_block(enc.dim, enc.heads, enc.mlp_dim)
                for _ in range(len(component.blocks))
            )
        for modality in ("audio", "video"):
            spec = config.decoder(modality)
            decoder = self.decoder(modality)
            if isinstance(decoder, CrossAttentionDecoder):
                blocks = [
                    PeerCrossAttentionBlock(
                        spec.dim, spec.heads, spec.mlp_dim, spec.kind == "cross-self"
                    )
                    for _ in range(spec.depth)
                ]
            else:
                blocks = [
                    peer_self_attention_block(spec.dim, spec.heads, spec.mlp_dim)
                    for _ in range(spec.depth)
                ]
            decoder.blocks = nn.ModuleList(blocks)
        self.reset_parameters()


def build_peer(config: ModelConfig) -> PeerDiffMAViL:
    return PeerDiffMAViL(config)


# Our block parameter names -> the peer's (per block; cross q and kv are concatenated).
_SELF_BLOCK_NAMES = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attn.qkv.weight": "self_attn.in_proj_weight",
    "attn.qkv.bias": "self_attn.in_proj_bias",
    "attn.proj": "self_attn.out_proj",
    "mlp.fc1": "linear1",
    "mlp.fc2": "linear2",
}
_CROSS_BLOCK_NAMES = {
    "self_attn.qkv.weight": "self_attn.in_proj_weight",
    "self_attn.qkv.bias": "self_attn.in_proj_bias",
    "self_attn.proj": "self_attn.out_proj",
    "cross_attn.proj": "cross_attn.out_proj",
    "mlp.fc1": "mlp.0",
    "mlp.fc2": "mlp.2",
}
_BLOCK = re.compile(r"^(?P<prefix>.+\.blocks\.\d+\.)(?P<rest>.+)$")


def _rename(rest: str, table: dict[str, str]) -> str:
    for ours, theirs in table.items():
        if rest == ours or rest.startswith(ours + "."):
            return theirs + rest[len(ours) :]
    return rest


def peer_state_dict(ours: DiffMAViL) -> dict[str, torch.Tensor]:
    """Our model's weights under the peer's parameter names (for numerical equivalence)."""
    state = ours.state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        match = _BLOCK.match(name)
        if match is None:
            out[name] = tensor
            continue
        prefix, rest = match["prefix"], match["rest"]
        component = prefix.split(".", 1)[0]
        is_cross = component.endswith("_decoder") and isinstance(
            ours.decoder(component.removesuffix("_decoder")), CrossAttentionDecoder
        )
        if not is_cross:
            out[prefix + _rename(rest, _SELF_BLOCK_NAMES)] = tensor
        elif rest.startswith("cross_attn.q.") or rest.startswith("cross_attn.kv."):
            kind = rest.rsplit(".", 1)[1]  # weight | bias
            q = state[f"{prefix}cross_attn.q.{kind}"]
            kv = state[f"{prefix}cross_attn.kv.{kind}"]
            out[f"{prefix}cross_attn.in_proj_{kind}"] = torch.cat([q, kv], dim=0)
        else:
            out[prefix + _rename(rest, _CROSS_BLOCK_NAMES)] = tensor
    return out


def peer_from(ours: DiffMAViL) -> PeerDiffMAViL:
    """A peer with ``ours``'s weights, on the same device and dtype."""
    parameter = next(ours.parameters())
    with torch.device(parameter.device):
        peer = PeerDiffMAViL(ours.config)
    peer.load_state_dict(peer_state_dict(ours), strict=True)
    return peer.to(dtype=parameter.dtype)
