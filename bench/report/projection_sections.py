"""Projected whole-run wall-clock in reports: ``diffbench time --masking/--batch`` JSON
(rows of kind ``whole_run``), or the ``whole-run.json`` an ablation grid writes when it
asks for ``run.project_time``. One section per projection; base-size projections of the
full recipe also fill the paper-headline table's wall-clock row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.report.document import Section
from bench.report.format import pct
from bench.report.tables import Column, Table, TableRow
from bench.schema import ProjectionResults, WholeRunRow

PROJECTION_FILE = "whole-run.json"  # written next to results.json by run.project_time


@dataclass
class ProjectionFile:
    """A whole-run projection file (``bench.schema.ProjectionResults``)."""

    path: Path
    results: ProjectionResults

    @property
    def rows(self) -> list[WholeRunRow]:
        return self.results.whole_run_rows


def signed_saving(value: float | None) -> str:
    """A saving (fraction; > 0 is less) as a signed change: 0.192 -> '−19.2%'."""
    if value is None:
        return "—"
    return ("−" if value > 0 else "+") + pct(abs(value))


def describe(result: ProjectionFile) -> str:
    """'tiny preset, fp32, cpu (AMD EPYC, 2 threads), 16,384 samples, 2026-11-29, load 3.1'"""
    row, env = result.rows[0], result.results.environment
    load = "?" if env.load_average_1m is None else env.load_average_1m
    return (
        f"{row.preset} preset, {row.dtype}, {row.device} "
        f"({env.device_name or '?'}, {row.threads} threads"
        f"{', compiled' if row.compile else ''}), {row.samples:,} samples, "
        f"{env.date[:10]}, load {load}"
    )


INTERVAL_METHODS = {
    "windows-t+systematic": "Student's t over the {windows} measurement windows in quadrature "
    "with the interpolation's error",
    "block-bootstrap+systematic": "the block bootstrap over one window's rounds, widened by "
    "the interpolation's error (it does not see the drift between windows)",
    "block-bootstrap": "the block bootstrap over one window's rounds, without the "
    "interpolation's error (a projection stored before windows existed; it does not see "
    "the drift between windows)",
}


def interval_sentence(rows: list[WholeRunRow]) -> str:
    """How the projection's intervals were made: their level and method(s)."""
    methods = sorted({(row.interval_method, row.windows, row.interval_level) for row in rows})
    parts = [
        f"{100 * level:g}%: " + INTERVAL_METHODS[method].format(windows=windows)
        for method, windows, level in methods
    ]
    return f"Intervals (two-sided) are {'; '.join(parts)} (docs/timing.md)."


def projection_section(result: ProjectionFile, index: int) -> Section:
    """Every recipe's projected seconds (95% interval), parts, savings vs the baseline."""
    section = Section(f"whole-run-{index}", f"Projected whole-run wall-clock ({result.path.name})")
    section.intro.append(
        f"`diffbench time` whole-run projection, {describe(result)}: the shared train step "
        "measured at the plan's points in one interleaved run and integrated over the plan "
        "(means), plus data loading and per-run fixed costs (checkpoints, logged rows), as "
        "`pretrain` records them. Savings are against the baseline recipe. "
        + interval_sentence(result.rows)
    )
    table = Table(
        f"whole-run-{index}",
        "Projected pre-training wall-clock per recipe",
        [
            Column("recipe", "left"),
            Column("steps"),
            Column("projected s"),
            Column("95% interval"),
            Column("compute / data / overhead s"),
            Column("FLOP saving"),
            Column("time saving [95%]"),
            Column("time / FLOP saving"),
            Column("interp. error"),
            Column("peak MB"),
        ],
        [],
    )
    for row in result.rows:
        saving = signed_saving(row.time_saving)
        if row.time_saving is not None:
            high, low = row.time_saving_ci_high, row.time_saving_ci_low
            saving += f" [{signed_saving(high)}, {signed_saving(low)}]"
        ratio = row.time_per_flop_saving
        table.rows.append(
            TableRow(
                [
                    row.recipe + (" (baseline)" if row.baseline else ""),
                    f"{row.steps:,}",
                    f"{row.projected_seconds:,.1f}",
                    f"{row.ci_low:,.1f} – {row.ci_high:,.1f}",
                    f"{row.compute_seconds:,.1f} / {row.data_seconds:,.1f}"
                    f"{' (bound)' if row.loading_bound else ''} / "
                    f"{row.overhead_seconds:,.1f}",
                    signed_saving(row.flop_saving),
                    saving,
                    "—" if ratio is None else f"{ratio:.2f}",
                    f"{pct(row.interpolation_error)} of {pct(row.interpolated_share)}",
                    "—" if row.peak_memory_mb is None else f"{row.peak_memory_mb:,.0f}",
                ]
            )
        )
    table.data = [row.model_dump() for row in result.rows]
    table.notes.append(
        "Savings are fractions of the baseline's figure (−22% = 22% less). Interp. error: "
        "the largest deviation at a check point of the anchors-only interpolation, of the "
        "share of compute that is interpolated."
    )
    section.tables.append(table)
    return section


def _baseline_seconds(result: ProjectionFile) -> float | None:
    return next((row.projected_seconds for row in result.rows if row.baseline), None)


@dataclass(frozen=True)
class FullRecipeProjection:
    """A projected wall-clock saving of the full recipe against the baseline (fractions;
    > 0 is less), where it comes from, and the plan's FLOP saving."""

    saving: float
    low: float | None
    high: float | None
    flop_saving: float | None
    label: str  # ``describe`` of the projection
    file: str
    projected_seconds: float
    baseline_seconds: float | None
    batch: str


def full_recipe_rows(projections: list[ProjectionFile], preset: str) -> list[FullRecipeProjection]:
    """Projected savings of the full recipe (cross-attn + curriculum + adaptive batch) vs
    the baseline at ``preset``, labelled."""
    found = []
    for result in projections:
        for row in result.rows:
            if (
                row.preset == preset
                and not row.baseline
                and row.variant == "cross-attn"
                and row.masking.startswith("curriculum")
                and row.batch.startswith("adaptive")
                and row.time_saving is not None
            ):
                found.append(
                    FullRecipeProjection(
                        saving=row.time_saving,
                        low=row.time_saving_ci_low,
                        high=row.time_saving_ci_high,
                        flop_saving=row.flop_saving,
                        label=describe(result),
                        file=result.path.name,
                        projected_seconds=row.projected_seconds,
                        baseline_seconds=_baseline_seconds(result),
                        batch=row.batch,
                    )
                )
    return found
