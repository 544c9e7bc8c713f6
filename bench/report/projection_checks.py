"""The whole-run projection's own checks, from their stored results (``reports/whole-run``):

- the **coverage check** of its interval (``coverage.py measure``: projections of one
  setting in several windows of time; ``bench.stats.coverage_check`` scores each interval
  against the mean of the other projections' estimates), for each recipe's seconds and
  for the saving;
- the **single-projection validation** (``validate.py --projections 1``: one projection,
  then real ``pretrain`` runs in A-B-B-A order), scored by the same rule the grid reports
  apply (``bench.report.projection_rule``): per recipe the median of run / projected − 1
  within ±5% and every run within ±10%; the measured saving (the runs' means, with
  ``bench.stats.unpaired_saving``'s Welch interval) inside the projected interval;
- the **saving's bias** over several validations (``saving_bias``: t over their measured −
  projected differences and the sign test).

The validations' runs examined step by step are ``bench.report.projection_runs``.

``reports/whole-run/coverage.py score`` prints ``coverage_table``; the quoted blocks of
``reports/whole-run.md`` are these tables (``bench.report.quoted_wallclock``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bench.report.format import signed
from bench.report.projection_rule import (
    RowValidation,
    Saving,
    SavingCheck,
    check_saving,
    validate_row,
)
from bench.schema import PointRow, WholeRunRow
from bench.stats import (
    Coverage,
    Interval,
    SignTest,
    coverage_check,
    difference_in_quadrature,
    leave_one_window_out,
    mean_interval,
    sign_test,
    unpaired_saving,
)

RECIPES = {"mavil": "MAViL's recipe", "full": "full recipe"}
Recipe = Literal["mavil", "full"]


class Stored(BaseModel):
    """A script's stored record, read for the fields the checks use (others ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class StoredMachine(Stored):
    """The machine a stored projection ran on (its environment block's names)."""

    cpu_model: str | None = None
    gpu_name: str | None = None


class StoredProjection(Stored):
    """One projection as ``coverage.py`` and ``validate.py`` store it."""

    window: str | None = None  # coverage.py: the window of time it was made in
    rows: list[WholeRunRow]
    points: list[PointRow] = []
    environment: StoredMachine = StoredMachine()

    @property
    def machine(self) -> str | None:
        """The GPU it ran on, else its CPU, short: "Intel(R) Xeon(R) Processor" -> "Intel
        Xeon"."""
        name = self.environment.gpu_name or self.environment.cpu_model
        return short_cpu_name(name) if name else None


class CoverageRecord(Stored):
    """``coverage.py``'s file: projections appended window after window."""

    projections: list[StoredProjection]


class ValidationRun(Stored):
    """One run: its recipe, wall-clock and, from the third round on, the reference matmul
    rate measured just before and just after it (GFLOP/s)."""

    recipe: Recipe
    wall_clock_seconds: float
    matmul_gflops_before: float | None = None
    matmul_gflops_after: float | None = None

    @property
    def reference_gflops(self) -> float | None:
        """The mean of the two reference rates beside the run (None: not measured)."""
        if self.matmul_gflops_before is None or self.matmul_gflops_after is None:
            return None
        return (self.matmul_gflops_before + self.matmul_gflops_after) / 2.0


class ValidationRecord(Stored):
    """``validate.py``'s record: its projections (the first made before any run) and runs."""

    date: str | None = None  # when validate.py started (its first projection)
    projections: list[StoredProjection]
    runs: list[ValidationRun]


def short_cpu_name(model: str) -> str:
    """A CPU model without trademarks, "Processor"/"CPU" and its clock: "Intel(R) Xeon(R)
    Processor @ 2.10GHz" -> "Intel Xeon"; "AMD EPYC" stays."""
    name = re.sub(r"\((R|TM)\)|\bProcessor\b|\bCPU\b|@.*$", " ", model)
    return " ".join(name.split()) or model


def by_recipe(rows: list[WholeRunRow]) -> dict[str, WholeRunRow]:
    """{"mavil": the baseline's row, "full": the other} of one stored projection."""
    return {
        "mavil": next(r for r in rows if r.baseline),
        "full": next(r for r in rows if not r.baseline),
    }


def _seconds(row: WholeRunRow) -> tuple[float, float, float]:
    return row.projected_seconds, row.ci_low, row.ci_high


def _saving(row: WholeRunRow) -> tuple[float, float, float]:
    values = (row.time_saving, row.time_saving_ci_low, row.time_saving_ci_high)
    if any(v is None for v in values):
        raise ValueError(f"recipe {row.recipe}: a projection without its saving interval")
    return tuple(100.0 * v for v in values)  # type: ignore[return-value]


QUANTITIES: dict[str, Callable[[dict[str, WholeRunRow]], tuple[float, float, float]]] = {
    "MAViL's recipe, seconds": lambda r: _seconds(r["mavil"]),
    "full recipe, seconds": lambda r: _seconds(r["full"]),
    "saving, %": lambda r: _saving(r["full"]),
}


@dataclass(frozen=True)
class CoverageRow:
    """One quantity's coverage check: its estimates' mean and the check."""

    quantity: str
    mean: float
    check: Coverage

    @property
    def verdict(self) -> str:
        if not self.check.enough:
            return "not enough projections"
        return "**passes**" if self.check.passed else "**fails**"


def coverage_rows(stored: CoverageRecord) -> list[CoverageRow]:
    """The check of each quantity over the stored projections (``coverage.py``'s file)."""
    windows = [p.window for p in stored.projections]
    rows = [by_recipe(p.rows) for p in stored.projections]
    out = []
    for name, get in QUANTITIES.items():
        values = [get(r) for r in rows]
        check = coverage_check(
            [v[0] for v in values], [v[1] for v in values], [v[2] for v in values], windows
        )
        out.append(CoverageRow(name, statistics.fmean(v[0] for v in values), check))
    return out


def coverage_windows(stored: CoverageRecord) -> list[tuple[str, int]]:
    """(window start, projections in it) in the stored order."""
    counts: dict[str, int] = {}
    for projection in stored.projections:
        window = projection.window or "unknown"
        counts[window] = counts.get(window, 0) + 1
    return list(counts.items())


def _systematic(row: WholeRunRow, quantity: str) -> float:
    """The row's systematic (interpolation) half-width in the quantity's units."""
    if quantity == "saving, %":
        return 100.0 * (row.time_saving_systematic or 0.0)
    return row.systematic_half_seconds or 0.0


def history_rows(stored: CoverageRecord) -> list[CoverageRow]:
    """The coverage of intervals from the machine's history (``bench.stats.
    leave_one_window_out``): each projection's seconds (relative spread) or saving (in
    points) against the spread of the projections of the other windows of time, in
    quadrature with its own interpolation bound. Exploratory: calibrated and scored on the
    same projections, one window left out at a time."""
    windows = [p.window for p in stored.projections]
    rows = [by_recipe(p.rows) for p in stored.projections]
    recipe_of = {"MAViL's recipe, seconds": "mavil", "full recipe, seconds": "full",
                 "saving, %": "full"}  # fmt: skip
    out = []
    for name, get in QUANTITIES.items():
        estimates = [get(r)[0] for r in rows]
        systematic = [_systematic(r[recipe_of[name]], name) for r in rows]
        check = leave_one_window_out(estimates, systematic, windows, relative=name != "saving, %")
        out.append(CoverageRow(name, statistics.fmean(estimates), check))
    return out


def coverage_table(stored: CoverageRecord, history: bool = False) -> str:
    """The check as a markdown table (one line per quantity); ``history``: of the
    intervals from the other windows' spread (``history_rows``) instead of the stored ones."""
    lines = [
        "| quantity | mean | sd | intervals holding the others' mean | median half-width "
        "| half-width / sd | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in history_rows(stored) if history else coverage_rows(stored):
        c = row.check
        lines.append(
            f"| {row.quantity} | {row.mean:.2f} | {c.sd:.2f} | {c.hits} of {c.n} | "
            f"{c.median_half_width:.2f} | {c.width_ratio:.2f} | {row.verdict} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class SingleProjectionValidation:
    """One validation: each recipe's runs against the one projection made before them,
    and the measured saving against the projected saving's interval."""

    preset: str
    samples: int
    started: str | None  # "2026-12-06T18:36:01+0000"
    rows: dict[str, RowValidation]
    projected: dict[str, WholeRunRow]
    saving: SavingCheck
    machine: str | None = None  # the CPU, short ("AMD EPYC")

    @property
    def met(self) -> bool:
        return all(r.passed for r in self.rows.values()) and bool(self.saving.inside)

    @property
    def saving_difference(self) -> Saving:
        """Measured − projected saving, its 95% half-width the two intervals' (each the
        mean of its two sides) in quadrature: a secondary analysis beside the rule, which
        sets the measured point against the projected interval alone."""
        measured, projected = self.saving.measured, self.saving.projected
        assert measured is not None and projected is not None
        sides = []
        for saving in (measured, projected):
            assert saving.low is not None and saving.high is not None
            sides.append((saving.estimate, saving.low, saving.high))
        return Saving(*difference_in_quadrature(*sides))


def single_projection_validation(stored: ValidationRecord) -> SingleProjectionValidation:
    """The rule on ``validate.py``'s stored record: its first projection (made before any
    run) against every run."""
    projected = by_recipe(stored.projections[0].rows)
    seconds = {
        recipe: [r.wall_clock_seconds for r in stored.runs if r.recipe == recipe]
        for recipe in RECIPES
    }
    rows = {
        recipe: validate_row(recipe, dict(enumerate(seconds[recipe])), row.projected_seconds)
        for recipe, row in projected.items()
    }
    interval = unpaired_saving(seconds["mavil"], seconds["full"])
    mean = {recipe: statistics.fmean(values) for recipe, values in seconds.items()}
    measured = Saving(1.0 - mean["full"] / mean["mavil"], interval.low, interval.high)
    estimate, low, high = (v / 100.0 for v in _saving(projected["full"]))
    saving = check_saving("full vs MAViL's recipe", measured, Saving(estimate, low, high))
    first = projected["mavil"]
    return SingleProjectionValidation(
        first.preset, first.samples, stored.date, rows, projected, saving,
        stored.projections[0].machine,
    )  # fmt: skip


def validation_table(validations: list[SingleProjectionValidation]) -> str:
    """Each validation's recipes as markdown rows, then its saving check."""
    lines = [
        "| preset, samples, start, machine | recipe | projected s (95%) | runs "
        "| median error | errors (min to max) | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for v in validations:
        label = f"{v.preset}, {v.samples:,}"
        if v.started:
            label += f", {v.started[:10]} {v.started[11:16]} UTC"
        if v.machine:
            label += f", {v.machine}"
        for recipe, checked in v.rows.items():
            row = v.projected[recipe]
            lines.append(
                f"| {label} | {RECIPES[recipe]} | {row.projected_seconds:.1f} "
                f"[{row.ci_low:.1f}, {row.ci_high:.1f}] | {checked.runs} | "
                f"{signed(100 * (checked.median_error or 0.0))} | "
                f"{signed(100 * (checked.min_error or 0.0))} to "
                f"{signed(100 * (checked.max_error or 0.0))} | {checked.verdict} |"
            )
        inside = v.saving.inside
        difference = v.saving_difference
        assert difference.low is not None and difference.high is not None
        lines.append(
            f"| {label} | saving | {_saving_text(v.saving.projected)} | "
            f"{sum(c.runs for c in v.rows.values())} | measured "
            f"{_saving_text(v.saving.measured)} | measured − projected "
            f"{_points(difference.estimate)} [{_points(difference.low)}, "
            f"{_points(difference.high)}] points | "
            f"{'inside' if inside else 'outside'} the projected interval |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class SavingBias:
    """Measured − projected saving over several validations, each with its own projection
    and runs (independent of each other): their mean with Student's t interval and the
    sign test (``bench.stats``). Fractions."""

    differences: tuple[float, ...]
    mean: Interval
    signs: SignTest

    def describe(self) -> str:
        """ "in 7 of 7 validations the runs saved less than projected (by 1.8 to 7.1 points):
        measured − projected −4.2 [−6.0, −2.3] points (95%, Student's t over the 7;
        sign test p = 0.016)"."""
        s, m, n = self.signs, self.mean, len(self.differences)
        less = [-d for d in self.differences if d < 0]
        span = f" (by {100 * min(less):.1f} to {100 * max(less):.1f} points)" if less else ""
        return (
            f"in {s.below} of {n} validations the runs saved less than projected{span}: "
            f"measured − projected {_points(m.estimate)} [{_points(m.low)}, "
            f"{_points(m.high)}] points ({m.level:.0%}, Student's t over the {n}; "
            f"sign test p = {s.p_value:.3f})"
        )


def saving_bias(validations: list[SingleProjectionValidation]) -> SavingBias:
    """The bias of the projected saving over ``validations`` (two or more)."""
    if len(validations) < 2:
        raise ValueError(f"{len(validations)} validation(s): the bias needs 2 or more")
    differences = tuple(v.saving_difference.estimate for v in validations)
    return SavingBias(differences, mean_interval(differences), sign_test(differences))


def _points(fraction: float) -> str:
    return signed(100 * fraction, unit="")


def _saving_text(saving: Saving | None) -> str:
    if saving is None:
        return "–"
    if saving.low is None or saving.high is None:
        return f"{100 * saving.estimate:.1f}%"
    low, high = (f"{100 * v:.1f}".replace("-", "−") for v in (saving.low, saving.high))
    return f"{100 * saving.estimate:.1f}% [{low}, {high}]".replace("-", "−")
