"""Whole-run projection: the measurements (``bench.projection.recipes`` assembles them).

- Steps: one model and optimizer per recipe, built as ``pretrain`` builds them, driven by
  the shared ``diffmavil.training.step.TrainStep``; one task per measured point (batch
  size, visible tokens) of every recipe, all in one interleaved loop with a reference
  matmul, so load drifts fall on every recipe alike. The timed region is ``pretrain``'s
  compute region: learning-rate update, the train step, the non-finite check.
- Loading: the run's dataset through ``pretrain``'s sampler and loader, timed as
  ``pretrain`` times it (waiting for the batch, moving it to the device), first cold
  (items built from their source), then again from the in-memory cache.
- Fixed costs: ``pretrain``'s checkpoint payload written as it writes it (atomically,
  verified, the previous one kept), and one metrics row
  (JSONL + TensorBoard) per logged step.
- Peak memory: each recipe in a process of its own (a process's peak resident set only
  grows, so one recipe's peak would hide the other's), stepping at the largest point of
  each of its batch sizes: CUDA's max allocated bytes, or the process's peak resident set
  (VmHWM) on CPU.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.projection.recipes import (
    FixedCosts,
    Loading,
    Measurements,
    ProjectionRequest,
    RecipePlan,
    WholeRunResult,
    assemble,
    plan_recipe,
)
from bench.projection.steps import RecipeSteps, only_on_device, step_tasks
from bench.timing.device import (
    PeakMemory,
    capture_environment,
    matmul_rate,
    on_device,
    process_peak_mb,
)
from bench.timing.faults import planted_out_of_memory
from bench.timing.harness import RegionTimer, run_interleaved
from diffmavil.inputs import random_inputs
from diffmavil.training.config import PretrainConfig

MATMUL_SIZE = 2048


def measure_loading(config: PretrainConfig, batches: int, device: torch.device) -> Loading:
    """Seconds per sample of ``pretrain``'s loader on the run's dataset: the first
    ``batches`` planned batches cold, then the same batches again from the cache."""
    from diffmavil.data import build_dataset
    from diffmavil.schedules import plan_run
    from diffmavil.training.stream import PlanBatchSampler, SampleStream, sample_ids

    cache = None if config.data_cache == "none" else config.data_cache
    dataset = build_dataset(config.data, config.model, "train", seed=config.seed, cache=cache)
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    chosen, seen = [], 0
    for step in plan[:batches]:  # cold batches must not repeat an item
        if seen + step.batch_size > len(dataset) and chosen:
            break
        chosen.append(step)
        seen += step.batch_size

    def timed_pass() -> list[float]:
        sampler = PlanBatchSampler(chosen, SampleStream(len(dataset), config.seed))
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=0, pin_memory=device.type == "cuda"
        )
        per_sample = []
        iterator = iter(loader)
        for step in chosen:
            tick = time.perf_counter()
            batch = next(iterator)
            batch["audio"].to(device, non_blocking=True)
            batch["video"].to(device, non_blocking=True)
            sample_ids(step).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            per_sample.append((time.perf_counter() - tick) / step.batch_size)
        return per_sample

    cold = timed_pass()
    warm = timed_pass() if cache == "memory" else []
    return Loading(cold=tuple(cold), warm=tuple(warm), dataset_size=len(dataset))


def measure_fixed(stepper: RecipeSteps, repeats: int) -> FixedCosts:
    """Seconds of ``pretrain``'s checkpoint write and of one logged metrics row."""
    from diffmavil.schedules import StepPlan
    from diffmavil.training.checkpoint import save_checkpoint
    from diffmavil.training.metrics import MetricsLog, StepTotals, metrics_row
    from diffmavil.training.pretrain import CHECKPOINT_NAME, checkpoint_payload

    config = stepper.config
    if stepper.last is None:
        raise RuntimeError("measure_fixed needs one step first (the optimizer state)")
    result = stepper.last
    plan_step = StepPlan(0, 0, config.batch.batch_size, config.masking.start, 1.0)
    checkpoint, log_row = [], []
    with tempfile.TemporaryDirectory(prefix="diffbench-fixed-") as folder:
        run_dir = Path(folder)
        log = MetricsLog(run_dir, 0, enabled=True)
        try:
            for index in range(repeats):
                tick = time.perf_counter()
                elapsed = {"compute": 0.0, "data": 0.0, "overhead": 0.0}
                payload = checkpoint_payload(
                    config, stepper.model, stepper.optimizer, index + 1, elapsed
                )
                save_checkpoint(run_dir / CHECKPOINT_NAME, payload)
                checkpoint.append(time.perf_counter() - tick)
                totals = StepTotals()
                totals.add(plan_step, config.model)
                tick = time.perf_counter()
                if stepper.device.type == "cuda":
                    torch.cuda.synchronize(stepper.device)
                bool(stepper.non_finite.item())
                row = metrics_row(
                    plan_step, result.output, result.loss, stepper.lr,
                    result.grad_norm, 0.1, 0.01, totals,
                )  # fmt: skip
                log.write(row)
                log_row.append(time.perf_counter() - tick)
        finally:
            log.close()
    return FixedCosts(checkpoint=tuple(checkpoint), log_row=tuple(log_row))


class MemoryProbeFailed(RuntimeError):
    """A recipe's memory probe (a child process) failed: out of memory, or it died."""


PROBE_POLL_SECONDS = 0.2  # how often the parent looks whether the probe child still lives


def probe_started(queue, batch: int) -> None:
    """Child side: say which batch the probe steps at now (named if the child dies)."""
    queue.put(("batch", batch))


def _memory_probe(payload: dict[str, Any], points: list, compile: bool, queue) -> None:
    """Child process: build one recipe, step at ``points`` [(batch, ratio)], report peak.
    Says each batch before stepping at it; an out-of-memory error is reported as such
    (``torch.OutOfMemoryError`` only: any other error is a failure of its own)."""
    config = PretrainConfig.model_validate(payload)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    batch = points[0][0] if points else 0
    probe_started(queue, batch)
    memory = PeakMemory(device)
    memory.reset()
    try:
        stepper = RecipeSteps(config, device, compile)
        for batch, ratio in points:
            probe_started(queue, batch)
            planted_out_of_memory(batch)  # a test's fault (nothing unless planted)
            audio, video = random_inputs(config.model, batch, device, 0)
            for _ in range(2):
                stepper.run(audio, video, tuple(ratio))
            del audio, video
    except torch.OutOfMemoryError as error:
        queue.put(("out_of_memory", batch, str(error).strip().splitlines()[0]))
        raise SystemExit(3) from None
    queue.put(("peak", memory.read_mb() if device.type == "cuda" else process_peak_mb()))


def _await_probe(process, queue, name: str, batch: int) -> tuple[float, str]:
    """The probe's (MB, kind), reading its messages while it lives; a child that dies
    without reporting (killed, crashed, out of memory) raises ``MemoryProbeFailed`` at
    once, naming the recipe, the batch it stepped at and its exit code."""
    import queue as queues

    while True:
        try:
            message = queue.get(timeout=PROBE_POLL_SECONDS)
        except queues.Empty:
            if process.is_alive():
                continue
            try:  # what it sent just before it exited
                message = queue.get(timeout=1.0)
            except queues.Empty:
                process.join()
                raise MemoryProbeFailed(
                    f"memory probe of {name} (batch {batch}) died with exit code "
                    f"{process.exitcode} before reporting its peak"
                ) from None
        kind, *rest = message
        if kind == "batch":
            batch = rest[0]
        elif kind == "out_of_memory":
            process.join()
            raise MemoryProbeFailed(
                f"memory probe of {name} (batch {rest[0]}) ran out of memory "
                f"(exit code {process.exitcode}): {rest[1]}"
            )
        else:
            return rest[0]


def measure_peak_memory(
    recipe: RecipePlan, compile: bool, probe: Callable[..., None] = _memory_probe
) -> tuple[float, str]:
    """(MB, kind): the recipe alone in a fresh process, at the largest-FLOP point of each of
    its batch sizes (two steps each, so the optimizer state exists). ``probe``: the child's
    function (a test's stand-in). A child that fails raises ``MemoryProbeFailed``."""
    largest: dict[int, Any] = {}
    for point in recipe.points:
        if point.batch_size not in largest or point.flops > largest[point.batch_size].flops:
            largest[point.batch_size] = point
    points = [(p.batch_size, list(p.mask_ratio)) for p in largest.values()]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=probe, args=(recipe.config.model_dump(mode="json"), points, compile, queue)
    )
    process.start()
    try:
        result = _await_probe(process, queue, recipe.name, points[0][0])
    finally:
        process.join()
    if process.exitcode != 0:
        raise MemoryProbeFailed(
            f"memory probe of {recipe.name} exited with {process.exitcode} after reporting"
        )
    return result


def _matmul_task(device: torch.device, dtype: str) -> Callable[[RegionTimer], None]:
    from bench.timing.device import DTYPES

    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(device=device, dtype=DTYPES[dtype])

    def task(timer: RegionTimer) -> None:
        with timer.region("step"):
            torch.mm(a, b)

    return task


def project_whole_run(
    request: ProjectionRequest, progress: Callable[[str], None] | None = None
) -> WholeRunResult:
    """Plan every recipe, measure, and assemble the projection (on CUDA with the
    request's device current)."""
    first = next(iter(request.recipes.values()))
    if first.threads is not None:
        torch.set_num_threads(first.threads)
    device = torch.device(request.device)
    with on_device(device):
        return _project(request, device, progress)


def _project(
    request: ProjectionRequest, device: torch.device, progress: Callable[[str], None] | None
) -> WholeRunResult:
    recipes = {
        name: plan_recipe(name, config, request.max_anchors)
        for name, config in request.recipes.items()
    }
    environment = capture_environment(device, request.dtype)
    loading: dict[str, Loading] = {}
    by_data: dict[Any, Loading] = {}
    for name, recipe in recipes.items():
        config = recipe.config
        key = (config.data, config.model.audio, config.model.video, config.seed, config.data_cache)
        if key not in by_data:
            by_data[key] = measure_loading(config, request.data_batches, device)
        loading[name] = by_data[key]
    memory: dict[str, tuple[float, str] | None] = {name: None for name in recipes}
    if request.memory:
        for name, recipe in recipes.items():
            memory[name] = measure_peak_memory(recipe, request.compile)
    tasks, steppers = step_tasks(recipes, device, request.compile, request.seed)
    rate = matmul_rate(device, request.dtype, size=MATMUL_SIZE, repeats=request.matmul_repeats)
    tasks["matmul/reference"] = _matmul_task(device, request.dtype)
    samples = run_interleaved(
        tasks,
        warmup=max(request.warmup, 1),
        repeats=request.repeats,
        device=device,
        progress=progress,
        min_seconds=request.min_seconds,
    )
    rate = max(rate, 2.0 * MATMUL_SIZE**3 / min(samples.pop("matmul/reference")["step"]))
    fixed = {}
    for name in recipes:  # each on the device in turn (one recipe at a time on CUDA)
        only_on_device(steppers, name, device)
        fixed[name] = measure_fixed(steppers[name], request.fixed_repeats)
    steps: dict[str, dict[int, list[float]]] = {name: {} for name in recipes}
    for key, regions in samples.items():
        name, index = key.rsplit("/", 1)
        steps[name][int(index)] = regions["step"]
    environment = {
        **environment,
        "load_average_1m_end": capture_environment(device, request.dtype)["load_average_1m"],
    }
    measurements = Measurements(
        steps=steps,
        loading=loading,
        fixed=fixed,
        memory=memory,
        matmul_flops_per_s=rate,
        environment=environment,
    )
    return assemble(request, recipes, measurements)
