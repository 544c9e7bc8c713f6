"""One grid row's records over seeds (``RowGroup``): the statistics and deltas every table
and figure of an ablation report is made of, all from ``bench.stats``: a row's mean, sd
and t interval over its seeds, its accuracy's interval inside [0, 100], and its deltas
against another row over the seeds both completed (``bench.schema.paired_delta``)."""

from __future__ import annotations

from bench.schema import GridRecord, paired_delta, values_by_seed
from bench.stats import Interval, PairedDelta, SeedSummary, accuracy_interval, seed_summary

RUN_KINDS = ("row", "flops")
DONE = ("completed", "planned")
LEVEL = 0.95  # two-sided level of a row's own intervals over its seeds


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

    def stats(self, metric: str) -> SeedSummary:
        """n, mean, sample sd and t interval (``LEVEL``) of ``metric`` over the seeds."""
        return seed_summary([r.value(metric) for r in self.done], LEVEL)

    def mean(self, metric: str) -> float | None:
        return self.stats(metric).mean

    def accuracy(self, metric: str) -> Interval | None:
        """The mean of a probe metric (a fraction) in points, with its interval inside
        [0, 100] (``bench.stats.accuracy_interval``, ``LEVEL``); None below 2 seeds."""
        values = list(values_by_seed(self.records, metric).values())  # points
        return accuracy_interval(values, LEVEL) if len(values) >= 2 else None

    def delta(self, reference: RowGroup, metric: str, level: float = LEVEL) -> PairedDelta:
        """This row against ``reference`` over the seeds both completed: probe metrics in
        points, every other metric as a fraction of the reference's run of the same seed."""
        return paired_delta(self.records, reference.records, metric, level)

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
