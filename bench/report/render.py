"""Rendering: the sections of a report into markdown (GitHub: pipe tables, relative image
links to the PNGs beside it) and one self-contained HTML file (CSS inline, images as base64
data URIs, no external asset), both from jinja2 templates inside this package. Every file is
written atomically (``diffmavil.atomic``)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from bench.errors import BadInput
from bench.report.document import ReportContext, Section
from bench.report.format import FILTERS
from bench.report.load import Inputs, load_inputs
from bench.report.projection_sections import ProjectionFile
from bench.report.tables import inline_html, to_html, to_markdown
from bench.schema import GridRecord, WholeRunRow
from diffmavil.atomic import atomic_write, atomic_write_text
from diffmavil.environment import Environment

FORMATS = ("md", "html", "latex")
DEFAULT_FORMATS = ("md", "html")
REPORT_NAME = "report"


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("bench.report", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["inline_md"] = inline_md
    env.filters["md_table"] = to_markdown
    env.filters["html_table"] = lambda table, anchor: Markup(to_html(table, anchor))
    env.filters["data_uri"] = lambda png: (
        "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    )
    return env


def inline_md(text: Any) -> Markup:
    """The inline markdown the report's prose uses (`code`, **bold**) as safe HTML."""
    return Markup(inline_html(text))


def parse_formats(formats: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [f.strip().lower() for f in items if f and f.strip()]
    if not items:
        raise BadInput(f"--format {formats!r}: give at least one of {', '.join(FORMATS)}")
    for item in items:
        if item not in FORMATS:
            raise BadInput(
                f"--format {item!r}: allowed values are {', '.join(FORMATS)} (comma-separated)"
            )
    return tuple(dict.fromkeys(items))


# ------------------------------------------------------------------------------ assembling
def build_sections(inputs: Inputs, own_environment: Environment) -> list[Section]:
    """The sections in reading order: first what the input is about (ablation grids, each
    followed by its time to accuracy when it has curves or fine-tunes, pre-training runs,
    FLOPs, timings, whole-run projections); then, for grids that compare
    recipes and for projections, the paper's headline beside our base-size figure and the
    sensitivity of that figure to our choices; the environment last."""
    from bench.report.ablation import ablation_section
    from bench.report.flop_sections import flops_section
    from bench.report.paper import paper_section, sensitivity_section
    from bench.report.projection_sections import projection_section
    from bench.report.provenance import environment_section
    from bench.report.runs import runs_section
    from bench.report.time_to_accuracy import has_time_to_accuracy, time_to_accuracy_section
    from bench.report.timing_tables import time_section

    sections: list[Section] = []
    for ablation in inputs.ablations:
        sections.append(
            ablation_section(ablation, _projection_of(ablation.path, inputs.projections))
        )
        if has_time_to_accuracy(ablation):  # curves, fine-tunes, endpoints: right after it
            sections.append(time_to_accuracy_section(ablation))
    # a whole-run projection compares the full recipe with MAViL's, as such a grid does
    compares = bool(inputs.projections) or any(
        compares_recipes(a.records) for a in inputs.ablations
    )
    if inputs.runs:
        sections.append(runs_section(inputs.runs))
    sections += [flops_section(f, i) for i, f in enumerate(inputs.flops)]
    sections += [time_section(t, i) for i, t in enumerate(inputs.times)]
    sections += [projection_section(p, i) for i, p in enumerate(inputs.projections)]
    if compares:
        headline = inputs.paper_headline
        sections.append(paper_section(headline, inputs.flops, inputs.projections))
        if headline is not None:
            sections.append(sensitivity_section(headline))
    sections.append(environment_section(inputs, own_environment))
    return sections


def _projection_of(results: Path, projections: list[ProjectionFile]) -> list[WholeRunRow] | None:
    """The rows of the whole-run projection a grid wrote beside its results, if any."""
    directory = results if results.is_dir() else results.parent
    for projection in projections:
        if projection.path.parent == directory:
            return projection.rows
    return None


def compares_recipes(records: list[GridRecord]) -> bool:
    """Whether a grid's rows (controls aside) differ in variant, masking or batch."""
    recipes = {(r.variant, r.masking, r.batch) for r in records if r.kind != "control"}
    return len(recipes) > 1


def _own_environment(command: str | None) -> Environment:
    from diffmavil.environment import capture, command_line

    if command is None:
        command = command_line()
    return capture("cpu").model_copy(update={"command": command})


def default_out(inputs: Inputs) -> Path:
    """``<RUNS_DIR>/report`` for a directory, ``<FILE's dir>/<stem>-report`` for a file."""
    path = inputs.path
    return path.parent / f"{path.stem}-report" if path.is_file() else path / REPORT_NAME


def render_report(
    results_dir: str | Path | Sequence[str | Path],
    formats: tuple[str, ...] | list[str] | str = DEFAULT_FORMATS,
    out: str | Path | None = None,
    *,
    command: str | None = None,
) -> dict[str, Path]:
    """Render the report of ``results_dir`` (any input ``bench.report.load`` reads, or several
    reported together) into the directory ``out`` (default: see ``default_out``, from the
    first input): ``report.md`` with its PNGs and CSVs beside it, and/or a self-contained
    ``report.html``. Returns {format: path}."""
    formats = parse_formats(formats)
    paths = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    inputs = load_inputs(*paths)
    own = _own_environment(command)
    sections = build_sections(inputs, own)
    out_dir = Path(out) if out is not None else default_out(inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: exists and is not a directory")
    context = ReportContext(
        title=f"diffbench report: {inputs.name}",
        source=", ".join(str(p) for p in inputs.sources),
        generated=own.date,
        command=own.command or "",
        sections=sections,
        runs_count=sum(len(t.rows) for s in sections for t in s.tables if t.css == "runs"),
    )
    env = _environment()
    written: dict[str, Path] = {}
    for section in sections:  # PNGs and the tables behind them, beside the report
        for plot in section.plots:
            atomic_write(out_dir / plot.png_name, lambda h, b=plot.png: h.write(b))
            atomic_write_text(out_dir / plot.csv_name, _csv(plot.data))
        for table in section.tables:
            atomic_write_text(out_dir / f"table-{section.key}-{table.key}.csv", _csv(table.data))
    if "md" in formats:
        text = env.get_template("report.md.j2").render(**context.template_variables())
        written["md"] = atomic_write_text(out_dir / f"{REPORT_NAME}.md", text)
    if "html" in formats:
        text = env.get_template("report.html.j2").render(**context.template_variables())
        written["html"] = atomic_write_text(out_dir / f"{REPORT_NAME}.html", text)
    if "latex" in formats:
        from bench.report.latex import render_latex

        written["latex"] = atomic_write_text(out_dir / f"{REPORT_NAME}.tex", render_latex(context))
    return written


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value != value:
        return ""
    return value
