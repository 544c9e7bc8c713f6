"""The ``diffbench`` command line: the top layer of the harness.

- ``app``: the root command, its one error handler and the command registry;
- one module per command: ``info``, ``flops``, ``time`` (and ``time_projection``, the
  whole-run projection of ``diffbench time --masking/--batch``), ``profile``, ``pretrain``,
  ``finetune``, ``ablate``, ``report``, ``preset_search``, ``migrate``, ``data``;
- ``options`` (option types and choices declared once), ``output`` (tables, JSON and CSV
  for ``--format``), ``progress`` (progress bars): what every command shares.

A command parses its options into a typed request and hands it to the subject package
below it (``bench.flops``, ``bench.timing``, ``bench.projection``, ``bench.ablate``,
``bench.report``, ...); heavy imports stay inside command bodies, so ``--help`` is instant.
"""
