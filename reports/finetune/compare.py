"""Paired comparison of fine-tune recipes: does the default fine-tune lose accuracy?

Arms (``diffbench finetune RUN --mode finetune`` with the modality, features and batch size
of its defaults; only the arm's settings differ):

- ``default``: today's default fine-tune (epochs chosen for the data size, warm-up +
  cosine learning rate over them, every item trains: no early stopping; patch dropout,
  the encoders seeing a quarter of each clip's patches per step);
- ``epochs100``: the long fine-tune, 100 epochs on every patch (the schedule over all 100);
- ``previous``: the default before patch dropout, 20 epochs on every patch;
- ``keep50-epochs40``: half of the patches per step, 40 epochs;
- ``early-stopping``: the default with early stopping (10% held out, patience 3);
- ``constant``: the default at a constant learning rate (the schedule before the cosine);
- ``lr1e-4``: the default at a peak learning rate of 1e-4 instead of 1e-3;
- ``head-first``: ``previous`` after 100 epochs of the head alone on frozen features
  (LP-FT, ``head_epochs``); ``lr2e-3``: ``previous`` at a peak of 2e-3.

Every seed runs every arm (seed ``s``: data, initialisation, validation split and batch
order of seed ``s``), the arms of a seed in a per-seed shuffled order, seed after seed, so
the machine's drift falls on all arms alike. Training: the first ``--train`` clips of the
synthetic task's ``val`` split; evaluation: the first ``--eval`` clips of its ``test``
split (data spec ``synthetic:eval_size=N``). Each run goes through ``evaluate``, the call
``diffbench finetune`` makes, datasets built afresh, so its wall-clock is a user's.

``runs.json`` is rewritten atomically after every run; a second invocation with the same
settings skips the finished (seed, arm) pairs (and ``--seeds`` may grow). At the end
``comparison.json`` holds, for every arm against ``default``, the paired accuracy
difference in points with its two-sided Student's t interval, the median wall-clock per
arm, and a verdict line: is the interval within +-``--margin`` points?

Usage (from the repository root, PYTHONPATH pointing at it)::

    python reports/finetune/compare.py RUN_DIR --seeds 10 --out reports/finetune/tiny
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Arms that predate patch dropout name every setting they keep from the default of their
# day (20 epochs, every patch), so that their runs stay valid under today's default.
PREVIOUS = {"patch_keep": 1.0, "epochs": 20}
ARMS: dict[str, dict[str, Any]] = {
    "default": {},
    "epochs100": {"epochs": 100, "patch_keep": 1.0},
    "previous": PREVIOUS,
    "keep50-epochs40": {"patch_keep": 0.5, "epochs": 40},
    "early-stopping": {"patience": 3},
    "constant": {"lr_schedule": "constant"},
    "lr1e-4": {"lr": 1e-4},
    "head-first": {**PREVIOUS, "head_epochs": 100},
    "lr2e-3": {**PREVIOUS, "lr": 2e-3},
}
REFERENCE = "default"
POINTS = 100.0
RUNS_FILE, RESULT_FILE = "runs.json", "comparison.json"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def arm_config(arm: str, seed: int, train_items: int, eval_items: int):
    """The ``FinetuneConfig`` of ``arm`` at ``seed`` (validated)."""
    from diffmavil.training.config import FinetuneConfig

    base = {
        "data": f"synthetic:eval_size={max(train_items, eval_items)}",
        "mode": "finetune",
        "modality": "audio",
        "seed": seed,
        "max_train_items": train_items,
        "max_eval_items": eval_items,
    }
    return FinetuneConfig.model_validate({**base, **ARMS[arm]})


def arm_order(seed: int, arms: list[str] | None = None) -> list[str]:
    """The arms of ``seed`` (default: all of ``ARMS``) in their run order: a shuffle seeded
    by ``seed`` (the same on every invocation, so a resumed comparison keeps it)."""
    arms = list(ARMS) if arms is None else [arm for arm in ARMS if arm in arms]
    return random.Random(f"finetune-compare-{seed}").sample(arms, len(arms))


def schedule(seeds: list[int], arms: list[str] | None = None) -> list[tuple[int, str]]:
    """(seed, arm) in run order: seed after seed, each seed's arms in ``arm_order``."""
    return [(seed, arm) for seed in seeds for arm in arm_order(seed, arms)]


def seeds_for_half_width(sd: float, half_width: float, confidence: float) -> int:
    """Fewest pairs whose two-sided t interval of the mean (spread ``sd``) is at most
    +-``half_width`` (at least 2; 10,000 when not reached by then)."""
    from bench.stats import t_quantile

    for n in range(2, 10_001):
        if t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
    return 10_000


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def verdict_line(comparison: dict[str, Any]) -> str:
    """One line: the paired difference, its interval and whether it lies within the margin."""
    name, margin = f"{comparison['arm']} vs {comparison['reference']}", comparison["margin"]
    if comparison["low"] is None:
        return f"{name}: {comparison['pairs']} pair(s), not enough for an interval"
    low, high = comparison["low"], comparison["high"]
    head = (
        f"{name}: {comparison['mean']:+.2f} points, {100 * comparison['confidence']:.0f}% "
        f"interval [{low:+.2f}, {high:+.2f}] over {comparison['pairs']} seeds: "
    )
    if comparison["within_margin"]:
        return head + f"within +-{margin:g} points"
    where = (
        f"above +{margin:g} ({comparison['arm']} better)"
        if low > margin
        else f"below -{margin:g} ({comparison['arm']} worse)"
        if high < -margin
        else "undecided"
    )
    return (
        head + f"NOT within +-{margin:g} points, {where}; about "
        f"{comparison['seeds_for_margin']} seeds would give +-{margin:g} at this spread"
    )


def paired_summary(
    runs: list[dict[str, Any]], margin: float = 2.0, confidence: float = 0.95
) -> dict[str, Any]:
    """Per arm: runs, mean accuracy (points) and median wall-clock, training seconds and
    epochs. Per non-reference arm: the paired accuracy difference against ``REFERENCE`` in
    points (seeds both finished), its two-sided Student's t interval at ``confidence``, the
    median per-seed wall-clock ratio, ``within_margin`` (interval inside +-``margin``) and
    its verdict line."""
    from bench.stats import seed_summary

    by_arm = {arm: {int(r["seed"]): r for r in runs if r["arm"] == arm} for arm in ARMS}
    arms = {
        arm: {
            "runs": len(done),
            "mean_accuracy_points": (
                POINTS * statistics.fmean(r["accuracy"] for r in done.values()) if done else None
            ),
            "median_wall_clock_seconds": _median([r["wall_clock_seconds"] for r in done.values()]),
            "median_train_seconds": _median([r["train_seconds"] for r in done.values()]),
            "median_epochs_run": _median([r["epochs_run"] for r in done.values()]),
        }
        for arm, done in by_arm.items()
    }
    reference = by_arm[REFERENCE]
    comparisons = []
    for arm, done in by_arm.items():
        if arm == REFERENCE:
            continue
        seeds = sorted(set(done) & set(reference))
        differences = [POINTS * (done[s]["accuracy"] - reference[s]["accuracy"]) for s in seeds]
        stats = seed_summary(differences, confidence).as_dict()
        low, high = stats["low"], stats["high"]
        comparison: dict[str, Any] = {
            "arm": arm,
            "reference": REFERENCE,
            "pairs": len(seeds),
            "seeds": seeds,
            "differences_points": differences,
            **stats,
            "confidence": confidence,
            "margin": margin,
            "within_margin": None if low is None else bool(-margin <= low and high <= margin),
            "seeds_for_margin": (
                None
                if stats["sd"] is None
                else seeds_for_half_width(stats["sd"], margin, confidence)
            ),
            "median_wall_clock_ratio": _median(
                [done[s]["wall_clock_seconds"] / reference[s]["wall_clock_seconds"] for s in seeds]
            ),
        }
        comparison["verdict"] = verdict_line(comparison)
        comparisons.append(comparison)
    return {"arms": arms, "comparisons": comparisons}


def run_one(settings: dict[str, Any], seed: int, arm: str) -> dict[str, Any]:
    """One fine-tune of ``arm`` at ``seed`` through ``evaluate`` (as ``diffbench finetune``)."""
    from bench.cli.progress import epoch_reporter
    from bench.requests import FinetuneRequest
    from diffmavil.training.downstream import evaluate

    config = arm_config(arm, seed, settings["train_items"], settings["eval_items"])
    request = FinetuneRequest(
        init="checkpoint", checkpoint=settings["checkpoint"], device=settings["device"],
        probe=config,
    )  # fmt: skip
    model_config = request.resolve_model()
    epochs: list[dict[str, Any]] = []
    load_before, uptime_before = os.getloadavg()[0], uptime()
    with epoch_reporter(f"seed {seed} {arm}") as report:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = evaluate(
            request.probe, request.init, model_config, request.checkpoint, request.device,
            on_epoch=lambda row: (epochs.append(row), report(row)),
        )  # fmt: skip
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    train_seconds = sum(row["seconds"] for row in epochs)
    return {
        "seed": seed,
        "arm": arm,
        "config": config.model_dump(mode="json"),
        "accuracy": result["accuracy"],
        "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"],
        "validation_items": result["validation_items"],
        "train_items": result["train_items"],
        "eval_items": result["eval_items"],
        "wall_clock_seconds": wall,
        "cpu_seconds": cpu,  # this process's CPU time, all threads: less sensitive to load
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(len(epochs), 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "uptime_before": uptime_before,
        "uptime_after": uptime(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def checkpoint_digest(run: Path) -> str:
    path = run / "checkpoint.pt" if run.is_dir() else run
    if not path.exists():
        from bench.errors import BadInput

        raise BadInput(f"{run}: no checkpoint.pt (give a pre-training run directory)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_finished(path: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The finished runs of an earlier invocation with the same settings ([] if none)."""
    from bench.errors import BadInput

    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    changed = sorted(k for k in settings if saved["settings"].get(k) != settings[k])
    if changed:
        raise BadInput(
            f"{path} holds runs with other settings ({', '.join(changed)}); "
            "give another --out or the same settings"
        )
    runs = saved["runs"]
    for run in runs:
        expected = arm_config(
            run["arm"], run["seed"], settings["train_items"], settings["eval_items"]
        )
        if run["config"] != expected.model_dump(mode="json"):
            raise BadInput(f"{path}: seed {run['seed']} {run['arm']} ran another configuration")
    return runs


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be a positive integer")
    return value


def arm_list(text: str) -> list[str]:
    """'default,epochs100' -> the arms, the reference always among them; unknown: an error."""
    arms = [arm.strip() for arm in text.split(",") if arm.strip()]
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown arm(s) {', '.join(unknown)}; allowed: {', '.join(ARMS)}"
        )
    return sorted({REFERENCE, *arms}, key=list(ARMS).index)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="pre-training run directory (checkpoint.pt)")
    parser.add_argument("--seeds", type=positive, default=10, help="seeds first-seed, ...")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--train", type=positive, default=500, help="training clips")
    parser.add_argument("--eval", type=positive, default=2000, help="evaluation clips")
    parser.add_argument("--margin", type=float, default=2.0, help="verdict margin (points)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=positive, default=None, help="torch threads")
    parser.add_argument(
        "--arms",
        type=arm_list,
        default=list(ARMS),
        help=f"comma-separated arms to run (default: all; {REFERENCE} always runs): "
        + ", ".join(ARMS),
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from diffmavil.atomic import atomic_write_json
    from diffmavil.environment import environment

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    settings = {
        "checkpoint": str(args.run),  # as given (its digest identifies it), not this machine's path
        "checkpoint_sha256": checkpoint_digest(args.run),
        "train_items": args.train,
        "eval_items": args.eval,
        "device": args.device,
        "threads": args.threads,
    }
    runs = load_finished(args.out / RUNS_FILE, settings)
    done = {(r["seed"], r["arm"]) for r in runs}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for seed, arm in schedule(seeds, args.arms):
        if (seed, arm) in done:
            continue
        runs.append(run_one(settings, seed, arm))
        atomic_write_json(args.out / RUNS_FILE, {"settings": settings, "runs": runs})
        run = runs[-1]
        print(
            f"seed {seed} {arm}: accuracy {POINTS * run['accuracy']:.2f}%, "
            f"{run['epochs_run']} epochs (best {run['best_epoch']}), "
            f"{run['wall_clock_seconds']:.1f} s, load {run['load_after']:.2f}",
            flush=True,
        )
    finished = [r for r in runs if r["seed"] in seeds]
    summary = paired_summary(finished, margin=args.margin)
    result = {
        "settings": settings,
        "seeds": seeds,
        "environment": environment(args.device),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uptime": uptime(),
        **summary,
    }
    atomic_write_json(args.out / RESULT_FILE, result)
    for arm, row in summary["arms"].items():
        if not row["runs"]:
            continue
        print(
            f"{arm}: median {row['median_wall_clock_seconds']:.1f} s wall-clock, "
            f"{row['median_epochs_run']:g} epochs, mean accuracy {row['mean_accuracy_points']:.2f}%"
        )
    for comparison in summary["comparisons"]:
        print(comparison["verdict"])
    return result


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # bad input: one line, exit 2 (bench.errors' one handler)
        from bench.errors import handle_error

        sys.exit(handle_error(error))
