"""``diffbench preset-search``: the cheapest presets with base's FLOP proportions
(``bench.presets.search``), and the table ``diffbench info --proportions`` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.options import FormatOption, OutOption, OutputFormat
from bench.errors import BadInput

COMPONENT_HEADERS = {
    "audio_encoder": "audio enc",
    "video_encoder": "video enc",
    "fusion": "fusion",
    "audio_decoder": "audio dec",
    "video_decoder": "video dec",
    "other": "other",
}


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%"


def proportions_table(rows: list[dict[str, Any]], title: str):
    """Table of ``preset_search.comparison_rows``."""
    from bench.cli.output import rows_table

    keys = ["row", "preset", "gflop_per_sample", "saving", *COMPONENT_HEADERS]
    formatters = {"gflop_per_sample": lambda v: f"{v:.3f}", "saving": _percent}
    formatters.update(dict.fromkeys(COMPONENT_HEADERS, _percent))
    table = rows_table(rows, keys, title=title, formatters=formatters)
    labels = ["row", "preset", "GFLOP/sample", "saving"]
    labels += [f"{header} share" for header in COMPONENT_HEADERS.values()]
    for index, (column, label) in enumerate(zip(table.columns, labels, strict=True)):
        column.label = label
        column.align = "left" if index < 2 else "right"
    return table


def _load_space(path: Path | None):
    """The ``--space`` file's ``SearchSpace`` (the built-in space without one)."""
    from pydantic import ValidationError

    from bench.presets.search import SearchSpace
    from bench.requests.files import read_yaml
    from diffmavil.config import format_validation_error

    if path is None:
        return SearchSpace()
    try:
        return SearchSpace.model_validate(read_yaml(path, "--space file"))
    except ValidationError as error:
        raise BadInput(f"--space {path}: {format_validation_error(error)}") from None


def preset_search_command(
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            help="YAML of SearchSpace fields (audio_grids, encoder_dims, ...); default: the "
            "built-in space (docs/presets.md).",
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(help="Largest absolute difference from base allowed, in points."),
    ] = 2.0,
    max_gflop: Annotated[
        float | None,
        typer.Option("--max-gflop", help="Skip candidates above this many GFLOP per sample."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Candidates to list.")] = 10,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """List the cheapest presets whose Table-2 rows keep base's FLOP savings and component
    shares within --tolerance points (whole runs over the curriculum, closed-form FLOPs)."""
    from bench.cli.output import emit, rows_table
    from bench.presets.search import describe, search

    if not 0.0 < tolerance < 100.0:
        raise BadInput(f"--tolerance {tolerance}: allowed values lie strictly between 0 and 100")
    if max_gflop is not None and max_gflop <= 0:
        raise BadInput(f"--max-gflop {max_gflop}: must be a positive number")
    chosen = _load_space(space)
    found = search(
        chosen,
        tolerance=tolerance / 100.0,
        max_flops_per_sample=None if max_gflop is None else max_gflop * 1e9,
        limit=limit,
    )
    rows = [
        {
            "rank": rank,
            "gflop_per_sample": candidate.flops_per_sample / 1e9,
            "max_difference_points": 100.0 * candidate.deviation,
            "structure": describe(candidate.preset),
            "preset": candidate.preset,
        }
        for rank, candidate in enumerate(found, start=1)
    ]
    table = rows_table(
        rows,
        ["rank", "gflop_per_sample", "max_difference_points", "structure"],
        title=f"Cheapest of {chosen.size():,} candidates within {tolerance:g} points of base",
        formatters={
            "gflop_per_sample": lambda v: f"{v:.3f}",
            "max_difference_points": lambda v: f"{v:.2f}",
        },
    )
    if not rows and fmt == OutputFormat.table:
        typer.echo("no candidate within the tolerance; widen --space or --tolerance", err=True)
    emit(rows, fmt, table=table, out=out)
