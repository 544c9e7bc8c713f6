"""The result models of schema_version 2 (a grid's results: 3), re-exported by
``bench.schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from bench.requests import StatisticsSpec
from bench.schema.judged import Comparison, ControlGain, PairedDeltas
from bench.schema.projection import PointRow, WholeRunRow
from diffmavil.config import Frozen
from diffmavil.environment import Environment
from diffmavil.training.summary import SCHEMA_VERSION

Version = Literal[2]
# A grid's results.json (and aggregate.json): 3 judges its records with bench.stats (Student's
# t at every n, the exact detectable loss, deltas over common seeds) and names run
# directories relative to the grid's output directory (bench.migrate reads 1 and 2).
GRID_SCHEMA_VERSION = 3
RUNS = "runs"  # a grid's run directories: <out>/runs/<run id>


def run_dir_in_results(run_dir: str | None) -> str | None:
    """A grid run's directory as its results name it: relative to the grid's output
    directory (``runs/<run id>``); any other path as it is."""
    if run_dir is None:
        return None
    path = Path(run_dir)
    return f"{RUNS}/{path.name}" if path.parent.name == RUNS else run_dir


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

    schema_version: Version = SCHEMA_VERSION
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


class RunExecution(Frozen):
    """Where and when a grid run executed (its claim: ``bench.ablate.claims``)."""

    host: str
    pid: int
    token: str
    started_at: float
    finished_at: float


class GridRecord(Frozen):
    """One run of an ablation grid: a row at one seed, a control probe, or a FLOPs plan."""

    schema_version: Version = SCHEMA_VERSION
    row: str
    kind: Literal["row", "control", "flops"]
    seed: int
    run_id: str
    status: Literal["completed", "planned", "failed", "claimed"]
    failure: str | None = None
    claimed_by: str | None = Field(None, description="status claimed: the live owner")
    baseline: bool = False
    preset: str | None = None
    variant: str | None = None
    masking: str | None = None
    batch: str | None = None
    budget_samples: int | None = None
    match_flops_of: str | None = None
    planned_steps: int | None = None
    planned_flops: int | None = None
    differences: str = ""
    wall_clock_comparable: bool | None = True
    run_dir: str | None = None
    steps: int | None = None
    samples: int | None = None
    total_flops: int | None = None
    flops_by_component: dict[str, int] | None = None
    wall_clock_seconds: float | None = None
    compute_seconds: float | None = None
    data_seconds: float | None = None
    samples_per_second: float | None = None
    achieved_flops_per_second: float | None = None
    final_losses: dict[str, float] | None = None
    resumed_from_step: int | None = None
    probe: ProbeMetrics | None = None
    probe_seconds: float | None = None
    task_seconds: float | None = None
    timing: list[TimingRow] | None = None
    traceback: str | None = None
    execution: RunExecution | None = None
    overlapped_runs: list[str] = Field(default_factory=list)  # runs of this host that overlapped it
    environment: Environment | None = None

    @field_validator("overlapped_runs", mode="before")
    @classmethod
    def _no_overlap_recorded(cls, value: Any) -> Any:
        # Results migrated from schema 1 store null where no overlap was recorded.
        return [] if value is None else value

    def value(self, metric: str) -> Any:
        """A metric by its aggregate name: ``total_flops``, ``flops.<component>``,
        ``probe.<metric>``, ``loss`` / ``loss.<part>``."""
        if metric.startswith("flops."):
            return (self.flops_by_component or {}).get(metric[6:])
        if metric.startswith("probe."):
            return None if self.probe is None else getattr(self.probe, metric[6:], None)
        if metric == "loss" or metric.startswith("loss."):
            return (self.final_losses or {}).get(metric)
        return getattr(self, metric)


class GridResults(Frozen):
    """An ablation grid's ``results.json``."""

    schema_version: Literal[3] = GRID_SCHEMA_VERSION
    kind: Literal["ablation"] = "ablation"
    complete: bool = True
    grid: str
    grid_file: str | None = None
    description: str = ""
    seeds: list[int]
    baseline: str | None = None
    flops_only: bool = False
    statistics: StatisticsSpec | None = Field(None, description="the grid's statistics block")
    executor: str = "local"
    environment: Environment
    paper_headline: PaperHeadline | None = None
    # judged from the records when the results are written (bench.schema.judging)
    comparisons: list[Comparison] = Field(default_factory=list)
    control_gains: list[ControlGain] = Field(default_factory=list)
    paired_deltas: list[PairedDeltas] = Field(default_factory=list)
    records: list[GridRecord]


TimeResults.model_rebuild()
FlopsResults.model_rebuild()
ProjectionResults.model_rebuild()
