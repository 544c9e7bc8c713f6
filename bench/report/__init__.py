"""``diffbench report``: markdown, self-contained HTML and LaTeX reports of ablation grids,
pre-training runs and ``diffbench flops/time --format json`` outputs.

- ``load``: recognising and reading the input (schema_version checked);
- ``tables``: the one table model and its renderings (terminal, markdown, HTML, LaTeX);
  ``document``: sections, figures, the render context; ``format``: numbers, intervals and
  their levels as text; ``run_log``: a run's logged steps (metrics.jsonl), typed;
- one module per subject, each building its sections: ``ablation`` (with ``groups``: a
  row's statistics and paired deltas from ``bench.stats``, ``verdicts`` and
  ``ablation_plots``), ``time_to_accuracy`` (a grid's endpoints, fine-tune column and
  accuracy curves, ``curves``), ``runs``, ``flop_sections``, ``timing_tables``, ``paper``
  (the paper's headline and the sensitivity of our figure to our choices),
  ``projection_sections``, ``provenance`` (the environment); ``quotes`` and ``quoted``:
  the figures prose quotes, recomputed from stored results;
- ``plots``: matplotlib figures, each with the table behind it as CSV;
- ``render``: the reading order of the sections, the jinja2 templates in ``templates/``
  (autoescaped HTML), ``latex``, atomic writes.

``bench.report.render.render_report(results_dir, formats=("md", "html"), out=None)`` is
the entry point the ablation runner calls at the end of a grid. Nothing is imported here:
the table model is used by every command's output and must not pull in the renderer.
"""
