"""``diffbench migrate``: rewrite results of schema_version 1 as schema 2, in place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.options import FormatOption, OutOption, OutputFormat


def migrate_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A results file, or a directory searched recursively for *.json results "
            "(ablation results, run records and summaries, flops and time JSON).",
            show_default=False,
            metavar="PATH",
        ),
    ],
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Migrate results of schema_version 1 to 2 in place (atomically; readers also migrate
    on read, so this only saves doing it every time). Files already at 2 are left alone."""
    from bench.cli.output import emit, rows_table
    from bench.migrate import migrate_path, schema_version_of

    written = migrate_path(path)
    rows = [{"file": str(file), "schema_version": schema_version_of(file)} for file in written]
    table = rows_table(
        rows, ["file", "schema_version"], title=f"migrated {len(rows)} file(s) under {path}"
    )
    emit(rows, fmt, table=table, out=out)
