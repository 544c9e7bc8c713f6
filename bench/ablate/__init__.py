"""``diffbench ablate``: validated, resumable ablation grids.

- ``grid_file``: the grid YAML's schema, ``GridFile`` (one frozen pydantic model), and
  ``GridError``, the one-line message its problems become;
- ``grid``: a ``GridFile`` expanded into rows (resolved configs, compute-matched budgets),
  row selection and the dry-run table;
- ``plan``: pure planning: a config's planned steps and FLOPs, the matched-budget solver,
  run ids, differences from the base;
- ``orchestrate``: a grid's tasks and their order; ``run_grid`` runs them and
  ``GridRecords`` gathers their records and writes the results;
- ``grid_checks``: what ``statistics:`` and ``run:`` name, checked against the expanded
  rows (comparisons, fine-tune rows, snapshots for curves, what the endpoints need);
- ``runner``: a task claimed and run, and the executors (local, local workers,
  submitit); ``task``: one task (pre-train + probe, control probe, FLOPs-only plan) and its
  record; ``evaluations``: after a task's probe, its curve (every snapshot probed) and its
  fine-tune, each stored in the run directory and read back on resume; ``datasets``: the
  process's cached datasets and ``run_probe``; ``claims``: who runs a task, and the results
  lock, across processes and hosts;
- ``store``: the results store (schema_version; what it judges from the records:
  ``bench.schema.judge``) and the aggregation with pandas;
- ``project_time``: the grid's whole-run projection (``bench.projection``).
"""
