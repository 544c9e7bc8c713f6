"""What a grid's results judge from their records (computed by ``bench.schema.judging``):
the confirmatory comparisons' verdicts, each pre-trained row's gain over its random-init
control, every row's paired deltas against the baseline row, and each comparison's
time-to-accuracy endpoints (``EndpointResult``, ``bench.schema.time_to_accuracy``). Accuracy
in points (x100 of the fraction); wall-clock deltas as fractions of the baseline's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from bench.requests.specs import Endpoint
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


EndpointVerdict = Literal[
    "faster",
    "slower",
    "undecided",
    "not enough pairs",
    "no loss within the margin",
    "loss",
]


class EndpointResult(Frozen):
    """One endpoint of a confirmatory comparison (``bench.schema.time_to_accuracy``).

    ``unit`` ``ratio``: a time to ``target`` (samples, FLOPs or wall-clock seconds to the
    first crossing of the snapshots' curve), candidate / reference, the geometric mean over
    the pairs where both reached it, estimated only when at least ``min_reached_fraction``
    of the pairs did (else ``estimate`` is None and the counts say why); a run that never
    reached it is censored at its budget and listed, never dropped. ``unit`` ``points``:
    candidate − reference accuracy in points (``auc_flops``: the mean accuracy over [0, the
    pair's smaller final FLOPs], the area under accuracy vs FLOPs divided by that span).

    ``role`` ``primary``: the one endpoint per comparison with a ``verdict``, its bounds
    one-sided at ``level`` each (``sides`` ``one-sided bounds``; a ratio: "faster" when the
    upper bound lies below 1, "slower" when the lower lies above 1; points: the
    non-inferiority verdict against ``-margin_points``); ``descriptive``: a two-sided
    interval at ``level``, no verdict.
    """

    comparison: str
    candidate: str
    reference: str
    endpoint: Endpoint
    target: float | None = None
    role: Literal["primary", "descriptive"]
    unit: Literal["ratio", "points"]
    n: int
    seeds: list[int]
    candidate_values: list[float] = Field(
        default_factory=list, description="per pair (seeds): time or accuracy (points)"
    )
    reference_values: list[float] = Field(default_factory=list)
    reached_both: list[int] | None = None
    candidate_censored: list[int] | None = None
    reference_censored: list[int] | None = None
    min_reached_fraction: float | None = None
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    level: float
    sides: Literal["two-sided", "one-sided bounds"]
    method: str | None = None
    verdict: EndpointVerdict | None = None
    margin_points: float | None = None
    note: str | None = None

    @property
    def reported(self) -> bool:
        return self.estimate is not None
