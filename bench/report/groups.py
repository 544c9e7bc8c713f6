"""One grid row's records over seeds (``RowGroup``): the statistics and deltas every table
of an ablation report is made of."""

from __future__ import annotations

from bench.report.stats import SeedStats
from bench.schema import GridRecord

RUN_KINDS = ("row", "flops")
DONE = ("completed", "planned")


class RowGroup:
    """One row of a grid over its seeds: statistics over the completed (or planned) runs."""

    def __init__(self, name: str, records: list[GridRecord]) -> None:
        self.name = name
        self.records = records
        self.done = [r for r in records if r.status in DONE]
        self.failed = [r for r in records if r.status == "failed"]
        first = records[0]
        self.kind = first.kind
        self.baseline = any(r.baseline for r in records)
        self.matched = first.match_flops_of
        self.first = first

    def stats(self, metric: str) -> SeedStats:
        return SeedStats.of([r.value(metric) for r in self.done])

    def mean(self, metric: str) -> float | None:
        return self.stats(metric).mean

    @property
    def status(self) -> str:
        if not self.failed:
            return self.done[0].status if self.done else "unknown"
        reasons = "; ".join(dict.fromkeys(r.failure or "no reason recorded" for r in self.failed))
        if not self.done:
            return f"failed: {reasons}"
        return f"partial ({len(self.failed)} of {len(self.records)} seeds failed: {reasons})"

    @property
    def comparable(self) -> bool:
        return all(r.wall_clock_comparable is not False for r in self.done)

    @property
    def seeds(self) -> str:
        return ",".join(str(r.seed) for r in self.records)

    @property
    def css(self) -> str:
        if self.failed and not self.done:
            return "failed"
        if self.baseline:
            return "baseline"
        if self.matched:
            return "matched"
        return "control" if self.kind == "control" else ""


def group_rows(records: list[GridRecord]) -> list[RowGroup]:
    order: dict[str, list[GridRecord]] = {}
    for record in records:
        order.setdefault(record.row, []).append(record)
    return [RowGroup(name, rs) for name, rs in order.items()]
