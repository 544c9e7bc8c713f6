"""``diffbench report``: markdown and self-contained HTML reports of ablation grids,
pre-training runs and ``diffbench flops/time --format json`` outputs.

- ``load``: recognising and reading the input (schema_version checked);
- ``sections`` / ``paper``: the tables (paper's style, deltas vs the baseline row, mean ± std
  and 95% CI over seeds), the paper's headline beside our base-size figures, our choices and
  the saving's sensitivity to them;
- ``plots``: matplotlib figures, each with the table behind it as CSV;
- ``render``: the jinja2 templates in ``templates/`` (autoescaped HTML), atomic writes.

``render_report(results_dir, formats=("md", "html"), out=None)`` is the entry point the
ablation runner calls at the end of a grid.
"""

from bench.report.load import Inputs, ReportError, load_inputs
from bench.report.render import FORMATS, default_out, parse_formats, render_report

__all__ = [
    "FORMATS",
    "Inputs",
    "ReportError",
    "default_out",
    "load_inputs",
    "parse_formats",
    "render_report",
]
