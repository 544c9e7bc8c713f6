"""``diffbench finetune``: a linear probe or a full fine-tune of a checkpoint, or of a
random-init / raw-fbank control (``diffmavil.training.downstream``). The options fill its
typed request (``bench.requests.FinetuneRequest``, the probe a ``FinetuneConfig``) by name,
validated once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.options import (
    EXECUTION_PANEL,
    INPUT_PANEL,
    MODEL_PANEL,
    CompileOption,
    FormatOption,
    OutOption,
    OutputFormat,
    Preset,
    PresetOption,
    RequestOptions,
    TrainDevice,
    Variant,
    VariantOption,
)
from bench.cli.progress import epoch_reporter
from bench.errors import BadInput
from bench.requests import FinetuneRequest
from diffmavil.training.config import (
    EARLY_STOPPING_PATIENCE,
    FINETUNE_LR,
    PROBE_LR,
    FinetuneConfig,
)


class Init(StrEnum):
    checkpoint = "checkpoint"
    random = "random"
    fbank = "fbank"


class ProbeMode(StrEnum):
    probe = "probe"
    finetune = "finetune"


class Modality(StrEnum):
    audio = "audio"
    audio_video = "audio-video"


class LrSchedule(StrEnum):
    cosine = "cosine"
    constant = "constant"


class Features(StrEnum):
    encoder = "encoder"
    fused = "fused"


PROBE = FinetuneConfig()  # the probe's defaults (one place: diffmavil.training.config)
LR_DEFAULTS = f"probe {PROBE_LR:g}, finetune {FINETUNE_LR:g}"
FINETUNE = FinetuneRequest.model_construct()
PROBE_PANEL = "Probe / fine-tune"
PROBE_MODALITY = Modality(PROBE.modality)


def early_stopping_patience(
    early_stopping: bool | None, patience: int | None, mode: str
) -> int | None:
    """``FinetuneConfig.patience`` from ``--patience`` and ``--[no-]early-stopping``: off
    (None) unless asked for; ``--early-stopping`` alone stops after
    ``EARLY_STOPPING_PATIENCE`` epochs, ``--patience N`` after N. Either needs a finetune;
    ``--no-early-stopping`` takes no ``--patience``."""
    if early_stopping is None and patience is None:
        return None
    if early_stopping is False:
        if patience is not None:
            message = "patience only applies to early stopping; give one of the two"
            raise BadInput(f"--patience {patience} with --no-early-stopping: {message}")
        return None
    if mode != ProbeMode.finetune:
        flag = "--early-stopping" if patience is None else f"--patience {patience}"
        raise BadInput(f"{flag} with --mode {mode}: only --mode finetune stops early")
    return EARLY_STOPPING_PATIENCE if patience is None else patience


# the probe's settings no option sets (a grid's run.probe may)
PROBE_ONLY_IN_GRIDS = ("validation_fraction", "warmup_fraction", "weight_decay")
PROBE_ONLY_IN_GRIDS += ("label_smoothing", "probe_seeds", "max_train_items", "max_eval_items")
FINETUNE_REQUEST = RequestOptions.of(
    FinetuneRequest,
    probe=RequestOptions.of(
        FinetuneConfig, patience=early_stopping_patience, unset=PROBE_ONLY_IN_GRIDS
    ),
)


def finetune_command(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="A pre-training run directory or its checkpoint.pt.")
    ] = None,
    init: Annotated[
        Init,
        typer.Option(
            help="Initialisation (random init and raw fbank are controls).",
            case_sensitive=False,
            rich_help_panel=MODEL_PANEL,
        ),
    ] = Init[FINETUNE.init],
    preset: PresetOption = Preset[FINETUNE.preset],
    variant: VariantOption = Variant[FINETUNE.variant],
    data: Annotated[
        str, typer.Option(help="Downstream data spec.", rich_help_panel=INPUT_PANEL)
    ] = PROBE.data,
    mode: Annotated[
        ProbeMode,
        typer.Option(
            help="Linear probe (frozen) or full fine-tune.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = ProbeMode[PROBE.mode],
    modality: Annotated[
        Modality,
        typer.Option(help="Input modalities.", case_sensitive=False, rich_help_panel=PROBE_PANEL),
    ] = PROBE_MODALITY,
    features: Annotated[
        Features,
        typer.Option(
            help="Pool encoder outputs or fusion outputs.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = Features[PROBE.features],
    fold: Annotated[
        int | None, typer.Option(help="ESC-50 evaluation fold.", rich_help_panel=INPUT_PANEL)
    ] = PROBE.fold,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs (finetune: the schedule's, at most with early stopping; "
            "default: probe 100, finetune chosen for the data size).",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = PROBE.epochs,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Finetune: stop early after this many epochs without a better validation "
            "loss (implies --early-stopping).",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = None,
    early_stopping: Annotated[
        bool | None,
        typer.Option(
            "--early-stopping/--no-early-stopping",
            help="Finetune: hold out 10% of the items as a validation split and stop early "
            f"(patience {EARLY_STOPPING_PATIENCE}). Default: off, every item trains for "
            "the planned epochs.",
            rich_help_panel=PROBE_PANEL,
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate.", rich_help_panel=PROBE_PANEL, show_default=LR_DEFAULTS),
    ] = None,
    lr_schedule: Annotated[
        LrSchedule,
        typer.Option(
            help="Finetune: warm-up + cosine to 0 over the planned epochs, or constant.",
            case_sensitive=False,
            rich_help_panel=PROBE_PANEL,
        ),
    ] = LrSchedule[PROBE.lr_schedule],
    head_epochs: Annotated[
        int,
        typer.Option(
            help="Finetune: first train the head alone on frozen features for this many "
            "epochs, then fine-tune everything (LP-FT); 0: start from a random head.",
            rich_help_panel=PROBE_PANEL,
        ),
    ] = PROBE.head_epochs,
    patch_keep: Annotated[
        float,
        typer.Option(
            help="Finetune: share of each clip's patches the encoders see in a training "
            "step (patch dropout; evaluation sees all).",
            rich_help_panel=PROBE_PANEL,
        ),
    ] = PROBE.patch_keep,
    batch_size: Annotated[
        int, typer.Option(help="Batch size.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.batch_size,
    specaugment_freq: Annotated[
        int, typer.Option(help="SpecAugment frequency mask.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.specaugment_freq,
    specaugment_time: Annotated[
        int, typer.Option(help="SpecAugment time mask.", rich_help_panel=PROBE_PANEL)
    ] = PROBE.specaugment_time,
    mixup: Annotated[
        float, typer.Option(help="Mixup alpha (0: off).", rich_help_panel=PROBE_PANEL)
    ] = PROBE.mixup,
    seed: Annotated[int, typer.Option(help="Seed.", rich_help_panel=PROBE_PANEL)] = PROBE.seed,
    device: Annotated[
        TrainDevice,
        typer.Option(help="Device.", case_sensitive=False, rich_help_panel=EXECUTION_PANEL),
    ] = TrainDevice[FINETUNE.device],
    compile: CompileOption = PROBE.compile,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Linear probe or fine-tune a checkpoint (or a random-init / raw-fbank control).

    A fine-tune runs --epochs (default: chosen for the data size) under a warm-up + cosine
    learning rate; with --early-stopping it holds out 10% of the items and stops on their
    loss. Progress shows on a terminal, one line per epoch otherwise (stderr)."""
    request = FINETUNE_REQUEST.build(locals())
    from bench.cli.output import emit, rows_table
    from diffmavil.training.downstream import evaluate

    model_config = request.resolve_model()
    with epoch_reporter() as on_epoch:
        result = evaluate(
            request.probe, request.init, model_config, request.checkpoint, request.device,
            on_epoch=on_epoch,
        )  # fmt: skip
    table = rows_table(
        [{"name": k, "value": v} for k, v in result.items()], ["name", "value"], title="finetune"
    )
    emit([result], fmt, table=table, out=out)
