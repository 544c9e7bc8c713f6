"""``diffbench report`` (mounted in ``bench/cli/app.py``). Heavy imports happen inside the
command so that ``--help`` stays instant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.options import OUTPUT_PANEL


def report_command(
    runs_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="What to report on: an ablation results directory (results.json), a "
            "pre-training run directory (summary.json), a `diffbench flops --format json` or "
            "`diffbench time --format json` file, or a directory holding such files/runs. "
            "Several are reported together (e.g. a grid and a base-size projection).",
            show_default=False,
            metavar="RUNS_DIR",
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Comma-separated output formats: md (GitHub markdown + PNGs beside it), "
            "html (one self-contained file), latex (report.tex: booktabs tables and figures).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = "md,html",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output directory, e.g. reports/NAME (default: the first RUNS_DIR's "
            "report/, or FILE-report beside a JSON file). Holds report.md, report.html, "
            "PNGs and CSVs.",
            show_default=False,
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
) -> None:
    """Render a markdown and a self-contained HTML report (tables and plots) of results.

    Pre-training FLOPs and wall-clock with deltas vs the baseline row, FLOPs per component,
    downstream metrics with mean ± std and 95% CI over seeds, the paper's headline beside our
    base-size figures, and an environment block.
    """
    from bench.report.render import parse_formats, render_report

    formats = parse_formats(fmt)
    inputs = " ".join(str(path) for path in runs_dirs)
    command = f"diffbench report {inputs} --format {','.join(formats)}"
    if out is not None:
        command += f" --out {out}"
    written = render_report(runs_dirs, formats, out, command=command)
    for kind, path in written.items():
        typer.echo(f"{kind}: {path}")
