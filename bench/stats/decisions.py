"""Decisions: the paired non-inferiority verdict with a margin, and Holm's correction.

Non-inferiority ("no loss?"), paired by seed, d_i = candidate_i - reference_i in the
caller's unit (accuracy points): one-sided Student's t bounds of the mean difference at
``level`` (default 0.95), lower and upper, and

- ``no loss within the margin``: lower bound > -margin;
- ``loss``: upper bound < -margin;
- ``undecided``: otherwise; ``not enough pairs``: fewer than 2 common seeds.

Its p-value tests H0: mean difference <= -margin (one-sided t); ``detectable_loss`` is
margin + the shift that n pairs of this spread clear with probability ``power`` (0.8).
Holm's step-down correction controls the family-wise error of secondary endpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.stats.intervals import Interval, Pairing, mean_interval, pair_by_seed
from bench.stats.power import detectable_difference

NO_LOSS, LOSS, UNDECIDED = "no loss within the margin", "loss", "undecided"
NOT_ENOUGH_PAIRS = "not enough pairs"


@dataclass(frozen=True)
class NonInferiority:
    """A paired "no loss within ``margin``?" decision; bounds are one-sided at ``level``."""

    pairing: Pairing
    margin: float
    level: float
    power: float
    mean: float | None
    sd: float | None
    lower: Interval | None
    upper: Interval | None
    p_value: float | None
    verdict: str
    detectable_loss: float | None

    @property
    def n(self) -> int:
        return self.pairing.n

    @property
    def lower_bound(self) -> float | None:
        return None if self.lower is None else self.lower.low

    @property
    def upper_bound(self) -> float | None:
        return None if self.upper is None else self.upper.high


def non_inferiority_p_value(mean: float, sd: float, n: int, margin: float) -> float:
    """One-sided p-value of H0: true mean difference <= -margin (Student's t, n - 1 df)."""
    if sd == 0:
        return 0.0 if mean > -margin else 1.0
    return float(stats.t.sf((mean + margin) / (sd / math.sqrt(n)), n - 1))


def non_inferiority(
    candidate: Mapping[int, float],
    reference: Mapping[int, float],
    margin: float,
    *,
    level: float = 0.95,
    power: float = 0.8,
) -> NonInferiority:
    """Is ``candidate`` no worse than ``reference`` by more than ``margin``? Paired on the
    common seeds of two {seed: value} mappings (the others stay in ``pairing``)."""
    if margin < 0:
        raise ValueError(f"margin={margin}: must be >= 0")
    if not 0.5 < level < 1.0:
        raise ValueError(f"level={level}: allowed values lie in (0.5, 1)")
    pairing = pair_by_seed(candidate, reference)
    d = pairing.differences
    if len(d) < 2:
        mean = d[0] if d else None
        return NonInferiority(
            pairing, margin, level, power, mean, None, None, None, None, NOT_ENOUGH_PAIRS, None
        )
    lower = mean_interval(d, level, "one-sided lower")
    upper = mean_interval(d, level, "one-sided upper")
    n, mean, sd = len(d), lower.estimate, float(np.std(d, ddof=1))
    verdict = NO_LOSS if lower.low > -margin else LOSS if upper.high < -margin else UNDECIDED
    return NonInferiority(
        pairing=pairing,
        margin=margin,
        level=level,
        power=power,
        mean=mean,
        sd=sd,
        lower=lower,
        upper=upper,
        p_value=non_inferiority_p_value(mean, sd, n, margin),
        verdict=verdict,
        detectable_loss=margin + detectable_difference(sd, n, level, power),
    )


@dataclass(frozen=True)
class Holm:
    """Holm-adjusted p-values of a family (input order) and which are rejected at ``alpha``."""

    names: tuple[str, ...]
    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    rejected: tuple[bool, ...]
    alpha: float

    def as_dict(self) -> dict[str, tuple[float, bool]]:
        return {k: (a, r) for k, a, r in zip(self.names, self.adjusted, self.rejected, strict=True)}


def holm(p_values: Mapping[str, float] | Sequence[float], alpha: float = 0.05) -> Holm:
    """Holm's step-down correction: sorted p_(1) <= ... <= p_(m), adjusted
    p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); H_(i) rejected when adjusted <= alpha
    (the same as stepping down while p_(i) <= alpha / (m - i + 1))."""
    if isinstance(p_values, Mapping):
        names, values = tuple(p_values), [float(v) for v in p_values.values()]
    else:
        values = [float(v) for v in p_values]
        names = tuple(str(i) for i in range(len(values)))
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha}: allowed values lie strictly between 0 and 1")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("p-values must lie in [0, 1]")
    m = len(values)
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * np.asarray(values)[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled) if m else scaled
    return Holm(
        names,
        tuple(values),
        tuple(float(a) for a in adjusted),
        tuple(bool(a <= alpha) for a in adjusted),
        alpha,
    )
