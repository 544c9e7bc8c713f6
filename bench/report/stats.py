"""Statistics over seeds: mean, sample std and the 95% Student-t interval, and their text."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report.format import DASH

# two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30; above 30 the normal 1.96
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass(frozen=True)
class SeedStats:
    """Mean, sample std (ddof=1) and 95% t-interval of the values of one row over seeds."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, values: list[Any]) -> SeedStats:
        clean = [float(v) for v in values if _finite(v)]
        n = len(clean)
        if n == 0:
            return cls(0, None, None, None, None)
        mean = sum(clean) / n
        if n == 1:
            return cls(1, mean, None, None, None)
        std = math.sqrt(sum((v - mean) ** 2 for v in clean) / (n - 1))
        t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
        half = t * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def mean_std(stats: SeedStats, fmt: Callable[[float], str], scale: float = 1.0) -> str:
    """`mean ± std` over seeds (just the mean for one seed; a dash for none)."""
    if stats.mean is None:
        return DASH
    if stats.std is None:
        return fmt(scale * stats.mean)
    return f"{fmt(scale * stats.mean)} ± {fmt(scale * stats.std)}"


def ci_text(stats: SeedStats, fmt: Callable[[float], str], scale: float = 1.0) -> str:
    """`[low, high]` 95% interval, or "single seed"."""
    if stats.mean is None:
        return DASH
    if stats.ci_low is None:
        return "single seed"
    return f"[{fmt(scale * stats.ci_low)}, {fmt(scale * stats.ci_high)}]"
