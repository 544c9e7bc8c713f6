"""The whole-run projection's validation rule, pre-registered in reports/table2/README.md
("Wall-clock and its validation rule") before the grid ran, as arithmetic:

- a confirmatory row (the baseline, every row a comparison names) is *validated* when the
  median over its runs of ``error = run wall-clock / projected seconds − 1`` lies within
  ±``MEDIAN_LIMIT`` (5%) and every run's error within ±``RUN_LIMIT`` (10%), bounds
  included; otherwise it *failed*, and its projection is not a prediction;
- a comparison's measured saving (−the paired relative wall-clock delta, with its
  interval) must lie inside the projected saving's interval, bounds included.

``validate_row`` and ``check_saving`` return frozen results the report renders.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from bench.report.format import signed

MEDIAN_LIMIT = 0.05
RUN_LIMIT = 0.10
MIN_RUNS_TO_VALIDATE = 2  # one run can fail the rule, not validate a projection
_SLACK = 1e-9  # relative: 110 s / 100 s − 1 is 0.10000000000000009, at the bound


def _within(error: float, limit: float) -> bool:
    return abs(error) <= limit * (1.0 + _SLACK)


def _pct(value: float) -> str:
    """A fraction as a signed percentage: 0.061 -> "+6.1%", −0.02 -> "−2.0%", 0 -> "0.0%"."""
    return signed(100 * value)


@dataclass(frozen=True)
class RowValidation:
    """A row's runs against its projected seconds: the errors by seed, their median,
    minimum and maximum, the runs within ±10%, and the verdict (None: nothing to judge)."""

    row: str
    projected_seconds: float | None
    seeds: tuple[int, ...]
    errors: tuple[float, ...]

    @property
    def runs(self) -> int:
        return len(self.errors)

    @property
    def median_error(self) -> float | None:
        return statistics.median(self.errors) if self.errors else None

    @property
    def min_error(self) -> float | None:
        return min(self.errors) if self.errors else None

    @property
    def max_error(self) -> float | None:
        return max(self.errors) if self.errors else None

    @property
    def within_run_limit(self) -> int:
        return sum(_within(e, RUN_LIMIT) for e in self.errors)

    @property
    def median_ok(self) -> bool | None:
        median = self.median_error
        return None if median is None else _within(median, MEDIAN_LIMIT)

    @property
    def runs_ok(self) -> bool | None:
        return None if not self.errors else self.within_run_limit == self.runs

    @property
    def passed(self) -> bool | None:
        """True: validated; False: failed; None: not projected, no run to judge by, or
        one run within the limits (too few to validate)."""
        if self.median_ok is None:
            return None
        if self.median_ok and self.runs_ok and self.runs < MIN_RUNS_TO_VALIDATE:
            return None
        return bool(self.median_ok and self.runs_ok)

    @property
    def verdict(self) -> str:
        if self.projected_seconds is None:
            return "not projected"
        if not self.errors:
            return "no comparable run"
        if self.passed is None:
            return (
                f"{self.runs} run within the limits: too few to validate "
                f"(at least {MIN_RUNS_TO_VALIDATE})"
            )
        if self.passed:
            return "validated"
        parts = []
        if not self.median_ok:
            parts.append(f"median error {_pct(self.median_error or 0.0)} outside ±5%")
        if not self.runs_ok:
            outside = self.runs - self.within_run_limit
            parts.append(f"{outside} of {self.runs} runs outside ±10%")
        return "failed: " + "; ".join(parts)


def validate_row(
    row: str, run_seconds: Mapping[int, float], projected_seconds: float | None
) -> RowValidation:
    """The rule on one row: ``run_seconds`` by seed (runs whose wall-clock is comparable)
    against ``projected_seconds`` (None: the row has no projection)."""
    if projected_seconds is not None and projected_seconds <= 0:
        raise ValueError(f"projected_seconds={projected_seconds}: seconds must be positive")
    seeds = tuple(sorted(run_seconds))
    errors = (
        ()
        if projected_seconds is None
        else tuple(run_seconds[s] / projected_seconds - 1.0 for s in seeds)
    )
    return RowValidation(row, projected_seconds, seeds if errors else (), errors)


@dataclass(frozen=True)
class Saving:
    """A saving (fraction of the reference's seconds; > 0 is less) with its interval."""

    estimate: float
    low: float | None = None
    high: float | None = None

    def text(self) -> str:
        if self.low is None or self.high is None:
            return _pct(self.estimate)
        return f"{_pct(self.estimate)} [{_pct(self.low)}, {_pct(self.high)}]"


def measured_saving(
    delta_mean: float | None, delta_low: float | None, delta_high: float | None
) -> Saving | None:
    """The saving of a paired relative wall-clock delta (candidate / reference − 1):
    −delta, its interval's bounds swapped."""
    if delta_mean is None:
        return None
    if delta_low is None or delta_high is None:
        return Saving(-delta_mean)
    return Saving(-delta_mean, -delta_high, -delta_low)


@dataclass(frozen=True)
class SavingCheck:
    """A comparison's measured saving against its projected saving's interval."""

    comparison: str
    measured: Saving | None
    projected: Saving | None

    @property
    def inside(self) -> bool | None:
        """Whether the measured saving lies in the projected interval (None: untestable)."""
        projected = self.projected
        if self.measured is None or projected is None:
            return None
        if projected.low is None or projected.high is None:
            return None
        low, high = projected.low, projected.high
        slack = _SLACK * max(abs(low), abs(high), 1e-12)
        return low - slack <= self.measured.estimate <= high + slack


def check_saving(comparison: str, measured: Saving | None, projected: Saving | None) -> SavingCheck:
    """The rule on one comparison (see ``SavingCheck.inside``)."""
    return SavingCheck(comparison, measured, projected)
