"""Validate ``diffbench time``'s whole-run projection against real ``pretrain`` runs.

Order: matmul rate, projection 1, pretrain A (MAViL's recipe), B (the full recipe), B, A
(repeated ``--cycles`` times), projection 2, matmul rate. Each run also stores the reference
matmul rate measured just before and just after it (``matmul_gflops_before``/``_after``),
the machine's speed beside the run. Each run's ``wall_clock_seconds``
is compared with the mean of the two projections (target: within +-10%), and the projected
time saving with the measured one (target: inside the measured interval and within 5
points).

``--projections between`` puts a projection before the first run and after every run
(P A P B P B P A P), so that the projections sample the same stretches of time as the
runs: on a machine whose speed moves by 10-15% between minutes, two projections at the
ends can both land in a fast (or slow) stretch. Each run is then compared with the mean of
the two projections that bracket it, and the projected saving is that of the mean of all
projections.

Measured saving intervals, both 95%:

- ``run_level`` (the verdict's, from ``--cycles 2`` up): saving = 1 - mean(B) / mean(A)
  over all runs; interval from Welch's t on the runs' log wall-clock (B vs A), so that
  run-to-run variation is in it;
- ``block_bootstrap`` (the only one with one cycle): the plan of each recipe is cut into
  ``BLOCKS`` blocks of consecutive steps; a draw takes each block from one of the
  recipe's runs at random and sums; 2000 draws. It sees step noise, not run-to-run drift.

``single_projection_rule`` (from 2026-12-06, written before its runs): the estimator the
reports quote, one projection made before the runs, scored against every run (median
error within +-5%, every run within +-10%, the measured saving inside its interval).

Usage (from the repository root, PYTHONPATH pointing at it)::

    python reports/whole-run/validate.py --preset tiny --batch-size 8 --samples 8000 \
        --threads 1 --out reports/whole-run/tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCKS = 20


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def matmul() -> float:
    import torch

    from bench.timing.device import matmul_rate

    return matmul_rate(torch.device("cpu"), "fp32", repeats=5) / 1e9


def recipes(args) -> dict:
    from bench.projection.recipes import mavil_recipe
    from diffmavil.training.config import PretrainConfig

    full = PretrainConfig(
        preset=args.preset,
        variant="cross-attn",
        masking={"kind": "curriculum"},
        batch={"kind": "adaptive", "batch_size": args.batch_size, "multiple": args.multiple},
        budget_samples=args.samples,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
    )
    return {"mavil": mavil_recipe(full), "full": full}


def project(args, configs) -> dict:
    from bench.projection.measure import project_whole_run
    from bench.projection.recipes import ProjectionRequest

    request = ProjectionRequest(
        recipes=configs,
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        warmup=1,
        max_anchors=args.anchors,
        windows=args.windows,
        memory=args.memory,
    )
    started = time.perf_counter()
    result = project_whole_run(request)
    if args.history is not None:  # the seconds' intervals from the machine's history
        from bench.projection.history import project_with_history

        result = project_with_history(result, args.history)
    return {
        "seconds": time.perf_counter() - started,
        "rows": [r.model_dump() for r in result.rows],
        "points": [p.model_dump() for p in result.points],
        "environment": result.environment,
    }


def pretrain_run(config, folder: Path, name: str) -> dict:
    from diffmavil.training.pretrain import pretrain

    run_dir = folder / name
    started = time.perf_counter()
    summary = pretrain(config, run_dir)
    elapsed = time.perf_counter() - started
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "name": name,
        "recipe": name.rstrip("0123456789"),
        "elapsed_seconds": elapsed,
        "wall_clock_seconds": summary["wall_clock_seconds"],
        "compute_seconds": summary["compute_seconds"],
        "data_seconds": summary["data_seconds"],
        "overhead_seconds": summary["overhead_seconds"],
        "steps": summary["steps"],
        "step_seconds": [r["compute_seconds"] + r["data_seconds"] for r in rows],
        "data_step_seconds": [r["data_seconds"] for r in rows],
        "load": os.getloadavg()[0],
    }


def run_level_saving(runs: list[dict], confidence: float = 0.95) -> dict:
    """Saving of 'full' vs 'mavil' over all runs: ``bench.stats.unpaired_saving`` (Welch's t
    on log wall-clock)."""
    from bench.stats import unpaired_saving

    seconds = {
        recipe: [r["wall_clock_seconds"] for r in runs if r["recipe"] == recipe]
        for recipe in ("mavil", "full")
    }
    interval = unpaired_saving(seconds["mavil"], seconds["full"], confidence)
    return {
        "runs_per_recipe": [len(seconds["mavil"]), len(seconds["full"])],
        "saving_geometric": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "dof": interval.df,
    }


def measured_saving(runs: list[dict], seed: int = 0) -> dict:
    """Saving of 'full' vs 'mavil' from the runs of each, with the block-choice bootstrap."""
    by = {
        "mavil": [r for r in runs if r["recipe"] == "mavil"],
        "full": [r for r in runs if r["recipe"] == "full"],
    }

    def blocks(run: dict) -> np.ndarray:
        return np.array([b.sum() for b in np.array_split(np.array(run["step_seconds"]), BLOCKS)])

    generator = np.random.default_rng(seed)
    sums = {}
    for recipe, pair in by.items():
        stacked = np.stack([blocks(r) for r in pair])  # [runs, BLOCKS]
        overhead = np.mean([r["overhead_seconds"] for r in pair])
        picks = generator.integers(0, len(pair), size=(2000, BLOCKS))
        sums[recipe] = stacked[picks, np.arange(BLOCKS)].sum(axis=1) + overhead
    saving = 1.0 - sums["full"] / sums["mavil"]
    mean = {k: np.mean([r["wall_clock_seconds"] for r in v]) for k, v in by.items()}
    low, high = np.quantile(saving, [0.025, 0.975])
    return {
        "saving": 1.0 - mean["full"] / mean["mavil"],
        "ci_low": float(low),
        "ci_high": float(high),
        "mean_wall": {k: float(v) for k, v in mean.items()},
    }


def single_projection_rule(projection: dict, runs: list[dict]) -> dict:
    """The rule written before the 2026-12 validations ran, for the estimator the reports
    quote (one projection, made before the runs), as ``bench.report.projection_checks``
    applies it: per recipe the median of run / projected - 1 within +-5% and every run
    within +-10%; the runs' measured saving inside the projection's saving interval."""
    from bench.report.projection_checks import ValidationRecord, single_projection_validation

    checked = single_projection_validation(
        ValidationRecord.model_validate({"projections": [projection], "runs": runs})
    )
    verdict: dict = {
        recipe: {
            "errors": list(row.errors),
            "median_error": row.median_error,
            "median_within_5pct": row.median_ok,
            "every_run_within_10pct": row.runs_ok,
        }
        for recipe, row in checked.rows.items()
    }
    measured, projected = checked.saving.measured, checked.saving.projected
    assert measured is not None and projected is not None
    verdict["saving"] = {
        "measured": measured.estimate,
        "projected": [projected.estimate, projected.low, projected.high],
        "inside": checked.saving.inside,
    }
    verdict["met"] = checked.met
    return verdict


def step_record(configs: dict, runs: list[dict]) -> dict:
    """Every step's compute + data seconds and data seconds of each run (log_every 1) with
    its batch size from the run's plan: ``bench.report.projection_runs.segments`` reads
    it."""
    from diffmavil.schedules import plan_run

    out = {}
    for run in runs:
        config = configs[run["recipe"]]
        plan = plan_run(config.model, config.masking, config.batch, config.budget_samples)
        if len(plan) != len(run["step_seconds"]):
            raise RuntimeError(
                f"{run['name']}: logged {len(run['step_seconds'])} of {len(plan)} steps"
            )
        out[run["name"]] = {
            "recipe": run["recipe"],
            "data_seconds": run["data_seconds"],
            "step_seconds": [round(s, 6) for s in run["step_seconds"]],
            "data_step_seconds": [round(s, 6) for s in run["data_step_seconds"]],
            "batch_sizes": [step.batch_size for step in plan],
        }
    return {"source": "validate.py: each run's metrics.jsonl (log_every 1)", "runs": out}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--min-seconds", type=float, default=60.0, help="projection: timed rounds last this long"
    )
    parser.add_argument("--anchors", type=int, default=4)
    parser.add_argument("--windows", type=int, default=6, help="projection: measurement windows")
    parser.add_argument("--multiple", type=int, default=8, help="adaptive batch multiple")
    parser.add_argument(
        "--projections",
        default="2",
        choices=("1", "2", "between"),
        help="1: before the runs; 2: before and after; between: before and after every run",
    )
    parser.add_argument("--memory", action="store_true", help="peak memory per recipe too")
    parser.add_argument(
        "--history", type=Path, default=None, help="the machine's history of projections"
    )
    parser.add_argument("--cycles", type=int, default=1, help="A-B-B-A cycles (runs: 2 each)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    configs = recipes(args)
    record: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record["uptime_before"] = uptime()
    record["matmul_gflops_before"] = matmul()
    projections = [project(args, configs)]
    partial = args.out / "partial.json"
    partial.write_text(json.dumps({**record, "projections": projections}, default=str))
    print("projection", [r["projected_seconds"] for r in projections[0]["rows"]], flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="whole-run-validate-") as folder:
        order = [
            f"{recipe}{2 * cycle + k}"
            for cycle in range(args.cycles)
            for recipe, k in (("mavil", 1), ("full", 1), ("full", 2), ("mavil", 2))
        ]
        for name in order:
            recipe = name.rstrip("0123456789")
            rate_before = matmul()  # the machine's speed beside each run (a drift reference)
            runs.append(pretrain_run(configs[recipe], Path(folder), name))
            runs[-1]["matmul_gflops_before"] = rate_before
            runs[-1]["matmul_gflops_after"] = matmul()
            print(name, runs[-1]["wall_clock_seconds"], uptime(), flush=True)
            if args.projections == "between":
                projections.append(project(args, configs))
                runs[-1]["projection_after"] = len(projections) - 1
                print("projection", [r["projected_seconds"] for r in projections[-1]["rows"]])
            partial.write_text(
                json.dumps({**record, "projections": projections, "runs": runs}, default=str)
            )
    if args.projections == "2":
        projections.append(project(args, configs))
    record["matmul_gflops_after"] = matmul()
    record["uptime_after"] = uptime()
    record["projections"] = projections
    per_step = ("step_seconds", "data_step_seconds")
    record["runs"] = [{k: v for k, v in r.items() if k not in per_step} for r in runs]
    projected = {}
    for recipe, label in (("mavil", "mavil"), ("full", "cross-attn+curriculum+adaptive/tokens")):
        rows = [
            next(
                r for r in p["rows"] if (r["baseline"] if recipe == "mavil" else not r["baseline"])
            )
            for p in projections
        ]
        projected[recipe] = {
            "label": label,
            "projected_seconds": [r["projected_seconds"] for r in rows],
            "ci": [[r["ci_low"], r["ci_high"]] for r in rows],
            "mean": float(np.mean([r["projected_seconds"] for r in rows])),
            "time_saving": [r["time_saving"] for r in rows],
        }
    record["projected"] = projected
    bracket = {}
    if args.projections == "between":
        for run in runs:
            after = run["projection_after"]
            seconds = projected[run["recipe"]]["projected_seconds"]
            bracket[run["name"]] = float(np.mean(seconds[after - 1 : after + 1]))
    measured = measured_saving(runs)
    if args.cycles > 1:
        record["block_bootstrap_saving"] = dict(measured)
        level = run_level_saving(runs)
        record["run_level_saving"] = level
        measured = {**measured, "ci_low": level["ci_low"], "ci_high": level["ci_high"]}
    record["measured_saving"] = measured
    checks = []
    for run in runs:
        overall = projected[run["recipe"]]["mean"]
        target = bracket.get(run["name"], overall)
        checks.append(
            {
                "run": run["name"],
                "measured": run["wall_clock_seconds"],
                "projected": target,
                "projected_by": "the two bracketing projections" if bracket else "all projections",
                "error": target / run["wall_clock_seconds"] - 1.0,
                "error_vs_mean_of_all": overall / run["wall_clock_seconds"] - 1.0,
            }
        )
    record["checks"] = checks
    savings = list(projected["full"]["time_saving"])
    projected_saving = 1.0 - projected["full"]["mean"] / projected["mavil"]["mean"]
    record["projected_saving"] = {"each": savings, "of_means": projected_saving}
    record["verdict"] = {
        "every_run_within_10pct": all(abs(c["error"]) <= 0.10 for c in checks),
        "saving_inside_interval": measured["ci_low"] <= projected_saving <= measured["ci_high"],
        "saving_within_5_points": bool(abs(projected_saving - measured["saving"]) <= 0.05),
    }
    record["single_projection_rule"] = single_projection_rule(projections[0], runs)
    (args.out / "validation.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    (args.out / "steps.json").write_text(json.dumps(step_record(configs, runs)) + "\n")
    print(
        json.dumps(
            {k: record[k] for k in ("checks", "measured_saving", "projected_saving", "verdict")},
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
