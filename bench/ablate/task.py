"""One task of a grid, run in this process: one row at one seed (pre-train, time, probe, and
after them the curve and the fine-tune: ``bench.ablate.evaluations``), one control probe
(random init or raw fbank; the random init fine-tuned too with a fine-tune column), or one
FLOPs-only plan; its record built as it goes (``RecordDraft``). ``bench.ablate.runner``
claims a run and hands its task here.

Data: the synthetic clips a pre-training run will read are generated (and cached in memory)
before the timed run starts, so wall-clock measures the model, not the procedural data
generator; ``data_seconds`` is then the loader's overhead only.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ablate.datasets import cached_dataset, run_probe
from bench.schema import GridRecord, ProbeMetrics, RunSummary
from diffmavil.atomic import atomic_write_json


@dataclass
class Task:
    """Picklable description of one run (configs as JSON dicts)."""

    kind: str  # "row" | "control" | "flops"
    row: str
    seed: int
    run_id: str
    run_dir: str
    pretrain: dict[str, Any] | None  # PretrainConfig (rows, flops; the model for controls)
    probe: dict[str, Any] | None  # FinetuneConfig
    time: dict[str, Any] | None = None  # run.time options (bench.timing), rows only
    curve: dict[str, Any] | None = None  # FinetuneConfig of the interior snapshots' probes
    finetune: dict[str, Any] | None = None  # FinetuneConfig of the fine-tune column
    init: str = "checkpoint"  # controls: random | fbank
    baseline: bool = False
    match_flops_of: str | None = None
    differences: str = ""
    planned_steps: int | None = None
    planned_flops: int | None = None
    planned_flops_by_component: dict[str, int] | None = None
    wall_clock_comparable: bool = True
    progress: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_WARMED: set[Any] = set()


def _warm_up(config, dataset) -> None:
    """One untimed training step of this model per process: the first timed run of a process
    must not pay for lazy initialisation (thread pools, allocator, imports)."""
    import torch

    from diffmavil.model import DiffMAViL

    key = (config.model, config.threads)
    if key in _WARMED:
        return
    _WARMED.add(key)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    import torch.utils.tensorboard  # pretrain's first import of it is slow

    items = [dataset[i] for i in range(min(2, len(dataset)))]
    audio = torch.stack([item["audio"] for item in items])
    video = torch.stack([item["video"] for item in items])
    model = DiffMAViL(config.model)
    output = model(audio, video, config.masking.start, torch.arange(len(items)), config.seed)
    output.loss.backward()


def _warm_pretrain_data(config):
    """The run's training dataset with the clips its plan reads already generated."""
    from diffmavil.training.stream import SampleStream

    dataset = cached_dataset(config.data, config.model, "train", config.seed)
    for index in sorted(
        set(SampleStream(len(dataset), config.seed).indices(0, config.budget_samples))
    ):
        dataset[index]
    return dataset


# --------------------------------------------------------------------------------------
# One task
# --------------------------------------------------------------------------------------


class RecordDraft:
    """The record of a run while it executes: each step replaces it with an updated,
    validated copy, so a step that fails leaves what the steps before it recorded."""

    def __init__(self, record: GridRecord) -> None:
        self.record = record

    def update(self, **values: Any) -> None:
        self.record = GridRecord.model_validate({**self.record.model_dump(), **values})


def base_record(task: Task, config) -> GridRecord:
    """The record of ``task`` before it runs (status failed until a step completes it)."""
    recipe = (
        {}
        if config is None
        else dict(
            preset=config.preset,
            variant=config.variant,
            masking=config.masking.kind,
            batch=config.batch.kind,
            budget_samples=config.budget_samples if task.kind != "control" else None,
        )
    )
    return GridRecord(
        row=task.row,
        kind=task.kind,
        seed=task.seed,
        run_id=task.run_id,
        status="failed",
        baseline=task.baseline,
        match_flops_of=task.match_flops_of,
        planned_steps=task.planned_steps,
        planned_flops=task.planned_flops,
        differences=task.differences,
        wall_clock_comparable=task.wall_clock_comparable,
        run_dir=task.run_dir,
        **recipe,
    )


def failure_reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return f"out of memory: {type(error).__name__}: {text}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def pretrain_config(task: Task):
    from diffmavil.training.config import PretrainConfig

    return PretrainConfig.model_validate(task.pretrain) if task.pretrain else None


def run_task(task: Task) -> GridRecord:
    from diffmavil.environment import capture
    from diffmavil.training.config import FinetuneConfig

    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = pretrain_config(task)
    probe = FinetuneConfig.model_validate(task.probe) if task.probe else None
    draft = RecordDraft(base_record(task, config))
    started = time.perf_counter()
    try:
        if task.kind == "flops":
            _plan_only(task, draft)
        elif task.kind == "control":
            assert config is not None and probe is not None
            _probe(draft, probe, task.init, config, None, run_dir)
            _finetune(task, draft, task.init, config, run_dir)
            draft.update(status="completed", wall_clock_comparable=None)  # nothing timed
        else:
            assert config is not None
            _pretrain_and_probe(task, config, probe, run_dir, draft)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # recorded, the grid goes on
        draft.update(
            status="failed",
            failure=draft.record.failure or failure_reason(error),
            traceback=traceback.format_exc(limit=8),
        )
    draft.update(task_seconds=time.perf_counter() - started)
    if draft.record.environment is None:
        draft.update(environment=capture(config.device if config else "cpu"))
    return draft.record


def _plan_only(task: Task, draft: RecordDraft) -> None:
    draft.update(
        status="planned",
        steps=task.planned_steps,
        samples=draft.record.budget_samples,
        total_flops=task.planned_flops,
        flops_by_component=task.planned_flops_by_component,
    )


def _probe(draft: RecordDraft, probe, init: str, config, checkpoint: Path | None, run_dir: Path):
    """Probe ``init`` (the run's checkpoint, or a control's) into the record and probe.json."""
    tick = time.perf_counter()
    metrics = run_probe(probe, init, config.model, checkpoint, config.device)
    draft.update(
        probe_seconds=time.perf_counter() - tick, probe=ProbeMetrics.model_validate(metrics)
    )
    atomic_write_json(run_dir / "probe.json", metrics)


def _reusable_summary(config, run_dir: Path) -> RunSummary | None:
    """The summary of a pre-training that completed before an interruption (its checkpoint
    verifying), which is then not repeated."""
    from bench.migrate import MigrationError, load_summary
    from diffmavil.training.pretrain import CHECKPOINT_NAME

    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return None
    try:
        previous = load_summary(summary_path)
    except MigrationError:
        return None
    if (
        previous.status == "completed"
        and previous.run_id == config.run_id()
        and _checkpoint_verifies(run_dir / CHECKPOINT_NAME)
    ):
        return previous
    return None


def _pretrain_and_probe(task: Task, config, probe, run_dir: Path, draft: RecordDraft) -> None:
    from bench.migrate import load_summary
    from diffmavil.training.pretrain import TrainingFailed, pretrain

    summary = _reusable_summary(config, run_dir)
    if summary is None:
        dataset = _warm_pretrain_data(config) if config.data_cache == "memory" else None
        if config.device == "cpu":
            _warm_up(config, dataset if dataset is not None else _warm_pretrain_data(config))
        try:  # resumes from the newest checkpoint that verifies, else starts over
            summary = RunSummary.model_validate(
                pretrain(config, run_dir, resume=True, progress=task.progress, dataset=dataset)
            )
        except TrainingFailed as failure:
            summary_path = run_dir / "summary.json"
            summary = load_summary(summary_path) if summary_path.exists() else None
            draft.update(failure=(summary.failure if summary else None) or str(failure))
    if summary is not None:
        draft.update(**summary.model_dump(include=set(SUMMARY_FIELDS)))
    if summary is None or summary.status != "completed":
        draft.update(status="failed")
        return
    if task.time is not None:
        timing = _time_model(task.time, config)
        atomic_write_json(run_dir / "timing.json", timing)
        draft.update(timing=timing)
    if probe is not None:
        _probe(draft, probe, "checkpoint", config, run_dir, run_dir)
    if task.curve is not None:
        _curve(task, draft, config, probe, run_dir)
    _finetune(task, draft, "checkpoint", config, run_dir)
    draft.update(status="completed")


def _curve(task: Task, draft: RecordDraft, config, probe, run_dir: Path) -> None:
    """Probe the run's snapshots into the record's curve (``bench.ablate.evaluations``)."""
    from bench.ablate.evaluations import probe_curve
    from diffmavil.training.config import FinetuneConfig

    curve_probe = FinetuneConfig.model_validate(task.curve)
    final_probe_seeds = probe.probe_seeds if probe is not None else curve_probe.probe_seeds
    points, seconds = probe_curve(
        draft.record, curve_probe, final_probe_seeds, config.model, run_dir, config.device
    )
    draft.update(curve=points, curve_seconds=seconds)


def _finetune(task: Task, draft: RecordDraft, init: str, config, run_dir: Path) -> None:
    """Fine-tune the run's final snapshot (a control: its random init) into the record,
    when the grid's fine-tune column names the run (``bench.ablate.evaluations``)."""
    if task.finetune is None:
        return
    from bench.ablate.evaluations import finetune
    from diffmavil.training.config import FinetuneConfig

    tuning = FinetuneConfig.model_validate(task.finetune)
    metrics, seconds = finetune(tuning, init, config.model, run_dir, config.device)
    draft.update(finetune=metrics, finetune_seconds=seconds)


def _checkpoint_verifies(path: Path) -> bool:
    """The probe will load this checkpoint: a completed pre-training is reused only then."""
    from diffmavil.training.checkpoint import CheckpointError, load_verified

    try:
        load_verified(path)
    except (CheckpointError, FileNotFoundError):
        return False
    return True


def _time_model(options: dict[str, Any], config) -> list[dict[str, Any]]:
    """``diffbench time`` rows for this row's model: the train step (forward, backward,
    optimizer) and each component, at the row's starting mask ratios unless set."""
    from bench.requests import TimeRequest, TimeSpec
    from bench.timing.benchmark import run_time_benchmark

    result = run_time_benchmark(TimeRequest.for_row(TimeSpec.model_validate(options), config))
    return [
        row.model_dump(mode="json", include=set(TIMING_FIELDS), exclude_unset=True)
        for row in result.rows
    ]


# what a run's record keeps of each ``diffbench time`` row (timing.json holds the same)
TIMING_FIELDS = (
    "kind",
    "component",
    "phase",
    "median_ms",
    "iqr_ms",
    "repeats",
    "flops",
    "achieved_gflops_per_s",
    "utilisation",
    "samples_per_s",
    "batch_size",
    "mask_ratio",
)


# what a run's record copies from its pre-training summary
SUMMARY_FIELDS = (
    "steps",
    "samples",
    "total_flops",
    "flops_by_component",
    "wall_clock_seconds",
    "compute_seconds",
    "data_seconds",
    "samples_per_second",
    "achieved_flops_per_second",
    "final_losses",
    "resumed_from_step",
    "environment",
)
