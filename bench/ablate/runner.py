"""Running the tasks of a grid: one task = one row at one seed (pre-train + probe), one
control probe (random init or raw fbank), or one FLOPs-only plan.

``execute_task(task)`` is the unit every executor runs (in-process, in a worker process, in
a submitit job); it is idempotent: a run whose ``record.json`` says completed is returned
as is, a pre-training that completed is not repeated, one with a checkpoint resumes.

Run directory ``<out>/runs/<run_id>/``: pretrain's own files (config.json, metrics.jsonl,
tb/, checkpoint.pt, summary.json), ``probe.json``, ``claim.<n>.json`` while a process
runs it, and ``record.json`` (this run's result record, written atomically last).

Data: the synthetic clips a pre-training run will read are generated (and cached in memory)
before the timed run starts, so wall-clock measures the model, not the procedural data
generator; ``data_seconds`` is then the loader's overhead only.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffmavil.atomic import atomic_write_json

RECORD = "record.json"
CLAIMED = "claimed"  # status of a run held by another live process (not run here)


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


def read_record(run_dir: str | Path):
    """The run's record.json as a ``GridRecord`` (schema 1 migrated), or None if absent or
    unreadable (the run is then done again)."""
    from bench.migrate import MigrationError, load_record

    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        return load_record(path)
    except MigrationError:
        return None


def is_done(task: Task) -> dict[str, Any] | None:
    """The stored record of a completed (or planned) run, else None."""
    record = read_record(task.run_dir)
    if record is not None and record.status in ("completed", "planned"):
        return record.model_dump(mode="json")
    return None


# --------------------------------------------------------------------------------------
# Per-process caches of datasets (rows of one grid share their data)
# --------------------------------------------------------------------------------------

_DATASETS: dict[tuple, Any] = {}


def _dataset(spec: str, model_config, split: str, seed: int, fold: int | None = None):
    from diffmavil.data import build_dataset

    key = (spec, model_config.audio, model_config.video, split, seed, fold)
    if key not in _DATASETS:
        if len(_DATASETS) >= 8:
            _DATASETS.pop(next(iter(_DATASETS)))
        _DATASETS[key] = build_dataset(
            spec, model_config, split, seed=seed, fold=fold, cache="memory"
        )
    return _DATASETS[key]


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

    dataset = _dataset(config.data, config.model, "train", config.seed)
    for index in sorted(
        set(SampleStream(len(dataset), config.seed).indices(0, config.budget_samples))
    ):
        dataset[index]
    return dataset


def run_probe(probe, init: str, model_config, checkpoint: Path | None, device: str = "cpu"):
    """``diffmavil.training.downstream.evaluate`` on this process's cached downstream datasets
    (the pre-trained probe and its controls share them)."""
    from diffmavil.training.downstream import downstream_splits, evaluate

    train_split, eval_split = downstream_splits(probe.data)
    datasets = (
        _dataset(probe.data, model_config, train_split, probe.seed, probe.fold),
        _dataset(probe.data, model_config, eval_split, probe.seed, probe.fold),
    )
    return evaluate(probe, init, model_config, checkpoint, device, datasets=datasets)


# --------------------------------------------------------------------------------------
# One task
# --------------------------------------------------------------------------------------


def _base_record(task: Task, config) -> dict[str, Any]:
    record: dict[str, Any] = {
        "row": task.row,
        "kind": task.kind,
        "seed": task.seed,
        "run_id": task.run_id,
        "status": "failed",
        "failure": None,
        "baseline": task.baseline,
        "preset": None,
        "variant": None,
        "masking": None,
        "batch": None,
        "budget_samples": None,
        "match_flops_of": task.match_flops_of,
        "planned_steps": task.planned_steps,
        "planned_flops": task.planned_flops,
        "differences": task.differences,
        "wall_clock_comparable": task.wall_clock_comparable,
        "run_dir": task.run_dir,
    }
    if config is not None:
        record.update(
            preset=config.preset,
            variant=config.variant,
            masking=config.masking.kind,
            batch=config.batch.kind,
            budget_samples=config.budget_samples if task.kind != "control" else None,
        )
    return record


def _failure_reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return f"out of memory: {type(error).__name__}: {text}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def execute_task(task: Task | dict[str, Any]) -> dict[str, Any]:
    """Run one task (idempotent) and return its record (also written to record.json).

    The run is claimed first (``bench.ablate.claims``): a run claimed by another live
    process is not run here (status ``claimed``, nothing written), and the record is
    written only if the claim is still held at the end.
    """
    if isinstance(task, dict):
        task = Task(**task)
    done = is_done(task)
    if done is not None:
        return {**done, "skipped": True}
    from bench.ablate.claims import Busy, acquire

    claim = acquire(task.run_dir)
    if isinstance(claim, Busy):
        return claimed_record(task, claim.owner)
    try:
        done = is_done(task)  # completed by another process just before this claim
        if done is not None:
            return {**done, "skipped": True}
        record = _run_task(task)
        if not claim.held():  # taken over as stale meanwhile: the new owner's results stand
            return claimed_record(task, claim.holder())
        finished = time.time()
        record["execution"] = claim.execution(finished)
        overlapped = claim.overlapping_runs(finished, RECORD)
        if overlapped and task.kind == "row":  # shared this host's CPU with another run
            record["wall_clock_comparable"] = False
            record["overlapped_runs"] = overlapped
        atomic_write_json(Path(task.run_dir) / RECORD, record)
        return record
    finally:
        claim.release()


def claimed_record(task: Task, owner: dict[str, Any] | None) -> dict[str, Any]:
    """The record of a run another process holds (never written to its run directory)."""
    from bench.ablate.claims import describe

    record = failed_record(task, None)
    record.update(status=CLAIMED, claimed_by=describe(owner))
    return record


def _run_task(task: Task) -> dict[str, Any]:
    from diffmavil.environment import environment
    from diffmavil.training.config import FinetuneConfig, PretrainConfig

    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = PretrainConfig.model_validate(task.pretrain) if task.pretrain else None
    probe = FinetuneConfig.model_validate(task.probe) if task.probe else None
    record = _base_record(task, config)
    started = time.perf_counter()
    try:
        if task.kind == "flops":
            _plan_only(task, record)
        elif task.kind == "control":
            assert config is not None and probe is not None
            tick = time.perf_counter()
            metrics = run_probe(probe, task.init, config.model, None, config.device)
            record["probe_seconds"] = time.perf_counter() - tick
            record["probe"] = metrics
            atomic_write_json(run_dir / "probe.json", metrics)
            record["status"] = "completed"
            record["wall_clock_comparable"] = None  # nothing timed
        else:
            assert config is not None
            _pretrain_and_probe(task, config, probe, run_dir, record)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # recorded, the grid goes on
        record["status"] = "failed"
        record["failure"] = record.get("failure") or _failure_reason(error)
        record["traceback"] = traceback.format_exc(limit=8)
    record["task_seconds"] = time.perf_counter() - started
    record.setdefault("environment", environment(config.device if config else "cpu"))
    return record


def _plan_only(task: Task, record: dict[str, Any]) -> None:
    record.update(
        status="planned",
        steps=task.planned_steps,
        samples=record["budget_samples"],
        total_flops=task.planned_flops,
        flops_by_component=task.planned_flops_by_component,
    )


def _pretrain_and_probe(task: Task, config, probe, run_dir: Path, record: dict[str, Any]):
    from bench.migrate import MigrationError, load_summary
    from diffmavil.training.pretrain import CHECKPOINT_NAME, TrainingFailed, pretrain

    summary_path = run_dir / "summary.json"
    summary = None
    if summary_path.exists():
        try:
            previous = load_summary(summary_path)
        except MigrationError:
            previous = None
        if (
            previous is not None
            and previous.status == "completed"
            and previous.run_id == config.run_id()
            and _checkpoint_verifies(run_dir / CHECKPOINT_NAME)
        ):  # pre-training finished before an interruption: reuse it
            summary = previous.model_dump(mode="json")
    if summary is None:
        dataset = _warm_pretrain_data(config) if config.data_cache == "memory" else None
        if config.device == "cpu":
            _warm_up(config, dataset if dataset is not None else _warm_pretrain_data(config))
        try:  # resumes from the newest checkpoint that verifies, else starts over
            summary = pretrain(
                config, run_dir, resume=True, progress=task.progress, dataset=dataset
            )
        except TrainingFailed as failure:
            failed = load_summary(summary_path) if summary_path.exists() else None
            summary = {} if failed is None else failed.model_dump(mode="json")
            record["failure"] = summary.get("failure") or str(failure)
    _copy_summary(summary, record)
    if summary.get("status") != "completed":
        record["status"] = "failed"
        return
    if task.time is not None:
        record["timing"] = _time_model(task.time, config)
        atomic_write_json(run_dir / "timing.json", record["timing"])
    if probe is not None:
        tick = time.perf_counter()
        metrics = run_probe(probe, "checkpoint", config.model, run_dir, config.device)
        record["probe_seconds"] = time.perf_counter() - tick
        record["probe"] = metrics
        atomic_write_json(run_dir / "probe.json", metrics)
    record["status"] = "completed"


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
    keep = (
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
    return [{k: row[k] for k in keep if k in row} for row in result.rows]


def _copy_summary(summary: dict[str, Any], record: dict[str, Any]) -> None:
    for key in (
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
    ):
        if key in summary:
            record[key] = summary[key]


# --------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------


def failed_record(task: Task, reason: str | None) -> dict[str, Any]:
    from diffmavil.training.config import PretrainConfig

    config = PretrainConfig.model_validate(task.pretrain) if task.pretrain else None
    record = _base_record(task, config)
    record["failure"] = reason
    return record


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_local(tasks: list[Task], on_done: Callable[[Task, dict], None]) -> None:
    for task in tasks:
        on_done(task, execute_task(task))


def run_workers(tasks: list[Task], workers: int, on_done: Callable[[Task, dict], None]) -> None:
    """N worker processes (spawned) share the CPU: their wall-clock is not comparable."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(execute_task, task.to_dict()): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                record = future.result()
            except Exception as error:  # the worker process died
                record = failed_record(task, f"worker failed: {_failure_reason(error)}")
            on_done(task, record)


def default_submitit_cluster() -> str:
    """What submitit's AutoExecutor would pick: SLURM where it is available, else local."""
    try:
        from submitit.slurm.slurm import SlurmExecutor
    except ImportError:
        return "local"
    return "slurm" if SlurmExecutor.affinity() > 0 else "local"


def run_submitit(
    tasks: list[Task],
    folder: Path,
    on_done: Callable[[Task, dict], None],
    *,
    cluster: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> None:
    """One submitit job per task (a job array on SLURM); ``cluster="local"`` runs them as
    local processes (submitit's LocalExecutor), which share this machine's CPU."""
    try:
        import submitit
    except ImportError:
        from bench.errors import BadInput

        raise BadInput(
            "--executor submitit needs the submitit package (pip install -e '.[cluster]')"
        ) from None
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = {"timeout_min": 60, "name": "diffbench-ablate"}
    params.update({k: v for k, v in (parameters or {}).items() if v is not None})
    executor.update_parameters(**params)
    jobs = executor.map_array(execute_task, [task.to_dict() for task in tasks])
    for task, job in zip(tasks, jobs, strict=True):
        try:
            record = job.result()
        except Exception as error:
            record = failed_record(
                task, f"submitit job {job.job_id} failed: {_failure_reason(error)}"
            )
        on_done(task, record)
