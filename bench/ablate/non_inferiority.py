"""Paired one-sided comparisons with a margin, and how many seeds they need.

Pure functions over per-seed accuracies (fractions or points, the caller's unit). A
comparison is paired by seed: ``d_i = candidate_i - reference_i``. The question is "no loss":
is the mean difference above ``-margin``?

- interval: a one-sided lower and upper bound of the mean difference at ``confidence``:
  Student's t below ``BOOTSTRAP_FROM`` pairs, a paired percentile bootstrap of the mean
  from there on;
- verdict: ``no loss within the margin`` when the lower bound is above ``-margin``, ``loss``
  when the upper bound is below ``-margin``, else ``undecided``;
- smallest detectable difference: the true loss beyond which ``n`` pairs of spread ``sd``
  say "loss" with probability ``power``; ``seeds_for_power``: the pairs a true "no loss"
  (difference 0) needs to be declared so with probability ``power``.

Student's t quantiles are computed here (exact series for integer degrees of freedom,
Abramowitz & Stegun 26.7.3-4, inverted by bisection): no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_FROM = 10
NO_LOSS, LOSS, UNDECIDED = "no loss within the margin", "loss", "undecided"


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` (a positive integer) degrees of freedom."""
    if df < 1 or int(df) != df:
        raise ValueError(f"df={df}: must be a positive integer")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + (2*4)/(3*5) cos^4 + ...))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        inside = (2 / math.pi) * (theta + s * math.cos(theta) * total)
    else:  # even: sin (1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ...)
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        inside = s * total
    return 0.5 + 0.5 * inside if t >= 0 else 0.5 - 0.5 * inside


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: allowed values lie strictly between 0 and 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class PairedComparison:
    """A candidate vs a reference, paired by seed: the mean difference, its one-sided
    bounds at ``confidence`` (lower, upper), the method, the verdict against ``-margin`` and
    the smallest true loss this many pairs would detect (``power`` 0.8)."""

    n: int
    mean: float
    sd: float
    lower: float
    upper: float
    method: str
    margin: float
    verdict: str
    detectable: float


def paired_differences(candidate: Sequence[float], reference: Sequence[float]) -> np.ndarray:
    if len(candidate) != len(reference):
        raise ValueError(
            f"paired comparison needs one reference per candidate seed "
            f"({len(candidate)} vs {len(reference)})"
        )
    if len(candidate) < 2:
        raise ValueError(f"paired comparison needs at least 2 pairs, got {len(candidate)}")
    return np.asarray(candidate, dtype=float) - np.asarray(reference, dtype=float)


def _bounds(
    d: np.ndarray, confidence: float, seed: int, resamples: int
) -> tuple[float, float, str]:
    n, mean = len(d), float(d.mean())
    if n < BOOTSTRAP_FROM:
        half = t_quantile(confidence, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
        return mean - half, mean + half, "student-t"
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    return (
        float(np.quantile(means, 1.0 - confidence)),
        float(np.quantile(means, confidence)),
        "paired bootstrap",
    )


def compare_no_loss(
    candidate: Sequence[float],
    reference: Sequence[float],
    margin: float,
    *,
    confidence: float = 0.95,
    power: float = 0.8,
    seed: int = 0,
    resamples: int = 10_000,
) -> PairedComparison:
    """Is ``candidate`` no worse than ``reference`` by more than ``margin``? (paired)"""
    if margin < 0:
        raise ValueError(f"margin={margin}: must be >= 0")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence={confidence}: allowed values lie in (0.5, 1)")
    d = paired_differences(candidate, reference)
    lower, upper, method = _bounds(d, confidence, seed, resamples)
    verdict = NO_LOSS if lower > -margin else LOSS if upper < -margin else UNDECIDED
    sd = float(d.std(ddof=1))
    return PairedComparison(
        n=len(d),
        mean=float(d.mean()),
        sd=sd,
        lower=lower,
        upper=upper,
        method=method,
        margin=margin,
        verdict=verdict,
        detectable=margin + smallest_detectable_difference(sd, len(d), confidence, power),
    )


def smallest_detectable_difference(
    sd: float, n: int, confidence: float = 0.95, power: float = 0.8
) -> float:
    """How far the true mean difference must lie beyond a bound for ``n`` pairs of spread
    ``sd`` to put the one-sided interval past it with probability ``power``:
    (t_confidence + t_power) * sd / sqrt(n), t with n - 1 degrees of freedom."""
    if n < 2:
        raise ValueError(f"n={n}: needs at least 2 pairs")
    if sd < 0:
        raise ValueError(f"sd={sd}: must be >= 0")
    return (t_quantile(confidence, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def seeds_for_power(
    sd: float,
    margin: float,
    *,
    true_difference: float = 0.0,
    confidence: float = 0.95,
    power: float = 0.8,
    most: int = 1000,
) -> int:
    """Fewest pairs for which a true mean difference of ``true_difference`` (0: no loss at
    all) is declared "no loss within the margin" with probability ``power``, given the
    pilot's spread ``sd`` of paired differences."""
    room = margin + true_difference
    if room <= 0:
        raise ValueError(
            f"margin + true_difference = {room}: a true loss at or beyond the margin "
            "can never be declared no loss"
        )
    for n in range(2, most + 1):
        if smallest_detectable_difference(sd, n, confidence, power) <= room:
            return n
    raise ValueError(f"more than {most} pairs needed (sd={sd}, margin={margin})")
