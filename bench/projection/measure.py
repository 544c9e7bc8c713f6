"""Whole-run projection: the measurements (``bench.projection.assemble`` assembles them).

Everything but peak memory is measured in ``windows`` separate windows (``measure_window``),
one after another, so that the projection's interval holds what varies between them: the
machine's drift, the allocations of freshly built models, the loader's one-time costs.

- Steps: per window, one model and optimizer per recipe, built as ``pretrain`` builds
  them, driven by the shared ``diffmavil.training.step.TrainStep``; one task per measured
  point (batch size, visible tokens) of every recipe, all in one interleaved loop with a
  reference matmul, so load drifts fall on every recipe alike. The timed region is
  ``pretrain``'s compute region: learning-rate update, the train step, the non-finite
  check; each call steps on a fresh copy of its batch (a loaded batch is new memory).
- Loading: the run's dataset through ``pretrain``'s sampler and loader, timed as
  ``pretrain`` times it (from the previous step's end until the batch is on the device):
  the first batch apart (the iterator's start and the dataset's one-time costs, paid once
  per run), then per sample cold (items built from their source), then again from the
  in-memory cache.
- Fixed costs: ``pretrain``'s checkpoint payload written as it writes it (atomically,
  verified, the previous one kept), and one metrics row (JSONL + TensorBoard, its scalars
  read from the device once) per logged step.
- Peak memory (once): each recipe in a process of its own (a process's peak resident set
  only grows, so one recipe's peak would hide the other's), stepping at the largest point
  of each of its batch sizes: CUDA's max allocated bytes, or the process's peak resident
  set (VmHWM) on CPU.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.projection.assemble import assemble
from bench.projection.recipes import (
    FixedCosts,
    Loading,
    Measurements,
    ProjectionRequest,
    RecipePlan,
    WholeRunResult,
    Window,
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
    """Seconds of ``pretrain``'s loader on the run's dataset, timed as ``pretrain`` times
    a step's data (from the end of the previous step until the batch is on the device;
    the sample ids are built on the device, as ``pretrain`` builds them): the first batch
    apart (it pays the loader's and the dataset's one-time costs, once per run), then
    seconds per sample of the next ``batches`` planned batches cold (items built from their
    source), then of the same batches again from the cache."""
    from diffmavil.data import build_dataset
    from diffmavil.schedules import plan_run
    from diffmavil.training.stream import PlanBatchSampler, SampleStream

    cache = None if config.data_cache == "none" else config.data_cache
    dataset = build_dataset(config.data, config.model, "train", seed=config.seed, cache=cache)
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    chosen, seen = [], 0
    for step in plan[: batches + 1]:  # cold batches must not repeat an item
        if seen + step.batch_size > len(dataset) and chosen:
            break
        chosen.append(step)
        seen += step.batch_size

    def timed_pass(steps: list) -> list[float]:
        """Seconds of each batch of ``steps``, the iterator's start counted in the first."""
        sampler = PlanBatchSampler(steps, SampleStream(len(dataset), config.seed))
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=0, pin_memory=device.type == "cuda"
        )
        seconds = []
        tick = time.perf_counter()  # as pretrain: the loader's iterator starts in step 0
        for _, batch in zip(steps, loader, strict=True):
            batch["audio"].to(device, non_blocking=True)
            batch["video"].to(device, non_blocking=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - tick)
            tick = time.perf_counter()
        return seconds

    cold_seconds = timed_pass(chosen)
    pairs = zip(cold_seconds[1:], chosen[1:], strict=True)
    cold = tuple(seconds / step.batch_size for seconds, step in pairs)
    cold = cold or (cold_seconds[0] / chosen[0].batch_size,)  # one batch: it is the rate
    warm = ()
    if cache == "memory":
        warm_seconds = timed_pass(chosen)
        warm = tuple(s / step.batch_size for s, step in zip(warm_seconds, chosen, strict=True))
    return Loading(
        first=cold_seconds[0],
        first_batch=chosen[0].batch_size,
        cold=cold,
        warm=warm,
        dataset_size=len(dataset),
    )


def measure_fixed(stepper: RecipeSteps, repeats: int) -> FixedCosts:
    """Seconds of ``pretrain``'s checkpoint write and of one logged metrics row."""
    from diffmavil.schedules import StepPlan
    from diffmavil.training.checkpoint import save_checkpoint
    from diffmavil.training.metrics import MetricsLog, StepTotals, metrics_row, read_scalars
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
                scalars = read_scalars(
                    result.loss, result.output, result.grad_norm, stepper.non_finite
                )  # one read of the device, as pretrain's logged step
                scalars.pop("non_finite")
                row = metrics_row(
                    plan_step, result.output, result.loss, stepper.lr,
                    result.grad_norm, 0.1, 0.01, totals, scalars,
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
    memory: dict[str, tuple[float, str] | None] = {name: None for name in recipes}
    if request.memory:
        for name, recipe in recipes.items():
            memory[name] = measure_peak_memory(recipe, request.compile)
    windows: list[Window] = []
    for index in range(request.windows):
        if index and request.window_gap:
            time.sleep(request.window_gap)
        windows.append(measure_window(request, recipes, device, progress))
    environment = {
        **environment,
        "load_average_1m_end": capture_environment(device, request.dtype)["load_average_1m"],
    }
    measurements = Measurements(windows=windows, memory=memory, environment=environment)
    return assemble(request, recipes, measurements)


def measure_window(
    request: ProjectionRequest,
    recipes: dict[str, RecipePlan],
    device: torch.device,
    progress: Callable[[str], None] | None,
) -> Window:
    """One measurement window: every recipe's loading, its models and optimizers built
    afresh (their own allocations), the interleaved rounds of every measured point with a
    reference matmul, and the fixed costs."""
    loading: dict[str, Loading] = {}
    by_data: dict[Any, Loading] = {}
    for name, recipe in recipes.items():
        config = recipe.config
        key = (config.data, config.model.audio, config.model.video, config.seed, config.data_cache)
        if key not in by_data:
            by_data[key] = measure_loading(config, request.data_batches, device)
        loading[name] = by_data[key]
    tasks, steppers = step_tasks(recipes, device, request.compile, request.seed)
    rate = matmul_rate(device, request.dtype, size=MATMUL_SIZE, repeats=request.matmul_repeats)
    tasks["matmul/reference"] = _matmul_task(device, request.dtype)
    samples = run_interleaved(
        tasks,
        warmup=max(request.warmup, 1),
        repeats=request.repeats,
        device=device,
        progress=progress,
        min_seconds=request.min_seconds / request.windows,
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
    del tasks, steppers  # this window's models and optimizers
    return Window(steps=steps, loading=loading, fixed=fixed, matmul_flops_per_s=rate)
