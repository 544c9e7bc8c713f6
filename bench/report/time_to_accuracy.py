"""The time-to-accuracy section of a grid with curves or a fine-tune column (``run.curve``,
``run.finetune``): the primary endpoint's verdicts first, then per comparison and target the
paired time ratios (samples, FLOPs, wall-clock) with their intervals or the counts that
reached the target, per comparison the area-under-the-curve and final probe and fine-tune
differences, each row's fine-tune accuracy, and the accuracy curves (``bench.report.curves``).

The endpoints are rendered as the results store them (``bench.schema.time_to_accuracy``);
the fine-tune column's per-row mean, bounded interval and paired delta are computed like
the probe's (``RowGroup``). A noise-floor copy of the baseline is never a candidate; the
wall-clock ratios carry the grid's noise floor in their notes (``bench.report.noise_floor``).
Every interval names its level."""

from __future__ import annotations

import math
import re

from bench.report.curves import curves_plot, mean_curve
from bench.report.document import Section, add_plot
from bench.report.format import DASH, interval_text, level_label, mean_std, points, signed
from bench.report.groups import LEVEL, RUN_KINDS, RowGroup, group_rows
from bench.report.load import Ablation
from bench.report.noise_floor import RowNoiseFloor, measure_noise_floors, wall_clock_notes
from bench.report.tables import Column, Table, TableRow
from bench.requests import StatisticsSpec
from bench.schema import EndpointResult, FinetuneMetrics, values_by_seed
from bench.schema.paired import random_control_row, row_records
from bench.stats import PairedDelta

LABELS = {
    "samples_to_target": "samples to target",
    "flops_to_target": "FLOPs to target",
    "wall_clock_to_target": "wall-clock to target",
    "auc_flops": "mean accuracy over FLOPs (area under the curve)",
    "final_probe": "final probe accuracy",
    "final_finetune": "final fine-tune accuracy",
}
PRIMARY_MARK = "‡"
ACCURACY, FINETUNE = "probe.accuracy", "finetune.accuracy"


def endpoint_label(endpoint: EndpointResult) -> str:
    """E.g. "FLOPs to 70%", "final fine-tune accuracy"."""
    label = LABELS[endpoint.endpoint]
    return (
        label.replace("target", f"{endpoint.target:g}%") if endpoint.target is not None else label
    )


def _value(endpoint: EndpointResult, value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}×" if endpoint.unit == "ratio" else signed(value, 1, "")


def _bounds(endpoint: EndpointResult) -> str:
    if endpoint.low is None or endpoint.high is None:
        return DASH
    return f"[{_value(endpoint, endpoint.low)}, {_value(endpoint, endpoint.high)}]"


def needed_pairs(endpoint: EndpointResult) -> int:
    """The pairs that must reach the target on both sides for a ratio (and at least 2),
    as ``bench.stats.paired_time_ratio`` counts them."""
    fraction = endpoint.min_reached_fraction or 1.0
    return max(2, math.ceil(fraction * endpoint.n - 1e-9))


def reached_text(endpoint: EndpointResult) -> str:
    """E.g. "no ratio: 4/6 reached both (needs 5)"."""
    both, n = len(endpoint.reached_both or []), endpoint.n
    return f"no ratio: {both}/{n} reached both (needs {needed_pairs(endpoint)})"


def estimate_cell(endpoint: EndpointResult) -> str:
    """The estimate and its interval, or why there is none (counts, pairs)."""
    mark = f" {PRIMARY_MARK}" if endpoint.role == "primary" else ""
    if endpoint.estimate is None:
        return reached_text(endpoint) if endpoint.unit == "ratio" else f"{endpoint.n} pairs"
    if endpoint.low is None:
        return _value(endpoint, endpoint.estimate) + f" ({endpoint.n} pair)" + mark
    return f"{_value(endpoint, endpoint.estimate)} {_bounds(endpoint)}{mark}"


def _criterion(endpoint: EndpointResult) -> str:
    if endpoint.unit == "ratio":
        return "faster: upper < 1; slower: lower > 1"
    return (
        f"no loss: lower > −{endpoint.margin_points:g}; loss: upper < −{endpoint.margin_points:g}"
    )


def primary_table(primary: list[EndpointResult]) -> Table:
    """One line per comparison: the primary endpoint's estimate, bounds and verdict."""
    level = primary[0].level
    columns = [
        Column("comparison", "left"),
        Column("primary endpoint", "left"),
        Column("pairs used"),
        Column("estimate"),
        Column(f"one-sided bounds {level_label(level)}"),
        Column("criterion", "left"),
        Column("verdict", "left"),
    ]
    table = Table("primary", "Primary endpoint: verdicts", columns, [])
    for e in primary:
        estimate = _value(e, e.estimate) if e.estimate is not None else DASH
        bounds = _bounds(e) if e.estimate is not None else reached_text(e)
        if e.unit == "points" and e.estimate is None:
            bounds = f"{e.n} pairs"
        used = str(e.n) if e.unit == "points" else f"{len(e.reached_both or [])} of {e.n}"
        cells = [e.comparison, endpoint_label(e), used, estimate, bounds, _criterion(e)]
        table.rows.append(TableRow([*cells, f"**{e.verdict}**"]))
        table.data.append(e.model_dump(exclude={"candidate_values", "reference_values"}))
    table.notes.append(
        f"Defined in the grid before it ran (`statistics.primary`). Bounds: one-sided "
        f"{100 * level:g}% each (Student's t; a ratio's on the log scale, over the pairs where "
        "both runs reached the target: the pairs used, of the pairs). A time ratio is "
        "candidate / reference: below 1 the "
        "candidate reaches the target sooner. Every other endpoint below is descriptive."
    )
    return table


def _reach_cell(endpoint: EndpointResult) -> str:
    """Runs that reached the target, of the pairs: candidate, reference, both."""
    n = endpoint.n
    cand = n - len(endpoint.candidate_censored or [])
    ref = n - len(endpoint.reference_censored or [])
    return f"{cand}/{n}, {ref}/{n}, {len(endpoint.reached_both or [])}/{n}"


TIME_COLUMNS = ("samples_to_target", "flops_to_target", "wall_clock_to_target")


def time_to_target_table(
    endpoints: list[EndpointResult], level: float, floors: list[RowNoiseFloor] | None = None
) -> Table:
    """Per comparison and target: who reached it, and the three paired ratios (with
    wall-clock ratios, the grid's noise ``floors`` in the notes)."""
    columns = [
        Column("comparison", "left"),
        Column("target"),
        Column("reached: cand., ref., both"),
        Column(f"samples ratio {level_label(level)}"),
        Column(f"FLOPs ratio {level_label(level)}"),
        Column(f"wall-clock ratio {level_label(level)}"),
    ]
    table = Table("time-to-target", "Time to accuracy, per comparison and target", columns, [])
    keys = dict.fromkeys((e.comparison, e.target) for e in endpoints)
    for comparison, target in keys:
        found = {
            e.endpoint: e for e in endpoints if (e.comparison, e.target) == (comparison, target)
        }
        first = next(iter(found.values()))
        cells = [comparison, f"{target:g}%", _reach_cell(first)]
        cells += [estimate_cell(found[name]) if name in found else DASH for name in TIME_COLUMNS]
        table.rows.append(TableRow(cells))
        for e in found.values():
            table.data.append(e.model_dump())
    table.notes.append(
        "Time to a target: the first crossing of the run's snapshots' probe accuracy, linearly "
        "interpolated between the snapshot below it and the first at or above it (at the first "
        "snapshot when that already reaches it); a run that never reaches it is censored at "
        "its budget and counted, never dropped. Ratio: candidate / reference, the geometric "
        f"mean over the pairs where both reached it, with its two-sided {100 * level:g}% "
        "Student's t interval (on the log scale), estimated only when at least "
        f"{_fraction(endpoints)} of the pairs (and 2) reached it on both sides, else the "
        "counts. Wall-clock: runs whose wall-clock is comparable. "
        f"{PRIMARY_MARK} the primary endpoint: one-sided bounds, its verdict above."
    )
    if floors is not None and any(e.endpoint == "wall_clock_to_target" for e in endpoints):
        table.notes += wall_clock_notes(floors)
    return table


def _fraction(endpoints: list[EndpointResult]) -> str:
    fraction = next((e.min_reached_fraction for e in endpoints if e.min_reached_fraction), 1.0)
    if fraction >= 1.0:
        return "all"
    return "5/6" if math.isclose(fraction, 5 / 6) else f"{100 * fraction:.0f}%"


FINAL_COLUMNS = ("auc_flops", "final_probe", "final_finetune")


def final_table(endpoints: list[EndpointResult], level: float) -> Table:
    """Per comparison: the area-under-the-curve, final probe and fine-tune differences."""
    columns = [
        Column("comparison", "left"),
        Column(f"Δ mean accuracy over FLOPs, points {level_label(level)}"),
        Column(f"Δ final probe, points {level_label(level)}"),
        Column(f"Δ final fine-tune, points {level_label(level)}"),
    ]
    table = Table("final", "Area under the curve and final accuracy, per comparison", columns, [])
    for comparison in dict.fromkeys(e.comparison for e in endpoints):
        found = {e.endpoint: e for e in endpoints if e.comparison == comparison}
        cells = [estimate_cell(found[name]) if name in found else DASH for name in FINAL_COLUMNS]
        table.rows.append(TableRow([comparison, *cells]))
        table.data += [e.model_dump() for e in found.values()]
    table.notes.append(
        "Δ = candidate − reference, paired by seed over the seeds both completed, with its "
        f"two-sided {100 * level:g}% Student's t interval. Mean accuracy over FLOPs: the area "
        "under probe accuracy vs FLOPs over [0, the pair's smaller final FLOPs], from the "
        "random-init control's accuracy at 0 (trapezoids between snapshots), divided by that "
        f"span. {PRIMARY_MARK} the primary endpoint: one-sided bounds, its verdict above."
    )
    return table


def _delta_cell(delta: PairedDelta | None) -> str:
    """A paired delta in points with its interval, e.g. "−2.1 [−6.9, +2.6]"."""
    if delta is None or delta.mean is None:
        return DASH
    text = signed(delta.mean, 1, "")
    if delta.interval is None:
        return text
    return f"{text} [{signed(delta.interval.low, 1, '')}, {signed(delta.interval.high, 1, '')}]"


def _finetune_note(tuned: FinetuneMetrics | None) -> str:
    task = "?" if tuned is None else f"`{tuned.data}` ({tuned.modality})"
    return (
        "Fine-tune: the final snapshot (random init: the control's untrained encoders) "
        f"trained end to end on {task}, `evaluate` in mode finetune. Interval: two-sided "
        f"{100 * LEVEL:g}% of the mean accuracy (Student's t on the logit scale, inside "
        "[0, 100]). Δ: paired by seed against the baseline row over the seeds both "
        f"completed, two-sided {100 * LEVEL:g}% Student's t interval."
    )


def finetune_table(groups: list[RowGroup], base: RowGroup | None) -> Table:
    """Each row's (and control's) fine-tune accuracy: mean ± sd, the bounded interval of
    the mean, the paired delta against the baseline row."""
    columns = [
        Column("row", "left"),
        Column("init", "left"),
        Column("n"),
        Column("fine-tune accuracy % (mean ± sd)"),
        Column(f"interval {level_label(LEVEL)}"),
        Column(f"Δ vs baseline, points {level_label(LEVEL)}"),
        Column("status", "left"),
    ]
    table = Table("finetune", "Fine-tune accuracy per row, with random init", columns, [])
    tuned = None
    for g in groups:
        stats = g.stats(FINETUNE)
        if stats.n == 0:
            continue
        interval = g.accuracy(FINETUNE)
        delta = None if base is None or g is base else g.delta(base, FINETUNE)
        tuned = next(r.finetune for r in g.done if r.finetune is not None)
        cells = [g.name, tuned.init, str(stats.n), mean_std(stats, points, 100)]
        cells += [interval_text(interval, stats.n, points), _delta_cell(delta), g.status]
        table.rows.append(TableRow(cells, g.css))
        table.data.append(
            {
                "row": g.name,
                "init": tuned.init,
                "n": stats.n,
                "mean": stats.mean,
                "std": stats.sd,
                "ci_low": None if interval is None else interval.low / 100,
                "ci_high": None if interval is None else interval.high / 100,
                "delta_points": None if delta is None else delta.mean,
                **_interval_ends(delta),
            }
        )
    table.notes.append(_finetune_note(tuned))
    return table


def _interval_ends(delta: PairedDelta | None) -> dict[str, float | None]:
    interval = None if delta is None else delta.interval
    return {
        "delta_low": None if interval is None else interval.low,
        "delta_high": None if interval is None else interval.high,
    }


RULE = (
    "**Endpoints.** The primary endpoint, defined in the grid before it ran "
    "(`statistics.primary`), is the one tested per confirmatory comparison: one-sided bounds "
    "and a verdict. Every other endpoint is **descriptive**: a two-sided interval, no "
    "verdict, so no family of tests needs a multiplicity correction. Their intervals are "
    "there to size the next grid, not to decide."
)


def _section_key(ablation: Ablation) -> str:
    return "tta-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", ablation.name).strip("-.")


def has_time_to_accuracy(ablation: Ablation) -> bool:
    """Whether the grid's results hold curves, fine-tunes or endpoints."""
    return bool(ablation.results.endpoints) or any(r.curve or r.finetune for r in ablation.records)


def time_to_accuracy_section(ablation: Ablation) -> Section:
    """The grid's time-to-accuracy section (see the module)."""
    results = ablation.results
    spec = results.statistics or StatisticsSpec()
    section = Section(_section_key(ablation), f"Time to accuracy: grid `{ablation.name}`")
    section.intro.append(RULE)
    primary = spec.primary
    if primary is not None:
        target = "" if primary.target is None else f" at {primary.target:g}%"
        section.intro.append(f"Primary endpoint: `{primary.endpoint}`{target}.")
    floors = measure_noise_floors(ablation.records, spec.confidence)
    copies = {f.row for f in floors}
    endpoints = [e for e in results.endpoints if e.candidate not in copies]
    first = [e for e in endpoints if e.role == "primary"]
    if first:
        section.tables.append(primary_table(first))
    timed = [e for e in endpoints if e.target is not None]
    if timed:
        section.tables.append(time_to_target_table(timed, spec.confidence, floors))
    finals = [e for e in endpoints if e.target is None]
    if finals:
        section.tables.append(final_table(finals, spec.confidence))
    groups = group_rows(ablation.records)
    rows = [g for g in groups if g.kind in RUN_KINDS]
    base = next((g for g in rows if g.baseline), None)
    if any(r.finetune for r in ablation.records):
        section.tables.append(finetune_table(groups, base))
    _curves(section, ablation, rows, spec.targets)
    return section


def _curves(section: Section, ablation: Ablation, rows: list[RowGroup], targets) -> None:
    records = ablation.records
    curves = []
    for g in rows:
        control = random_control_row(records, g.first.preset)
        start = [] if control is None else values_by_seed(row_records(records, control), ACCURACY)
        curves.append((g, mean_curve(g.done, list(start.values()) if start else [])))
    add_plot(
        section,
        "Accuracy curves",
        curves_plot(f"{section.key}-curves", curves, list(targets)),
        "Each row's probe accuracy at its snapshots against samples seen, model FLOPs and "
        "timed wall-clock seconds: the mean over seeds (line) and the seeds' range, min to "
        "max (band); at 0 the random-init control's accuracy; dotted: the targets.",
    )
