"""The pre-training progress bar (rich), or none."""

from __future__ import annotations


class NoProgress:
    def advance(self) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress:
    def __init__(self, total: int, completed: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("pretrain"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._task = self._progress.add_task("steps", total=total, completed=completed)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def progress_bar(enabled: bool, total: int, completed: int):
    return RichProgress(total, completed) if enabled else NoProgress()
