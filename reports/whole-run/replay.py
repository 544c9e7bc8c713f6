"""Where is the gap between the projection and real runs of the full recipe? A diagnostic,
not a check (``bench.report.replay_check`` scores its file).

In one process, at the Table-2 preset (32,768 samples, base batch 16, 2 threads):

- *replay*: the run's own plan (every step's batch size and mask ratio, in order) through
  the projection's train step (``bench.projection.steps.RecipeSteps``), fresh random
  inputs cloned per step, no loader, no logging; its step seconds;
- *run*: ``pretrain`` on the same plan (``log_every`` 1), its metrics rows' compute
  seconds;

in the order replay, run, run, replay; then the projection's points (every planned
shape) measured as the projection measures them: interleaved, one call per point per
round, 5 rounds after a warm-up round.

The committed ``replay-proportional.json`` came from this script before it was tidied into
functions (the same measurements in the same order).

Usage (from the repository root; about 12 minutes on a 2-core VM)::

    python reports/whole-run/replay.py reports/whole-run/replay-proportional.json
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.projection.recipes import plan_recipe
from bench.projection.steps import RecipeSteps, step_tasks
from bench.timing.harness import RegionTimer
from diffmavil.inputs import random_inputs
from diffmavil.schedules import plan_run
from diffmavil.training.config import PretrainConfig
from diffmavil.training.pretrain import pretrain

ROUNDS = 6  # of the interleaved points; the first is a warm-up


def full_recipe(samples: int) -> PretrainConfig:
    return PretrainConfig(
        preset="proportional",
        variant="cross-attn",
        masking={"kind": "curriculum"},
        batch={"kind": "adaptive", "batch_size": 16, "multiple": 8},
        budget_samples=samples,
        threads=2,
        checkpoint_every=256,
        log_every=1,
    )


def replay(config: PretrainConfig) -> list[float]:
    """The plan's steps through the projection's train step: seconds per step."""
    stepper = RecipeSteps(config, torch.device("cpu"), False)
    inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    seconds = []
    for step in plan_run(config.model, config.masking, config.batch, config.budget_samples):
        if step.batch_size not in inputs:
            inputs[step.batch_size] = random_inputs(
                config.model, step.batch_size, torch.device("cpu"), 0
            )
        audio, video = (t.clone() for t in inputs[step.batch_size])
        started = time.perf_counter()
        stepper.run(audio, video, step.mask_ratio)
        seconds.append(time.perf_counter() - started)
    return seconds


def run(config: PretrainConfig) -> list[float]:
    """``pretrain`` of the plan: each step's compute seconds (its metrics rows)."""
    folder = Path(tempfile.mkdtemp())
    try:
        pretrain(config, folder / "run")
        lines = (folder / "run" / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["compute_seconds"] for line in lines]
    finally:
        shutil.rmtree(folder)


def interleaved_points(config: PretrainConfig) -> dict[str, dict]:
    """Every planned point, measured as the projection measures it."""
    recipe = plan_recipe("full", config, 4)
    tasks, _ = step_tasks({"full": recipe}, torch.device("cpu"), False, 0)
    seconds: dict[str, list[float]] = {}
    for round_index in range(ROUNDS):
        for key, task in tasks.items():
            started = time.perf_counter()
            task(RegionTimer())
            if round_index:
                seconds.setdefault(key, []).append(time.perf_counter() - started)
    out = {}
    for key, values in seconds.items():
        point = recipe.points[int(key.split("/")[1])]
        out[key] = {
            "batch": point.batch_size,
            "visible": point.visible,
            "steps": point.steps,
            "seconds": values,
        }
    return out


def main() -> None:
    path = Path(sys.argv[1])
    config = full_recipe(int(sys.argv[2]) if len(sys.argv) > 2 else 32768)
    torch.set_num_threads(config.threads)
    plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
    out: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "plan_batches": [step.batch_size for step in plan],
    }
    for name, measure in (("replay1", replay), ("run1", run), ("run2", run), ("replay2", replay)):
        started = time.time()
        out[name] = measure(config)
        print(f"{name}: {sum(out[name]):.1f} s compute, {time.time() - started:.0f} s", flush=True)
        path.write_text(json.dumps(out))
    out["points"] = interleaved_points(config)
    path.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
