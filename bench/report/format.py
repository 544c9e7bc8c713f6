"""Number formatting shared by the tables and the templates (registered as jinja2 filters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bench.report.tables import DASH, md_cell
from bench.stats import Interval, SeedSummary


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


SI_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si_scale(value: float) -> tuple[float, str]:
    """(scale, prefix) of the largest SI prefix at or under |value|; (1, "") below 1000."""
    return next(((s, p) for s, p in SI_PREFIXES if abs(value) >= s), (1.0, ""))


def si(value: Any, unit: str = "", digits: int = 2) -> str:
    """1.23e12 -> '1.23 T' (+unit); below 1000 a whole number as is, else ``digits``
    significant digits; missing -> '—'. The one SI formatter (CLI tables, reports, plots)."""
    if missing(value):
        return DASH
    value = float(value)
    scale, prefix = si_scale(value)
    if prefix:
        return f"{value / scale:.{digits}f} {prefix}{unit}".rstrip()
    text = f"{value:.0f}" if value.is_integer() else f"{value:.{digits}g}"
    return f"{text} {unit}".rstrip()


def num(value: Any, digits: int = 2) -> str:
    if missing(value):
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def signed(value: Any, digits: int = 1, unit: str = "%") -> str:
    """+1.2% / −3.4% (a real minus sign); missing -> '—'."""
    if missing(value):
        return DASH
    value = float(value)
    text = f"{abs(value):.{digits}f}{unit}"
    if round(value, digits) == 0:
        return f"{0:.{digits}f}{unit}"
    return f"+{text}" if value > 0 else f"−{text}"


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: 0.225 -> '22.5%'."""
    if missing(value):
        return DASH
    return f"{100.0 * float(value):.{digits}f}%"


def seconds(value: Any) -> str:
    if missing(value):
        return DASH
    value = float(value)
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{1e3 * value:.0f} ms"


def delta_pct(value: float | None, reference: float | None) -> float | None:
    """100 (value - reference) / reference; None when either is missing or reference is 0."""
    if value is None or reference in (None, 0):
        return None
    return 100.0 * (value - reference) / reference


def points(value: float) -> str:
    """Accuracy points with one decimal."""
    return f"{value:.1f}"


def mean_std(summary: SeedSummary, fmt: Callable[[float], str], scale: float = 1.0) -> str:
    """`mean ± sd` over seeds (just the mean for one seed; a dash for none)."""
    if summary.mean is None:
        return DASH
    if summary.sd is None:
        return fmt(scale * summary.mean)
    return f"{fmt(scale * summary.mean)} ± {fmt(scale * summary.sd)}"


def interval_text(
    interval: Interval | None, n: int, fmt: Callable[[float], str], scale: float = 1.0
) -> str:
    """`[low, high]` of an interval over seeds, "single seed" for one, a dash for none."""
    if n == 0:
        return DASH
    if interval is None:
        return "single seed"
    return f"[{fmt(scale * interval.low)}, {fmt(scale * interval.high)}]"


def signed_delta(delta: float | None, relative: bool) -> str:
    """A paired delta as shown in a table: a fraction as a signed % (−13.3%), points signed
    with one decimal (−2.1)."""
    if delta is None:
        return DASH
    return signed(100 * delta) if relative else signed(delta, 1, "")


def level_label(level: float) -> str:
    """An interval's level as a column shows it: 0.95 -> '[95%]'."""
    return f"[{100 * level:g}%]"


FILTERS = {
    "si": si,
    "num": num,
    "signed": signed,
    "pct": pct,
    "seconds": seconds,
    "md_cell": md_cell,
}
