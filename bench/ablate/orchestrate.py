"""The grid's orchestration: a grid's tasks (rows x seeds, then control probes), their
order, and ``run_grid``, which runs them through an executor, gathers the records, writes
``results.json`` (with its comparisons) and, when asked, the whole-run projection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ablate.claims import results_lock
from bench.ablate.grid import Grid
from bench.ablate.plan import control_run_id, describe_differences, plan_config, row_run_id
from bench.ablate.results import (
    result_paths,
    write_results,
)
from bench.ablate.runner import CLAIMED, Task, is_done, read_record
from diffmavil.training.config import PretrainConfig

RANDOM_CONTROL_VARIANT = "mavil"


def control_config(init: str, config: PretrainConfig) -> PretrainConfig:
    """The pre-training config a control probe is built from. Every variant has the same
    encoders (they differ in their decoders), so the random-init control draws the encoders
    as ``mavil`` does at that seed: one random-init control per (preset, overrides, seed)
    serves every variant's rows."""
    if init == "random":
        return config.model_copy(update={"variant": RANDOM_CONTROL_VARIANT})
    return config


def control_label(init: str, config: PretrainConfig, base_preset: str) -> str:
    """The control's row name, e.g. ``control: random-init`` or ``control: fbank (tiny)``."""
    name = "fbank" if init == "fbank" else "random-init"
    return f"control: {name}" + (f" ({config.preset})" if config.preset != base_preset else "")


def build_tasks(grid: Grid, out: Path) -> list[Task]:
    """Every run of the grid: rows x their seeds, then control probes once per (preset,
    model overrides) and seed, in the grid's order (see ``execution_order``)."""
    tasks: list[Task] = []
    runs = out / "runs"
    kind = "flops" if grid.run.flops_only else "row"
    timing = None if grid.run.time is None else grid.run.time.model_dump(mode="json")
    for seed in grid.seeds:
        probe = grid.probe_at_seed(seed)
        for row in grid.rows:
            if seed not in grid.seeds_of(row):
                continue
            config = row.at_seed(seed)
            run_id = row_run_id(config, probe, grid.run.flops_only)
            plan = plan_config(config)
            tasks.append(
                Task(
                    kind=kind,
                    row=row.name,
                    seed=seed,
                    run_id=run_id,
                    run_dir=str(runs / run_id),
                    pretrain=config.model_dump(mode="json"),
                    probe=None if probe is None else probe.model_dump(mode="json"),
                    time=timing if kind == "row" else None,
                    baseline=row.baseline,
                    match_flops_of=row.match_flops_of,
                    differences=describe_differences(row.differences),
                    planned_steps=plan.steps,
                    planned_flops=plan.total_flops,
                    planned_flops_by_component=dict(plan.flops_by_component),
                )
            )
        if probe is None:
            continue
        seen: set[str] = set()
        for init in grid.run.controls:
            for row in grid.rows:
                config = control_config(init, row.at_seed(seed))
                run_id = control_run_id(init, config, probe)
                if run_id in seen:
                    continue
                seen.add(run_id)
                tasks.append(
                    Task(
                        kind="control",
                        row=control_label(init, config, grid.base.preset),
                        seed=seed,
                        run_id=run_id,
                        run_dir=str(runs / run_id),
                        pretrain=config.model_dump(mode="json"),
                        probe=probe.model_dump(mode="json"),
                        init=init,
                    )
                )
    return tasks


def execution_order(tasks: list[Task], grid: Grid) -> list[Task]:
    """The order to run ``tasks`` in: seed by seed; with ``statistics.row_order: shuffled``
    each seed runs its rows in its own order (a permutation drawn from the seed), so that
    machine drift over a long grid does not always land on the same rows. Controls follow
    their seed's rows."""
    if grid.statistics.row_order == "listed":
        return list(tasks)
    import numpy as np

    ordered: list[Task] = []
    for seed in dict.fromkeys(task.seed for task in tasks):
        rows = [task for task in tasks if task.seed == seed and task.kind != "control"]
        permutation = np.random.default_rng([seed, 0x0DE5]).permutation(len(rows))
        ordered += [rows[i] for i in permutation]
        ordered += [task for task in tasks if task.seed == seed and task.kind == "control"]
    return ordered


def run_grid(
    grid: Grid,
    out: Path,
    *,
    executor: str = "local",
    workers: int = 1,
    progress: bool = False,
    submitit_cluster: str | None = None,
    submitit_parameters: dict[str, Any] | None = None,
    on_record: Callable[[Task, dict[str, Any], bool], None] | None = None,
) -> dict[str, Any]:
    """Run every task not already completed (nor claimed by another live process), rebuild
    the results from the run directories after each run and at the end (atomically, under
    the output's lock); returns {"records", "paths", "ran", "skipped", "claimed",
    "complete"} ("claimed": records of the runs another process held, not run here)."""
    from bench.ablate import runner
    from diffmavil.environment import environment

    tasks = build_tasks(grid, out)
    if executor == "submitit" and submitit_cluster is None:
        submitit_cluster = runner.default_submitit_cluster()
    parallel = (executor == "local" and workers > 1) or (
        executor == "submitit" and submitit_cluster == "local"
    )
    records: dict[int, dict[str, Any]] = {}
    pending: list[Task] = []
    shared: list[Task] = []  # a second row resolving to a run already pending: read back
    for index, task in enumerate(tasks):
        done = is_done(task)
        if done is not None:
            records[index] = _relabel(done, task)
            if on_record is not None:
                on_record(task, records[index], True)
        elif any(other.run_dir == task.run_dir for other in pending):
            shared.append(task)
        else:
            pending.append(task)
    if parallel and len(pending) > 1:
        for task in pending:
            task.wall_clock_comparable = False
    pending = execution_order(pending, grid)
    for task in pending:
        task.progress = progress and executor == "local" and workers == 1
    meta = {
        "grid": grid.name,
        "grid_file": str(grid.path),
        "description": grid.description,
        "seeds": grid.seeds,
        "baseline": grid.baseline.name,
        "flops_only": grid.run.flops_only,
        "statistics": grid.statistics.model_dump(mode="json"),
        "executor": (
            f"submitit ({submitit_cluster})"
            if executor == "submitit"
            else "local"
            if workers == 1
            else f"local x{workers}"
        ),
        "environment": environment("cpu"),
    }
    position = {id(task): index for index, task in enumerate(tasks)}

    claimed: list[dict[str, Any]] = []
    claimed_tasks: list[Task] = []
    finished_elsewhere: list[Task] = []

    def ordered() -> list[dict[str, Any]]:
        return [records[i] for i in sorted(records)]

    def rebuild() -> bool:
        """Rebuild the results from the run directories (under the output's lock, so two
        invocations finishing at once lose no record); True when every run has one."""
        with results_lock(out):
            for index, task in enumerate(tasks):
                record = read_record(task.run_dir)  # a GridRecord, schema 1 migrated
                if record is not None:
                    records[index] = _relabel(record.model_dump(mode="json"), task)
            # a run another process held counts once that process has completed it
            complete = len(records) == len(tasks) and all(map(is_done, claimed_tasks))
            write_results(out, ordered(), meta, complete=complete)
        return complete

    def done(task: Task, record: dict[str, Any]) -> None:
        if record["status"] == CLAIMED:
            claimed.append(_relabel(record, task))
            claimed_tasks.append(task)
        else:
            records[position[id(task)]] = _relabel(record, task)
            rebuild()
        if record.get("skipped"):  # completed by another process while this one waited
            finished_elsewhere.append(task)
        if on_record is not None:
            on_record(task, _relabel(record, task), bool(record.get("skipped")))

    if pending:
        if executor == "submitit":
            runner.run_submitit(
                pending,
                out / "submitit",
                done,
                cluster=submitit_cluster,
                parameters=submitit_parameters,
            )
        elif workers > 1:
            runner.run_workers(pending, workers, done)
        else:
            runner.run_local(pending, done)
    for task in shared:
        record = read_record(task.run_dir)
        if record is not None and on_record is not None:
            on_record(task, _relabel(record.model_dump(mode="json"), task), True)
    complete = rebuild()
    if complete and grid.run.project_time is not None:
        from bench.ablate.project_time import project_grid

        project_grid(grid, out)
    return {
        "records": ordered(),
        "paths": result_paths(out),
        "ran": len(pending) - len(claimed) - len(finished_elsewhere),
        "skipped": len(tasks) - len(pending) + len(finished_elsewhere),
        "claimed": claimed,
        "complete": complete,
    }


def _relabel(record: dict[str, Any], task: Task) -> dict[str, Any]:
    """The grid's view of a run: its row name, baseline flag, seed (two rows with the same
    resolved config share one run)."""
    record = {k: v for k, v in record.items() if k not in ("skipped", "traceback")}
    record.update(
        row=task.row,
        kind=task.kind,
        seed=task.seed,
        baseline=task.baseline,
        match_flops_of=task.match_flops_of,
        differences=task.differences,
        planned_steps=task.planned_steps,
        planned_flops=task.planned_flops,
    )
    return record
