"""Claims on run directories: one process runs a run, however many invocations share --out.

A claim is a file ``<run_dir>/claim.<generation>.json`` holding the owner's host, pid,
process start time (against pid reuse) and a random token. It is created atomically
(written to a temporary file, then ``os.link``ed to its name, which fails if the name
exists), so a claim file is never seen half-written. The highest generation present is
the claim; a process holds a run while its file exists, carries its token and no higher
generation exists.

- **Heartbeat**: a thread touches the claim file every ``heartbeat_seconds``, so a long
  step or compile does not look stale.
- **Staleness** is judged by the file's own mtime against the storage's clock (the mtime
  of a file just created beside it), never the local clock: shared filesystems and SLURM
  requeues on other nodes see the same times. A claim older than ``stale_seconds`` is
  stale; on the same host, so is one whose process is gone (or whose pid now belongs to
  a process started at another time).
- **Takeover** of a stale claim creates the next generation, atomically: of several
  contenders exactly one creates it; the winner removes the lower generations and warns.
- **Re-check**: the owner calls ``held()`` before writing results; a run whose claim was
  taken over writes nothing.
- **Overlap**: ``overlapping_runs`` names the runs of the same output directory that ran on
  this host during this claim (live claims, and records whose execution interval
  intersects it): their wall-clock figures contended with each other.

``results_lock`` serialises the rebuild of ``results.json`` and the aggregate.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from bench.schema import RunExecution
from diffmavil.config import Frozen

HEARTBEAT_SECONDS = float(os.environ.get("DIFFBENCH_CLAIM_HEARTBEAT_S", "10"))
STALE_SECONDS = float(os.environ.get("DIFFBENCH_CLAIM_STALE_S", "120"))
CLAIM_PATTERN = re.compile(r"^claim\.(\d+)\.json$")
RESULTS_LOCK = ".results.lock"


def process_start(pid: int) -> str | None:
    """``<boot id>:<start ticks>`` of a process (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks since boot


class ClaimOwner(Frozen):
    """A claim file's contents: the process that holds the run."""

    host: str
    pid: int
    process_start: str | None = None  # ``process_start(pid)``: tells a reused pid apart
    token: str  # new per claim: tells this claim apart from the same process's others
    claimed_at: float


def this_owner() -> ClaimOwner:
    """The identity a claim made by this process carries (a new token per claim)."""
    pid = os.getpid()
    return ClaimOwner(
        host=socket.gethostname(),
        pid=pid,
        process_start=process_start(pid),
        token=uuid.uuid4().hex,
        claimed_at=time.time(),
    )


def describe(owner: ClaimOwner | None) -> str:
    if owner is None:
        return "an unknown process"
    return f"{owner.host} pid {owner.pid}"


def process_gone(owner: ClaimOwner) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists (or its pid
    was reused by a process started at another time)."""
    if owner.host != socket.gethostname():
        return False  # another host: only the heartbeat can tell
    pid = owner.pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, belongs to another user
    except (OSError, ValueError):
        return True
    started, now = owner.process_start, process_start(pid)
    return started is not None and now is not None and started != now


def storage_now(directory: Path) -> float:
    """The storage's current time: the mtime of a file created in ``directory``."""
    fd, name = _create_temporary(directory, "clock")
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        os.unlink(name)


def _create_temporary(directory: Path, what: str) -> tuple[int, str]:
    name = directory / f".{what}-{uuid.uuid4().hex}.tmp"
    return os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644), str(name)


def claim_files(run_dir: Path) -> list[tuple[int, Path]]:
    """(generation, path) of the claim files in ``run_dir``, lowest generation first."""
    found = []
    for path in run_dir.glob("claim.*.json"):
        match = CLAIM_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_owner(path: Path) -> ClaimOwner | None:
    """The owner a claim file names; None when it is gone or unreadable."""
    try:
        return ClaimOwner.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def stale_reason(path: Path, owner: ClaimOwner | None, stale_seconds: float) -> str | None:
    """Why the claim at ``path`` is stale, or None while its owner is alive."""
    if owner is not None and process_gone(owner):
        return f"its process {owner.pid} on {owner.host} is gone"
    try:
        age = storage_now(path.parent) - path.stat().st_mtime
    except FileNotFoundError:
        return "it was released"
    if age > stale_seconds:
        return f"no heartbeat for {age:.0f} s (stale after {stale_seconds:g} s)"
    return None


@dataclass(frozen=True)
class Busy:
    """The run is claimed by another live process."""

    path: Path
    owner: ClaimOwner | None

    def describe(self) -> str:
        return describe(self.owner)


class Claim:
    """This process's claim on one run directory (``acquire`` makes one)."""

    def __init__(self, path: Path, owner: ClaimOwner, heartbeat_seconds: float) -> None:
        self.path = path
        self.owner = owner
        self.generation = int(CLAIM_PATTERN.match(path.name).group(1))  # type: ignore[union-attr]
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(heartbeat_seconds,), name=f"claim {path}", daemon=True
        )

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                os.utime(self.path)  # times=None: the storage's "now"
            except FileNotFoundError:
                return  # taken over and removed: ``held()`` says so

    def start_heartbeat(self) -> None:
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def holder(self) -> ClaimOwner | None:
        """The owner of the highest claim generation in the run directory."""
        claims = claim_files(self.path.parent)
        return read_owner(claims[-1][1]) if claims else None

    def held(self) -> bool:
        """Whether this process still holds the run (re-checked before writing results)."""
        owner = read_owner(self.path)
        if owner is None or owner.token != self.owner.token:
            return False
        return all(generation <= self.generation for generation, _ in claim_files(self.path.parent))

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this process's."""
        self.stop_heartbeat()
        owner = read_owner(self.path)
        if owner is not None and owner.token == self.owner.token:
            self.path.unlink(missing_ok=True)

    def overlapping_runs(
        self, until: float | None = None, records: str = "record.json"
    ) -> list[str]:
        """Run directories (names) of this output directory whose runs executed on this
        host between this claim and ``until`` (default: now): live claims, and finished
        runs whose record's ``execution`` interval intersects this claim's."""
        host, start, token = self.owner.host, self.owner.claimed_at, self.owner.token
        now = time.time() if until is None else until
        found = set()
        for run_dir in self.path.parent.parent.iterdir():
            if not run_dir.is_dir():
                continue
            for _, path in claim_files(run_dir):
                owner = read_owner(path)
                if owner is None or owner.host != host or owner.token == token:
                    continue
                try:
                    last_seen = path.stat().st_mtime  # a dead owner's last heartbeat
                except FileNotFoundError:
                    continue
                end = now if not process_gone(owner) else last_seen
                if owner.claimed_at < now and end > start:
                    found.add(run_dir.name)
            execution = _execution_of(run_dir / records)
            if (
                execution is not None
                and execution.host == host
                and execution.token != token
                and execution.started_at < now
                and execution.finished_at > start
            ):
                found.add(run_dir.name)
        found.discard(self.path.parent.name)
        return sorted(found)

    def execution(self, finished_at: float | None = None) -> RunExecution:
        """Where and when this claim ran its run (a record's ``execution`` field)."""
        return RunExecution(
            host=self.owner.host,
            pid=self.owner.pid,
            token=self.owner.token,
            started_at=self.owner.claimed_at,
            finished_at=time.time() if finished_at is None else finished_at,
        )


class _RecordExecution(BaseModel):
    """The part of a run's record.json that overlaps are judged from; the rest of the
    record is not read here (another version's record still tells when it ran)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    execution: RunExecution | None = None


def _execution_of(record_path: Path) -> RunExecution | None:
    try:
        return _RecordExecution.model_validate_json(record_path.read_bytes()).execution
    except (OSError, ValidationError):
        return None


def acquire(
    run_dir: str | Path,
    *,
    stale_seconds: float = STALE_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    attempts: int = 8,
) -> Claim | Busy:
    """Claim ``run_dir`` for this process (heartbeat started), or say who holds it.

    A stale claim is taken over with a one-line warning on stderr.
    """
    from bench.errors import warn

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        claims = claim_files(run_dir)
        generation, reason, previous = 1, None, None
        if claims:
            top, path = claims[-1]
            previous = read_owner(path)
            reason = stale_reason(path, previous, stale_seconds)
            if reason is None:
                return Busy(path, previous)
            if reason == "it was released":
                continue
            generation = top + 1
        claim = _create(run_dir, generation, heartbeat_seconds)
        if claim is None:
            continue  # another contender created this generation first
        if not claim.held():  # a higher generation appeared meanwhile: theirs
            claim.path.unlink(missing_ok=True)
            continue
        for lower, path in claim_files(run_dir):
            if lower < claim.generation:
                path.unlink(missing_ok=True)
        if reason is not None:
            warn(f"{run_dir}: took over the claim of {describe(previous)}: {reason}")
        claim.start_heartbeat()
        return claim
    claims = claim_files(run_dir)  # contended past ``attempts``: report the current holder
    path = claims[-1][1] if claims else run_dir / "claim.1.json"
    return Busy(path, read_owner(path))


def _create(run_dir: Path, generation: int, heartbeat_seconds: float) -> Claim | None:
    """Create ``claim.<generation>.json`` complete, or None if that name exists."""
    owner = this_owner()
    fd, temporary = _create_temporary(run_dir, "claim")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(owner.model_dump(mode="json"), handle)
            handle.flush()
            os.fsync(handle.fileno())
        path = run_dir / f"claim.{generation}.json"
        try:
            os.link(temporary, path)
        except FileExistsError:
            return None
    finally:
        os.unlink(temporary)
    return Claim(path, owner, heartbeat_seconds)


@contextlib.contextmanager
def results_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``<out>`` while its results files are rebuilt (released on exit,
    also when the process dies)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / RESULTS_LOCK).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
