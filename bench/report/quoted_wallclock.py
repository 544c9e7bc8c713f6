"""The quoted figures of the whole-run projection's own checks (``reports/whole-run``): the
coverage check of its interval, the single-projection validations against real runs
(``bench.report.projection_checks``) and the base-size headline measured in windows,
registered into ``bench.report.quoted.QUOTED``."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from bench.report.projection_checks import (
    RECIPES,
    CoverageRecord,
    SingleProjectionValidation,
    ValidationRecord,
    by_recipe,
    coverage_rows,
    coverage_table,
    coverage_windows,
    saving_bias,
    single_projection_validation,
    validation_table,
)
from bench.report.projection_runs import StepRecord, drift_table, segment_table
from bench.report.quotes import QuoteFunction
from bench.schema import WholeRunRow

WHOLE_RUN = Path("reports/whole-run")
COVERAGE = WHOLE_RUN / "coverage-proportional.json"
# the second round's check: intervals from the machine's history (``--history``)
HISTORY_COVERAGE = WHOLE_RUN / "coverage-proportional-history.json"
VALIDATIONS = {
    "tiny": WHOLE_RUN / "validation-tiny-single.json",
    "proportional": WHOLE_RUN / "validation-proportional-single.json",
    "proportional-repeat": WHOLE_RUN / "validation-proportional-single-repeat.json",
    "tiny-history": WHOLE_RUN / "validation-tiny-history.json",
    "proportional-history": WHOLE_RUN / "validation-proportional-history.json",
    # the third round, on another VM (an AMD EPYC), with a reference rate beside each run
    "tiny-amd": WHOLE_RUN / "validation-tiny-amd.json",
    "proportional-amd": WHOLE_RUN / "validation-proportional-amd.json",
}
WITH_REFERENCE = ("tiny-amd", "proportional-amd")  # validations with a drift reference
REPLAY = WHOLE_RUN / "replay-proportional.json"
REPLAY_AMD = WHOLE_RUN / "replay-proportional-amd.json"  # the same script on the AMD EPYC VM
HEADLINE_WINDOWS = WHOLE_RUN / "headline-base-windows.json"
DAY = 86400.0


def _coverage(root: Path, path: Path = COVERAGE) -> CoverageRecord:
    return CoverageRecord.model_validate_json((root / path).read_text())


def _validation(root: Path, preset: str) -> ValidationRecord:
    return ValidationRecord.model_validate_json((root / VALIDATIONS[preset]).read_text())


def _coverage_table(root: Path, path: Path = COVERAGE) -> str:
    return "\n" + coverage_table(_coverage(root, path)) + "\n"


def _history_table(root: Path) -> str:
    return "\n" + coverage_table(_coverage(root), history=True) + "\n"


def _coverage_windows(root: Path, path: Path = COVERAGE) -> str:
    """ "12 projections in 3 windows (from 18:14, 19:15 and 20:20 UTC, 2026-12-06)"."""
    stored = _coverage(root, path)
    windows = coverage_windows(stored)
    starts = [start[11:16] for start, _ in windows]
    listed = ", ".join(starts[:-1]) + f" and {starts[-1]}" if len(starts) > 1 else starts[0]
    days = sorted({start[:10] for start, _ in windows})
    return (
        f"{len(stored.projections)} projections in {len(windows)} "
        f"window{'s' if len(windows) != 1 else ''} (from {listed} "
        f"UTC, {', '.join(days)})"
    )


def _coverage_verdict(root: Path, path: Path = COVERAGE) -> str:
    rows = coverage_rows(_coverage(root, path))
    passed = [r.quantity for r in rows if r.check.passed]
    if not all(r.check.enough for r in rows):
        return "not enough projections to score"
    if len(passed) == len(rows):
        return "passes for every quantity"
    failed = [r for r in rows if not r.check.passed]
    reasons = []
    for r in failed:
        why = []
        if r.check.n - r.check.hits > r.check.n // 12:
            why.append(f"{r.check.hits} of {r.check.n} intervals hold")
        if r.check.width_ratio > 2.0:
            why.append(f"median half-width {r.check.width_ratio:.2f} sd")
        reasons.append(f"{r.quantity} ({'; '.join(why)})")
    return "fails for " + ", ".join(reasons)


def _validation_table(root: Path) -> str:
    return "\n" + validation_table(_validations(root)) + "\n"


def _validations(root: Path) -> list[SingleProjectionValidation]:
    """Every stored single-projection validation, in the order of ``VALIDATIONS``."""
    return [
        single_projection_validation(_validation(root, preset))
        for preset, path in VALIDATIONS.items()
        if (root / path).exists()
    ]


def _run_spread(root: Path, preset: str) -> str:
    """ "MAViL's recipe 75.7 to 85.3 s (the slowest 12.7% above the fastest), full recipe
    ..." of one validation's runs."""
    runs = _validation(root, preset).runs
    parts = []
    for recipe, label in RECIPES.items():
        seconds = [r.wall_clock_seconds for r in runs if r.recipe == recipe]
        low, high = min(seconds), max(seconds)
        parts.append(f"{label} {low:.1f} to {high:.1f} s ({100 * (high / low - 1):.1f}%)")
    return ", ".join(parts)


def _saving_bias(root: Path) -> str:
    return saving_bias(_validations(root)).describe()


def _segment_table(root: Path, preset: str) -> str:
    path = VALIDATIONS[preset]
    steps = StepRecord.model_validate_json(
        (root / path.with_name(path.stem + "-steps.json")).read_text()
    )
    return "\n" + segment_table(_validation(root, preset), steps) + "\n"


def _drift_table(root: Path, preset: str) -> str:
    return "\n" + drift_table(_validation(root, preset)) + "\n"


def _validation_verdict(root: Path, preset: str) -> str:
    v = single_projection_validation(_validation(root, preset))
    if v.met:
        return "met"
    parts = [f"{r} {c.verdict}" for r, c in v.rows.items() if not c.passed]
    if not v.saving.inside:
        parts.append("the measured saving outside the projected interval")
    return "not met: " + "; ".join(parts)


def projection_rows(root: Path, path: Path) -> tuple[WholeRunRow, WholeRunRow]:
    """(MAViL's recipe, the full recipe) of a stored whole-run projection (any schema)."""
    from bench.migrate import load_projection

    rows = load_projection(root / path, json.loads((root / path).read_text())).whole_run_rows
    return next(r for r in rows if r.baseline), next(r for r in rows if not r.baseline)


def _headline_rows(root: Path) -> tuple[WholeRunRow, WholeRunRow]:
    """The windowed base-size headline's rows."""
    return projection_rows(root, HEADLINE_WINDOWS)


def _headline_saving(root: Path) -> str:
    """ "−18.9% [−20.1%, −17.7%] (95%; 5 windows)": the saving as a change of wall-clock."""
    _, full = _headline_rows(root)
    low, high = full.time_saving_ci_low, full.time_saving_ci_high
    assert full.time_saving is not None and low is not None and high is not None
    return (
        f"−{100 * full.time_saving:.1f}% [−{100 * high:.1f}%, −{100 * low:.1f}%] "
        f"({100 * full.interval_level:g}%; {full.windows} windows)"
    )


def _headline_saving_parts(root: Path) -> str:
    """The saving's half-width and its two parts: between windows (t) and interpolation."""
    _, full = _headline_rows(root)
    low, high, systematic = (
        full.time_saving_ci_low, full.time_saving_ci_high, full.time_saving_systematic
    )  # fmt: skip
    assert low is not None and high is not None and systematic is not None
    half = (high - low) / 2.0
    statistical = math.sqrt(max(half**2 - systematic**2, 0.0))
    return (
        f"±{100 * half:.1f} points: ±{100 * statistical:.1f} between the {full.windows} windows "
        f"(Student's t, {full.windows - 1} df) and ±{100 * systematic:.1f} of interpolation "
        f"({100 * full.interpolation_error:.1f}% on {100 * full.interpolated_share:.1f}% of the "
        f"full recipe's compute), in quadrature"
    )


def _headline_days(root: Path) -> str:
    """Each recipe's projected days with its interval."""
    base, full = _headline_rows(root)

    def days(row) -> str:
        return (
            f"{row.projected_seconds / DAY:.1f} [{row.ci_low / DAY:.1f}, "
            f"{row.ci_high / DAY:.1f}] days"
        )

    return f"{days(full)} (full recipe) vs {days(base)} (MAViL's recipe)"


def _headline_flop_saving(root: Path) -> str:
    _, full = _headline_rows(root)
    assert full.flop_saving is not None
    return f"−{100 * full.flop_saving:.1f}%"


def _replay_table(root: Path, path: Path = REPLAY) -> str:
    from bench.report.replay_check import ReplayRecord, replay_table

    record = ReplayRecord.model_validate_json((root / path).read_text())
    return "\n" + replay_table(record) + "\n"


def _history_sizes(root: Path) -> str:
    """ "from 12 to 23 earlier projections of its setting (Student's t with 11 to 22 df)"."""
    sizes = [
        row.history_projections
        for p in _coverage(root, HISTORY_COVERAGE).projections
        for row in p.rows
        if row.interval_method == "history-t+systematic"
    ]
    return (
        f"from {min(sizes)} to {max(sizes)} earlier projections of its setting (Student's t "
        f"with {min(sizes) - 1} to {max(sizes) - 1} df)"
    )


def _history_shift(root: Path) -> str:
    """Each recipe's mean projected seconds in the first check and in the second."""

    def means(path: Path) -> tuple[float, float]:
        rows = [by_recipe(p.rows) for p in _coverage(root, path).projections]
        return tuple(
            statistics.fmean(r[k].projected_seconds for r in rows) for k in ("mavil", "full")
        )  # type: ignore[return-value]

    first, second = means(COVERAGE), means(HISTORY_COVERAGE)
    return (
        f"MAViL's recipe {first[0]:.0f} s in the first check, {second[0]:.0f} s in the "
        f"second ({100 * (second[0] / first[0] - 1):+.0f}%); the full recipe {first[1]:.0f} s, "
        f"then {second[1]:.0f} s ({100 * (second[1] / first[1] - 1):+.0f}%)"
    )


def register_wallclock(quotes: dict[str, QuoteFunction]) -> None:
    """Add the keys of the coverage check and the single-projection validations."""
    quotes["whole-run/coverage-table"] = _coverage_table
    quotes["whole-run/coverage-windows"] = _coverage_windows
    quotes["whole-run/coverage-verdict"] = _coverage_verdict
    quotes["whole-run/coverage-history-table"] = _history_table
    quotes["whole-run/history-coverage-table"] = lambda r: _coverage_table(r, HISTORY_COVERAGE)
    quotes["whole-run/history-coverage-windows"] = lambda r: _coverage_windows(r, HISTORY_COVERAGE)
    quotes["whole-run/history-coverage-verdict"] = lambda r: _coverage_verdict(r, HISTORY_COVERAGE)
    quotes["whole-run/replay-table"] = _replay_table
    quotes["whole-run/replay-table/amd"] = lambda r: _replay_table(r, REPLAY_AMD)
    quotes["whole-run/history-coverage-shift"] = _history_shift
    quotes["whole-run/history-coverage-sizes"] = _history_sizes
    quotes["whole-run/validation-table"] = _validation_table
    quotes["whole-run/saving-bias"] = _saving_bias
    for preset in VALIDATIONS:
        quotes[f"whole-run/validation/{preset}"] = lambda r, p=preset: _validation_verdict(r, p)
        quotes[f"whole-run/validation-segments/{preset}"] = lambda r, p=preset: _segment_table(r, p)
    for preset in WITH_REFERENCE:
        quotes[f"whole-run/drift/{preset}"] = lambda r, p=preset: _drift_table(r, p)
        quotes[f"whole-run/run-spread/{preset}"] = lambda r, p=preset: _run_spread(r, p)
    quotes["whole-run/headline-windows/saving"] = _headline_saving
    quotes["whole-run/headline-windows/saving-parts"] = _headline_saving_parts
    quotes["whole-run/headline-windows/days"] = _headline_days
    quotes["whole-run/headline-windows/flop-saving"] = _headline_flop_saving
