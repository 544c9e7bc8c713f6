"""``diffbench data ...``: inspect datasets and compute fbank normalisation statistics."""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import Annotated, Any

import typer

from bench.cli.options import (
    INPUT_PANEL,
    FormatOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
)

data_app = typer.Typer(
    name="data",
    help="Inspect datasets and compute fbank statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Split(StrEnum):
    train = "train"
    val = "val"
    test = "test"


SpecArgument = Annotated[
    str,
    typer.Argument(
        help="Data spec: synthetic[:classes=N,size=N], manifest:FILE (.json or .csv), "
        "esc50:DIR, spc:DIR."
    ),
]
SplitOption = Annotated[
    Split, typer.Option("--split", help="Dataset split.", rich_help_panel=INPUT_PANEL)
]
FoldOption = Annotated[
    int | None,
    typer.Option("--fold", min=1, max=5, help="ESC-50 eval fold.", rich_help_panel=INPUT_PANEL),
]


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)


def _build(spec: str, preset: str, split: str, fold: int | None, seed: int = 0):
    from diffmavil.config import make_config
    from diffmavil.data import build_dataset

    config = make_config(preset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = build_dataset(spec, config, split, seed=seed, fold=fold)  # type: ignore[arg-type]
    _echo_warnings(caught)
    return dataset


def _emit_record(record: dict[str, Any], fmt: OutputFormat, out, lines: list[str]) -> None:
    """JSON/CSV: the record; table: ``lines`` of text."""
    from bench.cli.output import emit

    if fmt == OutputFormat.table:
        text = "\n".join(lines) + "\n"
        typer.echo(text, nl=False)
        if out is not None:
            from diffmavil.atomic import atomic_write_text

            atomic_write_text(out, text)
        return
    emit([record], fmt, out=out)


@data_app.command("stats")
def stats(
    spec: SpecArgument,
    preset: PresetOption = Preset.cpu,
    split: SplitOption = Split.train,
    fold: FoldOption = None,
    max_items: Annotated[
        int | None,
        typer.Option(
            "--max-items", min=1, help="Use only the first N items.", rich_help_panel=INPUT_PANEL
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Fbank mean/std over a dataset (AudioMAE normalisation: (x - mean) / (2 std))."""
    from diffmavil.data import compute_norm_stats

    dataset = _build(spec, preset, split, fold)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compute_norm_stats(dataset, max_items)
    _echo_warnings(caught)
    items = len(dataset) if max_items is None else min(max_items, len(dataset))
    record = {
        "spec": spec,
        "preset": str(preset),
        "split": str(split),
        "items": items,
        "mean": result.mean,
        "std": result.std,
        "skipped": dataset.skipped,
    }
    lines = [
        f"spec {spec} | preset {preset} | split {split} | items {items}",
        f"mean {result.mean:.7f}",
        f"std  {result.std:.7f}",
        f"skipped files {dataset.skipped}",
    ]
    _emit_record(record, fmt, out, lines)


@data_app.command("show")
def show(
    spec: SpecArgument,
    preset: PresetOption = Preset.cpu,
    split: SplitOption = Split.train,
    fold: FoldOption = None,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Size, classes, modalities and skipped files of a dataset."""
    dataset = _build(spec, preset, split, fold)
    info = dataset.describe()
    names = info["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names) - 12} more)" if len(names) > 12 else "")
    config = dataset.config
    lines = [
        f"spec {spec} | {info['dataset']} | split {info['split']}",
        f"size {info['size']} | classes {info['num_classes']} | "
        f"{'multi' if info['multi_label'] else 'single'}-label | "
        f"video {'yes' if info['has_video'] else 'no (zeros)'}",
        f"classes: {shown}",
        f"audio [{config.audio.target_frames}, {config.audio.mel_bins}] | video "
        f"[{config.video.channels}, {config.video.frames}, {config.video.height}, "
        f"{config.video.width}] | stats mean {info['stats']['mean']:.4f} "
        f"std {info['stats']['std']:.4f}",
        f"skipped files {info['skipped']}",
    ]
    _emit_record(info, fmt, out, lines)
