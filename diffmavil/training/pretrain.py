"""Pre-training: the masking curriculum and adaptive batch size, over a budget of samples.

The run follows a plan computed up front by the pure schedule functions
(``diffmavil.schedules.plan_run``): each step's mask ratios, batch size and learning-rate
scale are functions of the samples seen before it. Fixed and adaptive batch runs therefore
see the same samples with the same masks and differ only in how the samples are grouped into
steps: adaptive batch changes wall-clock, not total FLOPs, and the log shows both.

A run directory holds ``config.json``, ``metrics.jsonl`` (one row per logged step),
TensorBoard event files under ``tb/``, ``checkpoint.pt`` (written atomically and verified
every ``checkpoint_every`` steps, the previous one kept as ``checkpoint.prev.pt`` until the
run completes; see ``diffmavil.training.checkpoint``) and ``summary.json`` (written
atomically at the end, also when the run fails). Its times:
``data_seconds`` (waiting for the loader, moving the batch to the device),
``compute_seconds`` (the train step), ``overhead_seconds`` (logged rows and checkpoint
writes), and ``wall_clock_seconds``, their sum. On CUDA the loop synchronises the device at
both ends of each step's compute timer, so that a step's GPU work is its compute seconds
(not the next step's data seconds) and its batch copies its data seconds; a logged step
reads its scalars (loss terms, gradient norm, the non-finite flag) from the device once.
A step that runs out of memory ends the run with a failed summary naming the step, its
batch, mask ratios and the device's memory.

With ``snapshot_every`` set it also holds encoder snapshots, ``snapshots/`` and their index
``snapshots.json`` (``diffmavil.training.snapshots``). Writing them is left out of every
time above and recorded apart as ``snapshot_seconds``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffmavil.atomic import atomic_write_json
from diffmavil.config import ConfigError
from diffmavil.environment import environment
from diffmavil.model import DiffMAViL
from diffmavil.schedules import StepPlan, lr_at, plan_run
from diffmavil.training import distributed
from diffmavil.training.checkpoint import discard_previous, resume_checkpoint, save_checkpoint
from diffmavil.training.compile import compile_components
from diffmavil.training.config import PretrainConfig
from diffmavil.training.metrics import (
    MetricsLog,
    StepTotals,
    data_bound,
    last_losses,
    metrics_row,
    read_scalars,
)
from diffmavil.training.progress import progress_bar
from diffmavil.training.snapshots import SnapshotWriter
from diffmavil.training.step import TrainStep, autocast_context, make_optimizer
from diffmavil.training.stream import PlanBatchSampler, SampleStream, rank_slice
from diffmavil.training.summary import SCHEMA_VERSION, RunSummary

SUMMARY_SCHEMA_VERSION = SCHEMA_VERSION  # diffmavil.training.summary
CHECKPOINT_NAME = "checkpoint.pt"


class TrainingFailed(RuntimeError):
    """The run stopped (e.g. a non-finite loss); the reason is in its summary.json."""


def peak_lr(config: PretrainConfig) -> float:
    """MAE's rule: base_lr * batch / 256 at the base batch size."""
    return config.optimizer.base_lr * config.batch.batch_size / 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def checkpoint_payload(
    config: PretrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    next_step: int,
    elapsed: dict[str, float],
) -> dict[str, Any]:
    """What ``checkpoint.pt`` holds: the run id, the next step, model and optimizer state,
    and the seconds spent so far ({compute, data, overhead}, and snapshot when the run
    writes snapshots)."""
    return {
        "run_id": config.run_id(),
        "next_step": next_step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "elapsed": elapsed,
    }


def build_model(config: PretrainConfig, device: torch.device) -> DiffMAViL:
    torch.manual_seed(config.seed)
    return DiffMAViL(config.model).to(device)


def pretrain(
    config: PretrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    dataset: torch.utils.data.Dataset | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) one pre-training run; returns the summary (also in summary.json).

    Raises ``TrainingFailed`` after writing a failed summary when the loss is not finite or
    a step runs out of memory (``torch.OutOfMemoryError``: the summary names the step, its
    batch, mask ratios and the device's memory). Under ``torchrun`` each process trains its
    disjoint share of every global batch; the process group this call joins is left (and
    destroyed, if it created it) at the end, also when the run fails.
    """
    run_dir = Path(run_dir)
    with distributed.joined(config.device) as group:
        run = _prepare(config, run_dir, group, resume, dataset)
        loop = _Loop(run, progress, on_step)
        status, failure = loop.train()
        summary = _summary(run, loop, status, failure)
        if group.is_main or loop.out_of_memory:  # a rank that ran out says so itself
            atomic_write_json(run_dir / "summary.json", summary)
        if group.is_main and status == "completed":
            discard_previous(run.checkpoint_path)
    if status != "completed":
        raise TrainingFailed(f"{run_dir}: {failure}")
    return summary


@dataclass
class _Clock:
    """Seconds spent so far: compute, data and overhead (their sum is the wall-clock) and
    writing snapshots (recorded apart)."""

    compute: float = 0.0
    data: float = 0.0
    overhead: float = 0.0
    snapshot: float = 0.0

    @classmethod
    def restore(cls, elapsed: dict[str, float]) -> _Clock:
        # older checkpoints: no overhead; runs without snapshots: no snapshot seconds
        return cls(**{"overhead": 0.0, "snapshot": 0.0, **elapsed})

    @property
    def wall(self) -> float:
        return self.compute + self.data + self.overhead

    def elapsed(self, snapshots: bool) -> dict[str, float]:
        """What a checkpoint records (snapshot seconds when the run writes snapshots)."""
        elapsed = {"compute": self.compute, "data": self.data, "overhead": self.overhead}
        if snapshots:
            elapsed["snapshot"] = self.snapshot
        return elapsed


@dataclass
class _Run:
    """What a run trains with, built (or restored from its checkpoint) before the loop."""

    config: PretrainConfig
    run_dir: Path
    group: distributed.ProcessGroup
    device: torch.device
    dataset: torch.utils.data.Dataset
    plan: list[StepPlan]
    model: DiffMAViL
    optimizer: torch.optim.Optimizer
    train_step: TrainStep
    gather: Callable[[torch.Tensor], torch.Tensor] | None
    compiled: Any
    start_step: int
    discarded: list[Path]
    clock: _Clock

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME


def _prepare(
    config: PretrainConfig,
    run_dir: Path,
    group: distributed.ProcessGroup,
    resume: bool,
    dataset: torch.utils.data.Dataset | None,
) -> _Run:
    """The device, dataset, plan, model and optimizer of a run, resumed from its checkpoint
    when ``resume`` and one verifies; ``config.json`` written."""
    from diffmavil.data import build_dataset

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device, group.local_rank if config.device == "cuda" else None)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: no CUDA device is available (allowed here: cpu)")
    cache = None if config.data_cache == "none" else config.data_cache
    dataset = dataset or build_dataset(
        config.data, config.model, "train", seed=config.seed, cache=cache
    )
    plan = _sharded_plan(config, group.world_size)
    model = build_model(config, device)
    compiled = compile_components(model) if config.compile else None
    optimizer = make_optimizer(model, config.optimizer, peak_lr(config))
    start_step, clock, discarded = _restore(
        config, run_dir, group, device, model, optimizer, resume
    )
    if group.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", config.model_dump(mode="json"))
    train_model: nn.Module = model
    gather = None
    if group.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        gather = distributed.gather_with_grad
    train_step = TrainStep(
        model,
        optimizer,
        grad_clip=config.optimizer.grad_clip,
        forward=train_model,
        autocast=autocast_context(device, config.dtype),
    )
    return _Run(config, run_dir, group, device, dataset, plan, model, optimizer, train_step,
                gather, compiled, start_step, discarded, clock)  # fmt: skip


def _sharded_plan(config: PretrainConfig, world_size: int) -> list[StepPlan]:
    """The run plan; fails before training if a step cannot be sharded evenly."""
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    for step in plan:
        if step.batch_size % world_size:
            raise ConfigError(
                f"step {step.step}: global batch {step.batch_size} does not divide among "
                f"{world_size} processes (choose a budget and batch multiple of it)"
            )
    return plan


def _restore(
    config: PretrainConfig,
    run_dir: Path,
    group: distributed.ProcessGroup,
    device: torch.device,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    resume: bool,
) -> tuple[int, _Clock, list[Path]]:
    """(next step, seconds so far, checkpoints moved aside): from the newest checkpoint that
    verifies when ``resume`` (model and optimizer state loaded), else a fresh start."""
    checkpoint_path = run_dir / CHECKPOINT_NAME
    state, discarded = resume_checkpoint(checkpoint_path, device, group) if resume else (None, [])
    if state is None:
        return 0, _Clock(), discarded
    if state["run_id"] != config.run_id():
        raise ConfigError(
            f"{checkpoint_path}: belongs to run {state['run_id']}, not {config.run_id()}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["next_step"], _Clock.restore(state["elapsed"]), discarded


class _Loop:
    """The training loop over the plan's remaining steps: each step's batch, train step,
    timers, logged row, snapshot and checkpoint."""

    def __init__(
        self, run: _Run, progress: bool, on_step: Callable[[dict[str, Any]], None] | None
    ) -> None:
        config, group = run.config, run.group
        self.run, self.config, self.on_step = run, config, on_step
        sampler = PlanBatchSampler(
            run.plan, SampleStream(len(run.dataset), config.seed), run.start_step,
            group.rank, group.world_size,
        )  # fmt: skip
        self.loader = torch.utils.data.DataLoader(
            run.dataset,
            batch_sampler=sampler,
            num_workers=config.num_workers,
            persistent_workers=False,
            pin_memory=run.device.type == "cuda",
        )
        self.log = MetricsLog(run.run_dir, run.start_step, enabled=group.is_main)
        self.snapshots = SnapshotWriter(
            run.run_dir, config.snapshot_every, run.plan, run.start_step, config.run_id(),
            main=group.is_main,
        )  # fmt: skip
        self.totals = StepTotals.restore(run.plan[: run.start_step], config.model)
        self.clock = run.clock
        self.bar = progress_bar(progress and group.is_main, len(run.plan), run.start_step)
        self.base_lr = peak_lr(config)
        self.non_finite = torch.zeros((), dtype=torch.bool, device=run.device)
        self.out_of_memory = False

    def train(self) -> tuple[str, str | None]:
        """("completed", None), or ("failed", why) when a step's loss was not finite or the
        step ran out of memory."""
        self.run.model.train()
        tick = time.perf_counter()
        try:
            for step, batch in zip(self.run.plan[self.run.start_step :], self.loader, strict=True):
                try:
                    failure = self.step(step, batch, tick)
                except OUT_OF_MEMORY as error:
                    self.out_of_memory = True
                    failure = out_of_memory_failure(error, step, self.run)
                if failure is not None:
                    return "failed", failure
                self.bar.advance()
                tick = time.perf_counter()
        finally:
            self.bar.stop()
            self.log.close()
        return "completed", None

    def step(self, step: StepPlan, batch: dict[str, torch.Tensor], tick: float) -> str | None:
        """One step, its data timed from ``tick``; the failure when its loss is not finite.

        On CUDA the device is synchronised at both ends of the compute timer (``_sync``, a
        no-op on a CPU): the batch's copies are data time, the step's GPU work is compute
        time. A checked step (logged, or writing a snapshot) reads the device once."""
        run, device = self.run, self.run.device
        audio = batch["audio"].to(device, non_blocking=True)
        video = batch["video"].to(device, non_blocking=True)
        ids = device_sample_ids(step, run.group, device)
        _sync(device)
        data_seconds = time.perf_counter() - tick
        start = time.perf_counter()
        lr = self.set_lr(step)
        result = run.train_step(
            audio, video, step.mask_ratio, ids, self.config.seed, run.gather, run.group.rank,
            poison_loss=step.step == self.config.inject_nan_at_step,
        )  # fmt: skip
        self.non_finite |= ~torch.isfinite(result.loss.detach())
        last = step.step == len(run.plan) - 1
        logged = last or step.step % self.config.log_every == 0
        snapshot = self.snapshots.due(step.step)
        checked = logged or snapshot  # a snapshot holds finite weights only
        _sync(device)
        compute_seconds = time.perf_counter() - start
        self.clock.compute += compute_seconds
        self.clock.data += data_seconds
        self.totals.add(step, self.config.model)
        overhead_start = time.perf_counter()
        if checked:
            flag = distributed.any_rank(self.non_finite)  # on every rank, on the device
            scalars = read_scalars(result.loss, result.output, result.grad_norm, flag)
            if scalars.pop("non_finite"):
                return f"non-finite loss at step {step.step} (loss={scalars['loss']})"
        if logged:
            row = metrics_row(step, result.output, result.loss, lr, result.grad_norm,
                       compute_seconds, data_seconds, self.totals, scalars)  # fmt: skip
            self.log.write(row)
            if self.on_step is not None:
                self.on_step(row)
        snapshot_seconds = self.write_snapshot(step, overhead_start) if snapshot else 0.0
        if run.group.is_main and (last or (step.step + 1) % self.config.checkpoint_every == 0):
            elapsed = self.clock.elapsed(self.snapshots.enabled)
            save_checkpoint(
                run.checkpoint_path,
                checkpoint_payload(self.config, run.model, run.optimizer, step.step + 1, elapsed),
            )
        self.clock.overhead += time.perf_counter() - overhead_start - snapshot_seconds
        return None

    def set_lr(self, step: StepPlan) -> float:
        """The step's learning rate (warm-up + cosine over samples, times the batch rule's
        scale), set on every parameter group."""
        optimizer = self.config.optimizer
        lr = (
            lr_at(
                step.samples_seen,
                self.config.budget_samples,
                self.base_lr,
                warmup_fraction=optimizer.warmup_fraction,
                min_lr=optimizer.min_lr,
            )
            * step.lr_scale
        )
        for param_group in self.run.optimizer.param_groups:
            param_group["lr"] = lr
        return lr

    def write_snapshot(self, step: StepPlan, overhead_start: float) -> float:
        """Write the step's snapshot (before its checkpoint: see
        ``diffmavil.training.snapshots``); returns the seconds it took."""
        snapshot_start = time.perf_counter()
        clock = self.clock
        self.snapshots.write(
            self.run.model,
            self.config.model,
            step=step.step,
            samples=self.totals.samples,
            flops=self.totals.flops,
            wall_clock_seconds=clock.compute
            + clock.data
            + clock.overhead
            + (snapshot_start - overhead_start),
            compute_seconds=clock.compute,
        )
        seconds = time.perf_counter() - snapshot_start
        clock.snapshot += seconds
        return seconds


def _summary(run: _Run, loop: _Loop, status: str, failure: str | None) -> dict[str, Any]:
    """The run's summary (``RunSummary``, as JSON)."""
    config, clock, totals = run.config, run.clock, loop.totals
    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "kind": "pretrain",
        "run_id": config.run_id(),
        "status": status,
        "failure": failure,
        "config": config.model_dump(mode="json"),
        "steps": totals.steps,
        "planned_steps": len(run.plan),
        "samples": totals.samples,
        "budget_samples": config.budget_samples,
        "total_flops": totals.flops,
        "flops_by_component": totals.by_component,
        "wall_clock_seconds": clock.wall,
        "compute_seconds": clock.compute,
        "data_seconds": clock.data,
        "overhead_seconds": clock.overhead,
        "snapshot_seconds": clock.snapshot if loop.snapshots.enabled else None,
        "samples_per_second": totals.samples / max(clock.compute + clock.data, 1e-9),
        **data_bound(clock.data, clock.compute),
        "compile": run.compiled.summary() if run.compiled is not None else None,
        "achieved_flops_per_second": totals.flops / max(clock.compute, 1e-9),
        "resumed_from_step": run.start_step if run.start_step else None,
        "discarded_checkpoints": [str(path) for path in run.discarded],
        "world_size": run.group.world_size,
        "skipped_files": int(getattr(run.dataset, "skipped", 0)),
        "final_losses": last_losses(run.run_dir) if run.group.is_main else {},
        "environment": environment(run.device),
    }
    return RunSummary.model_validate(summary).model_dump(mode="json")


# torch.OutOfMemoryError from torch 2.5 (any device), torch.cuda.OutOfMemoryError before it
OUT_OF_MEMORY: type[Exception] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def out_of_memory_failure(error: Exception, step: StepPlan, run: _Run) -> str:
    """The one-line failure of a step that ran out of memory: the step, its batch (and this
    rank's share), mask ratios, the allocation that failed and the device's memory."""
    batch = f"batch {step.batch_size}"
    if run.group.distributed:
        batch += f", {step.batch_size // run.group.world_size} on rank {run.group.rank}"
    tried = re.search(r"Tried to allocate ([\d.]+ \w+)", str(error))
    attempt = f", tried to allocate {tried.group(1)}" if tried else ""
    return (
        f"out of memory at step {step.step} ({batch}, mask ratios "
        f"{step.mask_ratio[0]:g}/{step.mask_ratio[1]:g}{attempt}); {memory_report(run.device)}"
    )


def memory_report(device: torch.device) -> str:
    """The device's memory, for a failure message: allocated and reserved by torch's caching
    allocator and the device's total on CUDA; unknown elsewhere."""
    if device.type != "cuda":
        return f"memory unknown on {device.type}"
    gib = 1024**3
    allocated = torch.cuda.memory_allocated(device) / gib
    reserved = torch.cuda.memory_reserved(device) / gib
    total = torch.cuda.get_device_properties(device).total_memory / gib
    return (
        f"memory allocated {allocated:.2f} GiB, reserved {reserved:.2f} GiB of "
        f"{total:.2f} GiB on {device}"
    )


def device_sample_ids(
    step: StepPlan, group: distributed.ProcessGroup, device: torch.device
) -> torch.Tensor:
    """``sample_ids`` made on ``device`` (no host-to-device copy, which from pageable
    memory waits for the device, every step)."""
    offset, count = rank_slice(step.batch_size, group.rank, group.world_size)
    start = step.samples_seen + offset
    return torch.arange(start, start + count, dtype=torch.int64, device=device)
