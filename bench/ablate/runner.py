"""Running the tasks of a grid: ``execute_task(task)`` claims the run and runs its task
(``bench.ablate.task``); it is the unit every executor runs (in-process, in a worker
process, in a submitit job), and idempotent: a run whose ``record.json`` says completed is
returned as is, a pre-training that completed is not repeated, one with a checkpoint resumes.

Run directory ``<out>/runs/<run_id>/``: pretrain's own files (config.json, metrics.jsonl,
tb/, checkpoint.pt, summary.json), ``probe.json``, ``claim.<n>.json`` while a process
runs it, and ``record.json`` (this run's result record, written atomically last).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.ablate.task import (
    RecordDraft,
    Task,
    base_record,
    failure_reason,
    pretrain_config,
    run_task,
)
from bench.schema import GridRecord
from diffmavil.atomic import atomic_write_json

if TYPE_CHECKING:
    from bench.ablate.claims import ClaimOwner

RECORD = "record.json"
CLAIMED = "claimed"  # status of a run held by another live process (not run here)


def read_record(run_dir: str | Path) -> GridRecord | None:
    """The run's record.json as a ``GridRecord`` (schema 1 migrated), or None if absent or
    unreadable (the run is then done again)."""
    from bench.migrate import MigrationError, load_record

    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        return load_record(path)
    except MigrationError:
        return None


def is_done(task: Task) -> dict[str, Any] | None:
    """The stored record of a completed (or planned) run, else None."""
    record = read_record(task.run_dir)
    if record is not None and record.status in ("completed", "planned"):
        return record.model_dump(mode="json")
    return None


def execute_task(task: Task | dict[str, Any]) -> dict[str, Any]:
    """Run one task (idempotent) and return its record (also written to record.json) as
    JSON: the form that crosses the executors' process boundaries; a record read back
    rather than run carries ``skipped: true``.

    The run is claimed first (``bench.ablate.claims``): a run claimed by another live
    process is not run here (status ``claimed``, nothing written), and the record is
    written only if the claim is still held at the end.
    """
    if isinstance(task, dict):
        task = Task(**task)
    done = is_done(task)
    if done is not None:
        return {**done, "skipped": True}
    from bench.ablate.claims import Busy, acquire

    claim = acquire(task.run_dir)
    if isinstance(claim, Busy):
        return claimed_record(task, claim.owner)
    try:
        done = is_done(task)  # completed by another process just before this claim
        if done is not None:
            return {**done, "skipped": True}
        draft = RecordDraft(run_task(task))
        if not claim.held():  # taken over as stale meanwhile: the new owner's results stand
            return claimed_record(task, claim.holder())
        finished = time.time()
        draft.update(execution=claim.execution(finished))
        overlapped = claim.overlapping_runs(finished, RECORD)
        if overlapped and task.kind == "row":  # shared this host's CPU with another run
            draft.update(wall_clock_comparable=False, overlapped_runs=overlapped)
        record = draft.record.model_dump(mode="json")
        atomic_write_json(Path(task.run_dir) / RECORD, record)
        return record
    finally:
        claim.release()


def claimed_record(task: Task, owner: ClaimOwner | None) -> dict[str, Any]:
    """The record of a run another process holds (never written to its run directory)."""
    from bench.ablate.claims import describe

    record = base_record(task, pretrain_config(task))
    return record.model_copy(update={"status": CLAIMED, "claimed_by": describe(owner)}).model_dump(
        mode="json"
    )


# --------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------


def failed_record(task: Task, reason: str | None) -> dict[str, Any]:
    """The JSON record of a task whose executor failed (the worker or job died)."""
    record = base_record(task, pretrain_config(task))
    return record.model_copy(update={"failure": reason}).model_dump(mode="json")


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_local(tasks: list[Task], on_done: Callable[[Task, dict], None]) -> None:
    for task in tasks:
        on_done(task, execute_task(task))


def run_workers(tasks: list[Task], workers: int, on_done: Callable[[Task, dict], None]) -> None:
    """N worker processes (spawned) share the CPU: their wall-clock is not comparable."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(execute_task, task.to_dict()): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                record = future.result()
            except Exception as error:  # the worker process died
                record = failed_record(task, f"worker failed: {failure_reason(error)}")
            on_done(task, record)


def default_submitit_cluster() -> str:
    """What submitit's AutoExecutor would pick: SLURM where it is available, else local."""
    try:
        from submitit.slurm.slurm import SlurmExecutor
    except ImportError:
        return "local"
    return "slurm" if SlurmExecutor.affinity() > 0 else "local"


def run_submitit(
    tasks: list[Task],
    folder: Path,
    on_done: Callable[[Task, dict], None],
    *,
    cluster: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> None:
    """One submitit job per task (a job array on SLURM); ``cluster="local"`` runs them as
    local processes (submitit's LocalExecutor), which share this machine's CPU."""
    try:
        import submitit
    except ImportError:
        from bench.errors import BadInput

        raise BadInput(
            "--executor submitit needs the submitit package (pip install -e '.[cluster]')"
        ) from None
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = {"timeout_min": 60, "name": "diffbench-ablate"}
    params.update({k: v for k, v in (parameters or {}).items() if v is not None})
    executor.update_parameters(**params)
    jobs = executor.map_array(execute_task, [task.to_dict() for task in tasks])
    for task, job in zip(tasks, jobs, strict=True):
        try:
            record = job.result()
        except Exception as error:
            record = failed_record(
                task, f"submitit job {job.job_id} failed: {failure_reason(error)}"
            )
        on_done(task, record)
