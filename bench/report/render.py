"""Rendering: the sections of a report into markdown (GitHub: pipe tables, relative image
links to the PNGs beside it) and one self-contained HTML file (CSS inline, images as base64
data URIs, no external asset), both from jinja2 templates inside this package. Every file is
written atomically (``diffmavil.atomic``)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.errors import BadInput
from bench.report.format import DASH, FILTERS
from bench.report.load import Inputs, load_inputs
from bench.report.model import Column, Row, Section, Table
from diffmavil.atomic import atomic_write, atomic_write_text

FORMATS = ("md", "html")
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
    env.filters["data_uri"] = lambda png: (
        "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    )
    return env


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline_md(text: Any):
    """The inline markdown the report's prose uses (`code`, **bold**) as safe HTML."""
    from markupsafe import Markup

    escaped = html.escape("" if text is None else str(text), quote=True)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return Markup(escaped)


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


# ---------------------------------------------------------------------------- environment
_ENV_FIELDS = (
    ("date", ("date", "timestamp")),
    ("hardware", ("device_name", "cpu_model", "gpu_name")),
    ("device", ("device",)),
    ("CPU cores", ("cpu_count",)),
    ("torch threads", ("torch_threads", "threads")),
    ("torch", ("torch_version",)),
    ("python", ("python", "python_version")),
    ("platform", ("platform",)),
    ("git commit", ("git_commit",)),
    ("command", ("command",)),
)


def _env_value(env: dict[str, Any], keys: tuple[str, ...], label: str) -> str:
    if label == "torch":
        packages = env.get("packages") or {}
        value = packages.get("torch") or env.get("torch_version")
        return str(value) if value else DASH
    for key in keys:
        if env.get(key) not in (None, ""):
            return str(env[key])
    return DASH


def _packages(env: dict[str, Any]) -> str:
    packages = env.get("packages") or {}
    return ", ".join(f"{k} {v}" for k, v in packages.items() if k != "torch") or DASH


def environment_section(inputs: Inputs, own: dict[str, Any]) -> Section:
    sources: list[tuple[str, dict[str, Any]]] = []
    for ablation in inputs.ablations:
        sources.append(
            (f"results `{ablation.name}`", dict(ablation.payload.get("environment") or {}))
        )
        threads = sorted(
            {
                str((r.get("environment") or {}).get("torch_threads"))
                for r in ablation.records
                if r.get("environment")
            }
        )
        if threads and threads != [str(sources[-1][1].get("torch_threads"))]:
            sources[-1][1].setdefault("run_threads", ", ".join(threads))
    seen: set[str] = set()
    for run in inputs.runs:
        env = run.summary.get("environment") or {}
        signature = repr(
            sorted((k, str(v)) for k, v in env.items() if k not in ("date", "command"))
        )
        if signature not in seen:
            seen.add(signature)
            sources.append((f"run `{run.name}`", env))
    for result in inputs.times:
        sources.append((f"`{result.path.name}`", result.environment))
    for result in inputs.flops:
        sources.append(
            (
                f"`{result.path.name}`",
                {"command": "not recorded (flops JSON carries no environment)"},
            )
        )
    sources.append(("this report", own))
    sources = sources[:6] if len(sources) <= 6 else [*sources[:5], sources[-1]]
    columns = [Column("", "left"), *(Column(name, "left") for name, _ in sources)]
    table = Table(
        "environment",
        "Where the results and this report were produced",
        columns,
        [],
        css="environment",
    )
    for label, keys in _ENV_FIELDS:
        table.rows.append(Row([label, *(_env_value(env, keys, label) for _, env in sources)]))
    table.rows.append(Row(["packages", *(_packages(env) for _, env in sources)]))
    if any(env.get("run_threads") for _, env in sources):
        table.rows.append(
            Row(["threads per run", *(str(env.get("run_threads", DASH)) for _, env in sources)])
        )
    table.data = [
        {
            "source": name,
            **{k: v for k, v in env.items() if not isinstance(v, dict)},
            **{f"packages.{k}": v for k, v in (env.get("packages") or {}).items()},
        }
        for name, env in sources
    ]
    section = Section("environment", "Environment")
    section.tables.append(table)
    return section


# ------------------------------------------------------------------------------ assembling
def build_sections(inputs: Inputs, own_environment: dict[str, Any]) -> list[Section]:
    from bench.report.paper import paper_section
    from bench.report.sections import (
        ablation_section,
        flops_section,
        runs_section,
        time_section,
    )
    from bench.report.whole_run import projection_section

    sections: list[Section] = [paper_section(inputs.flops, inputs.projections)]
    sections += [ablation_section(a) for a in inputs.ablations]
    if inputs.runs:
        sections.append(runs_section(inputs.runs))
    sections += [flops_section(f, i) for i, f in enumerate(inputs.flops)]
    sections += [time_section(t, i) for i, t in enumerate(inputs.times)]
    sections += [projection_section(p, i) for i, p in enumerate(inputs.projections)]
    sections.append(environment_section(inputs, own_environment))
    return sections


def _own_environment(command: str | None) -> dict[str, Any]:
    from diffmavil.environment import environment

    env = environment("cpu")
    env["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if command is None:
        command = " ".join([Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]])
    env["command"] = command
    return env


def default_out(inputs: Inputs) -> Path:
    """``<RUNS_DIR>/report`` for a directory, ``<FILE's dir>/<stem>-report`` for a file."""
    path = inputs.path
    return path.parent / f"{path.stem}-report" if path.is_file() else path / REPORT_NAME


def render_report(
    results_dir: str | Path,
    formats: tuple[str, ...] | list[str] | str = FORMATS,
    out: str | Path | None = None,
    *,
    command: str | None = None,
) -> dict[str, Path]:
    """Render the report of ``results_dir`` (any input ``bench.report.load`` reads) into the
    directory ``out`` (default: see ``default_out``): ``report.md`` with its PNGs and CSVs
    beside it, and/or a self-contained ``report.html``. Returns {format: path}."""
    formats = parse_formats(formats)
    inputs = load_inputs(results_dir)
    own = _own_environment(command)
    sections = build_sections(inputs, own)
    out_dir = Path(out) if out is not None else default_out(inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: exists and is not a directory")
    context = {
        "title": f"diffbench report: {inputs.name}",
        "source": str(inputs.path),
        "generated": own["date"],
        "command": own["command"],
        "sections": sections,
        "runs_count": sum(len(t.rows) for s in sections for t in s.tables if t.css == "runs"),
    }
    env = _environment()
    written: dict[str, Path] = {}
    for section in sections:  # PNGs and the tables behind them, beside the report
        for plot in section.plots:
            atomic_write(out_dir / plot.png_name, lambda h, b=plot.png: h.write(b))
            atomic_write_text(out_dir / plot.csv_name, _csv(plot.data))
        for table in section.tables:
            atomic_write_text(out_dir / f"table-{section.key}-{table.key}.csv", _csv(table.data))
    if "md" in formats:
        text = env.get_template("report.md.j2").render(**context)
        written["md"] = atomic_write_text(out_dir / f"{REPORT_NAME}.md", text)
    if "html" in formats:
        text = env.get_template("report.html.j2").render(**context)
        written["html"] = atomic_write_text(out_dir / f"{REPORT_NAME}.html", text)
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
