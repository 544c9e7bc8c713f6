"""The report's scatter figures name their points in a legend beside the axes (no label
drawn on the data, so none overlaps another) and draw points that share an x side by side;
the saving figure draws each wall-clock saving's interval. The data behind them keeps the
true values."""

from __future__ import annotations

import pytest

from bench.report import plots


@pytest.fixture
def figures(monkeypatch) -> list:
    drawn: list = []

    def keep(figure) -> bytes:
        drawn.append(figure)
        return b"png"

    monkeypatch.setattr(plots, "_png", keep)
    return drawn


def _legend_outside(figure) -> list[str]:
    """The legend's labels, after checking it lies right of the axes."""
    (ax,) = figure.axes
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    legend = ax.get_legend()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert len(ax.texts) == 0  # no annotation on the data
    return [text.get_text() for text in legend.get_texts()]


def test_saving_scatter_names_points_in_the_legend_with_their_intervals(figures):
    points = [
        plots.SavingPoint("cross-attn+curriculum (3 pairs)", 0.2267, 0.169, -0.065, 0.404),
        plots.SavingPoint("diffmavil (6 pairs)", 0.2266, 0.138, 0.068, 0.208),
        plots.SavingPoint("cross-attn (3 pairs)", 0.148, 0.133, 0.011, 0.255),
        plots.SavingPoint("not timed", 0.1, None),
    ]
    plot = plots.saving_scatter("k", "title", points)
    assert isinstance(plot, plots.Plot)
    (figure,) = figures
    assert _legend_outside(figure) == ["time = FLOPs", *(p.label for p in points[:3])]
    (ax,) = figure.axes
    containers = ax.containers  # one errorbar per point: (marker, caps, bars)
    xs = [container.lines[0].get_xdata()[0] for container in containers]
    assert xs[0] < 22.67 < xs[1] and xs[1] - xs[0] > 0.5  # the same FLOP saving, apart
    bars = containers[1].lines[2][0].get_segments()[0]
    assert [round(y, 1) for _, y in bars] == [6.8, 20.8]  # diffmavil's interval, in %
    assert plot.data[1] == {
        "label": "diffmavil (6 pairs)",
        "flop_saving": 0.2266,
        "time_saving": 0.138,
        "time_saving_low": 0.068,
        "time_saving_high": 0.208,
    }


def test_accuracy_vs_flops_names_points_in_the_legend_with_intervals_inside_100(figures):
    points = [
        plots.AccuracyPoint("mavil", 7.3e12, 0.987, 0.005, 6, 0.981, 0.991, baseline=True),
        plots.AccuracyPoint("diffmavil", 5.68e12, 0.957, 0.013, 6, 0.941, 0.969),
        plots.AccuracyPoint("matched", 5.68e12, 0.979, 0.009, 6, 0.968, 0.987, matched=True),
    ]
    controls = [plots.ControlLine("control: random-init", 0.611, 0.037, 6)]
    plot = plots.accuracy_vs_flops("k", points, controls, "accuracy")
    assert isinstance(plot, plots.Plot)
    (figure,) = figures
    assert _legend_outside(figure) == [
        "control: random-init (no pre-training): 61.1",
        "mavil",
        "diffmavil",
        "matched (compute-matched)",
    ]
    (ax,) = figure.axes
    tops = [c.lines[2][0].get_segments()[0][1][1] for c in ax.containers]
    assert max(tops) <= 100.0
    xs = [c.lines[0].get_xdata()[0] for c in ax.containers]
    assert xs[1] != xs[2]  # two rows at one FLOP count, side by side
    assert plot.data[1]["accuracy_ci_high"] == 0.969
