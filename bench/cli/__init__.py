"""The ``diffbench`` command line: the top layer of the harness.

- ``app``: the root command, its one error handler and the command registry;
- one module per command: ``info``, ``flops``, ``time`` (and ``time_projection``, the
  whole-run projection of ``diffbench time --masking/--batch``), ``profile``, ``pretrain``,
  ``finetune``, ``ablate``, ``report``, ``preset_search``, ``migrate``, ``data``;
- ``options`` (option types and choices declared once; ``RequestOptions``: options fill a
  typed request by name), ``output`` (tables, JSON and CSV for ``--format``), ``progress``
  (progress bars): what every command shares.

A command declares each option once, in its signature; ``RequestOptions.build(locals())``
turns them into its typed request (``bench.requests``), which it hands to the subject
package below it (``bench.flops``, ``bench.timing``, ``bench.projection``, ``bench.ablate``,
``bench.report``, ...). Tables are made by ``bench.report``'s table code. Heavy imports stay
inside command bodies, so ``--help`` is instant.
"""
