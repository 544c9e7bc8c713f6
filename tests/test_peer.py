"""The speed peer is the same architecture as ours, built from torch.nn layers: equal
parameters and FLOPs for every variant (checked against the closed form), and equal
outputs and gradients once our weights are copied into it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.timing.peer import PeerCrossAttentionBlock, PeerDiffMAViL, peer_from
from diffmavil import DiffMAViL, count_parameters_by_component, make_config
from diffmavil.flops import model_flops
from tests.conftest import ALL_VARIANTS, make_inputs

CASES = [(v, None) for v in ALL_VARIANTS] + [
    ("cross-attn", {"video_decoder.kind": "cross-self"}),
    ("cross-attn-both", {"audio_decoder.kind": "cross-self", "video_decoder.kind": "cross-self"}),
]
IDS = [v if o is None else f"{v}+cross-self" for v, o in CASES]


def _meta_flops(model: nn.Module, config, ratios, batch: int = 2) -> tuple[int, int]:
    audio = torch.empty(batch, config.audio.target_frames, config.audio.mel_bins, device="meta")
    v = config.video
    video = torch.empty(batch, v.channels, v.frames, v.height, v.width, device="meta")
    with FlopCounterMode(display=False) as forward:
        out = model(audio, video, ratios)
    with FlopCounterMode(display=False) as backward:
        out.loss.backward()
    return forward.get_total_flops(), backward.get_total_flops()


@pytest.mark.parametrize(("variant", "overrides"), CASES, ids=IDS)
@pytest.mark.parametrize("preset", ["tiny", "base"])
def test_equal_parameters_per_component(preset, variant, overrides):
    config = make_config(preset, variant, overrides)
    with torch.device("meta"):
        ours, peer = DiffMAViL(config), PeerDiffMAViL(config)
    assert count_parameters_by_component(peer) == count_parameters_by_component(ours)


@pytest.mark.parametrize(
    ("variant", "overrides", "ratios"),
    [(v, o, (0.8, 0.9)) for v, o in CASES] + [("cross-attn", None, (0.9, 0.95))],
    ids=[*IDS, "cross-attn@0.9,0.95"],
)
def test_equal_flops_and_both_match_the_closed_form(variant, overrides, ratios):
    config = make_config("tiny", variant, overrides)
    with torch.device("meta"):
        ours, peer = DiffMAViL(config), PeerDiffMAViL(config)
    counted_ours = _meta_flops(ours, config, ratios)
    counted_peer = _meta_flops(peer, config, ratios)
    closed = model_flops(config, ratios, batch_size=2)
    assert counted_peer == counted_ours == (closed.total_forward, closed.total_backward)


def test_peer_blocks_are_torch_nn_layers_as_specified():
    config = make_config("tiny", "cross-attn", {"video_decoder.kind": "cross-self"})
    peer = PeerDiffMAViL(config)
    for component in (peer.audio_encoder, peer.video_encoder, peer.fusion, peer.audio_decoder):
        for layer in component.blocks:
            assert isinstance(layer, nn.TransformerEncoderLayer)
            assert layer.norm_first and layer.activation_relu_or_gelu == 2  # gelu
            assert layer.linear1.out_features == 4 * layer.linear1.in_features
            assert layer.dropout.p == 0.0 and layer.self_attn.batch_first
    for block in peer.video_decoder.blocks:
        assert isinstance(block, PeerCrossAttentionBlock)
        assert isinstance(block.cross_attn, nn.MultiheadAttention)
        assert isinstance(block.self_attn, nn.MultiheadAttention)


@pytest.mark.parametrize(("variant", "overrides"), CASES, ids=IDS)
def test_peer_with_our_weights_computes_the_same(one_thread, tiny_models, variant, overrides):
    if overrides is None:
        ours = tiny_models[variant]
    else:
        torch.manual_seed(1)
        ours = DiffMAViL(make_config("tiny", variant, overrides))
    peer = peer_from(ours)
    audio, video = make_inputs(ours.config, batch=2, seed=4)
    ids = torch.tensor([3, 11])
    a = ours(audio, video, (0.8, 0.9), sample_ids=ids, seed=2)
    b = peer(audio, video, (0.8, 0.9), sample_ids=ids, seed=2)
    torch.testing.assert_close(b.loss, a.loss, rtol=1e-5, atol=1e-6)
    for m in ("audio", "video"):
        torch.testing.assert_close(
            getattr(b, m).prediction, getattr(a, m).prediction, rtol=1e-4, atol=1e-5
        )
    ours.zero_grad(set_to_none=True)
    a.loss.backward()
    b.loss.backward()
    grads_ours = {n: p.grad for n, p in ours.named_parameters()}
    grads_peer = dict(peer.named_parameters())
    # unchanged names (embeddings, heads, norms) have the same gradient
    shared = [n for n in grads_ours if n in grads_peer and "blocks" not in n]
    assert shared
    for name in shared:
        torch.testing.assert_close(grads_peer[name].grad, grads_ours[name], rtol=1e-4, atol=1e-6)
    # and a block weight under its peer name: our fused qkv is the peer's in_proj
    torch.testing.assert_close(
        grads_peer["fusion.blocks.0.self_attn.in_proj_weight"].grad,
        grads_ours["fusion.blocks.0.attn.qkv.weight"],
        rtol=1e-4,
        atol=1e-6,
    )
    ours.zero_grad(set_to_none=True)
