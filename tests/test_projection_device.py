"""The whole-run projection's device handling: a memory-probe child that dies is reported
at once (recipe, batch, exit code), not after an hour."""

from __future__ import annotations

import os
import threading
from typing import ClassVar

import pytest

from bench.projection.recipes import plan_recipe
from diffmavil.training.config import PretrainConfig


def _recipe(batch: int = 2, name: str = "b2"):
    config = PretrainConfig(
        preset="tiny", variant="mavil", budget_samples=batch, batch={"batch_size": batch},
        threads=1,
    )  # fmt: skip
    return plan_recipe(name, config, 4)


def _error_within(call, seconds: float = 60.0) -> BaseException | None:
    """What ``call`` raised, run in a thread given ``seconds`` (a spawned child imports
    torch in a few); the test fails if it is still waiting then."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            call()
        except BaseException as error:
            outcome["error"] = error

    waiter = threading.Thread(target=run, daemon=True)
    waiter.start()
    waiter.join(timeout=seconds)
    assert not waiter.is_alive(), f"still waiting on a dead memory probe after {seconds:g} s"
    return outcome.get("error")


def dies_at_once(payload, points, compile, queue) -> None:
    """A probe child that dies before reporting anything (a killed or crashed process)."""
    os._exit(7)


def dies_at_its_batch(payload, points, compile, queue) -> None:
    """A probe child that says which batch it starts, then dies (as a CUDA out-of-memory
    abort, or the kernel's OOM killer, would)."""
    from bench.projection.measure import probe_started

    probe_started(queue, points[0][0])
    os._exit(9)


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (dies_at_once, "memory probe of b2 (batch 2) died with exit code 7"),
        (dies_at_its_batch, "memory probe of b2 (batch 2) died with exit code 9"),
    ],
)
def test_a_dead_probe_child_is_one_line_naming_recipe_batch_and_exit_code(child, expected):
    from bench.projection.measure import MemoryProbeFailed, measure_peak_memory

    error = _error_within(lambda: measure_peak_memory(_recipe(), compile=False, probe=child))
    assert isinstance(error, MemoryProbeFailed), error
    assert str(error).startswith(expected) and "\n" not in str(error)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_probe_that_fails_in_the_child_is_reported_at_once():
    """The real probe, asked for a CUDA recipe where torch has no CUDA: the child fails at
    once (exit code 1); the parent says so instead of waiting an hour on its queue."""
    from bench.projection.measure import MemoryProbeFailed, measure_peak_memory

    config = _recipe().config.model_copy(update={"device": "cuda"})
    recipe = plan_recipe("cuda-b2", config, 4)
    error = _error_within(lambda: measure_peak_memory(recipe, compile=False))
    assert isinstance(error, MemoryProbeFailed), error
    assert str(error).startswith("memory probe of cuda-b2 (batch 2) ")
    assert "exit code 1" in str(error) and "\n" not in str(error)


# ------------------------------------------------------------------ the compiled program
def _record_compiles(monkeypatch) -> list[tuple[str, int, tuple]]:
    """Every ``torch.compile`` call from now on, as (compiled module's class, its width,
    the options but the backend); the function is returned uncompiled (nothing runs
    compiled, so this is quick on a CPU)."""
    import torch

    calls: list[tuple[str, int, tuple]] = []

    def record(function, **options):
        module = getattr(function, "__self__", function)
        width = next(module.parameters()).shape[-1]
        options.pop("backend", None)
        calls.append((type(module).__name__, width, tuple(sorted(options.items()))))
        return function

    monkeypatch.setattr(torch, "compile", record)
    return calls


def test_the_projection_compiles_the_program_pretrain_compiles(monkeypatch, tmp_path):
    """``--compile`` in a whole-run projection times the program ``pretrain --compile``
    runs: the same blocks compiled, with the same options (fullgraph, dynamic), through
    ``diffmavil.training.compile`` (its never-silent guard set)."""
    import torch

    from bench.projection.steps import RecipeSteps
    from diffmavil.training.pretrain import pretrain

    config = PretrainConfig(
        preset="tiny", variant="cross-attn", budget_samples=2, batch={"batch_size": 2},
        threads=1, compile=True, data="synthetic:classes=2,size=4,eval_size=2",
    )  # fmt: skip
    pretrained = _record_compiles(monkeypatch)
    pretrain(config, tmp_path / "run")
    projected = _record_compiles(monkeypatch)
    monkeypatch.setattr(torch._dynamo.config, "fail_on_recompile_limit_hit", False)
    RecipeSteps(config, torch.device("cpu"), compile=True)
    assert pretrained and sorted(projected) == sorted(pretrained)
    assert torch._dynamo.config.fail_on_recompile_limit_hit  # never silent


# ------------------------------------------------------------------ one recipe at a time
class _FakeSteps:
    """Stands in for ``RecipeSteps``: where it is, and where every recipe was whenever one
    of them stepped."""

    placed: ClassVar[dict[str, object]] = {}
    seen: ClassVar[list[tuple[str, dict[str, object]]]] = []

    def __init__(self, config, device, compile) -> None:
        self.name = f"{config.variant}-{len(_FakeSteps.placed)}"
        self.place = device
        _FakeSteps.placed[self.name] = device

    def move(self, where) -> None:
        self.place = where
        _FakeSteps.placed[self.name] = where

    def run(self, audio, video, ratio) -> None:
        _FakeSteps.seen.append((self.name, dict(_FakeSteps.placed)))


def test_one_recipe_and_one_batch_at_a_time_on_the_device(monkeypatch):
    """On CUDA (faked: nothing runs) a task brings its recipe and its batch onto the device
    and every other recipe is in host memory while it steps: the projection fits where
    one recipe alone fits."""
    import torch

    from bench.projection import steps
    from bench.timing.harness import run_interleaved

    _FakeSteps.placed, _FakeSteps.seen = {}, []
    monkeypatch.setattr(steps, "RecipeSteps", _FakeSteps)
    moved: list[object] = []

    def to(tensor, device, *args, **kwargs):
        moved.append(torch.device(device))
        return tensor

    monkeypatch.setattr(torch.Tensor, "to", to)
    cuda = torch.device("cuda")
    recipes = {"small": _recipe(2, "small"), "large": _recipe(4, "large")}
    tasks, steppers = steps.step_tasks(recipes, cuda, compile=False, seed=0)
    run_interleaved(tasks, warmup=1, repeats=3)
    assert len(_FakeSteps.seen) == 4 * len(tasks)
    for name, placed in _FakeSteps.seen:
        assert placed[name] == cuda
        assert all(where == steps.HOST for other, where in placed.items() if other != name)
    assert cuda in moved  # the batches are made in host memory, moved on when stepped
    steps.only_on_device(steppers, "small", cuda)
    assert steppers["small"].place == cuda and steppers["large"].place == steps.HOST


def test_on_a_cpu_nothing_moves(monkeypatch):
    import torch

    from bench.projection import steps
    from bench.timing.harness import RegionTimer

    _FakeSteps.placed, _FakeSteps.seen = {}, []
    monkeypatch.setattr(steps, "RecipeSteps", _FakeSteps)
    cpu = torch.device("cpu")
    tasks, _ = steps.step_tasks({"small": _recipe(2, "small")}, cpu, compile=False, seed=0)
    for task in tasks.values():
        task(RegionTimer(cpu))
    assert _FakeSteps.seen and all(p == {"mavil-0": cpu} for _, p in _FakeSteps.seen)
