"""``diffbench data ...``: inspect datasets and compute fbank normalisation statistics."""

from __future__ import annotations

import json
import warnings
from typing import Annotated

import typer

data_app = typer.Typer(
    name="data",
    help="Inspect datasets and compute fbank statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArgument = Annotated[
    str,
    typer.Argument(
        help="Data spec: synthetic[:classes=N,size=N], manifest:FILE.json|.csv, esc50:DIR, spc:DIR."
    ),
]
PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Model preset (input sizes).")]
SplitOpt = Annotated[str, typer.Option("--split", help="train, val or test.")]
FoldOpt = Annotated[int | None, typer.Option("--fold", help="ESC-50 eval fold (1-5).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _build(spec: str, preset: str, split: str, fold: int | None, seed: int = 0):
    from diffmavil.config import ConfigError, make_config
    from diffmavil.data import DataError, build_dataset

    try:
        config = make_config(preset)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = build_dataset(spec, config, split, seed=seed, fold=fold)  # type: ignore[arg-type]
    except (DataError, ConfigError) as error:
        raise _fail(str(error)) from None
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    return dataset


@data_app.command("stats")
def stats(
    spec: SpecArgument,
    preset: PresetOpt = "cpu",
    split: SplitOpt = "train",
    fold: FoldOpt = None,
    max_items: Annotated[
        int | None, typer.Option("--max-items", help="Use only the first N items.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fbank mean/std over a dataset (AudioMAE normalisation: (x - mean) / (2 std))."""
    from diffmavil.data import DataError, compute_norm_stats

    dataset = _build(spec, preset, split, fold)
    if max_items is not None and max_items < 1:
        raise _fail(f"--max-items {max_items}: must be at least 1")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = compute_norm_stats(dataset, max_items)
    except DataError as error:
        raise _fail(str(error)) from None
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    items = len(dataset) if max_items is None else min(max_items, len(dataset))
    if as_json:
        payload = {
            "spec": spec,
            "preset": preset,
            "split": split,
            "items": items,
            "mean": result.mean,
            "std": result.std,
            "skipped": dataset.skipped,
        }
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"spec {spec} | preset {preset} | split {split} | items {items}")
    typer.echo(f"mean {result.mean:.7f}")
    typer.echo(f"std  {result.std:.7f}")
    typer.echo(f"skipped files {dataset.skipped}")


@data_app.command("show")
def show(
    spec: SpecArgument,
    preset: PresetOpt = "cpu",
    split: SplitOpt = "train",
    fold: FoldOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Size, classes, modalities and skipped files of a dataset."""
    dataset = _build(spec, preset, split, fold)
    info = dataset.describe()
    if as_json:
        typer.echo(json.dumps(info))
        return
    names = info["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names) - 12} more)" if len(names) > 12 else "")
    config = dataset.config
    typer.echo(f"spec {spec} | {info['dataset']} | split {info['split']}")
    typer.echo(
        f"size {info['size']} | classes {info['num_classes']} | "
        f"{'multi' if info['multi_label'] else 'single'}-label | "
        f"video {'yes' if info['has_video'] else 'no (zeros)'}"
    )
    typer.echo(f"classes: {shown}")
    typer.echo(
        f"audio [{config.audio.target_frames}, {config.audio.mel_bins}] | video "
        f"[{config.video.channels}, {config.video.frames}, {config.video.height}, "
        f"{config.video.width}] | stats mean {info['stats']['mean']:.4f} "
        f"std {info['stats']['std']:.4f}"
    )
    typer.echo(f"skipped files {info['skipped']}")
