"""Claims on run directories: exclusive, heartbeat-fresh, stale ones taken over atomically."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.ablate.claims import (
    Busy,
    Claim,
    acquire,
    claim_files,
    process_start,
    read_owner,
    results_lock,
)


def _write_claim(run_dir: Path, generation: int, **owner) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"claim.{generation}.json"
    payload = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": process_start(os.getpid()),
        "token": f"token-{generation}",
        "claimed_at": time.time(),
        **owner,
    }
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def sleeper():
    """A live process that is not this one (its pid, its start time)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def test_a_claim_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    claim = acquire(run_dir)
    assert isinstance(claim, Claim) and claim.held()
    owner = read_owner(run_dir / "claim.1.json")
    assert owner.host == socket.gethostname() and owner.pid == os.getpid()
    assert owner.process_start == process_start(os.getpid()) is not None
    second = acquire(run_dir)  # this process is alive: the run is busy
    assert isinstance(second, Busy) and second.owner.token == owner.token
    claim.release()
    assert claim_files(run_dir) == []
    again = acquire(run_dir)
    assert isinstance(again, Claim) and again.path.name == "claim.1.json"
    again.release()


def test_a_claim_of_a_live_process_on_this_host_is_respected(tmp_path, sleeper):
    run_dir = tmp_path / "runs" / "r1"
    _write_claim(run_dir, 1, pid=sleeper.pid, process_start=process_start(sleeper.pid))
    busy = acquire(run_dir)
    assert isinstance(busy, Busy) and busy.describe() == f"{socket.gethostname()} pid {sleeper.pid}"


def test_a_claim_of_a_dead_process_is_taken_over_at_once(tmp_path, capsys, sleeper):
    run_dir = tmp_path / "runs" / "r1"
    _write_claim(run_dir, 1, pid=sleeper.pid, process_start=process_start(sleeper.pid))
    sleeper.kill()
    sleeper.wait()
    claim = acquire(run_dir)
    assert isinstance(claim, Claim) and claim.path.name == "claim.2.json"
    assert [path.name for _, path in claim_files(run_dir)] == ["claim.2.json"]
    warning = capsys.readouterr().err.strip()
    assert warning == (
        f"warning: {run_dir}: took over the claim of {socket.gethostname()} pid "
        f"{sleeper.pid}: its process {sleeper.pid} on {socket.gethostname()} is gone"
    )
    claim.release()


def test_a_reused_pid_does_not_keep_a_claim_alive(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    _write_claim(run_dir, 1, process_start="another-boot:1")  # our pid, another process
    claim = acquire(run_dir)
    assert isinstance(claim, Claim) and claim.generation == 2
    claim.release()


def test_another_hosts_claim_is_stale_by_its_mtime_only(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r1"
    path = _write_claim(run_dir, 3, host="node-b", pid=1)
    assert isinstance(acquire(run_dir, stale_seconds=60), Busy)  # fresh: node-b is alive
    ten_minutes_ago = path.stat().st_mtime - 600
    os.utime(path, (ten_minutes_ago, ten_minutes_ago))
    claim = acquire(run_dir, stale_seconds=60)
    assert isinstance(claim, Claim) and claim.generation == 4
    assert "took over the claim of node-b pid 1: no heartbeat for 600 s" in capsys.readouterr().err
    claim.release()


def test_the_heartbeat_keeps_a_busy_owner_fresh_and_its_absence_makes_it_stale(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    claim = acquire(run_dir, heartbeat_seconds=0.1)
    assert isinstance(claim, Claim)
    # seen from another host: only the heartbeat (the file's mtime) says it is alive
    owner = claim.owner.model_copy(update={"host": "node-b"})
    (run_dir / "rewrite.tmp").write_text(owner.model_dump_json())
    os.replace(run_dir / "rewrite.tmp", claim.path)
    time.sleep(1.0)  # the owner is busy (a long step, a compile) for longer than stale_seconds
    assert isinstance(acquire(run_dir, stale_seconds=0.5), Busy)
    claim.stop_heartbeat()
    time.sleep(1.0)
    contender = acquire(run_dir, stale_seconds=0.5)
    assert isinstance(contender, Claim) and contender.generation == claim.generation + 1
    assert not claim.held()  # the old owner's re-check before writing results fails
    contender.release()


def test_of_many_contenders_for_a_stale_claim_exactly_one_wins(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    path = _write_claim(run_dir, 1, host="node-b", pid=1)
    os.utime(path, (0, 0))
    start = threading.Barrier(8)
    results: list[Claim | Busy] = []

    def contend() -> None:
        start.wait()
        results.append(acquire(run_dir, stale_seconds=60))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if isinstance(r, Claim)]
    assert len(winners) == 1 and len(results) == 8
    assert [p for _, p in claim_files(run_dir)] == [winners[0].path]
    assert all(r.owner.token == winners[0].owner.token for r in results if r is not winners[0])
    winners[0].release()


def test_overlapping_runs_are_the_live_claims_and_intersecting_records_of_this_host(tmp_path):
    runs = tmp_path / "runs"
    mine = acquire(runs / "mine")
    other = acquire(runs / "other")  # live now, on this host
    _write_claim(runs / "elsewhere", 1, host="node-b", pid=1)  # another host: not counted
    now = time.time()
    for name, (started, finished) in {
        "earlier": (now - 100, now - 50),  # finished before this claim started
        "during": (now - 100, now + 1),  # finished after it started
    }.items():
        (runs / name).mkdir()
        execution = {"host": socket.gethostname(), "pid": 1, "token": name}
        execution.update(started_at=started, finished_at=finished)
        (runs / name / "record.json").write_text(json.dumps({"execution": execution}))
    assert mine.overlapping_runs() == ["during", "other"]
    assert other.overlapping_runs() == ["during", "mine"]
    mine.release()
    other.release()


def test_the_results_lock_excludes_a_second_holder(tmp_path):
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait()
        with results_lock(tmp_path):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with results_lock(tmp_path):
        inside.set()
        time.sleep(0.3)
        order.append("first")
    thread.join()
    assert order == ["first", "second"]
