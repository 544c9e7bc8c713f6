"""Time-to-target endpoints of an accuracy curve (pure functions).

A curve is points (x, accuracy), x strictly increasing (samples seen, FLOPs or seconds),
the first at the first snapshot.

- ``time_to_target``: the first x where the curve reaches an absolute target, linearly
  interpolated between the last point below it and the first at or above it; at the first
  point if that already reaches it; censored at the last x if never (``reached`` False).
- ``area_under_curve``: the trapezoid-rule area under accuracy over [0, x_max]. Before the
  first snapshot the curve runs linearly from (0, ``initial_accuracy``) (e.g. the
  random-init accuracy) or, when none is given, holds the first point's accuracy
  constant; it is cut at x_max by linear interpolation (x_max beyond the last point is an
  error: the curve is not extrapolated).
- ``paired_time_ratio``: candidate / reference time-to-target over the common seeds, the
  geometric mean ratio with a Student's t interval of the mean log ratio (level 0.95 by
  default), reported only when at least ``min_fraction`` (5/6) of the pairs reached the
  target on both sides; censored and unpaired seeds are always listed in the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.stats.intervals import Interval, Sides, common_seeds, mean_interval


def _curve(x: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, dtype=float), np.asarray(accuracy, dtype=float)
    if xs.ndim != 1 or xs.shape != ys.shape or len(xs) == 0:
        raise ValueError("a curve needs equally many x and accuracy values, at least one")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("curve values must be finite")
    if np.any(np.diff(xs) <= 0) or xs[0] < 0:
        raise ValueError("curve x must be >= 0 and strictly increasing")
    return xs, ys


@dataclass(frozen=True)
class TimeToTarget:
    """x at which ``target`` was first reached, or the last x when not (``reached`` False:
    censored, the time is beyond ``value``)."""

    value: float
    reached: bool
    target: float


def time_to_target(x: Sequence[float], accuracy: Sequence[float], target: float) -> TimeToTarget:
    """First crossing of ``target``, interpolated linearly between its neighbours."""
    xs, ys = _curve(x, accuracy)
    hits = np.flatnonzero(ys >= target)
    if len(hits) == 0:
        return TimeToTarget(float(xs[-1]), False, target)
    i = int(hits[0])
    if i == 0:
        return TimeToTarget(float(xs[0]), True, target)
    fraction = (target - ys[i - 1]) / (ys[i] - ys[i - 1])
    return TimeToTarget(float(xs[i - 1] + fraction * (xs[i] - xs[i - 1])), True, target)


def area_under_curve(
    x: Sequence[float],
    accuracy: Sequence[float],
    x_max: float,
    *,
    initial_accuracy: float | None = None,
) -> float:
    """Trapezoid area under accuracy over [0, ``x_max``] (see the module's docstring for
    the curve before the first point); divide by ``x_max`` for the mean accuracy."""
    xs, ys = _curve(x, accuracy)
    if not 0.0 < x_max <= xs[-1]:
        raise ValueError(f"x_max={x_max}: must lie in (0, last x = {xs[-1]:g}]")
    if xs[0] > 0:
        start = ys[0] if initial_accuracy is None else float(initial_accuracy)
        xs, ys = np.concatenate([[0.0], xs]), np.concatenate([[start], ys])
    inside = xs < x_max
    px = np.concatenate([xs[inside], [x_max]])
    py = np.concatenate([ys[inside], [np.interp(x_max, xs, ys)]])
    return float(np.sum(np.diff(px) * (py[1:] + py[:-1]) / 2.0))


@dataclass(frozen=True)
class TimeRatio:
    """Paired candidate / reference time-to-target. ``interval`` (the geometric mean ratio)
    is None unless ``reached_both`` is at least ``min_fraction`` of the ``seeds`` (and 2)."""

    seeds: tuple[int, ...]
    reached_both: tuple[int, ...]
    candidate_censored: tuple[int, ...]
    reference_censored: tuple[int, ...]
    candidate_only: tuple[int, ...]
    reference_only: tuple[int, ...]
    min_fraction: float
    interval: Interval | None

    @property
    def reported(self) -> bool:
        return self.interval is not None

    def counts(self) -> str:
        """E.g. "5/6 pairs reached the target on both sides"."""
        return f"{len(self.reached_both)}/{len(self.seeds)} pairs reached the target on both sides"


def paired_time_ratio(
    candidate: Mapping[int, TimeToTarget],
    reference: Mapping[int, TimeToTarget],
    *,
    level: float = 0.95,
    sides: Sides = "two-sided",
    min_fraction: float = 5.0 / 6.0,
) -> TimeRatio:
    """candidate / reference times-to-target, paired by seed; exp of the t interval of the
    mean log ratio over the pairs where both reached the target."""
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction={min_fraction}: allowed values lie in (0, 1]")
    seeds, candidate_only, reference_only = common_seeds(candidate, reference)
    both = tuple(s for s in seeds if candidate[s].reached and reference[s].reached)
    needed = max(2, math.ceil(min_fraction * len(seeds) - 1e-9))
    interval = None
    if len(both) >= needed:
        if any(min(candidate[s].value, reference[s].value) <= 0 for s in both):
            raise ValueError("times-to-target must be positive for a log ratio")
        logs = [math.log(candidate[s].value / reference[s].value) for s in both]
        on_log = mean_interval(logs, level, sides)
        interval = Interval(
            math.exp(on_log.estimate),
            math.exp(on_log.low),
            math.exp(on_log.high),
            level,
            sides,
            on_log.n,
            on_log.df,
            "student-t on log ratio",
        )
    return TimeRatio(
        seeds=seeds,
        reached_both=both,
        candidate_censored=tuple(s for s in seeds if not candidate[s].reached),
        reference_censored=tuple(s for s in seeds if not reference[s].reached),
        candidate_only=candidate_only,
        reference_only=reference_only,
        min_fraction=min_fraction,
        interval=interval,
    )
