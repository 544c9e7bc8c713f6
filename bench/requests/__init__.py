"""Typed requests: what each command (and each grid run) is asked to do.

One frozen pydantic model per request, built directly from CLI options or YAML, validated
once and passed down:

- ``PretrainFlags`` -> ``PretrainRequest`` (``diffbench pretrain``; the config itself is
  ``diffmavil.training.config.PretrainConfig``);
- ``FinetuneRequest`` (``diffbench finetune``; the probe is a ``FinetuneConfig``);
- ``TimeRequest`` (``diffbench time``) and ``TimeSpec``, its part a grid's ``run.time``
  sets (the row sets the model, device, threads and seed); ``WholeRunRequest``
  (``diffbench time --masking/--batch``);
- ``FlopsRequest`` (``diffbench flops``; with ``WholeRunRequest`` a ``WholeRunSchedules``);
- ``ProfileRequest`` (``diffbench profile``), ``SubmititRequest`` (``diffbench ablate
  --executor submitit``);
- ``RunSpec``: a grid's ``run:`` block (``probe``: a ``FinetuneConfig``; ``time``: a
  ``TimeSpec``; ``project_time``: a ``ProjectTimeSpec``);
- ``files.read_yaml``: the one YAML loader of the files requests come from.

A command's options fill its request's fields by name (``bench.cli.options.RequestOptions``).

Nothing here imports torch.
"""

from bench.requests.commands import (
    WHOLE_RUN_BATCH,
    FinetuneRequest,
    FlopsRequest,
    PretrainFlags,
    PretrainRequest,
    ProfileRequest,
    SubmititRequest,
    TimeRequest,
    WholeRunRequest,
    WholeRunSchedules,
    pretrain_config,
)
from bench.requests.specs import (
    MIN_PEER_REPEATS,
    ComparisonSpec,
    ProjectTimeSpec,
    Ratios,
    RunSpec,
    StatisticsSpec,
    TimeSpec,
)

__all__ = [
    "MIN_PEER_REPEATS",
    "WHOLE_RUN_BATCH",
    "ComparisonSpec",
    "FinetuneRequest",
    "FlopsRequest",
    "PretrainFlags",
    "PretrainRequest",
    "ProfileRequest",
    "ProjectTimeSpec",
    "Ratios",
    "RunSpec",
    "StatisticsSpec",
    "SubmititRequest",
    "TimeRequest",
    "TimeSpec",
    "WholeRunRequest",
    "WholeRunSchedules",
    "pretrain_config",
]
