"""Whole-run FLOPs: the closed form integrated over a plan, checked against FlopCounterMode
step by step; the saving vs the MAViL recipe; the sensitivity sweep."""

from __future__ import annotations

import pytest

from bench.flops import baseline_config, run_flops, run_saving, sensitivity
from bench.flops.torch_counter import count_torch
from diffmavil import COMPONENTS, make_config
from diffmavil.flops import model_flops
from diffmavil.schedules import BatchSchedule, MaskingSchedule, plan_run


def test_run_totals_equal_flop_counter_step_by_step():
    """A short curriculum + adaptive plan; every step counted by FlopCounterMode on meta
    (forward and isolated backward), summed, against run_flops."""
    config = make_config("tiny", "cross-attn")
    masking = MaskingSchedule(
        kind="curriculum", audio=0.5, video=0.5, audio_end=0.8, video_end=0.8, shape="step", steps=3
    )
    batch = BatchSchedule(kind="adaptive", batch_size=2, multiple=1, max_batch=8)
    budget = 29
    plan = plan_run(config, masking, batch, budget)
    assert len(plan) >= 6 and len({s.batch_size for s in plan}) >= 3
    assert plan[-1].batch_size < plan[-2].batch_size  # truncated last step
    counted_total = 0
    counted_components = dict.fromkeys(COMPONENTS, 0)
    memo: dict[tuple, object] = {}  # identical shapes need not be re-counted
    for step in plan:
        key = (
            config.visible_tokens("audio", step.mask_ratio[0]),
            config.visible_tokens("video", step.mask_ratio[1]),
            step.batch_size,
        )
        if key not in memo:
            memo[key] = count_torch(config, step.mask_ratio, step.batch_size, device="meta")
        result = memo[key]
        counted_total += result.global_forward + result.global_backward
        for name in COMPONENTS:
            counted_components[name] += result.forward[name] + result.backward[name]
    totals = run_flops(config, masking, batch, budget)
    assert totals["total_flops"] == counted_total
    assert totals["components"] == counted_components
    assert totals["steps"] == len(plan) and totals["samples"] == budget


def test_fixed_recipe_total_is_steps_times_step_flops():
    config = make_config("base", "mavil")
    totals = run_flops(config, MaskingSchedule(), BatchSchedule(batch_size=32), 3200)
    step = model_flops(config, (0.8, 0.9), 32)
    assert totals["steps"] == 100
    assert totals["total_flops"] == 100 * step.total
    assert totals["forward_flops"] + totals["backward_flops"] == totals["total_flops"]


def test_baseline_is_mavil_with_the_same_sizes():
    config = make_config("base", "cross-attn", {"video_decoder.dim": 256, "video_decoder.heads": 8})
    base = baseline_config(config)
    assert base.video_decoder.kind == "self" and not base.video_decoder.diffusion
    assert base.video_decoder.dim == 256 and base.encoder == config.encoder
    assert base.variant == "mavil"


def test_savings_at_base():
    config = make_config("base", "cross-attn")
    budget = 200_000
    arch = run_saving(config, MaskingSchedule(), BatchSchedule(batch_size=32), budget)
    mavil = model_flops(make_config("base", "mavil"), (0.8, 0.9), 32).total
    cross = model_flops(config, (0.8, 0.9), 32).total
    assert arch["saving"] == pytest.approx(1 - cross / mavil, rel=1e-12)
    curriculum = run_saving(
        config, MaskingSchedule(kind="curriculum"), BatchSchedule(batch_size=32), budget
    )
    full = run_saving(
        config,
        MaskingSchedule(kind="curriculum"),
        BatchSchedule(kind="adaptive", batch_size=32),
        budget,
    )
    assert curriculum["saving"] > arch["saving"] + 0.05
    # adaptive batch changes the step count, not the FLOPs (up to InfoNCE's B^2 term)
    assert full["run"]["steps"] < curriculum["run"]["steps"]
    rel = abs(full["run"]["total_flops"] / curriculum["run"]["total_flops"] - 1)
    assert 0 < rel < 1e-5


def test_sensitivity_moves_the_saving_as_expected():
    config = make_config("base", "cross-attn")
    rows = sensitivity(
        config, MaskingSchedule(kind="curriculum"), BatchSchedule(kind="adaptive"), 50_000
    )
    groups = {row["assumption"] for row in rows}
    assert {"decoder width", "decoder depth", "curriculum end", "batch rule"} <= groups
    width = [r["saving"] for r in rows if r["assumption"] == "decoder width"]
    assert width == sorted(width, reverse=True)  # narrower decoders: larger saving
    ends = [r["saving"] for r in rows if r["assumption"] == "curriculum end"]
    assert ends == sorted(ends)  # higher end ratios: larger saving
    fixed = next(r for r in rows if r["assumption"] == "masking")
    assert fixed["saving"] < min(ends)
    assert any(r["reaches_paper"] for r in rows) and not rows[0]["reaches_paper"]
