"""The grid's statistics, computed when its results are written: the confirmatory
comparisons of ``statistics:``, every pre-trained row's gain over its random-init control,
and every row's paired deltas against the baseline row (wall-clock, accuracy).

Both are paired by seed on the probe's accuracy, in points (x100 of the fraction). A
comparison asks "no loss?" (``bench.ablate.verdicts.compare_no_loss``) against the grid's
margin; a control check asks whether the row beats its random-init control by at least
``control_gain_points`` with the paired interval above zero. Results are plain dicts, stored
in ``results.json`` and ``aggregate.json`` (``comparisons``, ``control_gains``,
``paired_deltas``): the report only renders them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bench.ablate.verdicts import compare_no_loss, t_quantile
from bench.requests import StatisticsSpec

POINTS = 100.0


def _accuracy_points(record: Mapping[str, Any]) -> float | None:
    value = (record.get("probe") or {}).get("accuracy")
    return None if value is None else POINTS * float(value)


def _by_seed(
    records: list[dict[str, Any]], row: str, value: Callable[[Mapping[str, Any]], Any]
) -> dict[int, Any]:
    """{seed: value(record)} of ``row``'s completed runs (runs without a value left out)."""
    out: dict[int, Any] = {}
    for record in records:
        if record.get("row") == row and record.get("status") == "completed":
            found = value(record)
            if found is not None:
                out[int(record["seed"])] = found
    return out


def _executor(record: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """(host, pid) of the process that ran ``record``'s run (its ``execution``), if known."""
    execution = record.get("execution") or {}
    pid = execution.get("pid")
    return None if pid is None else (execution.get("host"), pid)


def accuracy_by_seed(records: list[dict[str, Any]], row: str) -> dict[int, float]:
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
    records: list[dict[str, Any]],
    spec: StatisticsSpec,
    margin: float,
) -> dict[str, Any]:
    seeds, cand, ref = _paired(
        accuracy_by_seed(records, candidate), accuracy_by_seed(records, reference)
    )
    out: dict[str, Any] = {
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
        return {**out, "verdict": "not enough pairs", "mean_points": mean}
    result = compare_no_loss(cand, ref, margin, confidence=spec.confidence, power=spec.power)
    return {
        **out,
        "verdict": result.verdict,
        "mean_points": result.mean,
        "sd_points": result.sd,
        "lower_points": result.lower,
        "upper_points": result.upper,
        "method": result.method,
        "detectable_points": result.detectable,
        "differences_points": [c - r for c, r in zip(cand, ref, strict=True)],
    }


def comparisons(records: list[dict[str, Any]], spec: StatisticsSpec) -> list[dict[str, Any]]:
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


def _random_control_row(records: list[dict[str, Any]], preset: str | None) -> str | None:
    for record in records:
        if (
            record.get("kind") == "control"
            and (record.get("probe") or {}).get("init") == "random"
            and record.get("preset") == preset
        ):
            return str(record["row"])
    return None


def control_gains(records: list[dict[str, Any]], spec: StatisticsSpec) -> list[dict[str, Any]]:
    """Each pre-trained row vs its random-init control (same preset), paired by seed: the
    mean gain in points, its two-sided interval at ``spec.confidence`` and whether the row
    passes (interval above zero and mean gain >= ``control_gain_points``)."""
    rows = list(
        dict.fromkeys(
            str(r["row"])
            for r in records
            if r.get("kind") == "row"
            and r.get("status") == "completed"
            and _accuracy_points(r) is not None
        )
    )
    out = []
    for row in rows:
        preset = next(r.get("preset") for r in records if r.get("row") == row)
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
            {
                "row": row,
                "control": control,
                "n": len(seeds),
                "gain_points": gain,
                "lower_points": lower,
                "upper_points": stats["high"],
                "confidence": spec.confidence,
                "required_points": spec.control_gain_points,
                "passes": passes,
            }
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


def paired_deltas(
    records: list[dict[str, Any]], spec: StatisticsSpec | None = None
) -> list[dict[str, Any]]:
    """Every row against the baseline row, paired by seed: the wall-clock delta (a
    fraction of the baseline's, per seed: ``row / baseline - 1``; only runs whose
    wall-clock is comparable) and the probe accuracy delta (points), each with its mean,
    sd and two-sided interval. Pairing by seed takes the seed's data order and the
    machine's drift between neighbouring runs out of the comparison, but only within one
    invocation of the grid: ``wall_clock_split_pairs`` counts the pairs whose two runs
    were executed by different processes (``execution``'s host and pid: ``--rows`` waves,
    a grid resumed after an interruption), whose delta carries the drift between them."""
    confidence = (spec or StatisticsSpec()).confidence
    baseline = next(
        (str(r["row"]) for r in records if r.get("baseline") and r.get("kind") == "row"), None
    )
    if baseline is None:
        return []

    def wall(record: dict[str, Any]) -> float | None:
        seconds = record.get("wall_clock_seconds")
        comparable = record.get("wall_clock_comparable", True) is not False
        return float(seconds) if comparable and seconds is not None else None

    base_wall = _by_seed(records, baseline, wall)
    base_ran_by = _by_seed(records, baseline, _executor)
    base_accuracy = accuracy_by_seed(records, baseline)
    rows = dict.fromkeys(str(r["row"]) for r in records if r.get("kind") == "row")
    out = []
    for row in rows:
        if row == baseline:
            continue
        walls = _by_seed(records, row, wall)
        accuracy = accuracy_by_seed(records, row)
        wall_seeds = sorted(set(walls) & set(base_wall))
        accuracy_seeds = sorted(set(accuracy) & set(base_accuracy))
        wall_stats = t_interval([walls[s] / base_wall[s] - 1 for s in wall_seeds], confidence)
        ran_by = _by_seed(records, row, _executor)
        split = sum(
            s in ran_by and s in base_ran_by and ran_by[s] != base_ran_by[s] for s in wall_seeds
        )
        accuracy_stats = t_interval(
            [accuracy[s] - base_accuracy[s] for s in accuracy_seeds], confidence
        )
        out.append(
            {
                "row": row,
                "baseline": baseline,
                "confidence": confidence,
                "wall_clock_pairs": len(wall_seeds),
                "wall_clock_split_pairs": split,
                **{f"wall_clock_delta_{k}": v for k, v in wall_stats.items()},
                "accuracy_pairs": len(accuracy_seeds),
                **{f"accuracy_delta_points_{k}": v for k, v in accuracy_stats.items()},
            }
        )
    return out
