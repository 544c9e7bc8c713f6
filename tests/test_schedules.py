"""Pure schedule functions: masking curriculum, adaptive batch, learning rate, run plans."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from diffmavil import make_config
from diffmavil.flops import model_flops
from diffmavil.schedules import (
    BatchSchedule,
    MaskingSchedule,
    batch_size_at,
    lr_at,
    lr_scale,
    mask_ratio_at,
    plan_run,
)
from diffmavil.tokens import keep_count

BASE = make_config("base", "cross-attn")
TINY = make_config("tiny", "cross-attn")


# ------------------------------------------------------------------------- masking
def test_fixed_masking_is_constant():
    schedule = MaskingSchedule()
    for seen in (0, 500, 999, 1000, 5000):
        assert mask_ratio_at(schedule, seen, 1000) == (0.8, 0.9)


def test_linear_curriculum_values():
    schedule = MaskingSchedule(kind="curriculum")
    assert mask_ratio_at(schedule, 0, 1000) == (0.8, 0.9)
    audio, video = mask_ratio_at(schedule, 500, 1000)
    assert audio == pytest.approx(0.85) and video == pytest.approx(0.925)
    audio, video = mask_ratio_at(schedule, 250, 1000)
    assert audio == pytest.approx(0.825) and video == pytest.approx(0.9125)
    assert mask_ratio_at(schedule, 1000, 1000) == pytest.approx((0.9, 0.95))


def test_curriculum_fraction_holds_the_end_value():
    schedule = MaskingSchedule(kind="curriculum", fraction=0.5)
    assert mask_ratio_at(schedule, 250, 1000) == pytest.approx((0.85, 0.925))
    assert mask_ratio_at(schedule, 500, 1000) == pytest.approx((0.9, 0.95))
    assert mask_ratio_at(schedule, 900, 1000) == pytest.approx((0.9, 0.95))


def test_cosine_curriculum_is_slow_at_both_ends():
    schedule = MaskingSchedule(kind="curriculum", shape="cosine")
    assert mask_ratio_at(schedule, 500, 1000) == pytest.approx((0.85, 0.925))
    quarter = (1 - math.cos(math.pi / 4)) / 2  # 0.1464...
    audio, _ = mask_ratio_at(schedule, 250, 1000)
    assert audio == pytest.approx(0.8 + 0.1 * quarter)
    assert audio < 0.825  # below the linear ramp early on


def test_step_curriculum_plateaus():
    schedule = MaskingSchedule(kind="curriculum", shape="step", steps=3, audio_end=0.9)
    values = [mask_ratio_at(schedule, seen, 900)[0] for seen in (0, 299, 300, 599, 600, 899)]
    assert values == pytest.approx([0.8, 0.8, 0.85, 0.85, 0.9, 0.9])


def test_curriculum_can_ramp_down():
    schedule = MaskingSchedule(
        kind="curriculum", audio=0.9, video=0.95, audio_end=0.7, video_end=0.8
    )
    assert mask_ratio_at(schedule, 500, 1000) == pytest.approx((0.8, 0.875))
    assert mask_ratio_at(schedule, 1000, 1000) == pytest.approx((0.7, 0.8))


@pytest.mark.parametrize(
    "fields",
    [
        {"audio": 1.0},
        {"video_end": 0.0},
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"steps": 1},
        {"typo": 1},
    ],
)
def test_masking_schedule_validation(fields):
    with pytest.raises(ValidationError):
        MaskingSchedule(**fields)


def test_masking_schedule_is_frozen():
    schedule = MaskingSchedule()
    with pytest.raises(ValidationError):
        schedule.audio = 0.5  # type: ignore[misc]


def test_mask_ratio_at_rejects_bad_budget():
    with pytest.raises(ValueError, match="budget"):
        mask_ratio_at(MaskingSchedule(), 0, 0)


# ------------------------------------------------------------------------- batch
def test_fixed_batch_ignores_ratios():
    assert batch_size_at(BatchSchedule(batch_size=24), BASE, (0.9, 0.95), (0.8, 0.9)) == 24


def test_tokens_rule_keeps_visible_tokens_per_step():
    batch = BatchSchedule(kind="adaptive", batch_size=32)
    # reference: 102 audio + 78 video visible = 180; at (0.9, 0.95): 51 + 39 = 90 -> 2x
    assert batch_size_at(batch, BASE, (0.8, 0.9), (0.8, 0.9)) == 32
    assert batch_size_at(batch, BASE, (0.9, 0.95), (0.8, 0.9)) == 64
    # (0.85, 0.925): 76 + 58 = 134 -> 32 * 180 / 134 = 42.99 -> nearest multiple of 8 is 40
    assert keep_count(512, 0.85) + keep_count(784, 0.925) == 134
    assert batch_size_at(batch, BASE, (0.85, 0.925), (0.8, 0.9)) == 40
    # multiple 1: no rounding beyond the nearest integer
    exact = BatchSchedule(kind="adaptive", batch_size=32, multiple=1)
    assert batch_size_at(exact, BASE, (0.85, 0.925), (0.8, 0.9)) == 43


def test_batch_cap_and_minimum():
    capped = BatchSchedule(kind="adaptive", batch_size=32, max_batch=50)
    assert batch_size_at(capped, BASE, (0.9, 0.95), (0.8, 0.9)) == 50  # the cap wins
    small = BatchSchedule(kind="adaptive", batch_size=8)
    # lower masking -> more tokens per sample -> smaller batch, never below one multiple
    assert batch_size_at(small, BASE, (0.1, 0.1), (0.8, 0.9)) == 8


def test_flops_rule_keeps_flops_per_step():
    batch = BatchSchedule(kind="adaptive", batch_size=32, rule="flops", multiple=1)
    ref = model_flops(BASE, (0.8, 0.9)).total
    now = model_flops(BASE, (0.9, 0.95)).total
    expected = math.floor(32 * ref / now + 0.5)
    assert batch_size_at(batch, BASE, (0.9, 0.95), (0.8, 0.9)) == expected
    # decoders do not shrink with masking: the flops rule grows the batch less than tokens
    tokens = BatchSchedule(kind="adaptive", batch_size=32, multiple=1)
    assert expected < batch_size_at(tokens, BASE, (0.9, 0.95), (0.8, 0.9))


def test_batch_schedule_validation():
    with pytest.raises(ValidationError, match="multiple"):
        BatchSchedule(kind="adaptive", batch_size=12)
    with pytest.raises(ValidationError, match="max_batch"):
        BatchSchedule(batch_size=32, max_batch=16)


def test_lr_scaling_rules():
    assert lr_scale(BatchSchedule(batch_size=32), 64) == 2.0
    assert lr_scale(BatchSchedule(batch_size=32, lr_scaling="sqrt"), 128) == 2.0
    assert lr_scale(BatchSchedule(batch_size=32, lr_scaling="none"), 128) == 1.0


# ------------------------------------------------------------------------- plans
def test_fixed_plan_truncates_the_last_step():
    plan = plan_run(TINY, MaskingSchedule(), BatchSchedule(batch_size=32), 100)
    assert [s.batch_size for s in plan] == [32, 32, 32, 4]
    assert [s.samples_seen for s in plan] == [0, 32, 64, 96]
    assert plan[-1].lr_scale == pytest.approx(4 / 32)
    assert [s.step for s in plan] == [0, 1, 2, 3]


def test_curriculum_plan_evaluates_ratio_before_each_step():
    masking = MaskingSchedule(kind="curriculum")
    batch = BatchSchedule(kind="adaptive", batch_size=32)
    budget = 10_000
    plan = plan_run(BASE, masking, batch, budget)
    assert sum(s.batch_size for s in plan) == budget
    assert plan[0].mask_ratio == (0.8, 0.9) and plan[0].batch_size == 32
    for step in plan:
        assert step.mask_ratio == mask_ratio_at(masking, step.samples_seen, budget)
        if step is not plan[-1]:
            assert step.batch_size == batch_size_at(batch, BASE, step.mask_ratio, (0.8, 0.9))
            assert step.lr_scale == step.batch_size / 32
    # the batch grows as masking rises: fewer steps than a fixed batch
    assert len(plan) < math.ceil(budget / 32)
    assert plan[-2].batch_size > 32


@settings(max_examples=40, deadline=None)
@given(
    budget=st.integers(1, 5000),
    base=st.sampled_from([8, 16, 32]),
    kind=st.sampled_from(["fixed", "adaptive"]),
    masking=st.sampled_from(["fixed", "curriculum"]),
    cap=st.one_of(st.none(), st.integers(48, 80)),
)
def test_plans_respect_the_budget_exactly(budget, base, kind, masking, cap):
    batch = BatchSchedule(kind=kind, batch_size=base, max_batch=cap)
    plan = plan_run(TINY, MaskingSchedule(kind=masking), batch, budget)
    assert sum(s.batch_size for s in plan) == budget
    assert all(s.batch_size >= 1 for s in plan)
    assert all(cap is None or s.batch_size <= cap for s in plan)
    seen = 0
    for step in plan:
        assert step.samples_seen == seen
        seen += step.batch_size


def test_plan_rejects_bad_budget():
    with pytest.raises(ValueError, match="budget"):
        plan_run(TINY, MaskingSchedule(), BatchSchedule(), 0)


# ------------------------------------------------------------------------- learning rate
def test_lr_warmup_then_half_cosine():
    kwargs = {"warmup_fraction": 0.1, "min_lr": 1e-6}
    assert lr_at(0, 1000, 1e-3, **kwargs) == 0.0
    assert lr_at(50, 1000, 1e-3, **kwargs) == pytest.approx(5e-4)
    assert lr_at(100, 1000, 1e-3, **kwargs) == pytest.approx(1e-3)
    assert lr_at(550, 1000, 1e-3, **kwargs) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)
    assert lr_at(1000, 1000, 1e-3, **kwargs) == pytest.approx(1e-6)
    assert lr_at(20, 1000, 1e-3, warmup_samples=40) == pytest.approx(5e-4)


def test_lr_rejects_bad_warmup():
    with pytest.raises(ValueError, match="warmup"):
        lr_at(0, 100, 1e-3, warmup_samples=100)
