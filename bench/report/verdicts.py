"""The verdicts of an ablation grid's ``statistics:`` (judged when its results were written,
``bench.schema.judge``): the summary table that puts FLOPs, measured and projected
wall-clock and accuracy with its verdict on one line per row (the paper's Table 2), the
confirmatory comparisons' table, each pre-trained row's gain over its random-init control,
and the plot of the paired differences with their intervals and the margin. The verdicts,
gains and wall-clock and accuracy deltas are rendered as the results store them; the FLOPs
delta is paired like them (``RowGroup.delta``); the projection is joined by row name (a row
without its own projection row by its config, ``project_rows``). A noise-floor copy of the
baseline (``bench.report.noise_floor``) is labelled as one and never given a verdict; the
tables with wall-clock deltas carry the noise floor in their notes. Every interval names
its level."""

from __future__ import annotations

from typing import Any

from bench.report.document import Plot, Section, add_plot
from bench.report.format import DASH, level_label, mean_std, points, signed, signed_delta
from bench.report.groups import RowGroup
from bench.report.noise_floor import (
    RowNoiseFloor,
    copy_label,
    measure_noise_floors,
    wall_clock_notes,
)
from bench.report.projection_validation import RowProjection, project_rows
from bench.report.tables import Column, Table, TableRow
from bench.report.time_to_accuracy import endpoint_label
from bench.requests import StatisticsSpec
from bench.requests.specs import PrimarySpec
from bench.schema import Comparison, ControlGain, GridResults, PairedDeltas, WholeRunRow


def _points(value: Any, digits: int = 1) -> str:
    return DASH if value is None else signed(float(value), digits, "")


def comparisons_table(
    comparisons: list[Comparison], power: float = 0.8, primary: PrimarySpec | None = None
) -> Table:
    """The probe-accuracy verdicts of the comparisons; with a primary endpoint other than
    the final probe (``statistics.primary``), labelled descriptive."""
    confidence = comparisons[0].confidence if comparisons else 0.95
    secondary = primary is not None and primary.endpoint != "final_probe"
    columns = [
        Column("comparison", "left"),
        Column("n pairs"),
        Column("mean Δ (points)"),
        Column("sd of Δ"),
        Column(f"one-sided bounds {level_label(confidence)}"),
        Column("margin"),
        Column("detectable loss"),
        Column("verdict (descriptive)" if secondary else "verdict", "left"),
    ]
    title = "Confirmatory comparisons: probe accuracy, paired by seed"
    if secondary:
        title = "Comparisons: probe accuracy, paired by seed (descriptive)"
    table = Table("verdicts", title, columns, [])
    for c in comparisons:
        bounds = (
            DASH
            if c.lower_points is None
            else f"[{_points(c.lower_points)}, {_points(c.upper_points)}]"
        )
        table.rows.append(
            TableRow(
                [
                    c.name,
                    str(c.n),
                    _points(c.mean_points),
                    DASH if c.sd_points is None else f"{c.sd_points:.1f}",
                    bounds,
                    f"−{c.margin_points:g}",
                    DASH if c.detectable_points is None else f"−{c.detectable_points:.1f}",
                    c.verdict,
                ]
            )
        )
        table.data.append(c.model_dump(exclude={"differences_points"}))
    table.notes.append(
        "Δ = candidate − reference, probe accuracy in points, paired by seed over the seeds "
        f"both completed. Bounds: one-sided {100 * confidence:g}%, Student's t with n − 1 "
        "degrees of freedom. Verdict: *no loss within the margin* when the lower bound lies "
        "above −margin, *loss* when the upper bound lies below it, else *undecided*. "
        "Detectable loss: the margin plus the shift these pairs, with this spread, clear "
        f"with probability {power:g} (exact noncentral t): the true loss they would call a "
        "loss that often."
    )
    if secondary and primary is not None:
        table.notes.append(
            f"The grid's primary endpoint is `{primary.endpoint}` (the time-to-accuracy "
            "section): these probe-accuracy verdicts are descriptive, not a test of it."
        )
    return table


def control_gains_table(gains: list[ControlGain]) -> Table:
    confidence = gains[0].confidence if gains else 0.95
    columns = [
        Column("row", "left"),
        Column("control", "left"),
        Column("n pairs"),
        Column("gain (points)"),
        Column(f"interval {level_label(confidence)}"),
        Column("required"),
        Column("passes", "left"),
    ]
    table = Table("control-gains", "Pre-training's gain over random init, per row", columns, [])
    for g in gains:
        interval = (
            DASH
            if g.lower_points is None
            else f"[{_points(g.lower_points)}, {_points(g.upper_points)}]"
        )
        passes = {True: "yes", False: "**no**", None: DASH}[g.passes]
        table.rows.append(
            TableRow(
                [
                    g.row,
                    g.control,
                    str(g.n),
                    _points(g.gain_points),
                    interval,
                    f"+{g.required_points:g}",
                    passes,
                ]
            )
        )
        table.data.append(g.model_dump())
    table.notes.append(
        f"Gain = row − its random-init control (same encoders, untrained), paired by seed; "
        f"two-sided {100 * confidence:g}% interval. A row passes when the interval lies above "
        "zero and the mean gain reaches the required points: otherwise its accuracy measures "
        "the probe, not the pre-training."
    )
    return table


def differences_plot(key: str, comparisons: list[Comparison]) -> Plot | str:
    """Each comparison's per-seed paired differences, their mean with the one-sided bounds,
    and the margin line."""
    judged = [c for c in comparisons if c.lower_points is not None]
    if not judged:
        return "no comparison has two completed pairs yet"
    from bench.report.plots import _figure, _png

    figure, axes = _figure(7.5, 1.2 + 0.7 * len(judged))
    ax = axes[0][0]
    margin = judged[0].margin_points
    for y, c in enumerate(reversed(judged)):
        diffs = c.differences_points or []
        ax.scatter(diffs, [y] * len(diffs), color="#9ecae1", s=18, zorder=2)
        ax.plot([c.lower_points, c.upper_points], [y, y], color="#08519c", linewidth=2.5)
        ax.scatter([c.mean_points], [y], color="#08519c", s=45, zorder=3)
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.axvline(-margin, color="#d62728", linestyle="--", label=f"−margin ({margin:g} points)")
    ax.set_yticks(range(len(judged)), [c.name for c in reversed(judged)], fontsize=8)
    ax.set(xlabel="candidate − reference, probe accuracy (points)", ylim=(-0.7, len(judged) - 0.3))
    ax.legend(fontsize=8, loc="lower right")
    data = [
        {"comparison": c.name, "seed": seed, "difference_points": d}
        for c in judged
        for seed, d in zip(c.seeds, c.differences_points or [], strict=True)
    ]
    return Plot(key, "Paired differences and verdicts", "", _png(figure), data)


def add_verdicts(
    section: Section, results: GridResults, floors: list[RowNoiseFloor] | None = None
) -> None:
    """The verdict tables and plot, when the results hold any (a noise-floor copy's
    comparisons and gain left out: a copy has no verdict)."""
    floors = measure_noise_floors(results.records) if floors is None else floors
    copies = {f.row for f in floors}
    comparisons = [c for c in results.comparisons if c.candidate not in copies]
    gains = [g for g in results.control_gains if g.row not in copies]
    dropped = [c.name for c in results.comparisons if c.candidate in copies]
    if dropped:
        section.intro.append(
            f"Left out of the verdicts: {', '.join(dropped)}: a noise-floor copy of the "
            "baseline is never a candidate (its accuracy is the baseline's)."
        )
    if comparisons:
        statistics = results.statistics or StatisticsSpec()
        section.tables.append(comparisons_table(comparisons, statistics.power, statistics.primary))
        add_plot(
            section,
            "Paired differences",
            differences_plot(f"{section.key}-verdicts", comparisons),
            "Light dots: one seed's difference; dark: the mean with its one-sided bounds; "
            "dashed: the margin a verdict of no loss must clear.",
        )
    if gains:
        section.tables.append(control_gains_table(gains))


def _fraction_interval(mean: Any, low: Any, high: Any) -> str:
    if mean is None:
        return DASH
    text = signed(100 * mean)
    return text if low is None else f"{text} [{signed(100 * low)}, {signed(100 * high)}]"


def _split_note(delta: PairedDeltas | None) -> str:
    """ ", k/n pairs split" when k of the row's n wall-clock pairs ran in different
    invocations of the grid, else nothing."""
    if delta is None or not delta.wall_clock_split_pairs:
        return ""
    return f", {delta.wall_clock_split_pairs}/{delta.wall_clock_pairs} pairs split"


PROJECTION_LEVEL = 0.95  # the projection's intervals (bench.projection: ``interval_level``)


def _summary_columns(level: float) -> list[Column]:
    return [
        Column("row", "left"),
        Column("n"),
        Column("Δ FLOPs"),
        Column(f"Δ wall-clock, runs {level_label(level)}"),
        Column(f"Δ wall-clock, projected {level_label(PROJECTION_LEVEL)}"),
        Column("accuracy % (mean ± sd)"),
        Column(f"Δ accuracy, points {level_label(level)}"),
        Column("gain over random init"),
        Column("verdict", "left"),
    ]


def _summary_note(level: float) -> str:
    return (
        "Δ against the baseline row, paired by seed over the seeds both rows completed: each "
        "seed's run against the baseline's run of the same seed. FLOPs: the runs' model "
        "FLOPs, in % of the baseline's. Wall-clock, runs: a fraction of the baseline's "
        f"(runs whose wall-clock is comparable), mean and two-sided {100 * level:g}% "
        "Student's t interval; the baseline shows its mean seconds. Projected: the whole "
        "run's wall-clock from `diffbench time`'s projection (its "
        f"{100 * PROJECTION_LEVEL:g}% interval: the projection section says how it was "
        "made), when the grid asked for one. "
        "Accuracy: the probe's, in points. Gain over random init and verdicts: the tables "
        'below. "k/n pairs split": k of the n pairs ran in different invocations of the '
        "grid (`--rows` waves, a resumed grid), so the machine's drift between the "
        "invocations is part of their delta; the projection, measured interleaved, is not "
        "affected."
    )


def _projected_cell(group: RowGroup, mapped: RowProjection | None) -> str:
    """The baseline's projected seconds, another row's projected delta with its interval
    (a projection's time_saving is positive for a saving: shown as a negative delta); a
    row projected as another recipe says which."""
    projected = None if mapped is None else mapped.row
    if projected is None:
        return DASH
    shared = f" ({mapped.note})" if mapped is not None and mapped.note else ""
    if group.baseline:
        return f"{projected.projected_seconds:,.0f} s" + shared
    if projected.baseline:  # the baseline's own recipe, e.g. a noise-floor copy's
        return "0.0%" + shared
    if projected.time_saving is None:
        return DASH
    return (
        _fraction_interval(
            -projected.time_saving,
            -(projected.time_saving_ci_high or 0.0),
            -(projected.time_saving_ci_low or 0.0),
        )
        + shared
    )


def _wall_clock_cell(group: RowGroup, delta: PairedDeltas | None) -> str:
    """The baseline's mean seconds, another row's paired wall-clock delta (and split note)."""
    if group.baseline:
        wall = group.mean("wall_clock_seconds")
        return f"{wall:,.0f} s" if wall is not None else DASH
    if delta is None:
        return DASH
    interval = _fraction_interval(
        delta.wall_clock_delta_mean, delta.wall_clock_delta_low, delta.wall_clock_delta_high
    )
    return interval + _split_note(delta)


def _accuracy_delta_cell(group: RowGroup, delta: PairedDeltas | None) -> str:
    if group.baseline or delta is None or delta.accuracy_delta_points_mean is None:
        return DASH
    text = signed(delta.accuracy_delta_points_mean, 1, "")
    if delta.accuracy_delta_points_low is None:
        return text
    low = signed(delta.accuracy_delta_points_low, 1, "")
    return f"{text} [{low}, {signed(delta.accuracy_delta_points_high, 1, '')}]"


def _gain_cell(gain: ControlGain | None) -> str:
    if gain is None or gain.gain_points is None:
        return DASH
    return signed(gain.gain_points, 1, "") + (" (below the bar)" if gain.passes is False else "")


def _verdicts(results: GridResults, copies: set[str]) -> dict[str, list[str]]:
    """Per candidate row, its comparisons' verdicts: the primary endpoint's when the grid
    has one (``statistics.primary``), else the probe accuracy's; none for ``copies``."""
    verdicts: dict[str, list[str]] = {}
    primary = [e for e in results.endpoints if e.role == "primary" and e.candidate not in copies]
    for e in primary:
        text = f"vs {e.reference}: {e.verdict} ({endpoint_label(e)})"
        verdicts.setdefault(e.candidate, []).append(text)
    for c in [] if primary else [c for c in results.comparisons if c.candidate not in copies]:
        verdicts.setdefault(c.candidate, []).append(f"vs {c.reference}: {c.verdict}")
    return verdicts


def _row_cell(group: RowGroup, copy: str | None) -> str:
    """The row's name, "(baseline)" or what it is a copy of."""
    if copy is not None:
        return f"{group.name} ({copy})"
    return group.name + (" (baseline)" if group.baseline else "")


def summary_table(
    rows: list[RowGroup],
    base: RowGroup | None,
    results: GridResults,
    projection: list[WholeRunRow] | None = None,
    floors: list[RowNoiseFloor] | None = None,
) -> Table:
    """One line per row: FLOPs, measured wall-clock (paired by seed), projected whole-run
    wall-clock, accuracy, its gain over random init and the verdicts it is the candidate of
    (a noise-floor copy: labelled, no accuracy delta, gain or verdict). ``floors``: the
    grid's noise floors (measured here when not given)."""
    level = results.statistics.confidence if results.statistics else 0.95
    floors = measure_noise_floors(results.records, level) if floors is None else floors
    deltas = {d.row: d for d in results.paired_deltas}
    gains = {g.row: g for g in results.control_gains}
    mapped = project_rows(results.records, projection)
    verdicts = _verdicts(results, {f.row for f in floors})
    table = Table(
        "summary", "Cost and accuracy per row, with verdicts", _summary_columns(level), []
    )
    for g in rows:
        copy = copy_label(g.name, floors)
        delta, gain = deltas.get(g.name), None if copy else gains.get(g.name)
        projected = mapped.get(g.name)
        accuracy = g.stats("probe.accuracy")
        flops_delta = None if base is None else g.delta(base, "total_flops").mean
        verdict = "; ".join(verdicts.get(g.name, []))
        cells = [
            _row_cell(g, copy),
            str(len(g.done)),
            signed_delta(flops_delta, relative=True),
            _wall_clock_cell(g, delta),
            _projected_cell(g, projected),
            mean_std(accuracy, points, 100),
            DASH if copy else _accuracy_delta_cell(g, delta),
            _gain_cell(gain),
            "no verdict: a noise-floor copy" if copy else verdict or DASH,
        ]
        table.rows.append(TableRow(cells, g.css))
        projected_row = None if projected is None else projected.row
        table.data.append(
            {
                "row": g.name,
                "n": len(g.done),
                "delta_flops_pct": None if flops_delta is None else 100 * flops_delta,
                **({} if delta is None else delta.model_dump(exclude={"row"})),
                "projected_time_saving": None
                if projected_row is None
                else projected_row.time_saving,
                "accuracy_mean": accuracy.mean,
                "accuracy_std": accuracy.sd,
                "gain_over_random_points": None if gain is None else gain.gain_points,
                "verdicts": verdict,
            }
        )
    table.notes += [_summary_note(level), *wall_clock_notes(floors)]
    return table
