"""Progress on stderr: of epoch loops (a bar on a terminal, one line per epoch otherwise)
and of interleaved timing tasks (a bar on a terminal, nothing otherwise)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


def describe_epoch(row: dict[str, Any]) -> str:
    """'epoch 3/24: train loss 0.512, lr 9.1e-05, val loss 0.611, val accuracy 83.3%
    (4.1 s)'; a head-first stage (``stage: head``): 'head on frozen features: train loss
    0.402, train accuracy 88.0% (1.2 s)'."""
    parts = [f"train loss {row['train_loss']:.3f}"]
    if row.get("stage") == "head":
        for key in ("train_accuracy", "train_mAP"):
            if key in row:
                parts.append(f"{key.replace('_', ' ')} {100 * row[key]:.1f}%")
        return f"head on frozen features: {', '.join(parts)} ({row['seconds']:.1f} s)"
    if "lr" in row:
        parts.append(f"lr {row['lr']:.2g}")
    if "val_loss" in row:
        parts.append(f"val loss {row['val_loss']:.3f}")
    for key in ("val_accuracy", "val_mAP"):
        if key in row:
            parts.append(f"{key.replace('_', ' ')} {100 * row[key]:.1f}%")
    return f"epoch {row['epoch']}/{row['epochs']}: {', '.join(parts)} ({row['seconds']:.1f} s)"


@contextlib.contextmanager
def epoch_reporter(label: str = "finetune") -> Iterator[Callable[[dict[str, Any]], None]]:
    """Yield an ``on_epoch`` callback: a rich bar when stderr is a terminal, else a line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:

        def line(row: dict[str, Any]) -> None:
            print(f"{label} {describe_epoch(row)}", file=sys.stderr, flush=True)

        yield line
        return
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=None)

        def bar(row: dict[str, Any]) -> None:
            progress.update(task, completed=row["epoch"], total=row["epochs"],
                            description=describe_epoch(row))  # fmt: skip

        yield bar


def task_bar(total: int, label: str = "timing"):
    """(a rich progress bar of ``total`` tasks, its ``advance(message)``) on stderr when it
    is a terminal; otherwise (None, None): no output."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None, None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(label, total=total)

    def advance(message: str) -> None:
        progress.update(task, advance=1, description=message)

    return progress, advance
