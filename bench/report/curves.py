"""The accuracy curves of a grid (``run.curve``): per row, the probe's accuracy against samples
seen, model FLOPs and timed wall-clock seconds, three panels of one figure, the mean over
seeds with the seeds' range (min to max) as a band, from the random-init control's accuracy
at 0; the accuracy targets as dotted lines. The table behind it (one line per row and
snapshot, the start included) is written as CSV beside it.

A row's snapshots are at the same samples on every seed (a row's plan does not depend on
its seed): the points of a row are grouped by samples seen, and a group's FLOPs and
wall-clock are the seeds' means (wall-clock: every run with a curve, as measured)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.document import Plot
from bench.report.format import si_scale
from bench.report.groups import RowGroup
from bench.schema import GridRecord
from bench.schema.time_to_accuracy import curve_of

POINTS = 100.0
PANELS = (
    ("samples", "samples seen"),
    ("flops", "pre-training model FLOPs, fwd+bwd"),
    ("wall_clock", "pre-training wall-clock (timed seconds)"),
)


@dataclass(frozen=True)
class MeanPoint:
    """A row's accuracy (points) at one snapshot, over the seeds that have it: the mean
    and the range; the snapshot's samples, mean FLOPs and mean wall-clock seconds."""

    samples: float
    flops: float
    wall_clock: float
    mean: float
    low: float
    high: float
    n: int

    def x(self, axis: str) -> float:
        if axis == "samples":
            return self.samples
        return self.flops if axis == "flops" else self.wall_clock


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def mean_curve(records: list[GridRecord], start: list[float]) -> list[MeanPoint]:
    """A row's mean curve over its seeds, from ``start`` (the random-init control's
    accuracies, points: the curve's value at 0) when there are any."""
    by_samples: dict[int, list] = {}
    for record in records:
        for point in curve_of(record):
            by_samples.setdefault(point.samples, []).append(point)
    curve = []
    if start:
        curve.append(MeanPoint(0.0, 0.0, 0.0, _mean(start), min(start), max(start), len(start)))
    for samples in sorted(by_samples):
        points = by_samples[samples]
        accuracy = [POINTS * (p.accuracy or 0.0) for p in points]
        curve.append(
            MeanPoint(
                float(samples),
                _mean([float(p.flops) for p in points]),
                _mean([p.wall_clock_seconds for p in points]),
                _mean(accuracy),
                min(accuracy),
                max(accuracy),
                len(points),
            )
        )
    return curve


def curves_plot(
    key: str, curves: list[tuple[RowGroup, list[MeanPoint]]], targets: list[float]
) -> Plot | str:
    """Three panels (samples, FLOPs, wall-clock) of each row's mean curve and its band; one
    legend below the panels names every row and target (no label over the data)."""
    curves = [(g, c) for g, c in curves if any(p.samples > 0 for p in c)]
    if not curves:
        return "no probed snapshots in these results"
    from bench.report.plots import _colours, _figure, _png

    figure, axes = _figure(14.0, 4.6, 1, len(PANELS))
    scale, prefix = si_scale(max(p.flops for _, c in curves for p in c) or 1.0)
    for ax, (axis, label) in zip(axes[0], PANELS, strict=True):
        divide = scale if axis == "flops" else 1.0
        for colour, (group, curve) in zip(_colours(len(curves)), curves, strict=True):
            xs = [p.x(axis) / divide for p in curve]
            ax.fill_between(
                xs,
                [p.low for p in curve],
                [p.high for p in curve],
                color=colour,
                alpha=0.18,
                linewidth=0,
            )
            ax.plot(xs, [p.mean for p in curve], color=colour, marker=".", label=group.name)
        for target in targets:
            ax.axhline(
                target, color="#777777", linestyle=":", linewidth=1, label=f"target {target:g}%"
            )
        unit = f" ({prefix}FLOPs)" if axis == "flops" and prefix else ""
        ax.set(xlabel=label + unit, ylabel="probe accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(6, len(labels)),
        fontsize=8,
        frameon=False,
    )
    data = [
        {
            "row": group.name,
            "samples": p.samples,
            "flops": p.flops,
            "wall_clock_seconds": p.wall_clock,
            "accuracy_mean": p.mean,
            "accuracy_min": p.low,
            "accuracy_max": p.high,
            "n": p.n,
        }
        for group, curve in curves
        for p in curve
    ]
    return Plot(key, "Accuracy against samples, FLOPs and wall-clock", "", _png(figure), data)
