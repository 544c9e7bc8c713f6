"""The three FLOP counters agree exactly, per component, and the known traps are handled:
CPU attention counted 0 by FlopCounterMode, no fvcore attention handler, fvcore's
``set_op_handle(name, None)``, and FlopCounterMode's backward misattribution.

Models are built once per process (``bench.flops.common.cached_model``); the mask ratio is
a forward argument, so one model serves every ratio. tiny and cpu are counted on CPU (real
fused attention kernels, our registered formulas); small and base on ``meta``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import nn

from bench.flops import FlopCountError, check_agreement, count_flops
from bench.flops.common import cached_model, expected_attention_calls
from bench.flops.fast_meta import fast_meta
from bench.flops.fvcore_counter import SdpaHandle, analysis, count_fvcore, matmul_handles
from bench.flops.torch_counter import (
    audited_counter,
    count_torch,
    flop_counter,
)
from diffmavil import COMPONENTS, PRESETS, VARIANTS, make_config
from diffmavil.blocks import SelfAttention
from diffmavil.flops import hardware_attention_extra, model_flops
from diffmavil.inputs import random_inputs

RATIOS = [(0.8, 0.9), (0.5, 0.75), (0.9, 0.95)]
BATCH = {"tiny": 3, "cpu": 1, "proportional": 2, "small": 1, "base": 1}


def _runs(preset: str) -> list[tuple[str, tuple[float, float]]]:
    """(device, ratios) per preset: tiny on CPU at every pair (real fused CPU attention and
    our registered formulas); cpu and proportional on CPU at one pair (a CPU pass of cpu
    takes seconds) and on meta at the others; small and base on meta at one pair: their
    graphs are tiny's and proportional's at other widths and token counts, every pair is
    checked there, and a base or small pass takes seconds even on meta."""
    if preset == "tiny":
        return [("cpu", r) for r in RATIOS]
    if preset in ("cpu", "proportional"):
        return [("cpu", RATIOS[0])] + [("meta", r) for r in RATIOS[1:]]
    return [("meta", RATIOS[0])]


def test_every_preset_is_covered():
    assert set(BATCH) == set(PRESETS)
    assert {preset for preset, _ in PAIRS} == set(PRESETS)
    assert {variant for preset, variant in PAIRS if preset == "base"} | {"cross-attn"} == set(
        VARIANTS
    )
    assert all(len(_runs(p)) >= (1 if p in ("small", "base") else 3) for p in PRESETS)


# Every variant at every preset, except: base cross-attn at the first pair is
# test_count_flops_all_counters_at_base's case, counted there (torch and fvcore, with every
# assertion below) rather than twice; small is base at half the width and half the decoder
# depth (same inputs and token grids: its graphs are base's), so it keeps one variant, the
# one with the most distinct ops.
SMALL_VARIANTS = ("cross-attn-both",)
PAIRS = [
    (preset, variant)
    for preset in PRESETS
    for variant in VARIANTS
    if (preset, variant) != ("base", "cross-attn")
    and (preset != "small" or variant in SMALL_VARIANTS)
]


@pytest.mark.parametrize(("preset", "variant"), PAIRS)
def test_torch_counter_equals_closed_form_forward_and_backward(preset, variant):
    config = make_config(preset, variant)
    batch = BATCH[preset]
    for device, ratios in _runs(preset):
        result = count_torch(config, ratios, batch, device=device)
        expected = model_flops(config, ratios, batch)
        assert result.forward == expected.forward, ratios
        assert result.backward == expected.backward, ratios
        # components sum to the counter's own global totals (checked inside too)
        assert result.total_forward == result.global_forward
        assert result.total_backward == result.global_backward
        assert result.attention_calls == expected_attention_calls(config)
        assert result.extra["attention_forward"] == sum(expected.attention.values()) > 0
        # fused CPU attention recomputes the scores (hardware FLOPs, reported apart);
        # on meta attention runs the unfused math path: nothing recomputed
        extra = hardware_attention_extra(config, ratios, batch) if device == "cpu" else 0
        assert result.hardware_extra == extra


@pytest.mark.parametrize(("preset", "variant"), PAIRS)
def test_three_counters_agree_forward(preset, variant):
    """fvcore on CPU: tiny at every ratio pair, cpu at one pair (a CPU trace of the cpu
    preset takes seconds). small/base: traced on meta, one pair per variant. fvcore's
    handles do not depend on sizes or ratios (the traced shapes do, and the pairs above
    vary them at tiny); the torch test covers every pair at tiny, cpu and proportional and
    one at small and base against the same closed form, and ``test_count_flops_all_counters_at_base`` runs all three together."""
    config = make_config(preset, variant)
    batch = BATCH[preset]
    runs = _runs(preset) if preset == "tiny" else [(_runs(preset)[0][0], RATIOS[0])]
    for device, ratios in runs:
        fv = count_fvcore(config, ratios, batch, device=device)
        expected = model_flops(config, ratios, batch)
        # torch == closed form is asserted for every pair above; fvcore == closed form here
        assert fv.forward == expected.forward, ratios
        assert fv.attention_calls == expected_attention_calls(config)
        assert fv.extra["attention_forward"] == sum(expected.attention.values())
        check_agreement(expected, {"fvcore": fv})


def test_count_flops_all_counters_at_base():
    """All three counters at base (cross-attn, on meta): equal per component forward and
    backward (``count_flops`` raises otherwise), with every attention call counted."""
    config = make_config("base", "cross-attn")
    report = count_flops(config, (0.8, 0.9), counter="all")
    assert report.counter_label == "torch=fvcore=analytic"
    assert set(report.results) == {"torch", "fvcore"}
    expected = model_flops(config, (0.8, 0.9), 1)
    torch_result = report.results["torch"]
    assert torch_result.forward == expected.forward
    assert torch_result.backward == expected.backward
    assert torch_result.total_backward == torch_result.global_backward
    assert torch_result.hardware_extra == 0  # meta: the unfused math path
    for result in report.results.values():
        assert result.attention_calls == expected_attention_calls(config)
        assert result.extra["attention_forward"] == sum(expected.attention.values()) > 0
    assert report.params == dict(report.params) and sum(report.params.values()) == 247_274_496


def test_intra_contrastive_and_cross_self_agree():
    overrides = {"loss.intra_contrastive_weight": 0.5, "video_decoder.kind": "cross-self"}
    config = make_config("tiny", "cross-attn", overrides)
    result = count_torch(config, (0.8, 0.9), 2, device="cpu")
    expected = model_flops(config, (0.8, 0.9), 2)
    assert result.forward == expected.forward and result.backward == expected.backward
    fv = count_fvcore(config, (0.8, 0.9), 2, device="cpu")
    assert fv.forward == expected.forward


# ------------------------------------------------------------------------- attention
def _attention_inputs(device: str):
    generator = torch.Generator().manual_seed(0)
    shape_q, shape_kv = (2, 4, 10, 8), (2, 4, 6, 8)
    q = torch.randn(shape_q, generator=generator).to(device).requires_grad_()
    k = torch.randn(shape_kv, generator=generator).to(device).requires_grad_()
    v = torch.randn(shape_kv, generator=generator).to(device).requires_grad_()
    return q, k, v


def test_plain_flop_counter_misses_cpu_attention():
    """The trap: torch 2.13 counts CPU fused attention as 0 without our formulas."""
    q, k, v = _attention_inputs("cpu")
    with flop_counter(register_cpu_attention=False) as counter:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    assert counter.get_total_flops() == 0


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_attention_counted_and_equal_to_formula(device):
    q, k, v = _attention_inputs(device)
    forward = 2 * (2 * 2 * 4 * 10 * 6 * 8)
    with audited_counter() as audit:
        out = F.scaled_dot_product_attention(q, k, v)
    assert audit.check(expected_calls=1) == forward
    assert audit.counter.get_total_flops() == forward > 0
    with flop_counter() as backward:
        out.sum().backward()
    # CPU: fused kernel, torch's 2.5x formula (hardware); meta: math path, 2x (model)
    assert backward.get_total_flops() == (forward * 5 // 2 if device == "cpu" else 2 * forward)


def test_attention_audit_refuses_a_zero():
    q, k, v = _attention_inputs("cpu")
    with audited_counter(register_cpu_attention=False) as audit:
        F.scaled_dot_product_attention(q, k, v)
    with pytest.raises(FlopCountError, match="attention call #0"):
        audit.check()


def test_count_torch_refuses_unregistered_attention(monkeypatch):
    import bench.flops.torch_counter as tc

    monkeypatch.setattr(tc, "cpu_sdpa_mapping", lambda: {})
    with pytest.raises(FlopCountError, match="attention"):
        tc.count_torch(make_config("tiny", "mavil"), (0.8, 0.9), 1, device="cpu")


# ------------------------------------------------------------------------- isolation
def test_module_attribution_misplaces_backward_but_isolation_does_not():
    config = make_config("tiny", "cross-attn")
    model = cached_model(config, "cpu")
    audio, video = random_inputs(config, 2, "cpu")
    with flop_counter() as counter:
        output = model(audio, video, (0.8, 0.9))
        forward = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
        before = counter.get_total_flops()
        output.loss.backward()
    model.zero_grad(set_to_none=True)
    attributed = {
        name: sum(ops.values()) - forward.get(name, 0)
        for name, ops in counter.get_flop_counts().items()
        if name.count(".") == 1
    }
    global_backward = counter.get_total_flops() - before
    # the trap: per-module backward totals sum to far more than the whole backward
    assert sum(attributed.values()) > 1.2 * global_backward
    isolated = count_torch(config, (0.8, 0.9), 2, device="cpu")
    assert isolated.total_backward == isolated.global_backward
    assert isolated.backward == model_flops(config, (0.8, 0.9), 2).backward


def test_fast_meta_shortcut_changes_no_count():
    config = make_config("tiny", "cross-attn-both")
    fast = count_torch(config, (0.8, 0.9), 2, device="meta", shortcut_meta=True)
    slow = count_torch(config, (0.8, 0.9), 2, device="meta", shortcut_meta=False)
    assert fast.forward == slow.forward and fast.backward == slow.backward
    with torch.device("meta"):
        x = torch.empty(3, 5, 16)
        norm = nn.LayerNorm(16)
    with fast_meta():
        assert norm(x).shape == (3, 5, 16)


# ------------------------------------------------------------------------- fvcore traps
def test_fvcore_set_op_handle_none_does_not_remove_a_default_handle():
    model, x = nn.LayerNorm(64), torch.randn(4, 64)
    default = FlopCountAnalysis(model, (x,)).set_op_handle("aten::layer_norm", None)
    default.unsupported_ops_warnings(False)
    assert default.total() > 0  # still counted: the trap
    ours = analysis(model, (x,), matmul_handles())
    assert ours.total() == 0


def test_fvcore_has_no_attention_handle_by_default():
    model, x = SelfAttention(32, 4), torch.randn(2, 10, 32)
    default = FlopCountAnalysis(model, (x,))
    default.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    linear_macs = 2 * 10 * 32 * (3 * 32 + 32)
    assert default.total() == linear_macs  # attention silently 0
    assert "aten::scaled_dot_product_attention" in default.unsupported_ops()
    sdpa = SdpaHandle()
    ours = analysis(model, (x,), matmul_handles(sdpa))
    assert ours.total() == linear_macs + 2 * 2 * 10 * 10 * 32
    assert sdpa.calls == [2 * 2 * 10 * 10 * 32]  # MACs of q k^T and p v


# ------------------------------------------------------------------------- disagreement
def test_check_agreement_reports_every_difference():
    config = make_config("tiny", "mavil")
    expected = model_flops(config, (0.8, 0.9))
    result = count_torch(config, (0.8, 0.9), 1, device="meta")
    check_agreement(expected, {"torch": result})
    forward = dict(result.forward, fusion=result.forward["fusion"] + 2)
    broken = dataclasses.replace(result, forward=forward, global_forward=sum(forward.values()))
    with pytest.raises(FlopCountError, match=r"fusion forward: torch .* \(\+2\)"):
        check_agreement(expected, {"torch": broken})
    backward = dict(result.backward, other=0)
    broken = dataclasses.replace(result, backward=backward)
    with pytest.raises(FlopCountError, match="components sum to"):
        check_agreement(expected, {"torch": broken})
    assert set(COMPONENTS) == set(result.forward)
