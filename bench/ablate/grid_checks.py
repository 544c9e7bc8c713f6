"""What a grid's ``statistics:`` and ``run:`` blocks name, checked against its expanded rows
before anything runs (``bench.ablate.grid.load_grid``): the comparisons' rows, the fine-tune's
rows, a snapshot cadence on every row whose curve is probed, and the curves or fine-tunes
the time-to-accuracy targets and the primary endpoint need. Each problem is a ``GridError``
naming the file, the block and the key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.ablate.grid_file import GridError
from bench.requests import RunSpec, StatisticsSpec
from diffmavil.config import did_you_mean
from diffmavil.training.config import PretrainConfig


def _known_row(name: str, names: list[str], where: str) -> None:
    if name not in names:
        raise GridError(
            f"{where}: unknown row {name!r}{did_you_mean(name, names)}; rows: {', '.join(names)}"
        )


def check_statistics(
    statistics: StatisticsSpec, run: RunSpec, configs: Mapping[str, PretrainConfig], path: Path
) -> None:
    """The confirmatory comparisons name two different rows of the grid; targets and the
    primary endpoint have the curves, probes or fine-tunes they are computed from."""
    names = list(configs)
    for index, comparison in enumerate(statistics.comparisons):
        where = f"{path}: statistics: key 'statistics.comparisons.{index}"
        for side in ("candidate", "reference"):
            _known_row(getattr(comparison, side), names, f"{where}.{side}'")
        if comparison.candidate == comparison.reference:
            raise GridError(f"{where}': a row cannot be compared with itself")
    if statistics.targets and run.curve is None:
        raise GridError(
            f"{path}: statistics: key 'statistics.targets': time-to-accuracy targets are read "
            "off the snapshots' curves: set run.curve (and snapshot_every)"
        )
    primary = statistics.primary
    if primary is None:
        return
    where = f"{path}: statistics: key 'statistics.primary.endpoint'"
    if primary.endpoint == "auc_flops" and run.curve is None:
        raise GridError(f"{where}: auc_flops is read off the snapshots' curves: set run.curve")
    if primary.endpoint == "final_probe" and run.probe is None:
        raise GridError(f"{where}: final_probe needs run.probe")
    if primary.endpoint == "final_finetune":
        tuned = [] if run.finetune is None else run.finetune.rows
        for comparison in statistics.comparisons:
            for name in (comparison.candidate, comparison.reference):
                if name not in tuned:
                    raise GridError(
                        f"{where}: final_finetune compares fine-tunes, and run.finetune.rows "
                        f"does not name {name!r}"
                    )


def check_curve_and_finetune(
    run: RunSpec,
    configs: Mapping[str, PretrainConfig],
    path: Path,
    compared: Sequence[str] = (),
) -> None:
    """``run.curve``: some row snapshots its pre-training, and every row of a comparison
    (``compared``) does (a row without ``snapshot_every`` is probed at its final snapshot
    only); ``run.finetune.rows``: rows of the grid."""
    if run.curve is not None:
        needed = [name for name in configs if name in compared] or list(configs)
        for name in needed:
            if configs[name].snapshot_every is None:
                raise GridError(
                    f"{path}: run: key 'run.curve': row {name!r} takes no snapshots: set "
                    "snapshot_every (samples between snapshots) in base or the row"
                )
    if run.finetune is not None:
        names = list(configs)
        for index, name in enumerate(run.finetune.rows):
            _known_row(name, names, f"{path}: run: key 'run.finetune.rows.{index}'")
