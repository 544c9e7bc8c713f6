"""A grid's results, typed: ``GridRecord`` (one run: a row at one seed, a control probe, or a
FLOPs plan; a run's ``record.json`` and each of ``results.json``'s records, schema_version
2), ``RunExecution`` (where it ran) and ``GridResults`` (``results.json``, schema_version
``GRID_SCHEMA_VERSION``), re-exported by ``bench.schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from bench.requests import StatisticsSpec
from bench.schema.curves import CurvePoint
from bench.schema.judged import Comparison, ControlGain, EndpointResult, PairedDeltas
from bench.schema.results import PaperHeadline, ProbeMetrics, TimingRow, Version
from diffmavil.config import Frozen
from diffmavil.environment import Environment
from diffmavil.training.summary import SCHEMA_VERSION

# A grid's results.json (and aggregate.json): 3 judges its records with bench.stats (Student's
# t at every n, the exact detectable loss, deltas over common seeds) and names run
# directories relative to the grid's output directory; 4 adds the records' curves and
# fine-tunes and the comparisons' time-to-accuracy endpoints (bench.migrate reads 1 to 3).
GRID_SCHEMA_VERSION = 4
RUNS = "runs"  # a grid's run directories: <out>/runs/<run id>


def run_dir_in_results(run_dir: str | None) -> str | None:
    """A grid run's directory as its results name it: relative to the grid's output
    directory (``runs/<run id>``); any other path as it is."""
    if run_dir is None:
        return None
    path = Path(run_dir)
    return f"{RUNS}/{path.name}" if path.parent.name == RUNS else run_dir


class FinetuneMetrics(ProbeMetrics):
    """A grid run's fine-tune (``run.finetune``): ``evaluate``'s result with mode finetune,
    with how the fine-tune ran (epochs run, the best epoch, the items held out for early
    stopping; the head's own training with ``head_epochs``; torch.compile's counts)."""

    epochs_run: int | None = None
    best_epoch: int | None = None
    validation_items: int | None = None
    head_train_loss: float | None = None
    head_train_accuracy: float | None = None
    head_train_mAP: float | None = None
    head_seconds: float | None = None


# A record's evaluations beside its probe: left out of its JSON while unset.
EVALUATIONS = ("curve", "curve_seconds", "finetune", "finetune_seconds")


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
    curve: list[CurvePoint] | None = Field(
        None, description="run.curve: each snapshot probed, in the order of the snapshots"
    )
    curve_seconds: float | None = None
    finetune: FinetuneMetrics | None = Field(
        None, description="run.finetune: the final snapshot (a control: random init) fine-tuned"
    )
    finetune_seconds: float | None = None
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

    @model_serializer(mode="wrap")
    def _drop_unset_evaluations(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A run without a curve or a fine-tune is written as it was before they existed.
        payload = handler(self)
        for key in EVALUATIONS:
            if getattr(self, key) is None:
                payload.pop(key, None)
        return payload

    def value(self, metric: str) -> Any:
        """A metric by its aggregate name: ``total_flops``, ``flops.<component>``,
        ``probe.<metric>``, ``finetune.<metric>``, ``loss`` / ``loss.<part>``."""
        if metric.startswith("flops."):
            return (self.flops_by_component or {}).get(metric[6:])
        if metric.startswith("probe."):
            return None if self.probe is None else getattr(self.probe, metric[6:], None)
        if metric.startswith("finetune."):
            return None if self.finetune is None else getattr(self.finetune, metric[9:], None)
        if metric == "loss" or metric.startswith("loss."):
            return (self.final_losses or {}).get(metric)
        return getattr(self, metric)


class GridResults(Frozen):
    """An ablation grid's ``results.json``."""

    schema_version: Literal[4] = GRID_SCHEMA_VERSION
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
    endpoints: list[EndpointResult] = Field(
        default_factory=list, description="the comparisons' time-to-accuracy endpoints"
    )
    records: list[GridRecord]
