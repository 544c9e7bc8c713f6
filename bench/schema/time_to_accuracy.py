"""The time-to-accuracy endpoints of a grid's confirmatory comparisons (``EndpointResult``),
computed by ``bench.stats`` from the records' curves, probes and fine-tunes over the seeds
both rows have (``bench.schema.judge``: when results are written, and when older results are
judged again).

Per comparison of ``statistics.comparisons``:

- ``samples_to_target``, ``flops_to_target``, ``wall_clock_to_target``, for each of
  ``statistics.targets`` (accuracy in %): each run's time to the target
  (``bench.stats.time_to_target``: the first crossing of its snapshots' probe accuracy,
  linearly interpolated between the snapshot below the target and the first at or above
  it; at the first snapshot when that already reaches it; censored at the run's final
  snapshot, its budget, when none does); the paired ratio candidate / reference
  (``bench.stats.paired_time_ratio``: estimated only when at least
  ``statistics.min_reached_fraction`` of the pairs reached the target on both sides; the
  censored runs are counted, never dropped). Wall-clock: runs whose wall-clock is
  comparable only, as every wall-clock delta of a grid.
- ``auc_flops``: per pair, the area under accuracy (points) vs FLOPs over [0, the smaller
  of the two runs' final FLOPs] (``bench.stats.area_under_curve``; the curve starts at the
  random-init control's accuracy of that seed at 0 FLOPs), divided by that span: the mean
  accuracy over it. A seed without its control's accuracy has no value.
- ``final_probe`` / ``final_finetune``: the runs' probe / fine-tune accuracy in points.

The rule for the family: the primary endpoint (``statistics.primary``) is the one tested,
per comparison: one-sided bounds at ``statistics.confidence``, a ratio "faster" when its
upper bound lies below 1 and "slower" when its lower bound lies above 1, an accuracy
endpoint judged no-loss against ``-statistics.margin_points``
(``bench.stats.non_inferiority``). Every other endpoint is descriptive: a two-sided interval
at ``statistics.confidence`` and no verdict, so there is no family of tests to correct.
"""

from __future__ import annotations

from bench.requests import ComparisonSpec, StatisticsSpec
from bench.requests.specs import TO_TARGET
from bench.schema.curves import CurvePoint
from bench.schema.grid import GridRecord
from bench.schema.judged import EndpointResult
from bench.schema.paired import DONE, random_control_row, row_records, values_by_seed
from bench.stats import (
    Interval,
    TimeRatio,
    TimeToTarget,
    area_under_curve,
    non_inferiority,
    paired_delta_interval,
    paired_time_ratio,
    time_to_target,
)

POINTS = 100.0
# endpoint -> its curve's x axis (bench.schema.curves.AXES)
TIME_AXES = dict(zip(TO_TARGET, ("samples", "flops", "wall_clock"), strict=True))
METRICS = {"final_probe": "probe.accuracy", "final_finetune": "finetune.accuracy"}


def curve_of(record: GridRecord) -> list[CurvePoint]:
    """The points of a completed run's curve that have an accuracy (none: no curve)."""
    if record.status not in DONE or not record.curve:
        return []
    return [point for point in record.curve if point.accuracy is not None]


def times_to_target(records: list[GridRecord], axis: str, target: float) -> dict[int, TimeToTarget]:
    """{seed: time to ``target`` (%) on ``axis``} of the runs with a curve (wall-clock: the
    runs whose wall-clock is comparable)."""
    found: dict[int, TimeToTarget] = {}
    for record in records:
        points = curve_of(record)
        if not points or (axis == "wall_clock" and record.wall_clock_comparable is False):
            continue
        accuracy = [POINTS * (p.accuracy or 0.0) for p in points]
        try:
            found[record.seed] = time_to_target([p.x(axis) for p in points], accuracy, target)
        except ValueError:  # x not increasing (a corrupt curve): no time, as no curve
            continue
    return found


def mean_accuracy_over_flops(
    candidate: list[GridRecord], reference: list[GridRecord], initial: dict[int, float]
) -> tuple[dict[int, float], dict[int, float]]:
    """Per seed both runs have a curve and ``initial`` (the random-init accuracy, points),
    each run's area under accuracy vs FLOPs over [0, the smaller final FLOPs] / that span."""
    curves = [{r.seed: curve_of(r) for r in side if curve_of(r)} for side in (candidate, reference)]
    out: tuple[dict[int, float], dict[int, float]] = ({}, {})
    for seed in sorted(set(curves[0]) & set(curves[1]) & set(initial)):
        x_max = float(min(curves[0][seed][-1].flops, curves[1][seed][-1].flops))
        for side, values in zip(curves, out, strict=True):
            points = side[seed]
            area = area_under_curve(
                [float(p.flops) for p in points],
                [POINTS * (p.accuracy or 0.0) for p in points],
                x_max,
                initial_accuracy=initial[seed],
            )
            values[seed] = area / x_max
    return out


def endpoints(records: list[GridRecord], spec: StatisticsSpec) -> list[EndpointResult]:
    """Every endpoint of every confirmatory comparison that has data (the primary always);
    none for results without curves, fine-tunes, targets or a primary endpoint."""
    evaluated = any(r.curve or r.finetune for r in records)
    if not spec.comparisons or not (evaluated or spec.targets or spec.primary):
        return []
    found: list[EndpointResult] = []
    for comparison in spec.comparisons:
        found += _ComparisonEndpoints(records, comparison, spec).all()
    return found


class _ComparisonEndpoints:
    """The endpoints of one comparison."""

    def __init__(
        self, records: list[GridRecord], comparison: ComparisonSpec, spec: StatisticsSpec
    ) -> None:
        self.records, self.spec = records, spec
        self.candidate = row_records(records, comparison.candidate)
        self.reference = row_records(records, comparison.reference)
        self.names = (comparison.candidate, comparison.reference)

    def _primary(self, endpoint: str, target: float | None = None) -> bool:
        primary = self.spec.primary
        return primary is not None and (primary.endpoint, primary.target) == (endpoint, target)

    def all(self) -> list[EndpointResult]:
        both = self.candidate + self.reference
        curves = any(curve_of(r) for r in both)
        found = []
        for target in self.spec.targets:
            found += [
                self.to_target(name, target)
                for name in TO_TARGET
                if curves or self._primary(name, target)
            ]
        if curves or self._primary("auc_flops"):
            found.append(self.auc_flops())
        for name, metric in METRICS.items():
            if values_by_seed(both, metric) or self._primary(name):
                found.append(self.accuracy(name, metric))
        return found

    def _result(self, endpoint: str, **values) -> EndpointResult:
        candidate, reference = self.names
        return EndpointResult(
            comparison=f"{candidate} vs {reference}",
            candidate=candidate,
            reference=reference,
            endpoint=endpoint,
            level=self.spec.confidence,
            **values,
        )

    def to_target(self, endpoint: str, target: float) -> EndpointResult:
        """A time to ``target``: the paired ratio, or the counts that reached it."""
        axis = TIME_AXES[endpoint]
        times = [times_to_target(side, axis, target) for side in (self.candidate, self.reference)]
        primary = self._primary(endpoint, target)
        ratios = [self._ratio(*times, sides) for sides in _sides(primary)]
        first = ratios[0]
        bounds = _ratio_bounds(ratios)
        verdict = None
        if primary:
            verdict = "not enough pairs" if bounds is None else _ratio_verdict(*bounds)
        seeds = list(first.seeds)
        return self._result(
            endpoint,
            target=target,
            role="primary" if primary else "descriptive",
            unit="ratio",
            n=len(seeds),
            seeds=seeds,
            candidate_values=[times[0][s].value for s in seeds],
            reference_values=[times[1][s].value for s in seeds],
            reached_both=list(first.reached_both),
            candidate_censored=list(first.candidate_censored),
            reference_censored=list(first.reference_censored),
            min_reached_fraction=self.spec.min_reached_fraction,
            estimate=None if first.interval is None else first.interval.estimate,
            low=None if bounds is None else bounds[0],
            high=None if bounds is None else bounds[1],
            sides="one-sided bounds" if primary else "two-sided",
            method=None if first.interval is None else first.interval.method,
            verdict=verdict,
        )

    def _ratio(self, candidate, reference, sides) -> TimeRatio:
        return paired_time_ratio(
            candidate,
            reference,
            level=self.spec.confidence,
            sides=sides,
            min_fraction=self.spec.min_reached_fraction,
        )

    def auc_flops(self) -> EndpointResult:
        """The mean accuracy over [0, the pair's smaller final FLOPs], paired."""
        preset = next((r.preset for r in self.candidate), None)
        control = random_control_row(self.records, preset)
        initial = {} if control is None else self._values(control, "probe.accuracy")
        candidate, reference = mean_accuracy_over_flops(self.candidate, self.reference, initial)
        note = None if control is not None else "no random-init control: the curve has no start"
        return self._points("auc_flops", candidate, reference, note)

    def _values(self, row: str, metric: str) -> dict[int, float]:
        return values_by_seed(row_records(self.records, row), metric)

    def accuracy(self, endpoint: str, metric: str) -> EndpointResult:
        """The final probe's or fine-tune's accuracy, paired."""
        candidate, reference = (
            values_by_seed(side, metric) for side in (self.candidate, self.reference)
        )
        return self._points(endpoint, candidate, reference)

    def _points(
        self,
        endpoint: str,
        candidate: dict[int, float],
        reference: dict[int, float],
        note: str | None = None,
    ) -> EndpointResult:
        """An accuracy endpoint (points): the non-inferiority verdict when primary, else
        the two-sided interval of the paired difference."""
        spec = self.spec
        if self._primary(endpoint):
            test = non_inferiority(
                candidate, reference, spec.margin_points, level=spec.confidence, power=spec.power
            )
            pairing, estimate = test.pairing, test.mean
            low, high, verdict = test.lower_bound, test.upper_bound, test.verdict
            method = None if test.lower is None else test.lower.method
        else:
            delta = paired_delta_interval(candidate, reference, spec.confidence)
            pairing, estimate, verdict = delta.pairing, delta.mean, None
            low, high, method = _interval_parts(delta.interval)
        return self._result(
            endpoint,
            role="primary" if verdict is not None else "descriptive",
            unit="points",
            n=pairing.n,
            seeds=list(pairing.seeds),
            candidate_values=list(pairing.candidate),
            reference_values=list(pairing.reference),
            estimate=estimate,
            low=low,
            high=high,
            sides="one-sided bounds" if verdict is not None else "two-sided",
            method=method,
            verdict=verdict,
            margin_points=spec.margin_points if verdict is not None else None,
            note=note,
        )


def _sides(primary: bool) -> tuple[str, ...]:
    return ("one-sided lower", "one-sided upper") if primary else ("two-sided",)


def _ratio_bounds(ratios: list[TimeRatio]) -> tuple[float, float] | None:
    """(low, high) of a ratio: a two-sided interval's ends, or the lower bound of the first
    and the upper bound of the second (one-sided each); None when not estimated."""
    if any(r.interval is None for r in ratios):
        return None
    first, last = ratios[0].interval, ratios[-1].interval
    assert first is not None and last is not None
    return first.low, last.high


def _ratio_verdict(low: float, high: float) -> str:
    return "faster" if high < 1.0 else "slower" if low > 1.0 else "undecided"


def _interval_parts(interval: Interval | None) -> tuple[float | None, float | None, str | None]:
    if interval is None:
        return None, None, None
    return interval.low, interval.high, interval.method
