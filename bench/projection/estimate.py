"""Whole-run wall-clock projection: the arithmetic (no torch, no timing).

A run's plan (``diffmavil.schedules.plan_run``) visits a few distinct step shapes. A
*point* is (batch size, visible audio tokens, visible video tokens): every step at a point
does the same work. The projection measures the train step at some points, estimates the
others by linear interpolation in model FLOPs between measured points of the same batch
size, and integrates over the plan::

    compute seconds = sum over points p of steps(p) * mean step seconds(p)

Means, not medians: a total adds means. Every estimate is linear in the measured means, so
a projected total is a weighted sum ``sum_t W_t * mean(samples_t)`` (``bench.stats.Term``)
and its 95% interval comes from a percentile bootstrap (``bench.stats.bootstrap_totals``):
interleaved rounds are resampled together (a round's load hits every task of the round),
in blocks of consecutive rounds (the machine's speed drifts, so neighbouring rounds are
correlated); other terms (data loading, checkpoint writes) are resampled on their own.

Interpolation error: per batch size, at most ``max_anchors`` *anchors* spread evenly in
FLOPs (both ends included) are measured, plus one *check* point between each pair of
adjacent anchors. The stated error is the largest relative deviation, at a check point,
of the anchors-only interpolation from the check's measured mean. The projection itself
interpolates between all measured points (anchors and checks), whose spacing is half as
wide, so the stated error over-states its per-step error.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from diffmavil.config import MODALITIES, ModelConfig
from diffmavil.flops import model_flops
from diffmavil.schedules import StepPlan
from diffmavil.tokens import keep_count

PointKey = tuple[int, tuple[int, int]]  # (batch size, (visible audio, visible video))


@dataclass(frozen=True)
class PlanPoint:
    """A distinct step shape of a plan: ``steps`` steps of ``batch_size`` samples with
    ``visible`` (audio, video) tokens kept, each costing ``flops`` model FLOPs (fwd+bwd).
    ``mask_ratio`` is the first planned ratio that maps to it (any such ratio gives the same
    shapes)."""

    batch_size: int
    visible: tuple[int, int]
    mask_ratio: tuple[float, float]
    flops: int
    steps: int

    @property
    def key(self) -> PointKey:
        return (self.batch_size, self.visible)

    @property
    def name(self) -> str:
        return f"b{self.batch_size}/a{self.visible[0]}/v{self.visible[1]}"


def plan_points(config: ModelConfig, plan: Sequence[StepPlan]) -> list[PlanPoint]:
    """The distinct points of ``plan`` in order of first appearance, with their step counts."""
    patches = [config.num_patches(m) for m in MODALITIES]
    counts: Counter[PointKey] = Counter()
    first: dict[PointKey, tuple[float, float]] = {}
    for step in plan:
        visible = (
            keep_count(patches[0], step.mask_ratio[0]),
            keep_count(patches[1], step.mask_ratio[1]),
        )
        key = (step.batch_size, visible)
        counts[key] += 1
        first.setdefault(key, step.mask_ratio)
    return [
        PlanPoint(
            batch_size=key[0],
            visible=key[1],
            mask_ratio=ratio,
            flops=model_flops(config, ratio, key[0]).total,
            steps=counts[key],
        )
        for key, ratio in first.items()
    ]


@dataclass(frozen=True)
class Selection:
    """Which points of a plan are measured: ``anchors`` and ``checks`` (indices into
    ``points``); every other point is interpolated."""

    points: tuple[PlanPoint, ...]
    anchors: tuple[int, ...]
    checks: tuple[int, ...]

    @property
    def measured(self) -> tuple[int, ...]:
        return tuple(sorted((*self.anchors, *self.checks)))


def _segments(points: Sequence[PlanPoint]) -> list[list[int]]:
    """Indices of ``points`` grouped by batch size, each group sorted by FLOPs."""
    groups: dict[int, list[int]] = {}
    for index, point in enumerate(points):
        groups.setdefault(point.batch_size, []).append(index)
    return [sorted(g, key=lambda i: (points[i].flops, i)) for g in groups.values()]


def select_points(points: Sequence[PlanPoint], max_anchors: int) -> Selection:
    """Anchors spread evenly in FLOPs per batch size (ends included) and a check between
    each adjacent pair; a batch size with few points has every point measured (no checks,
    nothing interpolated)."""
    if max_anchors < 2:
        raise ValueError(f"max_anchors={max_anchors}: at least 2 (both ends of a segment)")
    anchors: list[int] = []
    checks: list[int] = []
    for segment in _segments(points):
        if len(segment) <= 2 * max_anchors - 1:
            anchors.extend(segment)
            continue
        low, high = points[segment[0]].flops, points[segment[-1]].flops
        chosen: list[int] = []
        for j in range(max_anchors):
            target = low + (high - low) * j / (max_anchors - 1)
            free = [i for i in segment if i not in chosen]
            chosen.append(min(free, key=lambda i: (abs(points[i].flops - target), i)))
        chosen.sort(key=lambda i: (points[i].flops, i))
        anchors.extend(chosen)
        for left, right in itertools.pairwise(chosen):
            middle = (points[left].flops + points[right].flops) / 2
            between = [
                i
                for i in segment
                if i not in chosen and points[left].flops <= points[i].flops <= points[right].flops
            ]
            if between:
                checks.append(min(between, key=lambda i: (abs(points[i].flops - middle), i)))
    return Selection(tuple(points), tuple(sorted(anchors)), tuple(sorted(set(checks))))


def interpolation_weights(
    points: Sequence[PlanPoint], known: Sequence[int]
) -> list[dict[int, float]]:
    """Per point: {known point index: weight}. A known point is itself; any other is the
    linear interpolation in FLOPs between the nearest known points of its batch size on
    either side (each point lies between its segment's first and last known point)."""
    known_set = set(known)
    weights: list[dict[int, float]] = [{} for _ in points]
    for segment in _segments(points):
        ordered = [i for i in segment if i in known_set]
        if not ordered:
            raise ValueError(f"batch size {points[segment[0]].batch_size}: no measured point")
        for index in segment:
            if index in known_set:
                weights[index] = {index: 1.0}
                continue
            flops = points[index].flops
            below = [i for i in ordered if points[i].flops <= flops]
            above = [i for i in ordered if points[i].flops >= flops]
            if not below or not above:
                raise ValueError(f"point {points[index].name} lies outside its measured range")
            left, right = below[-1], above[0]
            span = points[right].flops - points[left].flops
            t = 0.5 if span == 0 else (flops - points[left].flops) / span
            weights[index] = {left: 1.0 - t, right: t} if left != right else {left: 1.0}
    return weights


def step_coefficients(selection: Selection) -> dict[int, float]:
    """{measured point index: W}: projected compute seconds = sum W * mean step seconds,
    interpolating between all measured points."""
    coefficients: dict[int, float] = {}
    weights = interpolation_weights(selection.points, selection.measured)
    for point, weight in zip(selection.points, weights, strict=True):
        for index, w in weight.items():
            coefficients[index] = coefficients.get(index, 0.0) + point.steps * w
    return coefficients


def interpolation_error(selection: Selection, means: Mapping[int, float]) -> float:
    """Largest relative deviation, over the check points, of the anchors-only interpolation
    from the check's measured mean (0.0 when nothing is interpolated)."""
    if not selection.checks:
        return 0.0
    weights = interpolation_weights(selection.points, selection.anchors)
    worst = 0.0
    for check in selection.checks:
        estimate = sum(w * means[i] for i, w in weights[check].items())
        worst = max(worst, abs(estimate - means[check]) / means[check])
    return worst


def interpolated_share(selection: Selection, means: Mapping[int, float]) -> float:
    """Share of the projected compute seconds that falls on interpolated (unmeasured) points."""
    weights = interpolation_weights(selection.points, selection.measured)
    measured = set(selection.measured)
    seconds = [
        point.steps * sum(w * means[i] for i, w in weight.items())
        for point, weight in zip(selection.points, weights, strict=True)
    ]
    total = sum(seconds)
    unmeasured = sum(s for i, s in enumerate(seconds) if i not in measured)
    return unmeasured / total if total else 0.0


# ----------------------------------------------------------------------- per-run costs
def checkpoint_writes(steps: int, checkpoint_every: int) -> int:
    """Checkpoints ``pretrain`` writes: after every ``checkpoint_every``-th step and after
    the last step (counted once when they coincide)."""
    return sum(1 for s in range(steps) if s == steps - 1 or (s + 1) % checkpoint_every == 0)


def logged_steps(steps: int, log_every: int) -> int:
    """Rows ``pretrain`` logs: steps 0, log_every, 2 log_every, ... and the last step."""
    return sum(1 for s in range(steps) if s == steps - 1 or s % log_every == 0)


def cold_samples(budget: int, dataset_size: int, cached: bool) -> int:
    """Samples loaded from their source: with an in-memory cache only the first epoch's
    (the stream visits every item once per epoch), otherwise all of them."""
    return min(budget, dataset_size) if cached else budget
