"""The report section of an ablation grid, in the paper's style: one row per grid row
(mean ± sd and 95% interval over seeds, deltas against the baseline row paired by seed),
FLOPs per component, the downstream table with its controls, and the figures
(``bench.report.ablation_plots``). The tables with wall-clock deltas carry the grid's noise
floor (``bench.report.noise_floor``); a grid with a whole-run projection gets its
validation against the runs (``bench.report.projection_validation``)."""

from __future__ import annotations

import re

from bench.report.ablation_plots import ablation_plots
from bench.report.document import Section
from bench.report.format import (
    DASH,
    interval_text,
    mean_std,
    num,
    pct,
    points,
    seconds,
    si,
    signed_delta,
)
from bench.report.groups import LEVEL, RUN_KINDS, RowGroup, group_rows
from bench.report.load import Ablation
from bench.report.noise_floor import (
    RowNoiseFloor,
    copy_label,
    measure_noise_floors,
    replica_rows,
    wall_clock_notes,
)
from bench.report.projection_validation import validation_tables
from bench.report.tables import Column, Table, TableRow
from bench.report.verdicts import add_verdicts, summary_table
from bench.schema import WholeRunRow
from diffmavil.config import COMPONENTS


def _metric_name(groups: list[RowGroup]) -> str | None:
    for metric in ("accuracy", "mAP"):
        if any(g.mean(f"probe.{metric}") is not None for g in groups):
            return metric
    return None


def ablation_section(ablation: Ablation, projection: list[WholeRunRow] | None = None) -> Section:
    """The grid's section; ``projection``: the rows of its whole-run projection, if any."""
    results = ablation.results
    groups = group_rows(ablation.records)
    rows = [g for g in groups if g.kind in RUN_KINDS]
    controls = [g for g in groups if g.kind not in RUN_KINDS]
    base = next((g for g in rows if g.baseline), None)
    presets = sorted({g.first.preset for g in rows if g.first.preset})
    flops_only = results.flops_only or all(g.kind == "flops" for g in rows)
    section = Section(
        key="ablation-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", ablation.name).strip("-."),
        title=f"Ablation grid `{ablation.name}`",
    )
    seeds = results.seeds
    description = results.description.rstrip(". ")
    section.intro.append(
        f"{description + '. ' if description else ''}Results: `{ablation.path}` "
        f"(schema_version {results.schema_version}"
        f"{'' if results.complete else ', **incomplete**: the grid is still running'}"
        f"); seeds {seeds}; executor {results.executor}; baseline row "
        f"`{base.name if base else 'none'}`.".strip()
    )
    if "base" not in presets:
        section.intro.append(
            f"Preset {', '.join(presets) or '?'}: these are small-scale measurements. Their "
            "FLOP and wall-clock deltas are **not** comparable with the paper's headline "
            "figures (see the base-size section for that comparison)."
        )
    metric = _metric_name(groups)
    level = results.statistics.confidence if results.statistics else LEVEL
    floors = measure_noise_floors(ablation.records, level)
    if results.comparisons and metric == "accuracy":
        section.tables.append(summary_table(rows, base, results, projection, floors))
    section.tables.append(_runs_table(rows, base, metric, flops_only, floors))
    section.tables += validation_tables(results, projection, floors)
    section.tables.append(_component_table(rows, base))
    section.intro.append(
        "Time per component: not measured by this grid (pre-training wall-clock is per run); "
        "`diffbench time --variant ... --format json` measures it, and `diffbench report` "
        "renders that file."
    )
    if metric is not None:
        section.tables.append(_downstream_table(rows + controls, base, metric))
    add_verdicts(section, results, floors)
    copies = replica_rows(ablation.records)
    if copies:  # a copy trains as the baseline does: its curves would lie on the baseline's
        section.intro.append(
            f"The plots leave out the noise-floor cop{'ies' if len(copies) > 1 else 'y'} "
            f"({', '.join(f'`{row}`' for row in sorted(copies))}): "
            "they train as the baseline does; their wall-clock is in the tables."
        )
    plotted = [g for g in rows if g.name not in copies]
    ablation_plots(section, ablation, plotted, controls, base, metric)
    return section


def _runs_columns(metric: str | None) -> list[Column]:
    columns = [
        Column("row", "left"),
        Column("change", "left"),
        Column("n", "left"),
        Column("pre-train FLOPs"),
        Column("Δ FLOPs"),
        Column("wall-clock"),
        Column("Δ wall-clock"),
        Column("samples/s"),
    ]
    if metric:
        columns += [
            Column(f"{metric} % (mean ± sd)"),
            Column(f"{100 * LEVEL:g}% CI"),
            Column(f"Δ {metric} (points)"),
        ]
    return [*columns, Column("status", "left")]


def _row_label(g: RowGroup, flops_only: bool, copy: str | None = None) -> tuple[str, str]:
    """The row's name (baseline, compute-matched, a noise-floor copy) and its seeds cell."""
    name = g.name + (" (baseline)" if g.baseline else "")
    if copy is not None:
        name += f" ({copy})"
    if g.matched:
        name += f" (compute-matched to {g.matched})"
    n = len(g.done)
    if n == 1:
        seeds = f"1 (seed {g.seeds})" if flops_only else f"1 (seed {g.seeds}, single seed)"
    else:
        seeds = f"{n} (seeds {g.seeds})"
    return name, seeds


def _delta(g: RowGroup, base: RowGroup | None, metric: str) -> float | None:
    """The row's mean paired delta against the baseline row (see ``RowGroup.delta``)."""
    return None if base is None else g.delta(base, metric).mean


def _runs_metric(g: RowGroup, metric: str, base: RowGroup | None) -> tuple[list[str], dict]:
    """The downstream metric's cells and CSV values of one row (mean ± sd, its interval
    inside [0, 100], the paired Δ against the baseline)."""
    stats = g.stats(f"probe.{metric}")
    interval = g.accuracy(f"probe.{metric}")
    delta = _delta(g, base, f"probe.{metric}")
    cells = [
        mean_std(stats, points, 100),
        interval_text(interval, stats.n, points),
        signed_delta(delta, relative=False),
    ]
    data = {
        f"{metric}_mean": stats.mean,
        f"{metric}_std": stats.sd,
        f"{metric}_ci_low": None if interval is None else interval.low / 100,
        f"{metric}_ci_high": None if interval is None else interval.high / 100,
        f"delta_{metric}_points": delta,
    }
    return cells, data


def _runs_table(
    rows: list[RowGroup],
    base: RowGroup | None,
    metric: str | None,
    flops_only: bool,
    floors: list[RowNoiseFloor],
) -> Table:
    table = Table(
        "runs",
        "Pre-training cost and downstream result per row",
        _runs_columns(metric),
        [],
        css="runs",
    )
    daggers = wall_deltas = False
    for g in rows:
        flops, wall = g.mean("total_flops"), g.mean("wall_clock_seconds")
        rate = g.mean("samples_per_second")
        flops_delta = _delta(g, base, "total_flops")
        wall_delta = _delta(g, base, "wall_clock_seconds")
        wall_deltas = wall_deltas or (wall_delta is not None and g is not base)
        wall_text = seconds(wall)
        if wall is not None and not g.comparable:
            wall_text += " †"
            daggers = True
        name, seeds = _row_label(g, flops_only, copy_label(g.name, floors))
        cells = [
            name,
            g.first.differences,
            seeds,
            si(flops),
            signed_delta(flops_delta, relative=True),
            wall_text,
            signed_delta(wall_delta, relative=True),
            num(rate),
        ]
        data = {
            "row": g.name,
            "baseline": g.baseline,
            "match_flops_of": g.matched,
            "seeds": g.seeds,
            "n": len(g.done),
            "total_flops": flops,
            "delta_flops_pct": None if flops_delta is None else 100 * flops_delta,
            "wall_clock_seconds": wall,
            "delta_wall_clock_pct": None if wall_delta is None else 100 * wall_delta,
            "wall_clock_comparable": g.comparable,
            "samples_per_second": rate,
            "status": g.status,
        }
        if metric:
            metric_cells, metric_data = _runs_metric(g, metric, base)
            cells += metric_cells
            data.update(metric_data)
        table.rows.append(TableRow([*cells, g.status], g.css))
        table.data.append(data)
    table.notes += _runs_notes(metric, daggers, flops_only)
    if wall_deltas:
        table.notes += wall_clock_notes(floors)
    return table.drop_empty_columns(keep=3)


def _runs_notes(metric: str | None, daggers: bool, flops_only: bool) -> list[str]:
    notes = [
        "FLOPs: model FLOPs (forward + backward, 2 per multiply-add) of the steps actually "
        "taken, from the closed-form FLOP model. Δ: paired by seed against the baseline "
        "row's run of the same seed, over the seeds both completed (wall-clock: runs whose "
        "wall-clock is comparable), the mean of the per-seed deltas: FLOPs and wall-clock in "
        f"% of the baseline's run, {metric or 'downstream'} in percentage points. Mean ± "
        f"sample sd over seeds; {100 * LEVEL:g}% CI: two-sided, of the mean "
        f"{metric or 'accuracy'} (Student's t on the logit scale, so inside [0, 100]); "
        "single-seed rows have no spread and are flagged."
    ]
    if daggers:
        notes.append("† wall-clock not comparable: measured with parallel workers sharing the CPU.")
    if flops_only:
        notes.append("FLOPs-only grid: planned FLOPs of the whole run, nothing trained.")
    return notes


def _component_table(rows: list[RowGroup], base: RowGroup | None) -> Table:
    columns = [
        Column("row", "left"),
        *(Column(c) for c in COMPONENTS),
        Column("total"),
        Column("Δ total"),
    ]
    table = Table(
        "flops_by_component", "Pre-training FLOPs per component (share of the run)", columns, []
    )
    for g in rows:
        parts = {c: g.mean(f"flops.{c}") for c in COMPONENTS}
        total = sum(v for v in parts.values() if v is not None) or g.mean("total_flops")
        cells = [g.name]
        for c in COMPONENTS:
            value = parts[c]
            cells.append(
                DASH
                if value is None
                else f"{si(value)} ({pct(value / total)})"
                if total
                else si(value)
            )
        cells += [si(total), signed_delta(_delta(g, base, "total_flops"), relative=True)]
        table.rows.append(TableRow(cells, g.css))
        table.data.append(
            {"row": g.name, **{f"flops.{c}": parts[c] for c in COMPONENTS}, "total_flops": total}
        )
    table.notes.append("Components as in `diffbench info`; they sum to the total.")
    return table


def _downstream_table(groups: list[RowGroup], base: RowGroup | None, metric: str) -> Table:
    columns = [
        Column("row", "left"),
        Column("init", "left"),
        Column("n"),
        Column(f"{metric} % (mean ± sd)"),
        Column(f"{100 * LEVEL:g}% CI"),
        Column("train acc. %"),
        Column("Δ vs baseline (points)"),
        Column("status", "left"),
    ]
    table = Table("downstream", f"Downstream {metric} (probe) per row, with controls", columns, [])
    for g in groups:
        stats = g.stats(f"probe.{metric}")
        interval = g.accuracy(f"probe.{metric}")
        probe = next((r.probe for r in g.done if r.probe), None)
        delta = _delta(g, base, f"probe.{metric}")
        n = f"{stats.n}" + (" (single seed)" if stats.n == 1 else "")
        cells = [
            g.name,
            probe.init if probe else DASH,
            n,
            mean_std(stats, points, 100),
            interval_text(interval, stats.n, points),
            mean_std(g.stats("probe.train_accuracy"), points, 100),
            signed_delta(delta, relative=False),
            g.status,
        ]
        table.rows.append(TableRow(cells, g.css))
        table.data.append(
            {
                "row": g.name,
                "kind": g.kind,
                "init": probe.init if probe else None,
                "n": stats.n,
                "mean": stats.mean,
                "std": stats.sd,
                "ci_low": None if interval is None else interval.low / 100,
                "ci_high": None if interval is None else interval.high / 100,
                "delta_points": delta,
            }
        )
    probe = next((r.probe for g in groups for r in g.done if r.probe), None)
    table.notes.append(
        f"Probe: {probe.mode if probe else '?'} on {probe.modality if probe else '?'} "
        f"features, data `{probe.data if probe else '?'}`. Controls: the same probe on a "
        "randomly initialised model (`random-init`) and on raw fbank features (`fbank`): a "
        "pre-trained row must beat them for its accuracy to mean anything. Δ: paired by "
        f"seed against the baseline row, over the seeds both completed; {100 * LEVEL:g}% CI "
        "as in the table above."
    )
    return table
