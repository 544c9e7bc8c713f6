"""The typed summary of a pre-training run (``summary.json``, schema_version 2).

Written by ``diffmavil.training.pretrain`` at the end of a run (also when it fails) and
read by the harness (report, resume). Results of schema 1 differ only in the environment
block's spelling; ``bench.migrate`` converts them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from diffmavil.config import Frozen
from diffmavil.environment import Environment

SCHEMA_VERSION = 2


class RunSummary(Frozen):
    """One pre-training run: what it was asked to do and what it measured."""

    schema_version: Literal[2] = SCHEMA_VERSION
    kind: Literal["pretrain"] = "pretrain"
    run_id: str
    status: Literal["completed", "failed"]
    failure: str | None = None
    config: dict[str, Any] = Field(description="the run's PretrainConfig (JSON)")
    steps: int
    planned_steps: int
    samples: int
    budget_samples: int
    total_flops: int = Field(description="model FLOPs (fwd + bwd) of the steps taken")
    flops_by_component: dict[str, int]
    wall_clock_seconds: float
    compute_seconds: float
    data_seconds: float
    overhead_seconds: float = Field(0.0, description="checkpoints and log rows")
    snapshot_seconds: float | None = Field(
        None,
        description="writing encoder snapshots (runs with snapshot_every), outside "
        "wall_clock_seconds; absent from the file when None",
    )
    samples_per_second: float
    data_to_compute_ratio: float | None = None
    data_bound: bool | None = None
    compile: dict[str, Any] | None = Field(None, description="torch.compile graph counts")
    achieved_flops_per_second: float
    resumed_from_step: int | None = None
    discarded_checkpoints: list[str] = Field(
        default_factory=list, description="corrupt checkpoints moved aside on resume"
    )
    world_size: int = 1
    skipped_files: int = 0
    final_losses: dict[str, float] = Field(default_factory=dict)
    environment: Environment

    @model_serializer(mode="wrap")
    def _drop_unset_snapshot_seconds(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Runs without snapshots write the summary they wrote before the field existed.
        payload = handler(self)
        if self.snapshot_seconds is None:
            payload.pop("snapshot_seconds", None)
        return payload
