"""Typed results (schema_version 2; a grid's results 4): what every command writes and every
reader reads, and how a grid's results judge their records (``judge``: verdicts, control
gains, paired deltas and time-to-accuracy endpoints; ``paired_delta``: any delta between
two rows, over the seeds they share; both computed by ``bench.stats``).

- ``RunSummary``: a pre-training run's ``summary.json`` (``diffmavil.training.summary``);
- ``GridRecord`` / ``GridResults``: one run of an ablation grid / its ``results.json``
  (``bench.schema.grid``), a record's ``curve`` of ``CurvePoint``s and ``finetune``
  (``FinetuneMetrics``), with what is judged from its records: ``Comparison`` (a
  confirmatory verdict), ``ControlGain`` (a row over its random-init control),
  ``PairedDeltas`` (a row against the baseline row, paired by seed), ``EndpointResult``
  (a comparison's time-to-accuracy endpoint, ``bench.schema.time_to_accuracy``);
- ``SnapshotIndex`` / ``SnapshotEntry``: a pre-training's ``snapshots.json``
  (``bench.schema.curves``);
- ``FlopRow``, ``WholeRunFlopRow``, ``SensitivityRow`` / ``FlopsResults``: ``diffbench
  flops --format json``;
- ``TimingRow`` / ``TimeResults``: ``diffbench time --format json`` (and a grid row's timing);
- ``ProjectionResults``: a whole-run projection (``diffbench time --masking/--batch``, a
  grid's ``whole-run.json``): rows of kind ``whole_run`` and ``whole_run_point``, at
  ``PROJECTION_SCHEMA_VERSION`` (4: the measurement windows, the interval's parts and
  the machine's history);
- ``PaperHeadline``: the paper's headline figures beside ours at base size, computed when
  results are produced and stored in them (the report renders it), with our
  ``DesignChoice``s;
- ``Environment``: the block every result carries (``diffmavil.environment``).

Every model is frozen and rejects unknown fields. Results of older schemas are migrated once
on read (``bench.migrate``); ``diffbench migrate`` rewrites them in place.
"""

from bench.schema.curves import AXES, CurvePoint, SnapshotEntry, SnapshotIndex
from bench.schema.grid import (
    GRID_SCHEMA_VERSION,
    FinetuneMetrics,
    GridRecord,
    GridResults,
    RunExecution,
    run_dir_in_results,
)
from bench.schema.judged import Comparison, ControlGain, EndpointResult, PairedDeltas, Verdict
from bench.schema.judging import judge
from bench.schema.paired import in_points, paired_delta, split_pairs, values_by_seed
from bench.schema.projection import PROJECTION_SCHEMA_VERSION, PointRow, WholeRunRow
from bench.schema.results import (
    DesignChoice,
    FlopRow,
    FlopsResults,
    HeadlineFigure,
    PaperHeadline,
    ProbeMetrics,
    ProjectionResults,
    SensitivityRow,
    TimeResults,
    TimingRow,
    WholeRunFlopRow,
)
from diffmavil.environment import Environment
from diffmavil.training.summary import SCHEMA_VERSION, RunSummary

__all__ = [
    "AXES",
    "GRID_SCHEMA_VERSION",
    "PROJECTION_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "Comparison",
    "ControlGain",
    "CurvePoint",
    "DesignChoice",
    "EndpointResult",
    "Environment",
    "FinetuneMetrics",
    "FlopRow",
    "FlopsResults",
    "GridRecord",
    "GridResults",
    "HeadlineFigure",
    "PairedDeltas",
    "PaperHeadline",
    "PointRow",
    "ProbeMetrics",
    "ProjectionResults",
    "RunExecution",
    "RunSummary",
    "SensitivityRow",
    "SnapshotEntry",
    "SnapshotIndex",
    "TimeResults",
    "TimingRow",
    "Verdict",
    "WholeRunFlopRow",
    "WholeRunRow",
    "in_points",
    "judge",
    "paired_delta",
    "run_dir_in_results",
    "split_pairs",
    "values_by_seed",
]
