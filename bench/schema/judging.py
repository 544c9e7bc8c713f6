"""What a grid's results judge from their records (``bench.schema.judged``), computed by
``bench.stats`` over the seeds the rows share (``bench.schema.paired``): when results are
written (``bench.ablate.store``) and when results of schema 2 are read
(``bench.migrate``: they were judged by an older harness).

- ``confirmatory_verdicts``: one per comparison of ``statistics:``: probe accuracy in
  points, paired by seed, one-sided Student's t bounds at ``confidence`` and the verdict
  against ``-margin_points`` (``bench.stats.non_inferiority``), with the loss these pairs
  detect at ``power`` (exact noncentral t);
- ``control_gains``: each pre-trained row against its random-init control (same preset):
  the mean gain, its two-sided interval at ``confidence``, and whether the row passes
  (interval above zero and gain >= ``control_gain_points``);
- ``paired_deltas``: every row against the baseline row: wall-clock (a fraction of the
  baseline's run of the same seed, comparable runs only) and probe accuracy (points);
- ``endpoints``: each comparison's time-to-accuracy endpoints, the primary one with its
  verdict (``bench.schema.time_to_accuracy``).
"""

from __future__ import annotations

from typing import Any

from bench.requests import StatisticsSpec
from bench.schema.grid import GridRecord
from bench.schema.judged import Comparison, ControlGain, PairedDeltas
from bench.schema.paired import (
    WALL_CLOCK,
    paired_delta,
    random_control_row,
    row_records,
    split_pairs,
    values_by_seed,
)
from bench.schema.time_to_accuracy import endpoints
from bench.stats import PairedDelta, non_inferiority

ACCURACY = "probe.accuracy"


def judge(records: list[GridRecord], statistics: StatisticsSpec) -> dict[str, Any]:
    """A results' judged fields, by name (``comparisons``, ``control_gains``,
    ``paired_deltas``, ``endpoints``), from its records."""
    return {
        "comparisons": confirmatory_verdicts(records, statistics),
        "control_gains": control_gains(records, statistics),
        "paired_deltas": paired_deltas(records, statistics),
        "endpoints": endpoints(records, statistics),
    }


def confirmatory_verdicts(records: list[GridRecord], spec: StatisticsSpec) -> list[Comparison]:
    """One verdict per confirmatory comparison of ``spec`` (rows without two common
    completed seeds give ``not enough pairs``, with the one difference if there is one)."""
    verdicts = []
    for comparison in spec.comparisons:
        test = non_inferiority(
            values_by_seed(row_records(records, comparison.candidate), ACCURACY),
            values_by_seed(row_records(records, comparison.reference), ACCURACY),
            spec.margin_points,
            level=spec.confidence,
            power=spec.power,
        )
        judged = test.lower is not None
        verdicts.append(
            Comparison(
                name=f"{comparison.candidate} vs {comparison.reference}",
                candidate=comparison.candidate,
                reference=comparison.reference,
                n=test.n,
                seeds=list(test.pairing.seeds),
                margin_points=spec.margin_points,
                confidence=spec.confidence,
                verdict=test.verdict,
                mean_points=test.mean,
                sd_points=test.sd,
                lower_points=test.lower_bound,
                upper_points=test.upper_bound,
                method=test.lower.method if test.lower is not None else None,
                detectable_points=test.detectable_loss,
                differences_points=list(test.pairing.differences) if judged else None,
            )
        )
    return verdicts


def _bounds(delta: PairedDelta) -> tuple[float | None, float | None]:
    interval = delta.interval
    return (None, None) if interval is None else (interval.low, interval.high)


def control_gains(records: list[GridRecord], spec: StatisticsSpec) -> list[ControlGain]:
    """Each pre-trained row with a probed run against its random-init control."""
    rows = dict.fromkeys(
        r.row
        for r in records
        if r.kind == "row" and r.status == "completed" and r.probe and r.probe.accuracy is not None
    )
    gains = []
    for row in rows:
        preset = next(r.preset for r in records if r.row == row)
        control = random_control_row(records, preset)
        if control is None:
            continue
        gain = paired_delta(
            row_records(records, row), row_records(records, control), ACCURACY, spec.confidence
        )
        lower, upper = _bounds(gain)
        passes = None
        if lower is not None and gain.mean is not None:
            passes = lower > 0 and gain.mean >= spec.control_gain_points
        gains.append(
            ControlGain(
                row=row,
                control=control,
                n=gain.pairing.n,
                gain_points=gain.mean,
                lower_points=lower,
                upper_points=upper,
                confidence=spec.confidence,
                required_points=spec.control_gain_points,
                passes=passes,
            )
        )
    return gains


def paired_deltas(
    records: list[GridRecord], spec: StatisticsSpec | None = None
) -> list[PairedDeltas]:
    """Every row against the baseline row, paired by seed: wall-clock and probe accuracy.
    Pairing by seed takes the seed's data order and the machine's drift between
    neighbouring runs out of the comparison, within one invocation of the grid:
    ``wall_clock_split_pairs`` counts the pairs whose runs two processes executed."""
    confidence = (spec or StatisticsSpec()).confidence
    baseline = next((r.row for r in records if r.baseline and r.kind == "row"), None)
    if baseline is None:
        return []
    base = row_records(records, baseline)
    deltas = []
    for row in dict.fromkeys(r.row for r in records if r.kind == "row"):
        if row == baseline:
            continue
        mine = row_records(records, row)
        wall = paired_delta(mine, base, WALL_CLOCK, confidence)
        accuracy = paired_delta(mine, base, ACCURACY, confidence)
        wall_low, wall_high = _bounds(wall)
        accuracy_low, accuracy_high = _bounds(accuracy)
        deltas.append(
            PairedDeltas(
                row=row,
                baseline=baseline,
                confidence=confidence,
                wall_clock_pairs=wall.pairing.n,
                wall_clock_split_pairs=split_pairs(mine, base),
                wall_clock_delta_mean=wall.mean,
                wall_clock_delta_sd=wall.sd,
                wall_clock_delta_low=wall_low,
                wall_clock_delta_high=wall_high,
                accuracy_pairs=accuracy.pairing.n,
                accuracy_delta_points_mean=accuracy.mean,
                accuracy_delta_points_sd=accuracy.sd,
                accuracy_delta_points_low=accuracy_low,
                accuracy_delta_points_high=accuracy_high,
            )
        )
    return deltas
