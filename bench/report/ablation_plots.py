"""The figures of an ablation grid's section: FLOPs per component, schedules, throughput,
loss curves, accuracy vs FLOPs, wall-clock saving vs FLOP saving."""

from __future__ import annotations

from bench.report import plots
from bench.report.document import Section, add_plot
from bench.report.groups import LEVEL, RowGroup
from bench.report.load import Ablation
from bench.report.run_log import LoggedStep
from diffmavil.config import COMPONENTS


def _series(groups: list[RowGroup], metrics: dict[str, list[LoggedStep]]) -> list[plots.Series]:
    out = []
    for g in groups:
        for record in sorted(g.done, key=lambda r: r.seed):
            rows = metrics.get(record.run_id) or []
            if rows:
                out.append(plots.Series(g.name, record.batch or "", rows))
                break
    return out


def ablation_plots(
    section: Section,
    ablation: Ablation,
    rows: list[RowGroup],
    controls: list[RowGroup],
    base: RowGroup | None,
    metric: str | None,
) -> None:
    key = section.key
    bars = [(g.name, {c: g.mean(f"flops.{c}") or 0 for c in COMPONENTS}) for g in rows]
    add_plot(
        section,
        "FLOPs per component",
        plots.flops_stacked(f"{key}-flops-by-component", "Pre-training FLOPs per component", bars),
    )
    series = _series(rows, ablation.metrics)
    add_plot(
        section,
        "Schedules",
        plots.schedules(f"{key}-schedules", series),
        "Mask ratios and batch size actually used per logged step (first seed).",
    )
    add_plot(
        section,
        "Throughput",
        plots.throughput(f"{key}-throughput", series),
        "Adaptive batch changes utilisation (wall-clock), not total FLOPs.",
    )
    add_plot(section, "Loss curves", plots.loss_curves(f"{key}-loss", series))
    if metric is None:
        section.skipped.append("Accuracy vs FLOPs: skipped (no downstream metric in these results)")
    else:
        _accuracy_plot(section, rows, controls, metric)
    _saving_plot(section, rows, base)


def _accuracy_plot(
    section: Section, rows: list[RowGroup], controls: list[RowGroup], metric: str
) -> None:
    points = []
    for g in rows:
        stats = g.stats(f"probe.{metric}")
        interval = g.accuracy(f"probe.{metric}")
        points.append(
            plots.AccuracyPoint(
                g.name,
                g.mean("total_flops"),
                stats.mean,
                stats.sd,
                stats.n,
                low=None if interval is None else interval.low / 100,
                high=None if interval is None else interval.high / 100,
                matched=bool(g.matched),
                baseline=g.baseline,
            )
        )
    lines = []
    for g in controls:
        stats = g.stats(f"probe.{metric}")
        if stats.mean is not None:
            lines.append(plots.ControlLine(g.name, stats.mean, stats.sd, stats.n))
    add_plot(
        section,
        "Accuracy vs FLOPs",
        plots.accuracy_vs_flops(f"{section.key}-accuracy-vs-flops", points, lines, metric),
        f"Bars: the {100 * LEVEL:g}% interval of the mean over seeds (inside [0, 100]). The "
        "starred point is the compute-matched control: MAViL trained on the FLOP budget "
        "another row used.",
    )


def _saving_plot(section: Section, rows: list[RowGroup], base: RowGroup | None) -> None:
    """Each row's wall-clock saving against its FLOP saving, both paired by seed against
    the baseline row (the wall-clock with its interval)."""
    savings = []
    for g in rows if base is not None else []:
        if g is base or g.matched:
            continue
        flops, wall = g.delta(base, "total_flops"), g.delta(base, "wall_clock_seconds")
        if flops.mean is None or wall.mean is None:
            continue
        interval = wall.interval
        savings.append(
            plots.SavingPoint(
                f"{g.name} ({wall.pairing.n} pairs)",
                -flops.mean,
                -wall.mean,
                time_low=None if interval is None else -interval.high,
                time_high=None if interval is None else -interval.low,
            )
        )
    add_plot(
        section,
        "Time saving vs FLOP saving",
        plots.saving_scatter(
            f"{section.key}-time-vs-flop-saving",
            "Wall-clock saving vs FLOP saving per row",
            savings,
        ),
        "Savings paired by seed against the baseline row's run of the same seed, over the "
        f"seeds both completed (wall-clock: comparable runs); bars: the {100 * LEVEL:g}% "
        "interval of the wall-clock saving. Above the diagonal: wall-clock falls faster than "
        "FLOPs; below: slower.",
    )
