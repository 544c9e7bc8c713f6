"""A machine's history of whole-run projections, and intervals from it.

The windows of one projection fall within a few minutes; a machine's speed also moves
between minutes and hours (other tenants, frequency, thermal state), which those windows
cannot see. A history file (``diffbench time --history FILE``, JSON lines, one entry per
recipe per projection) keeps each projection's seconds under its *setting*: what
determines the seconds (recipe, model, masking, batch, samples, checkpoints and logged
rows, threads, dtype, device, the machine's CPU or GPU name). Once a setting has at
least ``MIN_HISTORY`` earlier projections, a new projection's seconds interval is
Student's t with n - 1 df times their relative sd (times the new estimate), in
quadrature with the interpolation's half-width (``bench.stats.history_half_width``): a
95% interval for the setting's seconds on this machine at another time of day, not only
in this projection's minutes.
With fewer, the windowed interval stands and the row says so (``history_projections``).

The savings keep their windowed interval: both recipes are measured interleaved, and
the machine's drift cancels in their ratio (the coverage check in
``reports/whole-run.md``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field

from bench.errors import BadInput
from bench.schema.projection import WholeRunRow
from bench.stats.wallclock import history_half_width
from diffmavil.config import Frozen

MIN_HISTORY = 5  # earlier projections of a setting before its interval comes from them
# (4 df: t = 2.78; with 1 df t is 12.7, an interval too wide to use)
SETTING_FIELDS = (
    "recipe", "variant", "preset", "device", "dtype", "compile", "threads", "masking",
    "batch", "samples", "checkpoints", "logged_rows",
)  # fmt: skip


class HistoryEntry(Frozen):
    """One recipe's projected seconds, when and on what machine it was projected."""

    date: str
    setting: str  # setting_key(...)
    projected_seconds: float = Field(gt=0, allow_inf_nan=False)
    statistical_half_seconds: float | None = None


def setting_key(row: WholeRunRow, machine: str) -> str:
    """The setting of ``row`` on ``machine`` (its CPU or GPU name) as one string; two
    projections with the same key project the same run on the same kind of machine."""
    fields = {name: getattr(row, name) for name in SETTING_FIELDS}
    return json.dumps({**fields, "machine": machine}, sort_keys=True)


def machine_name(environment: dict) -> str:
    """The GPU's name on CUDA, else the CPU model (``Environment`` fields)."""
    return str(environment.get("gpu_name") or environment.get("cpu_model") or "unknown")


def read_history(path: Path) -> list[HistoryEntry]:
    """Every entry of the history file (none when it does not exist yet). A line that is
    not an entry (a torn last line of a killed write, a hand edit with a non-positive or
    non-finite seconds) is skipped, not fatal."""
    if not path.exists():
        return []
    if path.is_dir():
        raise BadInput(f"--history {path}: is a directory; expected a JSON-lines file")
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(HistoryEntry.model_validate_json(line))
        except ValueError:
            continue
    return entries


def append_history(path: Path, entries: Iterable[HistoryEntry]) -> None:
    """Appends ``entries`` as one write (whole lines: a concurrent writer's lines stay
    whole; a killed write leaves at most one torn line, which readers skip, and the next
    write starts on a line of its own)."""
    text = "".join(entry.model_dump_json() + "\n" for entry in entries)
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = "\n" + text  # after a torn line
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def entries_of(rows: Iterable[WholeRunRow], environment: dict, date: str | None = None):
    """History entries of a projection's rows (``date``: when it was projected)."""
    when = date or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    machine = machine_name(environment)
    return [
        HistoryEntry(
            date=when,
            setting=setting_key(row, machine),
            projected_seconds=row.projected_seconds,
            statistical_half_seconds=row.statistical_half_seconds,
        )
        for row in rows
    ]


def with_history(
    rows: list[WholeRunRow], environment: dict, history: list[HistoryEntry]
) -> list[WholeRunRow]:
    """``rows`` with their seconds' interval from the history of their setting where it
    has at least ``MIN_HISTORY`` projections; otherwise as they were (with
    ``history_projections`` saying how many there were)."""
    machine = machine_name(environment)
    out = []
    for row in rows:
        key = setting_key(row, machine)
        earlier = [e.projected_seconds for e in history if e.setting == key]
        if len(earlier) < MIN_HISTORY:
            out.append(row.model_copy(update={"history_projections": len(earlier)}))
            continue
        drift = history_half_width(
            earlier, row.projected_seconds, relative=True, level=row.interval_level
        )
        half = math.hypot(drift, row.systematic_half_seconds or 0.0)
        out.append(
            row.model_copy(
                update={
                    "ci_low": row.projected_seconds - half,
                    "ci_high": row.projected_seconds + half,
                    "interval_method": "history-t+systematic",
                    "history_projections": len(earlier),
                    "drift_half_seconds": drift,
                }
            )
        )
    return out


def project_with_history(result, path: Path):
    """``result`` (a ``WholeRunResult``) with its seconds' intervals from the history at
    ``path`` (``with_history``); its rows then join the history."""
    history = read_history(path)
    rows = with_history(result.rows, result.environment, history)
    append_history(path, entries_of(result.rows, result.environment))
    return result.model_copy(update={"rows": rows})
