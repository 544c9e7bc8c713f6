"""A pre-training run's logged steps (``metrics.jsonl``, one JSON object per logged step,
written by ``diffmavil.training.pretrain``) as the report reads them: typed, the loss's
parts gathered, keys the report does not draw ignored (another version's log still reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

LOSS_PART = "loss."  # the log's key prefix of each part of the loss


class LoggedStep(BaseModel):
    """One logged training step."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    step: int
    samples_seen: int | None = None
    batch_size: int | None = None
    audio_mask_ratio: float | None = None
    video_mask_ratio: float | None = None
    loss: float | None = None
    loss_parts: dict[str, float] = Field(
        default_factory=dict, description="the log's loss.<part> keys, by part"
    )
    samples_per_second: float | None = None
    achieved_flops_per_second: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _gather_loss_parts(cls, logged: Any) -> Any:
        if not isinstance(logged, dict):
            return logged
        parts = {k.removeprefix(LOSS_PART): v for k, v in logged.items() if k.startswith(LOSS_PART)}
        return {**logged, "loss_parts": parts}

    def value(self, column: str) -> Any:
        """A value by its log column: a field, or ``loss.<part>``."""
        if column.startswith(LOSS_PART):
            return self.loss_parts.get(column.removeprefix(LOSS_PART))
        return getattr(self, column)

    @property
    def x(self) -> float:
        """Where the step lies on a curve's x axis: samples seen, else the step."""
        return self.step if self.samples_seen is None else self.samples_seen


def read_metrics(path: Path) -> list[LoggedStep]:
    """metrics.jsonl's steps; a torn last line (a run killed mid-write) is dropped."""
    if not path.exists():
        return []
    steps = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            steps.append(LoggedStep.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError):
            continue
    return steps
