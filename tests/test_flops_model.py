"""The closed-form FLOP model (diffmavil/flops.py): structure, scaling laws and the ViT-B
anchor. The counters' exact agreement with it is in test_flops_counters.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from diffmavil import COMPONENTS, make_config
from diffmavil.blocks import SelfAttentionBlock
from diffmavil.flops import (
    FlopBreakdown,
    _self_attention_block,
    _Tally,
    attention_flops,
    hardware_attention_extra,
    model_flops,
)
from diffmavil.tokens import keep_count

RATIOS = [(0.8, 0.9), (0.5, 0.75), (0.9, 0.95)]


def test_flops_module_imports_no_torch():
    tree = ast.parse(Path("diffmavil/flops.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "torch" not in imported and "bench" not in imported


def test_breakdown_shape_and_totals():
    flops = model_flops(make_config("base", "cross-attn"), (0.8, 0.9), 4)
    assert isinstance(flops, FlopBreakdown)
    assert set(flops.forward) == set(flops.backward) == set(COMPONENTS)
    assert flops.total == flops.total_forward + flops.total_backward
    assert flops.total_forward == sum(flops.forward.values())
    assert all(v > 0 for v in flops.forward.values())


def test_results_are_copies_of_the_cache():
    config = make_config("tiny", "mavil")
    first = model_flops(config, (0.8, 0.9))
    first.forward["fusion"] = -1
    assert model_flops(config, (0.8, 0.9)).forward["fusion"] > 0


def test_batch_scales_linearly_except_infonce():
    config = make_config("base", "cross-attn")
    one, eight = model_flops(config, (0.8, 0.9), 1), model_flops(config, (0.8, 0.9), 8)
    for name in COMPONENTS[:-1]:
        assert eight.forward[name] == 8 * one.forward[name]
        assert eight.backward[name] == 8 * one.backward[name]
    # InfoNCE logits are [B, C] x [C, B]: quadratic in the batch
    c, d = config.loss.contrastive_dim, config.encoder.dim
    assert one.forward["other"] == 2 * (2 * d * c) + 2 * (2 * c)
    assert eight.forward["other"] == 2 * (2 * 8 * d * c) + 2 * (2 * 8 * 8 * c)


def test_patch_embedding_backward_is_one_x():
    """Encoder backward = 2x forward minus one patch-embedding forward (1x backward)."""
    config = make_config("base", "mavil")
    for ratios in RATIOS:
        flops = model_flops(config, ratios)
        for modality, ratio in zip(("audio", "video"), ratios, strict=True):
            kept = keep_count(config.num_patches(modality), ratio)
            embed = 2 * kept * config.spec(modality).patch_dim * config.encoder.dim
            name = f"{modality}_encoder"
            assert flops.backward[name] == 2 * flops.forward[name] - embed
        assert flops.backward["fusion"] == 2 * flops.forward["fusion"]


def test_hardware_extra_is_half_the_attention_forward():
    config = make_config("base", "cross-attn")
    attention = attention_flops(config, (0.8, 0.9), 2)
    assert hardware_attention_extra(config, (0.8, 0.9), 2) == sum(attention.values()) // 2
    assert attention["other"] == 0 and all(attention[c] > 0 for c in COMPONENTS[:-1])


@pytest.mark.parametrize("ratios", RATIOS)
def test_cross_decoder_attention_scales_with_masked_times_visible(ratios):
    config = make_config("base", "cross-attn")
    spec = config.video_decoder
    visible = keep_count(config.video.num_patches, ratios[1])
    masked = config.video.num_patches - visible
    expected = spec.depth * 4 * masked * (visible + 1) * spec.dim
    assert attention_flops(config, ratios)["video_decoder"] == expected


def test_self_decoder_blocks_do_not_depend_on_the_ratio():
    config = make_config("base", "mavil")
    values = {attention_flops(config, r)["video_decoder"] for r in RATIOS}
    assert len(values) == 1  # attention over all L + 1 positions, whatever the ratio
    totals = {model_flops(config, r).forward["video_decoder"] for r in RATIOS}
    assert len(totals) == 3  # but the latent projection and the head do


def test_cross_attn_saves_about_fifteen_percent_at_base():
    mavil = model_flops(make_config("base", "mavil"), (0.8, 0.9)).total
    cross = model_flops(make_config("base", "cross-attn"), (0.8, 0.9)).total
    assert 0.14 < 1 - cross / mavil < 0.16


# ------------------------------------------------------------------------- ViT-B anchor
class ViTB16(nn.Module):
    """Head-less ViT-B/16 at 224 x 224 from diffmavil's blocks: 16x16x3 patch embedding,
    CLS, 12 blocks of width 768, 12 heads, MLP 3072, over 196 + 1 tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(16 * 16 * 3, 768)
        self.cls = nn.Parameter(torch.zeros(1, 1, 768))
        self.blocks = nn.ModuleList(SelfAttentionBlock(768, 12, 3072) for _ in range(12))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(patches)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        return x


def vit_b16_analytic() -> int:
    tally = _Tally()
    tally.linear(196, 768, 768, input_needs_grad=False)
    for _ in range(12):
        _self_attention_block(tally, 1, 197, 768, 3072)
    return tally.forward


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_vit_b16_anchor(device):
    from bench.flops.torch_counter import audited_counter

    with torch.device(device):
        model = ViTB16()
        patches = torch.randn(1, 196, 768)
    with torch.no_grad(), audited_counter() as audit:
        model(patches)
    audit.check(expected_calls=12)
    counted = audit.counter.get_total_flops()
    assert counted == vit_b16_analytic()
    gmacs = counted / 2 / 1e9
    assert gmacs == pytest.approx(17.56, abs=0.01)  # published: 17.6 GMACs (timm, fvcore)
