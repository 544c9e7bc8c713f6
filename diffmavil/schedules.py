"""Recipe schedules over samples seen: masking ratio, batch size, learning rate.

Pure functions (no torch, no state): the FLOP planner (``bench/flops``) and the training
loop call the same ones, so a plan's FLOPs are the run's FLOPs. Every schedule runs over
**samples seen**, not steps (docs/training.md): fixed and adaptive batch runs see
the same data with the same masking per sample and differ only in step count.

**choice** (docs/model.md): the default curriculum ramps linearly over the whole budget
from the fixed ratios (0.8 / 0.9) up to 0.9 / 0.95; adaptive batch keeps the visible encoder
tokens per step constant (rule ``tokens``), with a ``flops`` rule beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import Field, model_validator

from diffmavil.config import DEFAULT_MASK_RATIO, MODALITIES, Frozen, ModelConfig
from diffmavil.flops import model_flops
from diffmavil.tokens import keep_count

__all__ = [
    "BatchSchedule",
    "MaskingSchedule",
    "StepPlan",
    "batch_size_at",
    "lr_at",
    "lr_scale",
    "mask_ratio_at",
    "plan_run",
]


def _check_ratio(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value}: allowed values lie strictly between 0 and 1")


class MaskingSchedule(Frozen):
    """Mask ratios (audio, video) as a function of samples seen.

    ``fixed``: (audio, video) throughout. ``curriculum``: from (audio, video) to
    (audio_end, video_end) over the first ``fraction`` of the budget, then held; either
    direction. Shapes: ``linear``; ``cosine`` (half-cosine ease, slow at both ends);
    ``step`` (``steps`` equal plateaus from the start value to the end value inclusive).
    """

    kind: Literal["fixed", "curriculum"] = "fixed"
    audio: float = Field(
        DEFAULT_MASK_RATIO[0], description="audio ratio (fixed, or curriculum start)"
    )
    video: float = Field(
        DEFAULT_MASK_RATIO[1], description="video ratio (fixed, or curriculum start)"
    )
    audio_end: float = Field(0.9, description="curriculum end ratio, audio")
    video_end: float = Field(0.95, description="curriculum end ratio, video")
    shape: Literal["linear", "cosine", "step"] = "linear"
    fraction: float = Field(1.0, description="fraction of the budget the ramp spans, (0, 1]")
    steps: int = Field(4, description="plateaus of the step shape (>= 2)")

    @model_validator(mode="after")
    def _valid(self) -> MaskingSchedule:
        for name in ("audio", "video", "audio_end", "video_end"):
            _check_ratio(name, getattr(self, name))
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction={self.fraction}: allowed values lie in (0, 1]")
        if self.steps < 2:
            raise ValueError(f"steps={self.steps}: the step shape needs at least 2 plateaus")
        return self

    @property
    def start(self) -> tuple[float, float]:
        return self.audio, self.video

    @property
    def end(self) -> tuple[float, float]:
        return (self.audio_end, self.video_end) if self.kind == "curriculum" else self.start


def _progress(schedule: MaskingSchedule, samples_seen: int, budget: int) -> float:
    """Position on the ramp in [0, 1] for the curriculum's shape."""
    span = schedule.fraction * budget
    p = min(1.0, max(0.0, samples_seen / span))
    if schedule.shape == "linear":
        return p
    if schedule.shape == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * p))
    # step: plateau i of n holds i / (n - 1); the last plateau (the end value) starts at
    # (n - 1) / n of the ramp
    n = schedule.steps
    return min(n - 1, math.floor(p * n + 1e-12)) / (n - 1)


def mask_ratio_at(schedule: MaskingSchedule, samples_seen: int, budget: int) -> tuple[float, float]:
    """(audio, video) mask ratio for a step that starts after ``samples_seen`` samples."""
    if budget <= 0:
        raise ValueError(f"budget={budget}: must be a positive number of samples")
    if samples_seen < 0:
        raise ValueError(f"samples_seen={samples_seen}: must be >= 0")
    if schedule.kind == "fixed":
        return schedule.start
    p = _progress(schedule, samples_seen, budget)
    return (
        schedule.audio + (schedule.audio_end - schedule.audio) * p,
        schedule.video + (schedule.video_end - schedule.video) * p,
    )


class BatchSchedule(Frozen):
    """Batch size per step.

    ``fixed``: ``batch_size`` throughout. ``adaptive``: ``batch_size`` at the reference
    ratios (the masking schedule's start), scaled inversely to the per-sample cost at the
    current ratios: rule ``tokens`` keeps the visible encoder tokens per step constant
    (visible audio + visible video patches, CLS excluded; decoders do not shrink with
    masking, so this does not keep the work constant), rule ``flops`` keeps the per-step
    model FLOPs (forward + backward, per-sample cost at batch 1) constant. Rounded to the
    nearest multiple of ``multiple`` (at least one multiple), then capped at ``max_batch``
    (the cap wins over the multiple). The learning rate follows ``lr_scaling``.
    """

    kind: Literal["fixed", "adaptive"] = "fixed"
    batch_size: int = Field(16, gt=0, description="base batch, at the reference ratios")
    rule: Literal["tokens", "flops"] = "tokens"
    multiple: int = Field(8, gt=0)
    max_batch: int | None = Field(None, gt=0)
    lr_scaling: Literal["linear", "sqrt", "none"] = "linear"

    @model_validator(mode="after")
    def _valid(self) -> BatchSchedule:
        if self.kind == "adaptive" and self.batch_size % self.multiple:
            raise ValueError(
                f"batch_size={self.batch_size} is not a multiple of multiple={self.multiple}: "
                "the adaptive batch must reproduce the base batch at the reference ratios"
            )
        if self.max_batch is not None and self.max_batch < self.batch_size:
            raise ValueError(f"max_batch={self.max_batch} is below batch_size={self.batch_size}")
        return self


def _visible_tokens(config: ModelConfig, ratios: tuple[float, float]) -> int:
    return sum(
        keep_count(config.num_patches(m), r) for m, r in zip(MODALITIES, ratios, strict=True)
    )


def _per_sample_flops(config: ModelConfig, ratios: tuple[float, float]) -> int:
    return model_flops(config, ratios, 1).total


def batch_size_at(
    batch: BatchSchedule,
    config: ModelConfig,
    ratios: tuple[float, float],
    reference: tuple[float, float],
) -> int:
    """Batch size at ``ratios`` (audio, video) given the base batch at ``reference``."""
    if batch.kind == "fixed":
        return batch.batch_size
    if batch.rule == "tokens":
        cost_now, cost_ref = _visible_tokens(config, ratios), _visible_tokens(config, reference)
    else:
        cost_now, cost_ref = _per_sample_flops(config, ratios), _per_sample_flops(config, reference)
    raw = Fraction(batch.batch_size * cost_ref, cost_now)  # exact, no float error
    multiples = math.floor(raw / batch.multiple + Fraction(1, 2))  # nearest, halves up
    size = max(1, multiples) * batch.multiple
    if batch.max_batch is not None:
        size = min(size, batch.max_batch)
    return size


def lr_scale(batch: BatchSchedule, batch_size: int) -> float:
    """Learning-rate multiplier of a step of ``batch_size`` relative to ``batch.batch_size``
    (linear or square-root scaling rule, or none)."""
    if batch.lr_scaling == "none":
        return 1.0
    ratio = batch_size / batch.batch_size
    return ratio if batch.lr_scaling == "linear" else math.sqrt(ratio)


@dataclass(frozen=True)
class StepPlan:
    """One optimizer step: its index, the samples seen before it, its batch size, the mask
    ratios (audio, video) it uses and its learning-rate multiplier."""

    step: int
    samples_seen: int
    batch_size: int
    mask_ratio: tuple[float, float]
    lr_scale: float


def plan_run(
    config: ModelConfig,
    masking: MaskingSchedule,
    batch: BatchSchedule,
    budget_samples: int,
) -> list[StepPlan]:
    """Every step of a run of ``budget_samples`` samples.

    The ratio of a step is evaluated at the samples seen before it; its batch follows from
    the ratio; the last step is truncated so that the steps sum to the budget exactly (its
    learning-rate multiplier follows its actual, truncated size).
    """
    budget = int(budget_samples)
    if budget != budget_samples or budget <= 0:
        raise ValueError(f"budget_samples={budget_samples}: must be a positive integer")
    reference = masking.start
    audio_patches, video_patches = config.num_patches("audio"), config.num_patches("video")
    steps: list[StepPlan] = []
    # the batch size depends on the ratios only through the visible token counts
    sizes: dict[tuple[int, int], tuple[int, float]] = {}
    seen = 0
    while seen < budget:
        ratios = mask_ratio_at(masking, seen, budget)
        visible = (keep_count(audio_patches, ratios[0]), keep_count(video_patches, ratios[1]))
        if visible not in sizes:
            size = batch_size_at(batch, config, ratios, reference)
            sizes[visible] = (size, lr_scale(batch, size))
        size, scale = sizes[visible]
        if size > budget - seen:  # the last step: truncated to the budget
            size = budget - seen
            scale = lr_scale(batch, size)
        steps.append(StepPlan(len(steps), seen, size, ratios, scale))
        seen += size
    return steps


def lr_at(
    samples_seen: int,
    budget: int,
    base_lr: float,
    *,
    warmup_fraction: float = 0.0,
    warmup_samples: int | None = None,
    min_lr: float = 0.0,
) -> float:
    """AudioMAE's schedule over samples: linear warm-up from 0 to ``base_lr`` over
    ``warmup_samples`` (or ``warmup_fraction`` of the budget), then a half-cycle cosine
    down to ``min_lr`` at the end of the budget."""
    if budget <= 0:
        raise ValueError(f"budget={budget}: must be a positive number of samples")
    if warmup_samples is None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction={warmup_fraction}: allowed values lie in [0, 1)")
        warmup = warmup_fraction * budget
    else:
        if not 0 <= warmup_samples < budget:
            raise ValueError(f"warmup_samples={warmup_samples}: must lie in [0, budget)")
        warmup = float(warmup_samples)
    if samples_seen < warmup:
        return base_lr * samples_seen / warmup
    progress = min(1.0, (samples_seen - warmup) / (budget - warmup))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
