"""bench: the diffbench harness, in layers. It talks to the model only through
``diffmavil``'s public API; ``diffmavil`` never imports it.

Each layer may import the layers listed before it and never one listed after it
(``tests/test_layers.py`` walks every import, lazy ones included, and fails on an upward
import or a cycle). From the bottom:

- ``errors``, ``stats``, ``requests``, ``schema``: the leaves: error types, statistics
  (scipy.stats; every interval, verdict and power figure), the typed requests commands
  build, the typed results every producer writes and every reader reads (a grid's results
  store the statistics block they were judged under);
- ``flops``: FLOP counting (three counters that must agree, whole-run totals);
- ``timing``: wall-clock of components and train steps, the speed peer, profiles;
- ``projection``: the whole-run wall-clock projection, built on ``flops`` and ``timing``;
- ``presets``: the search for presets with base's FLOP proportions;
- ``migrate``: reading results of older schema versions;
- ``report``: rendering results as markdown, HTML, plots and CSV tables;
- ``ablate``: ablation grids: validation, planning, runs, comparisons, orchestration;
- ``cli``: the ``diffbench`` commands, one module each.
"""

# The layer order, bottom first: a module may import only modules of its own layer (without
# a cycle) or of a layer listed before its own.
LAYERS: tuple[str, ...] = (
    "bench.errors",
    "bench.stats",
    "bench.requests",
    "bench.schema",
    "bench.flops",
    "bench.timing",
    "bench.projection",
    "bench.presets",
    "bench.migrate",
    "bench.report",
    "bench.ablate",
    "bench.cli",
)
