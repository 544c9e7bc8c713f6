"""The grid's statistics, computed when its results are written: the confirmatory
comparisons of ``statistics:`` and every pre-trained row's gain over its random-init control.

Both are paired by seed on the probe's accuracy, in points (x100 of the fraction). A
comparison asks "no loss?" (``bench.ablate.verdicts.compare_no_loss``) against the grid's
margin; a control check asks whether the row beats its random-init control by at least
``control_gain_points`` with the paired interval above zero. Results are plain dicts, stored
in ``aggregate.json`` (``comparisons``, ``control_gains``): the report only renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.ablate.verdicts import compare_no_loss
from bench.requests import StatisticsSpec

POINTS = 100.0


def _accuracy(record: Mapping[str, Any]) -> float | None:
    if record.get("status") != "completed":
        return None
    value = (record.get("probe") or {}).get("accuracy")
    return None if value is None else POINTS * float(value)


def accuracy_by_seed(records: list[dict[str, Any]], row: str) -> dict[int, float]:
    """{seed: probe accuracy in points} of ``row``'s completed runs."""
    out: dict[int, float] = {}
    for record in records:
        if record.get("row") == row:
            accuracy = _accuracy(record)
            if accuracy is not None:
                out[int(record["seed"])] = accuracy
    return out


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
    if len(seeds) < 2:
        return {**out, "verdict": "not enough pairs", "mean_points": None}
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
            str(r["row"]) for r in records if r.get("kind") == "row" and _accuracy(r) is not None
        )
    )
    out = []
    for row in rows:
        preset = next(r.get("preset") for r in records if r.get("row") == row)
        control = _random_control_row(records, preset)
        if control is None:
            continue
        # "no loss" with margin 0 gives the one-sided bounds; two-sided at confidence c
        # uses the one-sided bounds at (1 + c) / 2
        judged = _comparison(
            f"{row} vs {control}",
            row,
            control,
            records,
            spec.model_copy(update={"confidence": (1 + spec.confidence) / 2}),
            0.0,
        )
        gain = judged.get("mean_points")
        lower = judged.get("lower_points")
        passes = None if gain is None else bool(lower > 0 and gain >= spec.control_gain_points)
        out.append(
            {
                "row": row,
                "control": control,
                "n": judged["n"],
                "gain_points": gain,
                "lower_points": lower,
                "upper_points": judged.get("upper_points"),
                "confidence": spec.confidence,
                "required_points": spec.control_gain_points,
                "passes": passes,
            }
        )
    return out
