"""Pilot of the time-to-accuracy Table 2: at which difficulty of the downstream synthetic
task does MAViL's final probe land at 75-90% while pre-training stays at least 10 points
ahead of random init, and where do the accuracy curves cross candidate targets?

Inputs: pre-training runs made by ``diffbench pretrain`` at the Table-2 preset with
``--set snapshot_every=4096`` (``RUNS/mavil-s0``, ``RUNS/diffmavil-s0``, ...; the exact
commands are in README.md). Each probe is ``diffmavil.training.downstream.evaluate``, the
call ``diffbench finetune`` and the grids make: a linear probe of the mean-pooled
fusion-encoder outputs (audio and video), trained on 2,000 clips and scored on 2,000
others, the head trained ``probe_seeds`` times on the same frozen features and averaged.

``probes.json`` is rewritten atomically after every probe; a second invocation skips the
probes it holds. ``--summary`` writes ``summary.json`` (per difficulty and row: accuracy
mean, sd and a 95% interval from ``bench.stats``; the gain over random init, paired by
seed; the curves) and prints the README's generated blocks.

Usage (from the repository root)::

    python reports/pilot-difficulty/pilot.py RUNS --out reports/pilot-difficulty
    python reports/pilot-difficulty/pilot.py RUNS --out reports/pilot-difficulty --summary
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DATA = "synthetic:classes=10,size=2000,eval_size=2000,difficulty={difficulty}"
CHOSEN = 0.5  # the difficulty the curves are probed at (chosen by the finals, README)
DIFFICULTIES = (0.25, 0.5, 0.75)
ROWS = ("mavil", "diffmavil")
SEEDS = (0, 1, 2)
INTERIOR = (4096, 8192, 16384, 24576)  # samples: snapshots probed with one probe seed
FINAL = 32768
TARGETS = (70.0, 75.0)  # absolute probe accuracies (%), chosen from the curves (README)


def probe_plan(runs: Path) -> list[dict[str, Any]]:
    """Every probe of the pilot, most informative first: the finals and random-init controls
    at the chosen difficulty, then the curves, then the other difficulties."""
    plan = []

    def add(difficulty, row, seed, samples, probe_seeds):
        snapshot = None
        if row != "random":  # the first snapshot at or past ``samples`` (adaptive batches
            # overshoot a multiple of snapshot_every by up to a batch)
            snapshot = str(_snapshot_at(runs / f"{row}-s{seed}", samples))
        plan.append(
            {
                "key": f"{difficulty}/{row}/s{seed}/{samples}",
                "difficulty": difficulty,
                "row": row,
                "seed": seed,
                "samples": samples,
                "probe_seeds": probe_seeds,
                "snapshot": snapshot,
            }
        )

    for seed in SEEDS:
        for row in (*ROWS, "random"):
            add(CHOSEN, row, seed, FINAL if row != "random" else 0, 3)
    for samples in INTERIOR:
        for seed in SEEDS:
            for row in ROWS:
                add(CHOSEN, row, seed, samples, 1)
    for difficulty in DIFFICULTIES:
        if difficulty == CHOSEN:
            continue
        for seed in SEEDS[:2]:
            add(difficulty, "mavil", seed, FINAL, 3)
            add(difficulty, "random", seed, 0, 3)
    return plan


def _snapshot_at(run_dir: Path, samples: int) -> Path:
    index = run_dir / "snapshots.json"
    if index.exists():
        for entry in json.loads(index.read_text())["snapshots"]:
            if entry["samples"] >= samples:
                return run_dir / entry["file"]
    return run_dir / "snapshots" / f"samples-{samples:09d}.pt"  # not written yet


def write_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_probes(runs: Path, out: Path) -> None:
    from diffmavil.config import make_config
    from diffmavil.data import build_dataset
    from diffmavil.training.config import FinetuneConfig
    from diffmavil.training.downstream import downstream_splits, evaluate, pretrained_model_config

    path = out / "probes.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    datasets: dict[float, tuple[Any, Any]] = {}
    for item in probe_plan(runs):
        if item["key"] in done:
            continue
        if item["snapshot"] is not None and not Path(item["snapshot"]).exists():
            continue  # its pre-training has not got there yet: a later invocation probes it
        data = DATA.format(difficulty=item["difficulty"])
        config = FinetuneConfig(
            data=data,
            mode="probe",
            modality="audio-video",
            features="fused",
            epochs=100,
            batch_size=64,
            probe_seeds=item["probe_seeds"],
            seed=item["seed"],
        )
        if item["row"] == "random":
            model_config = make_config("proportional", "mavil")
        else:
            model_config = pretrained_model_config(item["snapshot"])
        if item["difficulty"] not in datasets:
            datasets[item["difficulty"]] = tuple(
                build_dataset(data, model_config, split) for split in downstream_splits(data)
            )
        started = time.perf_counter()
        init = "random" if item["row"] == "random" else "checkpoint"
        metrics = evaluate(
            config, init, model_config, item["snapshot"], datasets=datasets[item["difficulty"]]
        )
        done[item["key"]] = {
            **{k: v for k, v in item.items() if k != "snapshot"},
            "accuracy": metrics["accuracy"],
            "probe_accuracies": metrics.get("probe_accuracies"),
            "seconds": round(time.perf_counter() - started, 1),
        }
        write_atomic(path, done)
        print(f"{item['key']}: {100 * metrics['accuracy']:.2f}%", flush=True)


def summarise(runs: Path, out: Path) -> dict[str, Any]:
    """Per difficulty and row: the final accuracies (mean, sd, 95% interval), the paired
    gain over random init; at the chosen difficulty, the curves (samples, FLOPs and timed
    wall-clock to each snapshot from the runs' snapshot indexes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.stats import accuracy_interval, paired_delta_interval, seed_summary

    probes = json.loads((out / "probes.json").read_text())
    summary: dict[str, Any] = {"difficulties": {}, "curves": {}}
    for difficulty in DIFFICULTIES:
        finals: dict[str, dict[int, float]] = {}
        for probe in probes.values():
            if probe["difficulty"] == difficulty and probe["samples"] in (0, FINAL):
                finals.setdefault(probe["row"], {})[probe["seed"]] = 100 * probe["accuracy"]
        rows = {}
        for row, by_seed in sorted(finals.items()):
            values = [by_seed[s] for s in sorted(by_seed)]
            stats = seed_summary(values)
            entry = {"n": len(values), "mean": stats.mean, "sd": stats.sd, "by_seed": by_seed}
            if len(values) >= 2:
                interval = accuracy_interval(values)
                entry["ci95"] = [interval.low, interval.high]
            if row != "random" and "random" in finals:
                gain = paired_delta_interval(by_seed, finals["random"])
                entry["gain_over_random"] = gain.mean
                if gain.interval is not None:
                    entry["gain_ci95"] = [gain.interval.low, gain.interval.high]
            rows[row] = entry
        summary["difficulties"][str(difficulty)] = rows
    for row in ROWS:
        for seed in SEEDS:
            index_path = runs / f"{row}-s{seed}" / "snapshots.json"
            if not index_path.exists():
                continue
            entries = json.loads(index_path.read_text())["snapshots"]
            points = []
            for samples in (*INTERIOR, FINAL):
                probe = probes.get(f"{CHOSEN}/{row}/s{seed}/{samples}")
                entry = next((e for e in entries if e["samples"] >= samples), None)
                if probe is None or entry is None:
                    continue
                points.append(
                    {
                        "samples": entry["samples"],
                        "flops": entry["flops"],
                        "wall_clock_seconds": entry["wall_clock_seconds"],
                        "accuracy": 100 * probe["accuracy"],
                    }
                )
            summary["curves"][f"{row}-s{seed}"] = points
    summary["design"] = design_figures(summary, probes)
    summary["finetune"] = finetune_finals(out / "finetune")
    write_atomic(out / "summary.json", summary)
    return summary


def design_figures(summary: dict[str, Any], probes: dict[str, Any]) -> dict[str, Any]:
    """What sizes the Table-2 grid: the paired final-probe loss of DiffMAViL vs MAViL and its
    spread (with the spread's 80% upper confidence bound), the loss the grid detects at 80%
    power with 6 pairs, and the spread of the time-to-target endpoints at each target."""
    import math
    import statistics

    from bench.stats import (
        area_under_curve,
        detectable_difference,
        paired_delta_interval,
        sd_upper_bound,
        time_to_target,
    )

    finals = summary["difficulties"][str(CHOSEN)]
    delta = paired_delta_interval(finals["diffmavil"]["by_seed"], finals["mavil"]["by_seed"])
    ucb = sd_upper_bound(delta.sd, len(delta.deltas), level=0.8)
    figures: dict[str, Any] = {
        "final_deltas": list(delta.deltas),
        "final_delta_mean": delta.mean,
        "final_delta_sd": delta.sd,
        "final_delta_sd_ucb80": ucb.high,
        "detectable_beyond_margin_6": detectable_difference(delta.sd, 6),
        "detectable_beyond_margin_6_ucb": detectable_difference(ucb.high, 6),
        "targets": {},
        "auc": {},
    }
    random = finals["random"]["by_seed"]
    curves = summary["curves"]
    for target in TARGETS:
        for axis in ("samples", "flops"):
            values = {}
            for row in ROWS:
                values[row] = [
                    time_to_target(
                        [p[axis] for p in curves[f"{row}-s{seed}"]],
                        [p["accuracy"] for p in curves[f"{row}-s{seed}"]],
                        target,
                    )
                    for seed in SEEDS
                ]
            logs = [
                math.log(c.value / r.value)
                for c, r in zip(values["diffmavil"], values["mavil"], strict=True)
                if c.reached and r.reached
            ]
            figures["targets"][f"{target:g}/{axis}"] = {
                "reached": {row: sum(t.reached for t in values[row]) for row in ROWS},
                "ratios": [math.exp(x) for x in logs],
                "log_ratio_sd": statistics.stdev(logs) if len(logs) > 1 else None,
                # the smallest speed-up (ratio below 1) 6 pairs detect 4 times in 5
                "detectable_ratio_6": math.exp(-detectable_difference(statistics.stdev(logs), 6))
                if len(logs) > 1
                else None,
            }
    for axis in ("samples", "flops"):
        deltas = []
        for seed in SEEDS:
            mean_accuracy = {}
            pairs = {row: curves[f"{row}-s{seed}"] for row in ROWS}
            x_max = min(points[-1][axis] for points in pairs.values())
            for row, points in pairs.items():
                area = area_under_curve(
                    [p[axis] for p in points],
                    [p["accuracy"] for p in points],
                    x_max,
                    initial_accuracy=random[seed] if seed in random else random[str(seed)],
                )
                mean_accuracy[row] = area / x_max
            deltas.append(mean_accuracy["diffmavil"] - mean_accuracy["mavil"])
        figures["auc"][axis] = {"deltas": deltas, "sd": statistics.stdev(deltas)}
    return figures


def finetune_finals(folder: Path) -> dict[str, dict[str, float]]:
    """The default fine-tune's accuracy (%) of each final snapshot and random init, by seed
    (``finetune/finetune-<row>-s<seed>.json``: ``diffbench finetune --format json``)."""
    out: dict[str, dict[str, float]] = {}
    for path in sorted(folder.glob("finetune-*-s*.json")):
        row, _, seed = path.stem.removeprefix("finetune-").rpartition("-s")
        rows = json.loads(path.read_text() or "[]")
        if rows:
            out.setdefault(row, {})[seed] = 100 * rows[0]["accuracy"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="directory of the pilot's pre-training runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--summary", action="store_true", help="summarise the stored probes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summary:
        print(json.dumps(summarise(args.runs, args.out), indent=1))
    else:
        run_probes(args.runs, args.out)


if __name__ == "__main__":
    main()
