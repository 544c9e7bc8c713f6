"""The figures the repository's prose quotes, each computed from results stored in the
repository (``bench.report.quotes`` explains the blocks). Keys are ``<report>/<figure>``;
``QUOTED`` is the registry. Rewrite every block of some documents with::

    python -m bench.report.quoted README.md reports/pilot-difficulty/README.md
"""

from __future__ import annotations

import math
import sys
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bench.report.quoted_tta import plain, register_table2_tta, signed
from bench.report.quoted_wallclock import projection_rows, register_wallclock
from bench.report.quotes import QuoteFunction, Registry, refresh_files

PILOT = Path("reports/pilot-difficulty/summary.json")
ATEN_CALLS = Path("reports/table2/aten-calls.json")
TABLE2 = Path("reports/table2")


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FinalAccuracy(_Read):
    """One row's final probe accuracy (%) over seeds at one difficulty."""

    n: int
    mean: float
    sd: float | None
    by_seed: dict[str, float]
    ci95: tuple[float, float] | None = None
    gain_over_random: float | None = None
    gain_ci95: tuple[float, float] | None = None


class CurvePoint(_Read):
    samples: int
    flops: int
    wall_clock_seconds: float
    accuracy: float


class TargetFigures(_Read):
    """Time to one target on one axis: how many runs reached it, the per-seed ratios
    DiffMAViL / MAViL, their log spread, the smallest ratio 6 pairs detect."""

    reached: dict[str, int]
    ratios: list[float]
    log_ratio_sd: float | None
    detectable_ratio_6: float | None


class AreaFigures(_Read):
    deltas: list[float]
    sd: float


class AreaByAxis(_Read):
    flops: AreaFigures
    samples: AreaFigures


class DesignFigures(_Read):
    final_deltas: list[float]
    final_delta_mean: float
    final_delta_sd: float
    final_delta_sd_ucb80: float
    detectable_beyond_margin_6: float
    detectable_beyond_margin_6_ucb: float
    targets: dict[str, TargetFigures]
    auc: AreaByAxis


class PilotSummary(_Read):
    """``reports/pilot-difficulty/summary.json``, written by that report's ``pilot.py``."""

    difficulties: dict[str, dict[str, FinalAccuracy]]
    curves: dict[str, list[CurvePoint]]
    design: DesignFigures
    finetune: dict[str, dict[str, float]]


class AtenCount(_Read):
    variant: str
    preset: str
    component: str
    phase: str
    batch_size: int
    audio_mask_ratio: float | None
    video_mask_ratio: float | None
    aten_ops: int


class AtenCalls(_Read):
    """``reports/table2/aten-calls.json``: ATen calls per train-step phase and variant."""

    what: str
    command: str
    date: str | None
    torch: str | None
    git_commit: str | None
    rows: list[AtenCount]


@cache
def aten_calls(root: Path) -> AtenCalls:
    return AtenCalls.model_validate_json((root / ATEN_CALLS).read_text())


def _aten(root: Path, variant: str, phase: str) -> str:
    rows = aten_calls(root).rows
    (count,) = [r.aten_ops for r in rows if r.variant == variant and r.phase == phase]
    return f"{count:,}"


@cache
def pilot(root: Path) -> PilotSummary:
    return PilotSummary.model_validate_json((root / PILOT).read_text())


def _final(root: Path, difficulty: str, row: str) -> str:
    entry = pilot(root).difficulties[difficulty][row]
    sd = "" if entry.sd is None else f" ± {plain(entry.sd)}"
    return f"{plain(entry.mean)}{sd}% (n = {entry.n})"


def _gain(root: Path, difficulty: str, row: str) -> str:
    entry = pilot(root).difficulties[difficulty][row]
    assert entry.gain_over_random is not None and entry.gain_ci95 is not None
    low, high = entry.gain_ci95
    return f"{signed(entry.gain_over_random)} [{signed(low)}, {signed(high)}]"


def _target(root: Path, key: str) -> str:
    figures = pilot(root).design.targets[key]
    ratios = ", ".join(plain(r, 2) for r in figures.ratios)
    reached = figures.reached
    return f"{ratios} (reached: DiffMAViL {reached['diffmavil']}/3, MAViL {reached['mavil']}/3)"


def _detectable_ratio(root: Path, key: str) -> str:
    ratio = pilot(root).design.targets[key].detectable_ratio_6
    return "—" if ratio is None else plain(ratio, 2)


def _finetune(root: Path, row: str) -> str:
    import statistics

    values = list(pilot(root).finetune.get(row, {}).values())
    if not values:
        return "not measured"
    spread = f" ± {plain(statistics.stdev(values))}" if len(values) > 1 else ""
    return f"{plain(statistics.mean(values))}{spread}% (n = {len(values)})"


def _curve_table(root: Path) -> str:
    """Mean probe accuracy (min-max over seeds) at each snapshot, per row, as markdown."""
    import statistics

    curves = pilot(root).curves
    rows = {"mavil": "MAViL", "diffmavil": "DiffMAViL"}
    points = {row: [c for name, c in curves.items() if name.startswith(f"{row}-s")] for row in rows}
    count = min(len(c) for runs in points.values() for c in runs)
    lines = ["| samples seen | " + " | ".join(rows.values()) + " |", "| ---: | ---: | ---: |"]
    for i in range(count):
        cells = []
        for row in rows:
            values = [run[i].accuracy for run in points[row]]
            low, high = min(values), max(values)
            cells.append(f"{plain(statistics.mean(values))} ({plain(low)}–{plain(high)})")
        samples = points["mavil"][0][i].samples
        lines.append(f"| {samples:,} | " + " | ".join(cells) + " |")
    return "\n" + "\n".join(lines) + "\n"


def _finetune_gain(root: Path, row: str) -> str:
    """The row's fine-tune gain over random init, paired by seed, with its 95% interval."""
    from bench.stats import paired_delta_interval

    finetune = pilot(root).finetune
    gain = paired_delta_interval(
        {int(k): v for k, v in finetune[row].items()},
        {int(k): v for k, v in finetune["random"].items()},
    )
    assert gain.interval is not None
    return f"{signed(gain.mean)} [{signed(gain.interval.low)}, {signed(gain.interval.high)}]"


@cache
def table2_results(root: Path):
    """The committed Table 2's results, read (and judged again) once per process."""
    from bench.migrate import load_grid_results

    return load_grid_results(root / TABLE2 / "results.json")


def _table2_comparison(root: Path, name: str):
    (comparison,) = [c for c in table2_results(root).comparisons if c.name == name]
    return comparison


def _table2_loss(root: Path) -> str:
    """DiffMAViL vs MAViL's probe delta with its one-sided 95% bounds, as the grid judged it."""
    c = _table2_comparison(root, "diffmavil vs mavil")
    assert c.mean_points is not None and c.lower_points is not None
    assert c.upper_points is not None
    return (
        f"{signed(c.mean_points)} points (one-sided {c.confidence:.0%} bounds "
        f"{signed(c.lower_points)} and {signed(c.upper_points)}; {c.verdict})"
    )


def _table2_flop_saving(root: Path) -> str:
    records = table2_results(root).records
    flops = {
        r.row: r.total_flops
        for r in records
        if r.kind == "row" and r.seed == 0 and r.total_flops is not None
    }
    return f"{100 * (1 - flops['diffmavil'] / flops['mavil']):.1f}%"


def _table2_mavil_accuracy(root: Path) -> str:
    """MAViL's mean probe accuracy over its seeds in the committed Table 2."""
    import statistics

    records = table2_results(root).records
    values = [
        100 * r.probe.accuracy
        for r in records
        if r.kind == "row" and r.row == "mavil" and r.probe is not None
    ]
    return f"{statistics.mean(values):.1f}%"


def _table2_projected_saving(root: Path) -> str:
    import json

    from bench.migrate import load_projection
    from bench.schema import WholeRunRow

    path = root / TABLE2 / "whole-run.json"
    projection = load_projection(path, json.loads(path.read_text()))
    (row,) = [r for r in projection.rows if isinstance(r, WholeRunRow) and r.recipe == "diffmavil"]
    assert row.time_saving is not None and row.time_saving_ci_low is not None
    assert row.time_saving_ci_high is not None
    return (
        f"{100 * row.time_saving:.1f}% [{100 * row.time_saving_ci_low:.1f}%, "
        f"{100 * row.time_saving_ci_high:.1f}%]"
    )


class PilotProbe(_Read):
    """One probe of ``reports/pilot-difficulty/probes.json``."""

    key: str
    difficulty: float
    row: str
    seed: int
    samples: int
    probe_seeds: int
    accuracy: float
    probe_accuracies: list[float] | None = None
    seconds: float


@cache
def _idle_seconds(root: Path) -> float:
    from bench.schema import RunSummary

    path = root / PILOT.parent / "idle-pretrain-summary.json"
    summary = RunSummary.model_validate_json(path.read_text())
    assert summary.wall_clock_seconds is not None
    return summary.wall_clock_seconds


def _idle_pretrain(root: Path) -> str:
    return f"{_idle_seconds(root):.0f} s"


# ablations/table2.yaml's pre-trainings, those with curves, interior snapshots per curve,
# fine-tunes and random-init controls (tests/test_quotes.py checks them against the grid).
TABLE2_TTA_COUNTS = (33, 18, 7, 24, 6)


def _grid_budget_hours(root: Path) -> str:
    """The new Table 2's task time on this CPU, from the pilot's measured costs: a
    pre-training (an idle-machine run), a probe with 1 and with 3 probe seeds (the pilot's
    fastest and median probes: the pilot ran beside other work), a fine-tune (a minute)."""
    import json
    import statistics

    stored = json.loads((root / PILOT.parent / "probes.json").read_text())
    probes = [PilotProbe.model_validate(p) for p in stored.values()]
    seconds = {
        seeds: sorted(p.seconds for p in probes if p.probe_seeds == seeds) for seeds in (1, 3)
    }
    runs, curve_runs, interior, finetunes, controls = TABLE2_TTA_COUNTS

    def total(one: float, three: float) -> float:
        return (
            runs * _idle_seconds(root)
            + curve_runs * interior * one
            + (runs + controls) * three
            + finetunes * 60.0
            + 120.0  # the whole-run projection
        )

    low = total(seconds[1][0], seconds[3][0])
    high = total(statistics.median(seconds[1]), statistics.median(seconds[3]))
    return f"{low / 3600:.1f}-{high / 3600:.1f} hours"


HEADLINE = Path("reports/whole-run/headline-base.json")


def _headline_rows(root: Path) -> tuple:
    """The first (one-window, 2026-11-29) base-size headline's rows."""
    return projection_rows(root, HEADLINE)


def _headline_saving(root: Path) -> str:
    """The base-size headline's projected saving and its stored (one-window) interval."""
    _, full = _headline_rows(root)
    assert full.time_saving_ci_low is not None and full.time_saving_ci_high is not None
    return (
        f"−{100 * full.time_saving:.1f}% [−{100 * full.time_saving_ci_high:.1f}%, "
        f"−{100 * full.time_saving_ci_low:.1f}%]"
    )


def _headline_with_interpolation(root: Path) -> str:
    """The headline's saving interval widened by its interpolation error in quadrature
    (``bench.stats.saving_systematic``), as a windowed projection states it."""
    from bench.stats import saving_systematic

    base, full = _headline_rows(root)
    systematic = full.interpolation_error * full.interpolated_share * full.compute_seconds
    half = saving_systematic(full.projected_seconds, base.projected_seconds, systematic, 0.0)
    assert full.time_saving is not None and full.time_saving_ci_low is not None
    assert full.time_saving_ci_high is not None
    low = full.time_saving - math.hypot(full.time_saving - full.time_saving_ci_low, half)
    high = full.time_saving + math.hypot(full.time_saving_ci_high - full.time_saving, half)
    return f"[−{100 * high:.1f}%, −{100 * low:.1f}%]"


def _headline_interpolation(root: Path) -> str:
    _, full = _headline_rows(root)
    return (
        f"{100 * full.interpolation_error:.1f}% on {100 * full.interpolated_share:.1f}% of the "
        f"full recipe's compute"
    )


def _margin(root: Path) -> str:
    """10% of MAViL's pilot error rate at the chosen difficulty, in points."""
    mavil = pilot(root).difficulties["0.5"]["mavil"]
    return plain(0.1 * (100.0 - mavil.mean))


def _registry() -> Registry:
    quotes: dict[str, QuoteFunction] = {}
    for difficulty in ("0.25", "0.5", "0.75"):
        for row in ("mavil", "diffmavil", "random"):
            quotes[f"pilot/final/{difficulty}/{row}"] = lambda r, d=difficulty, w=row: _final(
                r, d, w
            )
        for row in ("mavil", "diffmavil"):
            quotes[f"pilot/gain/{difficulty}/{row}"] = lambda r, d=difficulty, w=row: _gain(r, d, w)
    for target in ("70", "75"):
        for axis in ("samples", "flops"):
            key = f"{target}/{axis}"
            quotes[f"pilot/target/{key}"] = lambda r, k=key: _target(r, k)
            quotes[f"pilot/detectable-ratio/{key}"] = lambda r, k=key: _detectable_ratio(r, k)
    for row in ("mavil", "diffmavil", "random"):
        quotes[f"pilot/finetune/{row}"] = lambda r, w=row: _finetune(r, w)
        if row != "random":
            quotes[f"pilot/finetune-gain/{row}"] = lambda r, w=row: _finetune_gain(r, w)
    design = {
        "final-delta": lambda d: signed(d.final_delta_mean),
        "final-deltas": lambda d: ", ".join(signed(x) for x in d.final_deltas),
        "final-delta-sd": lambda d: plain(d.final_delta_sd),
        "final-delta-sd-ucb": lambda d: plain(d.final_delta_sd_ucb80),
        "detectable": lambda d: plain(d.detectable_beyond_margin_6),
        "detectable-ucb": lambda d: plain(d.detectable_beyond_margin_6_ucb),
        "auc-sd-flops": lambda d: plain(d.auc.flops.sd),
        "auc-sd-samples": lambda d: plain(d.auc.samples.sd),
    }
    for name, figure in design.items():
        quotes[f"pilot/design/{name}"] = lambda r, f=figure: f(pilot(r).design)
    for variant in ("mavil", "diff-self", "cross-attn"):
        for phase in ("step", "forward", "backward", "optimizer"):
            quotes[f"aten/{variant}/{phase}"] = lambda r, v=variant, p=phase: _aten(r, v, p)
    quotes["pilot/margin"] = _margin
    quotes["table2/loss"] = _table2_loss
    quotes["table2-tta/budget"] = _grid_budget_hours
    quotes["pilot/idle-pretrain"] = _idle_pretrain
    quotes["table2/flop-saving"] = _table2_flop_saving
    quotes["table2/mavil-accuracy"] = _table2_mavil_accuracy
    quotes["table2/projected-saving"] = _table2_projected_saving
    quotes["pilot/curve-table"] = _curve_table
    register_table2_tta(quotes)
    register_wallclock(quotes)
    quotes["whole-run/headline-saving"] = _headline_saving
    quotes["whole-run/headline-with-interpolation"] = _headline_with_interpolation
    quotes["whole-run/headline-interpolation"] = _headline_interpolation
    return quotes


QUOTED: Registry = _registry()


def main(paths: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    for path in refresh_files([Path(p) for p in paths], root, QUOTED):
        print(f"{path}: refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
