"""A grid's wall-clock noise floor: a row that is the baseline again under its own run id
(``replica: k``, which trains identically) against the baseline, paired by seed
(``bench.stats.wallclock.noise_floor``). A wall-clock delta below the floor is noise on the
machine that ran the grid; every table that shows wall-clock deltas says so in its notes.

- ``differences_tokens``: the ``key=value`` tokens of a record's ``differences``;
- ``replica_rows``: {row: k} of the rows whose tokens are exactly the baseline's plus one
  ``replica=k`` (the noise-floor copies; never a recipe, never given a verdict);
- ``measure_noise_floors``: each copy's floor from the comparable runs' wall-clock;
- ``wall_clock_notes``: the notes' sentences (or how to add a copy when there is none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.schema import GridRecord, values_by_seed
from bench.schema.paired import WALL_CLOCK, row_records
from bench.stats.wallclock import MIN_NOISE_PAIRS, NoiseFloor, noise_floor

BASE = "(base)"  # a row without differences from the base (``describe_differences``)
REPLICA = re.compile(r"replica=(\d+)")
# tokens are "key=value" joined by ", "; a value may itself hold ", " (a list)
_TOKEN_START = re.compile(r", (?=[A-Za-z_][\w.@-]*=)")


def differences_tokens(differences: str) -> frozenset[str]:
    """The ``key=value`` tokens of a record's ``differences`` ("(base)" and "": none)."""
    text = differences.strip()
    if not text or text == BASE:
        return frozenset()
    return frozenset(token.strip() for token in _TOKEN_START.split(text))


def replica_number(differences: str, baseline_differences: str) -> int | None:
    """k when ``differences`` are exactly ``baseline_differences`` plus one ``replica=k``."""
    mine, base = differences_tokens(differences), differences_tokens(baseline_differences)
    extra = mine - base
    if not base <= mine or len(extra) != 1:
        return None
    match = REPLICA.fullmatch(next(iter(extra)))
    return None if match is None else int(match.group(1))


def _baseline_row(records: list[GridRecord]) -> str | None:
    return next((r.row for r in records if r.baseline and r.kind == "row"), None)


def replica_rows(records: list[GridRecord]) -> dict[str, int]:
    """{row: k} of the noise-floor copies of the baseline row (see the module)."""
    baseline = _baseline_row(records)
    if baseline is None:
        return {}
    base = row_records(records, baseline)[0].differences
    found: dict[str, int] = {}
    for record in records:
        if record.kind != "row" or record.row == baseline or record.row in found:
            continue
        k = replica_number(record.differences, base)
        if k is not None:
            found[record.row] = k
    return found


@dataclass(frozen=True)
class RowNoiseFloor:
    """One copy of the baseline against it: the pairs of comparable runs and, from at
    least 2 of them, the floor (``bench.stats.wallclock.NoiseFloor``)."""

    row: str
    baseline: str
    replica: int
    pairs: int
    floor: NoiseFloor | None

    def sentence(self) -> str:
        """The note's sentence: the floor, flagged below ``MIN_NOISE_PAIRS`` pairs."""
        copy = f"`{self.row}` against `{self.baseline}`"
        if self.floor is None:
            return (
                f"Noise floor ({copy}): not measured yet: {self.pairs} pair(s) of comparable "
                f"runs, fewer than the {MIN_NOISE_PAIRS} a noise floor needs."
            )
        text = f"Noise floor ({copy}): {self.floor.sentence()}"
        if not self.floor.enough:
            text += (
                f"; measured from {self.pairs} pairs, fewer than the {MIN_NOISE_PAIRS} a "
                "noise floor needs"
            )
        return text + "."


def measure_noise_floors(records: list[GridRecord], level: float = 0.95) -> list[RowNoiseFloor]:
    """The floor of each noise-floor copy, from the wall-clock of the runs whose
    wall-clock is comparable (``values_by_seed``), paired by seed with the baseline's."""
    baseline = _baseline_row(records)
    floors = []
    for row, k in replica_rows(records).items():
        copy = values_by_seed(row_records(records, row), WALL_CLOCK)
        base = values_by_seed(row_records(records, baseline or ""), WALL_CLOCK)
        pairs = len(set(copy) & set(base))
        floor = noise_floor(copy, base, level) if pairs >= 2 else None
        floors.append(RowNoiseFloor(row, baseline or "", k, pairs, floor))
    return floors


NO_FLOOR = (
    "No noise floor was measured: the grid has no copy of its baseline, so nothing says "
    "which of these wall-clock differences are noise on this machine. Add one as a row of "
    "the baseline with `replica: 1` (it trains identically under its own run id); its "
    "wall-clock against the baseline's, paired by seed, is the noise floor (docs/ablate.md)."
)


def wall_clock_notes(floors: list[RowNoiseFloor]) -> list[str]:
    """The notes of a table with wall-clock deltas: each floor's sentence, or ``NO_FLOOR``."""
    return [f.sentence() for f in floors] or [NO_FLOOR]


def copy_label(row: str, floors: list[RowNoiseFloor]) -> str | None:
    """ "noise-floor copy of `mavil`" for a copy's row, else None."""
    found = next((f for f in floors if f.row == row), None)
    return None if found is None else f"noise-floor copy of `{found.baseline}`"
