"""What a grid's results judge from their records (computed by ``bench.schema.judging``):
the confirmatory comparisons' verdicts, each pre-trained row's gain over its random-init
control, and every row's paired deltas against the baseline row. Accuracy in points (x100
of the fraction); wall-clock deltas as fractions of the baseline's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SerializerFunctionWrapHandler, model_serializer

from diffmavil.config import Frozen

Verdict = Literal["no loss within the margin", "loss", "undecided", "not enough pairs"]

# A comparison judged on fewer than 2 pairs has no spread, bounds or verdict method: its
# stored JSON leaves these keys out rather than writing nulls.
_JUDGED_ONLY = (
    "sd_points",
    "lower_points",
    "upper_points",
    "method",
    "detectable_points",
    "differences_points",
)


class Comparison(Frozen):
    """A confirmatory comparison of ``statistics:``: candidate vs reference row, probe
    accuracy paired by seed, one-sided bounds at ``confidence`` and the verdict against
    ``-margin_points``."""

    name: str
    candidate: str
    reference: str
    n: int
    seeds: list[int]
    margin_points: float
    confidence: float
    verdict: Verdict
    mean_points: float | None
    sd_points: float | None = None
    lower_points: float | None = None
    upper_points: float | None = None
    method: str | None = None
    detectable_points: float | None = None
    differences_points: list[float] | None = None

    @model_serializer(mode="wrap")
    def _drop_unjudged(self, handler: SerializerFunctionWrapHandler) -> Any:
        payload = handler(self)
        for key in _JUDGED_ONLY:
            if getattr(self, key) is None:
                payload.pop(key, None)
        return payload


class ControlGain(Frozen):
    """A pre-trained row against its random-init control (same preset), paired by seed:
    the mean gain in points, its two-sided interval at ``confidence``, and whether it
    passes (interval above zero and gain >= ``required_points``; None below 2 pairs)."""

    row: str
    control: str
    n: int
    gain_points: float | None
    lower_points: float | None
    upper_points: float | None
    confidence: float
    required_points: float
    passes: bool | None


class PairedDeltas(Frozen):
    """A row against the baseline row, paired by seed: the wall-clock delta (a fraction of
    the baseline's run of the same seed) and the probe accuracy delta (points), each with
    its mean, sd and two-sided interval at ``confidence`` (None where undefined).
    ``wall_clock_split_pairs``: pairs whose two runs ran in different processes."""

    row: str
    baseline: str
    confidence: float
    wall_clock_pairs: int
    wall_clock_split_pairs: int = 0
    wall_clock_delta_mean: float | None = None
    wall_clock_delta_sd: float | None = None
    wall_clock_delta_low: float | None = None
    wall_clock_delta_high: float | None = None
    accuracy_pairs: int
    accuracy_delta_points_mean: float | None = None
    accuracy_delta_points_sd: float | None = None
    accuracy_delta_points_low: float | None = None
    accuracy_delta_points_high: float | None = None
