"""Print result rows as tables (``bench.report.tables``: fitted to the terminal), JSON or CSV,
and optionally write the same text to a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.cli.options import OutputFormat
from bench.report.tables import Table, print_tables
from diffmavil.atomic import atomic_write_text

FILE_WIDTH = 120  # table text written with --out


def rows_to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def rows_to_json(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    payload: Any = {**meta, "rows": list(rows)} if meta else list(rows)
    return json.dumps(payload, indent=2, default=str) + "\n"


def rows_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str = "",
    formatters: dict[str, Any] | None = None,
) -> Table:
    """A table of ``rows`` with one column per key in ``columns`` (``component`` and
    ``name`` left-aligned); ``formatters`` map a column to a function of its value."""
    formatters = formatters or {}
    cells = []
    for row in rows:
        line = []
        for column in columns:
            value = row.get(column, "")
            render = formatters.get(column)
            line.append(render(value) if render and value != "" else str(value))
        cells.append(line)
    labels = [f"<{c}" if c in ("component", "name") else c for c in columns]
    return Table.of("rows", title, labels, cells)


def emit(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    *,
    table: Table | Sequence[Table] | None = None,
    meta: dict[str, Any] | None = None,
    out: Path | None = None,
    console: Console | None = None,
) -> str:
    """Print rows in ``fmt`` (``table`` format: the given table(s), fitted to the terminal);
    write the same JSON/CSV/text to ``out`` atomically (tables at 120 columns)."""
    console = console or Console()
    if fmt == OutputFormat.json:
        text = rows_to_json(rows, meta)
        print(text, end="")
    elif fmt == OutputFormat.csv:
        text = rows_to_csv(rows)
        print(text, end="")
    else:
        assert table is not None
        tables = [table] if isinstance(table, Table) else list(table)
        print_tables(tables, console)
        recorder = Console(record=True, width=FILE_WIDTH, file=io.StringIO())
        print_tables(tables, recorder)
        text = recorder.export_text()
    if out is not None:
        atomic_write_text(out, text)
    return text
