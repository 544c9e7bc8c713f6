"""The grid's orchestration: a grid's tasks (rows x seeds, then control probes), their
order, and ``run_grid``, which runs them through an executor while ``GridRecords`` gathers
their records and rewrites ``results.json`` (with its comparisons) after each, then, when
asked, the whole-run projection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ablate.claims import results_lock
from bench.ablate.grid import Grid, GridRow
from bench.ablate.plan import control_run_id, describe_differences, plan_config
from bench.ablate.runner import CLAIMED, Task, is_done, read_record
from bench.ablate.store import result_paths, write_results
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
    for seed in grid.seeds:
        tasks += [
            _row_task(grid, row, seed, out) for row in grid.rows if seed in grid.seeds_of(row)
        ]
        tasks += _control_tasks(grid, seed, out)
    return tasks


def _json(config: Any) -> dict[str, Any] | None:
    return None if config is None else config.model_dump(mode="json")


def _row_task(grid: Grid, row: GridRow, seed: int, out: Path) -> Task:
    """The task of ``row`` at ``seed``: pre-train (or plan), time, probe, curve, fine-tune."""
    kind = "flops" if grid.run.flops_only else "row"
    config = row.at_seed(seed)
    run_id = grid.run_id(row, seed)
    plan = plan_config(config)
    return Task(
        kind=kind,
        row=row.name,
        seed=seed,
        run_id=run_id,
        run_dir=str(out / "runs" / run_id),
        pretrain=config.model_dump(mode="json"),
        probe=_json(grid.probe_at_seed(seed)),
        time=_json(grid.run.time) if kind == "row" else None,
        curve=_json(grid.curve_probe_at_seed(seed, row)),
        finetune=_json(grid.finetune_at_seed(row.name, seed)),
        baseline=row.baseline,
        match_flops_of=row.match_flops_of,
        differences=describe_differences(row.differences),
        planned_steps=plan.steps,
        planned_flops=plan.total_flops,
        planned_flops_by_component=dict(plan.flops_by_component),
    )


def _control_tasks(grid: Grid, seed: int, out: Path) -> list[Task]:
    """The control probes at ``seed``: one per init and distinct control run (the
    random-init control fine-tuned too where the grid has a fine-tune column)."""
    probe = grid.probe_at_seed(seed)
    if probe is None:
        return []
    tasks: list[Task] = []
    seen: set[str] = set()
    for init in grid.run.controls:
        finetune = grid.finetune_at_seed(None, seed) if init == "random" else None
        for row in grid.rows:
            config = control_config(init, row.at_seed(seed))
            run_id = control_run_id(init, config, probe, finetune)
            if run_id in seen:
                continue
            seen.add(run_id)
            tasks.append(
                Task(
                    kind="control",
                    row=control_label(init, config, grid.base.preset),
                    seed=seed,
                    run_id=run_id,
                    run_dir=str(out / "runs" / run_id),
                    pretrain=config.model_dump(mode="json"),
                    probe=probe.model_dump(mode="json"),
                    finetune=_json(finetune),
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

    tasks = build_tasks(grid, out)
    if executor == "submitit" and submitit_cluster is None:
        submitit_cluster = runner.default_submitit_cluster()
    meta = results_meta(grid, executor, workers, submitit_cluster)
    records = GridRecords(tasks, out, meta, on_record)
    pending, shared = records.take_completed()
    parallel = (executor == "local" and workers > 1) or (
        executor == "submitit" and submitit_cluster == "local"
    )
    pending = _prepare_pending(
        pending, grid, parallel, progress and executor == "local" and workers == 1
    )
    if pending:
        _execute(
            pending, records.done, out, executor, workers, submitit_cluster, submitit_parameters
        )
    records.report_shared(shared)
    complete = records.rebuild()
    if complete and grid.run.project_time is not None:
        from bench.ablate.project_time import project_grid

        project_grid(grid, out)
    elsewhere = len(records.claimed) + len(records.finished_elsewhere)
    return {
        "records": records.ordered(),
        "paths": result_paths(out),
        "ran": len(pending) - elsewhere,
        "skipped": len(tasks) - len(pending) + len(records.finished_elsewhere),
        "claimed": records.claimed,
        "complete": complete,
    }


def _prepare_pending(pending: list[Task], grid: Grid, parallel: bool, progress: bool) -> list[Task]:
    """The tasks to run, in their order (``execution_order``); runs sharing the machine
    with another are marked wall-clock not comparable."""
    if parallel and len(pending) > 1:
        for task in pending:
            task.wall_clock_comparable = False
    pending = execution_order(pending, grid)
    for task in pending:
        task.progress = progress
    return pending


def results_meta(
    grid: Grid, executor: str, workers: int, submitit_cluster: str | None
) -> dict[str, Any]:
    """What results.json says about the grid and how it ran, beside the records."""
    from diffmavil.environment import environment

    return {
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


def _execute(
    pending: list[Task],
    done: Callable[[Task, dict[str, Any]], None],
    out: Path,
    executor: str,
    workers: int,
    submitit_cluster: str | None,
    submitit_parameters: dict[str, Any] | None,
) -> None:
    """Run ``pending`` through the executor; ``done`` is called with each run's record."""
    from bench.ablate import runner

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


@dataclass
class GridRecords:
    """The records of a grid's tasks as its runs finish. After each run the results are
    rebuilt from the run directories and written (under the output's lock, so two
    invocations finishing at once lose no record)."""

    tasks: list[Task]
    out: Path
    meta: dict[str, Any]  # results.json's, beside the records (``results_meta``)
    on_record: Callable[[Task, dict[str, Any], bool], None] | None
    by_index: dict[int, dict[str, Any]] = field(default_factory=dict)
    claimed: list[dict[str, Any]] = field(default_factory=list)  # held by another process
    claimed_tasks: list[Task] = field(default_factory=list)
    finished_elsewhere: list[Task] = field(default_factory=list)  # done while this one waited
    positions: dict[int, int] = field(init=False)  # id(task) -> its index in tasks

    def __post_init__(self) -> None:
        self.positions = {id(task): index for index, task in enumerate(self.tasks)}

    def take_completed(self) -> tuple[list[Task], list[Task]]:
        """Record the tasks already completed; returns (the tasks to run, the tasks whose
        run another row resolves to: read back once it has run)."""
        pending: list[Task] = []
        shared: list[Task] = []
        for index, task in enumerate(self.tasks):
            completed = is_done(task)
            if completed is not None:
                self.by_index[index] = _relabel(completed, task)
                self._tell(task, self.by_index[index], True)
            elif any(other.run_dir == task.run_dir for other in pending):
                shared.append(task)
            else:
                pending.append(task)
        return pending, shared

    def ordered(self) -> list[dict[str, Any]]:
        """The records so far, in the tasks' order."""
        return [self.by_index[i] for i in sorted(self.by_index)]

    def rebuild(self) -> bool:
        """Rebuild and write the results from the run directories; True when every run has
        its record."""
        with results_lock(self.out):
            for index, task in enumerate(self.tasks):
                record = read_record(task.run_dir)  # a GridRecord, schema 1 migrated
                if record is not None:
                    self.by_index[index] = _relabel(record.model_dump(mode="json"), task)
            # a run another process held counts once that process has completed it
            complete = len(self.by_index) == len(self.tasks) and all(
                map(is_done, self.claimed_tasks)
            )
            write_results(self.out, self.ordered(), self.meta, complete=complete)
        return complete

    def done(self, task: Task, record: dict[str, Any]) -> None:
        """The executors' callback: one run finished (or was found claimed or done)."""
        if record["status"] == CLAIMED:
            self.claimed.append(_relabel(record, task))
            self.claimed_tasks.append(task)
        else:
            self.by_index[self.positions[id(task)]] = _relabel(record, task)
            self.rebuild()
        if record.get("skipped"):  # completed by another process while this one waited
            self.finished_elsewhere.append(task)
        self._tell(task, _relabel(record, task), bool(record.get("skipped")))

    def report_shared(self, shared: list[Task]) -> None:
        """Tell ``on_record`` about the tasks whose run another row's task ran."""
        for task in shared:
            record = read_record(task.run_dir)
            if record is not None:
                self._tell(task, _relabel(record.model_dump(mode="json"), task), True)

    def _tell(self, task: Task, record: dict[str, Any], skipped: bool) -> None:
        if self.on_record is not None:
            self.on_record(task, record, skipped)


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
