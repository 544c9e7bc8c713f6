"""The result models of schema_version 2, re-exported by ``bench.schema`` (a grid's records
and results: ``bench.schema.grid``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from bench.schema.projection import PROJECTION_SCHEMA_VERSION, PointRow, WholeRunRow
from diffmavil.config import Frozen
from diffmavil.environment import Environment
from diffmavil.training.summary import SCHEMA_VERSION

Version = Literal[2]


class ProbeMetrics(Frozen):
    """``diffmavil.training.downstream.evaluate``'s result: the probe (or fine-tune) of one
    initialisation on the downstream task."""

    schema_version: Version = SCHEMA_VERSION
    init: str
    mode: str
    modality: str
    data: str
    num_classes: int | None = None
    train_items: int | None = None
    eval_items: int | None = None
    skipped_files: int = 0
    accuracy: float | None = None
    mAP: float | None = None
    train_accuracy: float | None = None
    train_mAP: float | None = None
    per_probe_seed: list[dict[str, Any]] | None = Field(
        None, description="probe_seeds > 1: each probe's metrics (the fields are their mean)"
    )
    compile: dict[str, Any] | None = Field(
        None, description="with compile: torch.compile's counts (left out of the JSON unset)"
    )

    @model_serializer(mode="wrap")
    def _drop_unset_compile(self, handler: SerializerFunctionWrapHandler) -> Any:
        payload = handler(self)
        if isinstance(payload, dict) and self.compile is None:
            payload.pop("compile", None)
        return payload

    @property
    def metric(self) -> float | None:
        return self.accuracy if self.accuracy is not None else self.mAP


class TimingRow(Frozen):
    """One row of ``diffbench time``: a step phase, a component, a sum, a peer ratio or a
    saving (``kind``); the environment's hardware keys are repeated on every row."""

    schema_version: Version = SCHEMA_VERSION
    kind: Literal[
        "step",
        "component",
        "components_sum",
        "peer_ratio",
        "saving",
        "compile",
        "compile_ratio",
        "fused_ratio",
    ]
    variant: str | None = None
    implementation: str = "ours"
    component: str
    phase: str
    # timed rows
    median_ms: float | None = None
    q1_ms: float | None = None
    q3_ms: float | None = None
    iqr_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    repeats: int | None = None
    flops: int | None = None
    achieved_gflops_per_s: float | None = None
    utilisation: float | None = None
    mfu: float | None = None
    samples_per_s: float | None = None
    aten_ops: int | None = None  # ATen calls in one eager step's phase (bench.timing.dispatch)
    # components_sum
    components_ms: float | None = None
    step_fwd_bwd_ms: float | None = None
    components_share: float | None = None
    # peer_ratio
    speed_ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    # compile (graphs, recompiles and backend seconds of a compiled train step)
    graphs: int | None = None
    recompiles: int | None = None
    compile_seconds: float | None = None
    graphs_by_block: dict[str, int] | None = None
    # saving
    baseline: str | None = None
    baseline_ms: float | None = None
    variant_ms: float | None = None
    flop_saving: float | None = None
    time_saving: float | None = None
    time_per_flop_saving: float | None = None
    # the run's settings
    preset: str | None = None
    batch_size: int | None = None
    mask_ratio: str | None = None
    compile: bool | None = None
    warmup: int | None = None
    matmul_gflops_per_s: float | None = None
    peak_memory_mb: float | None = None
    peak_memory_kind: str | None = None
    dtype: str | None = None
    load_average_1m_end: float | None = None
    # the environment's hardware keys
    device: str | None = None
    device_name: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    gpu_name: str | None = None
    torch_threads: int | None = None
    interop_threads: int | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    python: str | None = None
    platform: str | None = None
    load_average_1m: float | None = None
    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str | None = None


class TimeResults(Frozen):
    """``diffbench time --format json``."""

    schema_version: Version = SCHEMA_VERSION
    kind: Literal["time"] = "time"
    environment: Environment
    dtype: str | None = None
    configs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    paper_headline: PaperHeadline | None = None
    rows: list[TimingRow]


class FlopRow(Frozen):
    """One component (or the total) of one variant: ``diffbench flops`` per-batch figures."""

    schema_version: Version = SCHEMA_VERSION
    preset: str
    variant: str
    component: str
    params: int | None = None
    params_percent: float | None = None
    forward_flops: int
    backward_flops: int | None = None
    total_flops: int
    total_flops_per_sample: float | None = None
    hardware_extra_flops: int | None = None
    flops_percent: float | None = None
    delta_percent: float | None = None
    batch_size: int | None = None
    audio_mask_ratio: float | None = None
    video_mask_ratio: float | None = None
    counter: str | None = None
    device: str | None = None
    seconds: float | None = None


class WholeRunFlopRow(Frozen):
    """One component (or the total) of a whole pre-training run vs the MAViL recipe."""

    schema_version: Version = SCHEMA_VERSION
    preset: str
    variant: str
    component: str
    run_flops: int
    baseline_flops: int
    saving_percent: float | None = None
    steps: int | None = None
    baseline_steps: int | None = None
    samples: int | None = None
    masking: str | None = None
    batch: str | None = None
    batch_rule: str | None = None
    batch_size: int | None = None
    audio_mask_ratio: float | None = None
    video_mask_ratio: float | None = None
    audio_mask_ratio_end: float | None = None
    video_mask_ratio_end: float | None = None
    counter: str | None = None


class SensitivityRow(Frozen):
    """The whole-run saving vs MAViL with one of our assumptions changed."""

    schema_version: Version = SCHEMA_VERSION
    assumption: str
    setting: str
    saving: float
    run_flops: int
    baseline_flops: int
    steps: int | None = None
    reaches_paper: bool
    baseline_steps: int | None = None
    saving_percent: float | None = None
    variant: str | None = None
    preset: str | None = None
    samples: int | None = None
    counter: str | None = None


FlopsKind = Literal["breakdown", "whole-run", "sensitivity"]


class FlopsResults(Frozen):
    """``diffbench flops --format json``: one kind of rows."""

    schema_version: Version = SCHEMA_VERSION
    kind: Literal["flops"] = "flops"
    flops_kind: FlopsKind
    counters: str | None = None
    convention: str | None = None
    seconds: float | None = None
    environment: Environment | None = None
    paper_headline: PaperHeadline | None = None
    rows: list[FlopRow] | list[WholeRunFlopRow] | list[SensitivityRow]


class HeadlineFigure(Frozen):
    """One headline figure: the paper's and ours, and where ours comes from."""

    figure: Literal["flops_saving", "wall_clock_saving"]
    paper: float
    ours_base: float | None = None
    run_flops: int | None = None
    baseline_flops: int | None = None
    run_steps: int | None = None
    baseline_steps: int | None = None
    samples: int | None = None
    source: str | None = None


class DesignChoice(Frozen):
    """One of our design choices the paper does not state, and the value we use."""

    label: str
    value: str


class PaperHeadline(Frozen):
    """The paper's headline (abstract) beside our base-size figures, computed when the
    results were produced (closed-form FLOP model), and the saving's sensitivity."""

    schema_version: Version = SCHEMA_VERSION
    figures: list[HeadlineFigure]
    base_batch: int
    headline_samples: int
    sensitivity_samples: int
    fixed_mask_ratio: tuple[float, float]
    sensitivity: list[SensitivityRow]
    choices: list[DesignChoice]

    def figure(self, name: str) -> HeadlineFigure:
        """The figure ``flops_saving`` or ``wall_clock_saving``."""
        return next(f for f in self.figures if f.figure == name)


class ProjectionResults(Frozen):
    """A whole-run projection as stored: every recipe's projected run (``WholeRunRow``) and
    its measured points (``PointRow``) in one ``rows`` list, as ``diffbench time --format
    json`` prints it and a grid's ``run.project_time`` writes ``whole-run.json``."""

    schema_version: Literal[4] = PROJECTION_SCHEMA_VERSION
    kind: Literal["whole-run-projection"] = "whole-run-projection"
    request_hash: str | None = Field(None, description="a grid's projection request (resume)")
    environment: Environment
    dtype: str | None = None
    paper_headline: PaperHeadline | None = None
    rows: list[Annotated[WholeRunRow | PointRow, Field(discriminator="kind")]]

    @property
    def whole_run_rows(self) -> list[WholeRunRow]:
        return [r for r in self.rows if isinstance(r, WholeRunRow)]

    @property
    def points(self) -> list[PointRow]:
        return [r for r in self.rows if isinstance(r, PointRow)]


TimeResults.model_rebuild()
FlopsResults.model_rebuild()
ProjectionResults.model_rebuild()
