"""One grid row's records over seeds (``RowGroup``): the statistics and deltas every table
of an ablation report is made of."""

from __future__ import annotations

from typing import Any

from bench.report.stats import SeedStats

RUN_KINDS = ("row", "flops")
DONE = ("completed", "planned")


def record_value(record: dict[str, Any], metric: str) -> Any:
    if metric.startswith("flops."):
        return (record.get("flops_by_component") or {}).get(metric[6:])
    if metric.startswith("probe."):
        return (record.get("probe") or {}).get(metric[6:])
    return record.get(metric)


class RowGroup:
    """One row of a grid over its seeds: statistics over the completed (or planned) runs."""

    def __init__(self, name: str, records: list[dict[str, Any]]) -> None:
        self.name = name
        self.records = records
        self.done = [r for r in records if r.get("status") in DONE]
        self.failed = [r for r in records if r.get("status") == "failed"]
        first = records[0]
        self.kind = first.get("kind", "row")
        self.baseline = any(bool(r.get("baseline")) for r in records)
        self.matched = first.get("match_flops_of")
        self.first = first

    def stats(self, metric: str) -> SeedStats:
        return SeedStats.of([record_value(r, metric) for r in self.done])

    def mean(self, metric: str) -> float | None:
        return self.stats(metric).mean

    @property
    def status(self) -> str:
        if not self.failed:
            return self.done[0].get("status", "completed") if self.done else "unknown"
        reasons = "; ".join(
            dict.fromkeys(str(r.get("failure") or "no reason recorded") for r in self.failed)
        )
        if not self.done:
            return f"failed: {reasons}"
        return f"partial ({len(self.failed)} of {len(self.records)} seeds failed: {reasons})"

    @property
    def comparable(self) -> bool:
        return all(r.get("wall_clock_comparable", True) is not False for r in self.done)

    @property
    def seeds(self) -> str:
        return ",".join(str(r.get("seed")) for r in self.records)

    @property
    def css(self) -> str:
        if self.failed and not self.done:
            return "failed"
        if self.baseline:
            return "baseline"
        if self.matched:
            return "matched"
        return "control" if self.kind == "control" else ""


def group_rows(records: list[dict[str, Any]]) -> list[RowGroup]:
    order: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        order.setdefault(str(record.get("row")), []).append(record)
    return [RowGroup(name, rs) for name, rs in order.items()]
