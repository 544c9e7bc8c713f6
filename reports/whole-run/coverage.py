"""The whole-run projection's coverage check: does its interval hold what varies?

``measure`` runs ``--projections`` projections back to back (one *window of time*) of
MAViL's recipe and the full recipe, exactly as ``diffbench time --masking curriculum
--batch adaptive`` projects them, and appends them to ``--file``. Run it at least 3 times,
at separate times (an hour or more apart, on an idle machine), for at least 12
projections in all.

With ``--history FILE`` each projection's seconds' interval comes from the machine's
history of projections of the same setting (``bench.projection.history``: ``diffbench
time --history``), and the projection then joins it; ``seed-history`` adds the
projections stored in earlier coverage or validation files to a history.

``score`` scores each projection's interval against the mean of the other projections'
estimates (``bench.stats.coverage_check``), for each recipe's seconds and for the saving:
it passes at 11 of 12 (1 miss in 12) or better AND with a median half-width at most twice
the estimates' own sd (an interval cannot pass by being wide). It prints a markdown table,
then (with 2 windows or more) an exploratory one: intervals from the spread of the other
windows' projections (``bench.stats.leave_one_window_out``), not a pre-registered check.

Usage (from the repository root)::

    python reports/whole-run/coverage.py measure --preset proportional --samples 32768 \\
        --projections 4 --file reports/whole-run/coverage-proportional.json
    python reports/whole-run/coverage.py score reports/whole-run/coverage-proportional.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path


def recipes(args) -> dict:
    from bench.projection.recipes import mavil_recipe
    from diffmavil.training.config import PretrainConfig

    full = PretrainConfig(
        preset=args.preset,
        variant="cross-attn",
        masking={"kind": "curriculum"},
        batch={"kind": "adaptive", "batch_size": args.batch_size},
        budget_samples=args.samples,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
    )
    return {"mavil": mavil_recipe(full), "full": full}


def measure(args) -> None:
    from bench.projection.measure import project_whole_run
    from bench.projection.recipes import ProjectionRequest
    from diffmavil.atomic import atomic_write_json

    path = Path(args.file)
    stored = json.loads(path.read_text()) if path.exists() else {"projections": []}
    window = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    request = ProjectionRequest(
        recipes=recipes(args),
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        windows=args.windows,
        max_anchors=args.anchors,
        memory=False,
    )
    stored["request"] = request.model_dump(mode="json")
    for index in range(args.projections):
        started = time.perf_counter()
        result = project_whole_run(request)
        if args.history is not None:
            from bench.projection.history import project_with_history

            result = project_with_history(result, Path(args.history))
        stored["projections"].append(
            {
                "window": window,
                "index": index,
                "seconds": time.perf_counter() - started,
                "load_average_1m": os.getloadavg()[0],
                "rows": [row.model_dump(mode="json") for row in result.rows],
                "environment": result.environment,
            }
        )
        atomic_write_json(path, stored)  # a projection at a time: an interrupted window keeps
        print(f"window {window}: projection {index + 1}/{args.projections} stored in {path}")


def seed_history(args) -> None:
    """Adds every projection stored in ``args.sources`` (coverage or validation files)
    to the history ``args.history``, dated by its environment."""
    from bench.projection.history import append_history, entries_of, read_history
    from bench.schema.projection import WholeRunRow

    path = Path(args.history)
    for source in args.sources:
        for projection in json.loads(Path(source).read_text())["projections"]:
            rows = [WholeRunRow.model_validate(r) for r in projection["rows"]]
            environment = projection["environment"]
            append_history(path, entries_of(rows, environment, environment["date"]))
    print(f"{path}: {len(read_history(path))} entries")


def score(args) -> None:
    """Print the check (``bench.report.projection_checks.coverage_table``)."""
    from bench.report.projection_checks import CoverageRecord, coverage_table, coverage_windows

    stored = CoverageRecord.model_validate_json(Path(args.file).read_text())
    windows = coverage_windows(stored)
    print(f"{len(stored.projections)} projections in {len(windows)} windows ({args.file})\n")
    print(coverage_table(stored))
    if len(windows) > 1:
        print(
            "\nExploratory: intervals from the other windows' spread "
            "(one window left out at a time)\n"
        )
        print(coverage_table(stored, history=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("measure", help="one window of projections, appended to --file")
    run.add_argument("--file", required=True)
    run.add_argument("--preset", default="proportional")
    run.add_argument("--samples", type=int, default=32768)
    run.add_argument("--batch-size", type=int, default=16)
    run.add_argument("--threads", type=int, default=2)
    run.add_argument("--checkpoint-every", type=int, default=256)
    run.add_argument("--log-every", type=int, default=32)
    run.add_argument("--projections", type=int, default=4)
    run.add_argument("--repeats", type=int, default=5)
    run.add_argument("--windows", type=int, default=6)
    run.add_argument("--min-seconds", type=float, default=60.0)
    run.add_argument("--anchors", type=int, default=3)
    run.add_argument("--history", default=None, help="the machine's history of projections")
    seed = commands.add_parser("seed-history", help="add stored projections to a history")
    seed.add_argument("--history", required=True)
    seed.add_argument("sources", nargs="+")
    check = commands.add_parser("score", help="score the stored projections")
    check.add_argument("file")
    args = parser.parse_args()
    if args.command == "measure":
        measure(args)
    elif args.command == "seed-history":
        seed_history(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
