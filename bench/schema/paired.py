"""How a grid's results pair their records by seed: every delta between two rows, and every
verdict, is over the seeds both rows completed (``bench.stats`` computes it). One rule for
whoever needs a delta: the judged results (``bench.schema.judging``), the aggregate
(``bench.ablate.store``) and the report's tables and plots (``bench.report``).

- ``values_by_seed``: {seed: value} of a row's completed (or planned) runs with a finite
  value of ``metric`` (named as ``GridRecord.value`` names it); a timed metric only from
  runs whose wall-clock is comparable (not shared with parallel runs); probe and fine-tune
  metrics in points (x100 of the fraction);
- ``paired_delta``: candidate against reference over their common seeds, with its two-sided
  Student's t interval: probe and fine-tune metrics as differences in points, every other
  metric relative to the reference's run of the same seed (candidate / reference - 1, a
  fraction);
- ``split_pairs``: the wall-clock pairs whose two runs ran in different processes;
- ``row_records`` / ``random_control_row``: a row's records, the random-init control's row.
"""

from __future__ import annotations

import math

from bench.schema.grid import GridRecord
from bench.stats import PairedDelta, common_seeds, paired_delta_interval

DONE = ("completed", "planned")
POINTS = 100.0
WALL_CLOCK = "wall_clock_seconds"
TIMED = frozenset(
    {
        WALL_CLOCK,
        "compute_seconds",
        "data_seconds",
        "samples_per_second",
        "achieved_flops_per_second",
    }
)


def in_points(metric: str) -> bool:
    """Whether ``metric`` is a probe or fine-tune metric (a fraction), compared in points."""
    return metric.startswith(("probe.", "finetune."))


def row_records(records: list[GridRecord], row: str) -> list[GridRecord]:
    """The records of ``row`` (its seeds)."""
    return [r for r in records if r.row == row]


def random_control_row(records: list[GridRecord], preset: str | None) -> str | None:
    """The row of the random-init control probes at ``preset`` (None: the grid has none)."""
    for record in records:
        if (
            record.kind == "control"
            and record.probe is not None
            and record.probe.init == "random"
            and record.preset == preset
        ):
            return record.row
    return None


def values_by_seed(records: list[GridRecord], metric: str) -> dict[int, float]:
    """{seed: value of ``metric``} of the completed (or planned) runs among ``records``."""
    found: dict[int, float] = {}
    for record in records:
        if record.status not in DONE:
            continue
        if metric in TIMED and record.wall_clock_comparable is False:
            continue
        value = record.value(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            found[record.seed] = POINTS * float(value) if in_points(metric) else float(value)
    return found


def paired_delta(
    candidate: list[GridRecord], reference: list[GridRecord], metric: str, level: float = 0.95
) -> PairedDelta:
    """``candidate``'s runs against ``reference``'s on their common seeds (see the module)."""
    return paired_delta_interval(
        values_by_seed(candidate, metric),
        values_by_seed(reference, metric),
        level,
        relative=not in_points(metric),
    )


def _ran_by(record: GridRecord) -> tuple[str, int] | None:
    """(host, pid) of the process that ran ``record``'s run (its ``execution``), if known."""
    execution = record.execution
    return None if execution is None else (execution.host, execution.pid)


def split_pairs(candidate: list[GridRecord], reference: list[GridRecord]) -> int:
    """The wall-clock pairs whose two runs were executed by different processes (``--rows``
    waves, a grid resumed after an interruption): their delta carries the machine's drift
    between the two."""
    seeds, _, _ = common_seeds(
        values_by_seed(candidate, WALL_CLOCK), values_by_seed(reference, WALL_CLOCK)
    )
    ran_by = {r.seed: _ran_by(r) for r in candidate if _ran_by(r) is not None}
    base_ran_by = {r.seed: _ran_by(r) for r in reference if _ran_by(r) is not None}
    return sum(s in ran_by and s in base_ran_by and ran_by[s] != base_ran_by[s] for s in seeds)
