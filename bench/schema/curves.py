"""A grid run's accuracy curve, typed: the snapshot index a pre-training writes
(``snapshots.json``, ``diffmavil.training.snapshots``: ``SnapshotIndex`` of
``SnapshotEntry``s) and the point each probed snapshot gives (``CurvePoint``), which a
record's ``curve`` holds, in the order of the snapshots.

A point's samples, FLOPs and timed wall-clock seconds are the index's (where the run stood
after the snapshot's step; wall-clock is the run's timed seconds to that point, writing
snapshots and probing them left out); its accuracy (a fraction, as the probe's) is the
probe of that snapshot with ``probe_seeds`` probe seeds. The random-init control is the
curve's value at 0 samples, FLOPs and seconds: its accuracy is the control's (a record of
its own), not a point of the curve.
"""

from __future__ import annotations

from pydantic import Field

from diffmavil.config import Frozen

# The x axes of a curve: samples seen, model FLOPs, timed wall-clock seconds.
AXES = ("samples", "flops", "wall_clock")


class SnapshotEntry(Frozen):
    """One snapshot in a run's ``snapshots.json``: its file (relative to the run directory)
    and where the run stood after the step it was taken after."""

    file: str
    samples: int = Field(ge=0)
    step: int = Field(ge=0)
    flops: int = Field(ge=0)
    wall_clock_seconds: float = Field(ge=0)
    compute_seconds: float = Field(ge=0)
    final: bool = False


class SnapshotIndex(Frozen):
    """A pre-training run's ``snapshots.json``."""

    schema_version: int
    run_id: str
    snapshot_every: int | None = None
    snapshots: list[SnapshotEntry]

    @property
    def final(self) -> SnapshotEntry | None:
        """The snapshot after the run's last step (None: the run did not finish)."""
        return next((entry for entry in reversed(self.snapshots) if entry.final), None)


class CurvePoint(Frozen):
    """One probed snapshot of a run: samples seen, model FLOPs (fwd + bwd) and timed
    wall-clock seconds to that point (the snapshot index's), the probe's accuracy there
    (a fraction; ``mAP`` for multi-label data) and the probe seeds behind it."""

    samples: int = Field(ge=0)
    flops: int = Field(ge=0)
    wall_clock_seconds: float = Field(ge=0)
    accuracy: float | None = None
    mAP: float | None = None
    probe_seeds: int = Field(ge=1)
    step: int = Field(ge=0)
    snapshot: str = Field(description="the snapshot file, relative to the run directory")
    final: bool = False

    def x(self, axis: str) -> float:
        """The point's position on ``axis`` (one of ``AXES``)."""
        if axis == "samples":
            return float(self.samples)
        if axis == "flops":
            return float(self.flops)
        if axis == "wall_clock":
            return self.wall_clock_seconds
        raise ValueError(f"axis {axis!r}: one of {', '.join(AXES)}")
