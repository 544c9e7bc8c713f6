"""Whole-run wall-clock projection (``diffbench time --masking/--batch``, a grid's
``project_time``): what a pre-training run of a recipe would take on this machine,
without running it.

- ``recipes``: the request, the recipes (the baseline MAViL beside the asked one), their
  planned step shapes, the measurements' types;
- ``assemble``: the measurements into projected totals, their window intervals (with the
  interpolation's half-width) and savings;
- ``estimate``: the pure arithmetic: which step shapes to measure (anchors and checks),
  interpolation of step seconds over the plan, fixed costs (the bootstrap interval of the
  totals is ``bench.stats.bootstrap_totals``);
- ``measure``: the measurement itself (interleaved rounds of every recipe's step shapes,
  data-loading rates, memory probes in child processes); ``steps``: the timed train steps
  (one recipe on the device at a time on CUDA);
- ``history``: the machine's history of projections (``--history``) and the seconds'
  interval from their spread over time;
- ``check``: ``diffbench check``'s whole-run projection row.

Typed rows live in ``bench.schema.projection``; the report renders them in
``bench.report.projection_sections``.
"""
