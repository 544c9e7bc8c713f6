"""Student's t intervals over seeds: the typed ``Interval``, mean and paired-delta intervals,
pairing by seed, and the bounded accuracy interval (logit-transformed t).

Every interval is Student's t with n - 1 degrees of freedom at every n >= 2 (no normal
fallback); the level is the caller's (default 0.95), two-sided or one-sided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

Sides = Literal["two-sided", "one-sided lower", "one-sided upper"]
SIDES: tuple[Sides, ...] = ("two-sided", "one-sided lower", "one-sided upper")
MINUS = "\u2212"


def _number(value: float, digits: int, signed: bool) -> str:
    if math.isinf(value):
        return f"{MINUS if value < 0 else '+' if signed else ''}∞"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if float(text) == 0.0:  # no sign on a rounded zero
        text = text.lstrip("+-")
    return text.replace("-", MINUS)


@dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval at ``level`` (e.g. 0.95).

    ``sides``: "two-sided", or "one-sided lower" (``high`` is the parameter's upper limit,
    +inf unless bounded) / "one-sided upper" (``low`` is its lower limit). ``n``: the
    observations behind it; ``df``: degrees of freedom (None where not a t interval).
    """

    estimate: float
    low: float
    high: float
    level: float
    sides: Sides
    n: int
    df: float | None
    method: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def label(self, digits: int = 1, *, signed: bool = True, scale: float = 1.0) -> str:
        """E.g. "−2.1 [−6.9, +2.6] (95%)"; values times ``scale``; one-sided ones say so."""
        est, low, high = (scale * v for v in (self.estimate, self.low, self.high))
        close = ")" if math.isinf(high) else "]"
        open_ = "(" if math.isinf(low) else "["
        side = "" if self.sides == "two-sided" else f", {self.sides}"
        return (
            f"{_number(est, digits, signed)} {open_}{_number(low, digits, signed)}, "
            f"{_number(high, digits, signed)}{close} ({100 * self.level:g}%{side})"
        )

    def __str__(self) -> str:
        return self.label()


def check_level(level: float, sides: Sides) -> None:
    if sides not in SIDES:
        raise ValueError(f"sides={sides!r}: one of {SIDES}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level}: allowed values lie strictly between 0 and 1")
    if sides != "two-sided" and level <= 0.5:
        raise ValueError(f"level={level}: a one-sided bound needs a level above 0.5")


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (scipy)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: allowed values lie strictly between 0 and 1")
    if df <= 0:
        raise ValueError(f"df={df}: must be positive")
    return float(stats.t.ppf(p, df))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (scipy)."""
    if df <= 0:
        raise ValueError(f"df={df}: must be positive")
    return float(stats.t.cdf(t, df))


def t_bounds(
    center: float, se: float, df: float, level: float, sides: Sides
) -> tuple[float, float]:
    """``center`` -+ t * ``se``: two-sided with t_{(1+level)/2}, one-sided with t_level
    (the open side infinite)."""
    check_level(level, sides)
    if sides == "two-sided":
        half = t_quantile((1.0 + level) / 2.0, df) * se
        return center - half, center + half
    half = t_quantile(level, df) * se
    if sides == "one-sided lower":
        return center - half, math.inf
    return -math.inf, center + half


def _sample(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise ValueError("values must be finite")
    return array


def mean_interval(
    values: Iterable[float], level: float = 0.95, sides: Sides = "two-sided"
) -> Interval:
    """Student's t interval of the mean of ``values`` (n >= 2, df = n - 1)."""
    x = _sample(values)
    n, mean = len(x), float(np.mean(x))
    se = float(np.std(x, ddof=1)) / math.sqrt(n)
    low, high = t_bounds(mean, se, n - 1, level, sides)
    return Interval(mean, low, high, level, sides, n, n - 1, "student-t")


@dataclass(frozen=True)
class SeedSummary:
    """n, mean, sample sd (ddof=1) and t interval of one row's values over seeds; ``dropped``
    counts the values left out as missing (None, NaN, inf, non-numbers)."""

    n: int
    mean: float | None
    sd: float | None
    interval: Interval | None
    dropped: int = 0

    @property
    def low(self) -> float | None:
        return None if self.interval is None else self.interval.low

    @property
    def high(self) -> float | None:
        return None if self.interval is None else self.interval.high

    def as_dict(self) -> dict[str, float | None]:
        """{mean, sd, low, high} (None where undefined), the shape results files store."""
        return {"mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high}


def _finite(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def seed_summary(values: Iterable[object], level: float = 0.95) -> SeedSummary:
    """Summary over seeds: no sd or interval below 2 finite values, none at all for 0."""
    items = list(values)
    clean = [float(v) for v in items if _finite(v)]  # type: ignore[arg-type]
    dropped, n = len(items) - len(clean), len(clean)
    if n == 0:
        return SeedSummary(0, None, None, None, dropped)
    if n == 1:
        return SeedSummary(1, clean[0], None, None, dropped)
    sd = float(np.std(clean, ddof=1))
    return SeedSummary(n, float(np.mean(clean)), sd, mean_interval(clean, level), dropped)


@dataclass(frozen=True)
class Pairing:
    """Two {seed: value} mappings paired on their common seeds (sorted); the seeds only one
    side has are kept in ``candidate_only`` / ``reference_only``, never dropped silently."""

    seeds: tuple[int, ...]
    candidate: tuple[float, ...]
    reference: tuple[float, ...]
    candidate_only: tuple[int, ...]
    reference_only: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def dropped(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.candidate_only) | set(self.reference_only)))

    @property
    def differences(self) -> tuple[float, ...]:
        """candidate - reference, per common seed."""
        return tuple(c - r for c, r in zip(self.candidate, self.reference, strict=True))

    @property
    def relative(self) -> tuple[float, ...]:
        """candidate / reference - 1, per common seed."""
        return tuple(c / r - 1.0 for c, r in zip(self.candidate, self.reference, strict=True))


def common_seeds(
    candidate: Mapping[int, object], reference: Mapping[int, object]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(common seeds, candidate-only seeds, reference-only seeds), each sorted."""
    both = sorted(set(candidate) & set(reference))
    return (
        tuple(both),
        tuple(sorted(set(candidate) - set(reference))),
        tuple(sorted(set(reference) - set(candidate))),
    )


def pair_by_seed(candidate: Mapping[int, float], reference: Mapping[int, float]) -> Pairing:
    """Pair two {seed: value} mappings on the seeds both have."""
    seeds, candidate_only, reference_only = common_seeds(candidate, reference)
    return Pairing(
        seeds,
        tuple(float(candidate[s]) for s in seeds),
        tuple(float(reference[s]) for s in seeds),
        candidate_only,
        reference_only,
    )


@dataclass(frozen=True)
class PairedDelta:
    """The per-seed deltas of a pairing: their mean, sd and t interval (None below 2 pairs;
    the mean alone with 1 pair)."""

    pairing: Pairing
    deltas: tuple[float, ...]
    mean: float | None
    sd: float | None
    interval: Interval | None


def paired_delta_interval(
    candidate: Mapping[int, float],
    reference: Mapping[int, float],
    level: float = 0.95,
    sides: Sides = "two-sided",
    *,
    relative: bool = False,
) -> PairedDelta:
    """Student's t interval of the mean paired delta over the common seeds only: candidate -
    reference, or with ``relative`` candidate / reference - 1 (a wall-clock delta)."""
    pairing = pair_by_seed(candidate, reference)
    deltas = pairing.relative if relative else pairing.differences
    if len(deltas) < 2:
        mean = deltas[0] if deltas else None
        return PairedDelta(pairing, deltas, mean, None, None)
    interval = mean_interval(deltas, level, sides)
    sd = float(np.std(deltas, ddof=1))
    return PairedDelta(pairing, deltas, interval.estimate, sd, interval)


def accuracy_interval(
    accuracies: Iterable[float],
    level: float = 0.95,
    sides: Sides = "two-sided",
    *,
    scale: float = 100.0,
) -> Interval:
    """Interval of the mean accuracy over seeds that stays inside [0, ``scale``].

    Method ("logit student-t"): the t interval of the mean proportion p̄ = mean(acc) / scale,
    built on the logit scale and back-transformed (the delta method, as for a binomial or a
    Kaplan-Meier proportion): logit(p̄) -+ t_{n-1} * se(p̄) / (p̄ (1 - p̄)), se(p̄) = sd / sqrt(n).
    It estimates the same mean as the plain t interval (the estimate is the arithmetic
    mean, always inside the interval), agrees with it to second order for mid-range
    accuracies, and bends towards the bound near 0 or 100 instead of crossing it. (A t
    interval of the per-seed logits would estimate another quantity, the back-transformed
    mean logit, and loses coverage of the mean accuracy as n grows.) All seeds equal, or
    p̄ at 0 or 1: a point interval. The one-sided bounds are closed at 0 / ``scale``.
    """
    if scale <= 0:
        raise ValueError(f"scale={scale}: must be positive")
    x = _sample(accuracies)
    if np.any(x < 0) or np.any(x > scale):
        raise ValueError(f"accuracies must lie in [0, {scale:g}]")
    check_level(level, sides)
    p = x / scale
    n, mean, sd = len(p), float(np.mean(p)), float(np.std(p, ddof=1))
    if np.ptp(p) == 0.0 or mean <= 0.0 or mean >= 1.0:
        low, high = mean, mean
    else:
        se_logit = sd / math.sqrt(n) / (mean * (1.0 - mean))
        z_low, z_high = t_bounds(float(special.logit(mean)), se_logit, n - 1, level, sides)
        low, high = float(special.expit(z_low)), float(special.expit(z_high))
    low, high = min(low, mean), max(high, mean)  # rounding guard: the estimate stays inside
    return Interval(
        scale * mean, scale * low, scale * high, level, sides, n, n - 1, "logit student-t"
    )
