"""The quoted figures of the time-to-accuracy Table 2 (``ablations/table2.yaml``; its report
and results in ``reports/table2-tta``), registered into ``bench.report.quoted.QUOTED``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bench.report.format import signed as format_signed
from bench.report.quotes import QuoteFunction


def signed(value: float, digits: int = 1) -> str:
    """``+1.2`` / ``−1.2`` / ``0.0``: ``bench.report.format.signed`` without a unit."""
    return format_signed(value, digits, unit="")


def plain(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


TABLE2_TTA = Path("reports/table2-tta")
COMPARISONS = {"vs-mavil": "diffmavil vs mavil", "vs-matched": "diffmavil vs mavil@diffmavil-flops"}


@cache
def tta_results(root: Path):
    """The time-to-accuracy Table 2's results (``ablations/table2.yaml``), read once."""
    from bench.migrate import load_grid_results

    return load_grid_results(root / TABLE2_TTA / "results.json")


def _tta_endpoint(root: Path, comparison: str, endpoint: str, target: float | None = None):
    (found,) = [
        e
        for e in tta_results(root).endpoints
        if e.comparison == COMPARISONS[comparison] and e.endpoint == endpoint and e.target == target
    ]
    return found


def _tta_primary(root: Path, comparison: str) -> str:
    """The primary endpoint (final probe, points) with its one-sided bounds and verdict."""
    e = _tta_endpoint(root, comparison, "final_probe")
    assert e.estimate is not None and e.low is not None and e.high is not None
    return (
        f"{signed(e.estimate)} points (one-sided {e.level:.0%} bounds {signed(e.low)} and "
        f"{signed(e.high)}, {e.n} pairs): {e.verdict}"
    )


def _tta_points(root: Path, comparison: str, endpoint: str) -> str:
    """A descriptive accuracy endpoint (points) with its two-sided interval."""
    e = _tta_endpoint(root, comparison, endpoint)
    if e.estimate is None or e.low is None or e.high is None:
        return f"not estimated ({e.n} pairs)"
    return f"{signed(e.estimate)} [{signed(e.low)}, {signed(e.high)}] points ({e.level:.0%})"


def _tta_ratio(root: Path, comparison: str, endpoint: str, target: float) -> str:
    """A time-to-target ratio with its interval, or the counts that reached the target."""
    e = _tta_endpoint(root, comparison, endpoint, target)
    if e.estimate is None or e.low is None or e.high is None:
        reached = len(e.reached_both or [])
        return f"not estimated: {reached} of {e.n} pairs reached {target:g}% on both sides"
    return f"{e.estimate:.2f} [{e.low:.2f}, {e.high:.2f}] ({e.level:.0%}, {e.n} pairs)"


def _tta_final(root: Path, row: str) -> str:
    """A row's final probe accuracy, mean ± sd over its seeds (%)."""
    import statistics

    values = [
        100 * r.probe.accuracy
        for r in tta_results(root).records
        if r.row == row and r.status == "completed" and r.probe is not None
    ]
    sd = f" ± {plain(statistics.stdev(values))}" if len(values) > 1 else ""
    return f"{plain(statistics.mean(values))}{sd}% (n = {len(values)})"


TTA_ROWS = {
    "mavil": "mavil",
    "diffmavil": "diffmavil",
    "matched": "mavil@diffmavil-flops",
    "diff-self": "diff-self",
    "cross-attn": "cross-attn",
    "curriculum": "cross-attn+curriculum",
    "random": "control: random-init",
}


def _tta_projection(root: Path):
    import json

    from bench.migrate import load_projection
    from bench.report.projection_validation import project_rows

    path = root / TABLE2_TTA / "whole-run.json"
    rows = load_projection(path, json.loads(path.read_text())).whole_run_rows
    return project_rows(tta_results(root).records, rows)


def _tta_validation(root: Path, row: str) -> str:
    """The pre-registered rule on a confirmatory row: its runs against its projection."""
    from bench.report.projection_validation import row_validations

    (checked,) = [
        v for v in row_validations(tta_results(root), _tta_projection(root), set()) if v.row == row
    ]
    assert checked.median_error is not None and checked.min_error is not None
    assert checked.max_error is not None
    return (
        f"median error {signed(100 * checked.median_error)}% (runs "
        f"{signed(100 * checked.min_error)}% to {signed(100 * checked.max_error)}%, "
        f"{checked.runs} runs): {checked.verdict}"
    )


def _tta_saving_check(root: Path) -> str:
    """DiffMAViL vs MAViL: the measured saving against the projected interval."""
    from bench.report.projection_validation import saving_checks

    checks = saving_checks(tta_results(root), _tta_projection(root), set())
    (found,) = [c for c in checks if c.check.comparison == "diffmavil vs mavil"]
    measured, projected = found.check.measured, found.check.projected
    assert measured is not None and projected is not None
    assert measured.low is not None and measured.high is not None
    assert projected.low is not None and projected.high is not None
    inside = "inside" if found.check.inside else "outside"

    def text(saving) -> str:
        return (
            f"{plain(100 * saving.estimate)}% [{plain(100 * saving.low)}%, "
            f"{plain(100 * saving.high)}%]"
        )

    return f"measured {text(measured)}, projected {text(projected)}: {inside}"


def _tta_noise_floor(root: Path) -> str:
    """MAViL against its replica, paired by seed, as the report measures it."""
    from bench.report.noise_floor import measure_noise_floors

    (found,) = measure_noise_floors(tta_results(root).records)
    assert found.floor is not None
    return f"{100 * found.floor.floor:.1f}% ({found.pairs} pairs)"


def register_table2_tta(quotes: dict[str, QuoteFunction]) -> None:
    """Add the grid's keys: primary verdicts, descriptive endpoints, time-to-target ratios,
    final accuracies, the projection's validation and the noise floor."""
    for short in COMPARISONS:
        quotes[f"table2-tta/primary/{short}"] = lambda r, c=short: _tta_primary(r, c)
        for endpoint in ("auc_flops", "final_finetune"):
            key = f"table2-tta/{endpoint}/{short}"
            quotes[key] = lambda r, c=short, e=endpoint: _tta_points(r, c, e)
        for target in (70.0, 75.0):
            for endpoint in ("samples_to_target", "flops_to_target", "wall_clock_to_target"):
                key = f"table2-tta/{endpoint}/{target:g}/{short}"
                quotes[key] = lambda r, c=short, e=endpoint, t=target: _tta_ratio(r, c, e, t)
    for short, row in TTA_ROWS.items():
        quotes[f"table2-tta/final/{short}"] = lambda r, w=row: _tta_final(r, w)
        if short in ("mavil", "diffmavil", "matched"):
            quotes[f"table2-tta/validation/{short}"] = lambda r, w=row: _tta_validation(r, w)
    quotes["table2-tta/saving-check"] = _tta_saving_check
    quotes["table2-tta/noise-floor"] = _tta_noise_floor
