"""The grid's statistics, computed when its results are written: the confirmatory
comparisons of ``statistics:``, every pre-trained row's gain over its random-init control,
and every row's paired deltas against the baseline row (wall-clock, accuracy).

Both are paired by seed on the probe's accuracy, in points (x100 of the fraction). A
comparison asks "no loss?" (``bench.ablate.non_inferiority.compare_no_loss``) against the grid's
margin; a control check asks whether the row beats its random-init control by at least
``control_gain_points`` with the paired interval above zero. Results are typed
(``bench.schema.Comparison``, ``ControlGain``, ``PairedDeltas``), stored in
``results.json`` and ``aggregate.json``: the report only renders them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from bench.ablate.non_inferiority import compare_no_loss, t_quantile
from bench.requests import StatisticsSpec
from bench.schema import Comparison, ControlGain, GridRecord, PairedDeltas

POINTS = 100.0
Value = TypeVar("Value")


def _accuracy_points(record: GridRecord) -> float | None:
    value = None if record.probe is None else record.probe.accuracy
    return None if value is None else POINTS * float(value)


def _by_seed(
    records: list[GridRecord], row: str, value: Callable[[GridRecord], Value | None]
) -> dict[int, Value]:
    """{seed: value(record)} of ``row``'s completed runs (runs without a value left out)."""
    out: dict[int, Value] = {}
    for record in records:
        if record.row == row and record.status == "completed":
            found = value(record)
            if found is not None:
                out[record.seed] = found
    return out


def _ran_by(record: GridRecord) -> tuple[str, int] | None:
    """(host, pid) of the process that ran ``record``'s run (its ``execution``), if known."""
    execution = record.execution
    return None if execution is None else (execution.host, execution.pid)


def accuracy_by_seed(records: list[GridRecord], row: str) -> dict[int, float]:
    """{seed: probe accuracy in points} of ``row``'s completed runs."""
    return _by_seed(records, row, _accuracy_points)


def _paired(
    candidate: dict[int, float], reference: dict[int, float]
) -> tuple[list[int], list[float], list[float]]:
    seeds = sorted(set(candidate) & set(reference))
    return seeds, [candidate[s] for s in seeds], [reference[s] for s in seeds]


def _comparison(
    name: str,
    candidate: str,
    reference: str,
    records: list[GridRecord],
    spec: StatisticsSpec,
    margin: float,
) -> Comparison:
    seeds, cand, ref = _paired(
        accuracy_by_seed(records, candidate), accuracy_by_seed(records, reference)
    )
    pairs = {
        "name": name,
        "candidate": candidate,
        "reference": reference,
        "n": len(seeds),
        "seeds": seeds,
        "margin_points": margin,
        "confidence": spec.confidence,
    }
    if len(seeds) < 2:  # one pair: its difference, but no interval and no verdict
        mean = cand[0] - ref[0] if seeds else None
        return Comparison(**pairs, verdict="not enough pairs", mean_points=mean)
    result = compare_no_loss(cand, ref, margin, confidence=spec.confidence, power=spec.power)
    return Comparison(
        **pairs,
        verdict=result.verdict,
        mean_points=result.mean,
        sd_points=result.sd,
        lower_points=result.lower,
        upper_points=result.upper,
        method=result.method,
        detectable_points=result.detectable,
        differences_points=[c - r for c, r in zip(cand, ref, strict=True)],
    )


def confirmatory_verdicts(records: list[GridRecord], spec: StatisticsSpec) -> list[Comparison]:
    """One verdict per confirmatory comparison of ``spec`` (rows without completed runs
    give ``not enough pairs``)."""
    return [
        _comparison(
            f"{c.candidate} vs {c.reference}",
            c.candidate,
            c.reference,
            records,
            spec,
            spec.margin_points,
        )
        for c in spec.comparisons
    ]


def _random_control_row(records: list[GridRecord], preset: str | None) -> str | None:
    for record in records:
        if (
            record.kind == "control"
            and record.probe is not None
            and record.probe.init == "random"
            and record.preset == preset
        ):
            return record.row
    return None


def control_gains(records: list[GridRecord], spec: StatisticsSpec) -> list[ControlGain]:
    """Each pre-trained row vs its random-init control (same preset), paired by seed: the
    mean gain in points, its two-sided interval at ``spec.confidence`` and whether the row
    passes (interval above zero and mean gain >= ``control_gain_points``)."""
    rows = list(
        dict.fromkeys(
            r.row
            for r in records
            if r.kind == "row" and r.status == "completed" and _accuracy_points(r) is not None
        )
    )
    out = []
    for row in rows:
        preset = next(r.preset for r in records if r.row == row)
        control = _random_control_row(records, preset)
        if control is None:
            continue
        seeds, trained, untrained = _paired(
            accuracy_by_seed(records, row), accuracy_by_seed(records, control)
        )
        stats = t_interval(
            [a - b for a, b in zip(trained, untrained, strict=True)], spec.confidence
        )
        gain, lower = stats["mean"], stats["low"]
        passes = None if lower is None else bool(lower > 0 and gain >= spec.control_gain_points)
        out.append(
            ControlGain(
                row=row,
                control=control,
                n=len(seeds),
                gain_points=gain,
                lower_points=lower,
                upper_points=stats["high"],
                confidence=spec.confidence,
                required_points=spec.control_gain_points,
                passes=passes,
            )
        )
    return out


def t_interval(values: list[float], confidence: float) -> dict[str, float | None]:
    """Mean, sample sd and the two-sided Student's t interval of the mean."""
    if not values:
        return {"mean": None, "sd": None, "low": None, "high": None}
    mean = float(np.mean(values))
    if len(values) < 2:
        return {"mean": mean, "sd": None, "low": None, "high": None}
    sd = float(np.std(values, ddof=1))
    half = t_quantile((1 + confidence) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def _comparable_wall_clock(record: GridRecord) -> float | None:
    seconds = record.wall_clock_seconds
    comparable = record.wall_clock_comparable is not False
    return float(seconds) if comparable and seconds is not None else None


def paired_deltas(
    records: list[GridRecord], spec: StatisticsSpec | None = None
) -> list[PairedDeltas]:
    """Every row against the baseline row, paired by seed: the wall-clock delta (a
    fraction of the baseline's, per seed: ``row / baseline - 1``; only runs whose
    wall-clock is comparable) and the probe accuracy delta (points), each with its mean,
    sd and two-sided interval. Pairing by seed takes the seed's data order and the
    machine's drift between neighbouring runs out of the comparison, but only within one
    invocation of the grid: ``wall_clock_split_pairs`` counts the pairs whose two runs
    were executed by different processes (``execution``'s host and pid: ``--rows`` waves,
    a grid resumed after an interruption), whose delta carries the drift between them."""
    confidence = (spec or StatisticsSpec()).confidence
    baseline = next((r.row for r in records if r.baseline and r.kind == "row"), None)
    if baseline is None:
        return []
    base_wall = _by_seed(records, baseline, _comparable_wall_clock)
    base_ran_by = _by_seed(records, baseline, _ran_by)
    base_accuracy = accuracy_by_seed(records, baseline)
    rows = dict.fromkeys(r.row for r in records if r.kind == "row")
    out = []
    for row in rows:
        if row == baseline:
            continue
        walls = _by_seed(records, row, _comparable_wall_clock)
        accuracy = accuracy_by_seed(records, row)
        wall_seeds = sorted(set(walls) & set(base_wall))
        accuracy_seeds = sorted(set(accuracy) & set(base_accuracy))
        wall = t_interval([walls[s] / base_wall[s] - 1 for s in wall_seeds], confidence)
        ran_by = _by_seed(records, row, _ran_by)
        split = sum(
            s in ran_by and s in base_ran_by and ran_by[s] != base_ran_by[s] for s in wall_seeds
        )
        points = t_interval([accuracy[s] - base_accuracy[s] for s in accuracy_seeds], confidence)
        out.append(
            PairedDeltas(
                row=row,
                baseline=baseline,
                confidence=confidence,
                wall_clock_pairs=len(wall_seeds),
                wall_clock_split_pairs=split,
                wall_clock_delta_mean=wall["mean"],
                wall_clock_delta_sd=wall["sd"],
                wall_clock_delta_low=wall["low"],
                wall_clock_delta_high=wall["high"],
                accuracy_pairs=len(accuracy_seeds),
                accuracy_delta_points_mean=points["mean"],
                accuracy_delta_points_sd=points["sd"],
                accuracy_delta_points_low=points["low"],
                accuracy_delta_points_high=points["high"],
            )
        )
    return out
