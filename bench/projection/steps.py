"""The projection's timed train steps: one model and optimizer per recipe, built as
``pretrain`` builds them (compiled as ``pretrain --compile`` compiles them), driven by the
shared ``diffmavil.training.step.TrainStep``, and one task per measured point (batch size,
visible tokens) of every recipe, for one interleaved loop.

On CUDA only one recipe is on the device at a time (``Resident``): before a task runs,
the recipe it steps (model, optimizer state, flags) and its batch of inputs are moved
onto the device and whatever another recipe left there is moved to host memory. The
projection then fits wherever one recipe alone fits (what the memory probe measures),
not only where every recipe's model, optimizer and inputs for all its batch sizes fit
at once. The moves happen between tasks, outside the timed regions (a copy to or from
pageable host memory returns when it is done). On a CPU the device is the host: nothing
moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.projection.recipes import RecipePlan
from bench.timing.harness import RegionTimer
from diffmavil.inputs import random_inputs
from diffmavil.training.config import PretrainConfig

HOST = torch.device("cpu")


@dataclass
class StepScalars:
    """What the fixed-cost measurement needs of a recipe's last step (a metrics row's
    scalars), without the step's outputs (predictions, targets: memory on the device)."""

    losses: dict[str, torch.Tensor]
    loss: torch.Tensor
    grad_norm: torch.Tensor | None

    @property
    def output(self) -> StepScalars:  # read_scalars and _row read output.losses
        return self

    def to(self, device: torch.device) -> StepScalars:
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        losses = {name: value.to(device) for name, value in self.losses.items()}
        return StepScalars(losses, self.loss.to(device), move(self.grad_norm))


class RecipeSteps:
    """A recipe's model, optimizer and shared train step, as ``pretrain`` builds them
    (compiled as ``pretrain --compile`` compiles it: ``compile_components``)."""

    def __init__(self, config: PretrainConfig, device: torch.device, compile: bool) -> None:
        from diffmavil.training.compile import compile_components
        from diffmavil.training.pretrain import build_model, peak_lr
        from diffmavil.training.step import TrainStep, autocast_context, make_optimizer

        self.config = config
        self.device = device
        self.model = build_model(config, device)
        self.model.train()
        self.lr = peak_lr(config)
        # pretrain's compiled program: its blocks compiled in place, never silently eager
        self.compile_stats = compile_components(self.model) if compile else None
        self.optimizer = make_optimizer(self.model, config.optimizer, self.lr)
        self.step = TrainStep(
            self.model,
            self.optimizer,
            grad_clip=config.optimizer.grad_clip,
            autocast=autocast_context(device, config.dtype),
        )
        self.non_finite = torch.zeros((), dtype=torch.bool, device=device)
        self.last: StepScalars | None = None
        self.place = device  # where the model and optimizer state are now
        self._calls = 0

    def run(self, audio: torch.Tensor, video: torch.Tensor, ratio: tuple[float, float]) -> None:
        """One training step (``pretrain``'s compute region): lr update, step, NaN check."""
        batch = audio.shape[0]
        ids = torch.arange(self._calls * batch, (self._calls + 1) * batch, device=self.device)
        self._calls += 1
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        result = self.step(audio, video, ratio, ids, self.config.seed)
        self.non_finite |= ~torch.isfinite(result.loss.detach())
        losses = {name: value.detach() for name, value in result.output.losses.items()}
        self.last = StepScalars(losses, result.loss.detach(), result.grad_norm)

    def move(self, where: torch.device) -> None:
        """Model, optimizer state, flag and last scalars to ``where`` (the same parameter
        objects: the optimizer keeps them; compiled blocks see the same device again)."""
        if where == self.place:
            return
        self.model.to(where)
        # the fused kernel keeps its step counts beside the parameters, the others on the CPU
        fused = bool(self.optimizer.defaults.get("fused"))
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and (key != "step" or fused):
                    state[key] = value.to(where)
        self.non_finite = self.non_finite.to(where)
        self.last = None if self.last is None else self.last.to(where)
        self.place = where


def only_on_device(steppers: dict[str, RecipeSteps], name: str, device: torch.device) -> None:
    """Recipe ``name`` on ``device``, every other one in host memory (on a CPU: nothing
    moves); e.g. before its fixed costs are timed, as ``pretrain`` would meet them."""
    for other, stepper in steppers.items():
        if other != name:
            stepper.move(HOST)
    steppers[name].move(device)


class Resident:
    """Keeps one recipe (and one batch of inputs) on the device at a time; ``enabled``
    False (a CPU): everything stays where it was built."""

    def __init__(self, device: torch.device, steppers: dict[str, RecipeSteps], enabled: bool):
        self.device, self.steppers, self.enabled = device, steppers, enabled
        self.recipe: str | None = None
        self._inputs: tuple[Any, tuple[torch.Tensor, torch.Tensor]] | None = None

    def bring(self, recipe: str) -> None:
        if not self.enabled or recipe == self.recipe:
            return
        if self.recipe is not None:
            self.steppers[self.recipe].move(HOST)
        self.steppers[recipe].move(self.device)
        self.recipe = recipe

    def inputs(self, key: Any, host: tuple[torch.Tensor, torch.Tensor]):
        """The batch ``host`` on the device: moved there once while it is the last one
        asked for (the previous one is dropped)."""
        if not self.enabled:
            return host
        if self._inputs is None or self._inputs[0] != key:
            self._inputs = None  # free the device copy before making the next
            self._inputs = (key, (host[0].to(self.device), host[1].to(self.device)))
        return self._inputs[1]


def step_tasks(
    recipes: dict[str, RecipePlan],
    device: torch.device,
    compile: bool,
    seed: int,
    one_at_a_time: bool | None = None,
) -> tuple[dict[str, Callable[[RegionTimer], None]], dict[str, RecipeSteps]]:
    """{"recipe/point": task} for every measured point, and each recipe's RecipeSteps.
    ``one_at_a_time`` (default: on CUDA): one recipe and one batch on the device at once,
    the others built there and then kept in host memory."""
    one_at_a_time = device.type == "cuda" if one_at_a_time is None else one_at_a_time
    tasks: dict[str, Callable[[RegionTimer], None]] = {}
    steppers: dict[str, RecipeSteps] = {}
    resident = Resident(device, steppers, one_at_a_time)
    made_on = HOST if one_at_a_time else device
    inputs: dict[tuple[Any, int], tuple[torch.Tensor, torch.Tensor]] = {}
    for name, recipe in recipes.items():
        steppers[name] = RecipeSteps(recipe.config, device, compile)
        if one_at_a_time:
            steppers[name].move(HOST)
        for index in recipe.selection.measured:
            point = recipe.points[index]
            key = (recipe.config.model.audio, recipe.config.model.video, point.batch_size)
            if key not in inputs:
                inputs[key] = random_inputs(recipe.config.model, point.batch_size, made_on, seed)

            def task(timer: RegionTimer, name=name, key=key, ratio=point.mask_ratio) -> None:
                resident.bring(name)
                audio, video = resident.inputs(key, inputs[key])
                audio, video = audio.clone(), video.clone()  # a loaded batch is new memory
                with timer.region("step"):
                    steppers[name].run(audio, video, ratio)

            tasks[f"{name}/{index}"] = task
    return tasks, steppers
