"""Wall-clock measurement of DiffMAViL: harness, environment, train step, peer, profiles.

- ``harness``: warm-up, repeats, interleaving, median/IQR statistics (the quantiles and
  bootstrap intervals are ``bench.stats``').
- ``device``: device, CPU/GPU name, versions, threads, matmul reference rate,
  datasheet peaks (MFU), peak memory.
- ``tasks``: what the harness times: the train step (forward, backward, optimizer) and
  each component on its own.
- ``peer``: the same architecture assembled from ``torch.nn`` layers, for a speed ratio.
- ``profiler``: ``torch.profiler`` traces with a label per component (``diffbench profile``).
- ``benchmark``: ``diffbench time``'s measurement (variants, peer, compile); ``rows``: its
  typed rows (``bench.schema.TimingRow``); ``dispatch``: ATen calls per train-step phase;
  ``compile_compare``: compiled vs eager.
- ``gpus``: the datasheet peaks of NVIDIA GPUs, matched by name tokens (MFU).
- ``capacity``: the largest batch that fits (``diffbench time --max-batch-fits``);
  ``faults``: planted faults (an out-of-memory error on a CPU) for the tests.
- ``check``, ``check_training``: the rows of ``diffbench check`` (the projection's row is
  ``bench.projection.check``).

The whole-run projection, which builds on these, is ``bench.projection``; the tables of
the rows are ``bench.report.timing_tables``'s.
"""
