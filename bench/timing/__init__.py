"""Wall-clock measurement of DiffMAViL: harness, environment, train step, peer, profiles.

- ``harness``: warm-up, repeats, interleaving, median/IQR statistics, bootstrap CI.
- ``environment``: device, CPU/GPU name, versions, threads, matmul reference rate,
  datasheet peaks (MFU).
- ``step``: the train step (forward, backward, optimizer) and components timed on their own.
- ``peer``: the same architecture assembled from ``torch.nn`` layers, for a speed ratio.
- ``profile``: ``torch.profiler`` traces with a label per component.
"""
