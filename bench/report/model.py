"""The report's structure (sections of tables, plots and notes) and seed statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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


@dataclass
class Column:
    label: str
    align: str = "right"  # left | right


@dataclass
class Row:
    cells: list[str]
    css: str = ""  # baseline | failed | matched | control ...


@dataclass
class Table:
    """A rendered table: pre-formatted cells (the same strings in markdown and HTML) and the
    raw values behind them (``data``, written as CSV)."""

    key: str
    title: str
    columns: list[Column]
    rows: list[Row]
    css: str = ""
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)

    def drop_empty_columns(self, keep: int = 1) -> Table:
        """Remove columns (after the first ``keep``) whose every cell is missing."""
        wanted = [
            i
            for i in range(len(self.columns))
            if i < keep or any(row.cells[i] not in ("", DASH) for row in self.rows)
        ]
        self.columns = [self.columns[i] for i in wanted]
        for row in self.rows:
            row.cells = [row.cells[i] for i in wanted]
        return self


@dataclass
class Plot:
    """One figure: PNG bytes and the table behind it (written as CSV beside the PNG)."""

    key: str
    title: str
    caption: str
    png: bytes
    data: list[dict[str, Any]]

    @property
    def png_name(self) -> str:
        return f"{self.key}.png"

    @property
    def csv_name(self) -> str:
        return f"{self.key}.csv"


@dataclass
class Section:
    key: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "plot title: reason"
    items: list[dict[str, str]] = field(default_factory=list)  # labelled list (choices, env)
