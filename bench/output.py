"""Render result rows as a rich table, JSON or CSV, to the terminal and optionally a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.options import OutputFormat
from diffmavil.atomic import atomic_write_text


def human_count(value: float, unit: str = "") -> str:
    """1.23e12 -> '1.23 T' (SI prefixes)."""
    for threshold, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


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


def rich_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    formatters: dict[str, Any] | None = None,
) -> Table:
    table = Table(title=title, header_style="bold")
    formatters = formatters or {}
    for column in columns:
        table.add_column(column, justify="left" if column in ("component", "name") else "right")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            render = formatters.get(column)
            cells.append(render(value) if render and value != "" else str(value))
        table.add_row(*cells)
    return table


def emit(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat,
    *,
    table: Table | None = None,
    meta: dict[str, Any] | None = None,
    out: Path | None = None,
    console: Console | None = None,
) -> str:
    """Print rows in ``fmt`` (table uses ``table``); write JSON/CSV/text to ``out`` atomically."""
    console = console or Console()
    if fmt == OutputFormat.json:
        text = rows_to_json(rows, meta)
        print(text, end="")
    elif fmt == OutputFormat.csv:
        text = rows_to_csv(rows)
        print(text, end="")
    else:
        assert table is not None
        console.print(table)
        recorder = Console(record=True, width=160, file=io.StringIO())
        recorder.print(table)
        text = recorder.export_text()
    if out is not None:
        atomic_write_text(out, text)
    return text
