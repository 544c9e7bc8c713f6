"""Typed, frozen, validated configuration of pre-training and fine-tuning runs.

A ``PretrainConfig`` names the model by preset + variant + dotted overrides (the form an
ablation grid edits), the data, the recipe toggles (masking and batch schedules, both
functions of samples seen) and the optimiser. ``PretrainConfig.model`` is the resolved
``ModelConfig``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from diffmavil.config import ConfigError, Frozen, ModelConfig, make_config
from diffmavil.schedules import BatchSchedule, MaskingSchedule


class OptimizerConfig(Frozen):
    """AdamW with warm-up then half-cycle cosine over samples seen (AudioMAE's recipe).

    The peak learning rate is ``base_lr * batch_size / 256`` at the base batch size and is
    rescaled per step by the batch schedule's rule when the batch adapts. **choice**: the
    default 4e-3 gives a peak of 2.5e-4 at the default batch 16, AudioMAE's peak (2e-4 x
    512 / 256 = 4e-4) order of magnitude; AudioMAE's base_lr 2e-4 at batch 16 (peak 1.25e-5)
    barely moves the weights in a few-minute run.
    """

    base_lr: float = Field(4e-3, gt=0)
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)
    fused: bool = Field(
        True,
        description="fused AdamW kernel (same update within float tolerance; faster on CPU)",
    )


# Settings that change how a run executes, not what it computes (the fused AdamW kernel and
# torch.compile give the same results within float tolerance): left out of the run id.
EXECUTION_FIELDS: dict[str, Any] = {
    "threads": True,
    "num_workers": True,
    "data_cache": True,
    "log_every": True,
    "checkpoint_every": True,
    "snapshot_every": True,
    "compile": True,
    "optimizer": {"fused"},
}


# PretrainConfig fields left out of ``model_dump`` while they are None (see
# ``PretrainConfig._drop_unset_fields``).
UNSET_LEAVES_DUMP: tuple[str, ...] = ("snapshot_every", "replica")


class PretrainConfig(Frozen):
    """One pre-training run."""

    preset: str = "tiny"
    variant: str = "cross-attn"
    model_overrides: dict[str, Any] = Field(
        default_factory=dict, description="dotted ModelConfig overrides"
    )
    data: str = "synthetic"
    data_cache: Literal["none", "memory"] = "memory"
    num_workers: int = Field(0, ge=0)
    masking: MaskingSchedule = MaskingSchedule()
    batch: BatchSchedule = BatchSchedule()
    optimizer: OptimizerConfig = OptimizerConfig()
    budget_samples: int = Field(
        16384,
        gt=0,
        description="run length in samples seen (default: ~3 min at tiny on 2 CPU cores)",
    )
    seed: int = Field(0, ge=0)
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["fp32", "bf16"] = "fp32"
    threads: int | None = Field(None, gt=0, description="torch CPU threads (None: leave as is)")
    compile: bool = Field(
        False, description="torch.compile the transformer components (diffmavil.training.compile)"
    )
    log_every: int = Field(1, gt=0, description="steps between logged rows (host syncs)")
    checkpoint_every: int = Field(25, gt=0, description="steps between checkpoints")
    snapshot_every: int | None = Field(
        None,
        gt=0,
        description="samples between encoder snapshots for time-to-accuracy curves "
        "(diffmavil.training.snapshots); None: no snapshots",
    )
    replica: int | None = Field(
        None,
        ge=1,
        description="a copy of this run that trains identically under its own run id, to "
        "measure the wall-clock noise of the baseline against itself; None: the run itself",
    )
    inject_nan_at_step: int | None = Field(
        None, ge=0, description="testing knob: make the loss NaN at this step"
    )

    @model_validator(mode="after")
    def _resolve_model(self) -> PretrainConfig:
        # Building the model config validates preset, variant and overrides.
        self.model  # noqa: B018
        if self.dtype == "bf16" and self.device != "cuda":
            raise ValueError("dtype=bf16: bf16 autocast is only supported with device=cuda")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Fields added after run ids were first hashed leave the dump while unset, so the
        # dump (hashed whole by the ablation grids' row ids) of every existing config is
        # what it was.
        payload = handler(self)
        for name in UNSET_LEAVES_DUMP:
            if getattr(self, name) is None:
                payload.pop(name, None)
        return payload

    @property
    def model(self) -> ModelConfig:
        return make_config(self.preset, self.variant, dict(self.model_overrides))

    def run_id(self) -> str:
        """A short hash of what determines the run's results: the same config gives the same
        id. Execution settings (threads, workers, cache, logging, checkpoint and snapshot
        cadence) change how a run executes, not what it computes, so they are left out."""
        return config_hash(self.model_dump(mode="json", exclude=EXECUTION_FIELDS))


def config_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


PROBE_EPOCHS = 100
PROBE_ID_PATIENCE = 3  # the patience default when probe run ids were first hashed
EARLY_STOPPING_PATIENCE = 3  # --early-stopping without --patience
PROBE_LR = 1e-2  # a linear head on standardised frozen features
# **choice**: the peak of a fine-tune's warm-up + cosine schedule, ten times below the
# probe's: a full fine-tune moves the encoders' weights too, and the probe's rate wrecks
# them; the measured rates are compared in reports/finetune/README.md.
FINETUNE_LR = 1e-3
# **choice**: a fine-tune's encoders see a random quarter of each clip's patches per
# training step (patch dropout, as in AudioMAE's fine-tune masking and FLIP): a step costs
# about a quarter, so the default fine-tune runs three times the epochs in the time, and
# the dropout regularises. It matched training on every patch on the synthetic task at tiny
# (reports/finetune/README.md), and was measured there only: on other data, compare
# ``--patch-keep 1`` before relying on it.
FINETUNE_PATCH_KEEP = 0.25


class FinetuneConfig(Frozen):
    """Downstream evaluation: a linear probe on frozen pooled features, or a full fine-tune.

    The probe standardises features with the training split's statistics and trains a
    linear classifier with AdamW for ``epochs`` full-data epochs (default 100); the same
    probe is used for every initialisation (pre-trained, random) and for raw fbank features.

    A full fine-tune (``mode="finetune"``) trains for ``epochs`` epochs (default: chosen for
    the data size, see ``diffmavil.training.finetune.finetune_epochs``) with a warm-up +
    cosine learning rate over those epochs. With a ``patience`` it holds out
    ``validation_fraction`` of the training items, stops early once the validation loss has
    not improved for ``patience`` epochs and keeps the weights of the best epoch.
    """

    data: str = "synthetic"
    mode: Literal["probe", "finetune"] = "probe"
    modality: Literal["audio", "audio-video"] = "audio"
    features: Literal["encoder", "fused"] = Field(
        "encoder", description="pool encoder outputs, or fusion-encoder outputs"
    )
    fold: int | None = Field(None, ge=1, description="ESC-50 evaluation fold")
    epochs: int | None = Field(
        None,
        gt=0,
        description="epochs (at most, for finetune); None: 100 for a probe, "
        "chosen for the data size for a finetune",
    )
    patience: int | None = Field(
        None,
        gt=0,
        description="finetune: hold out a validation split and stop after this many epochs "
        "without a better validation loss; None (default): no early stopping, every item "
        "trains for the planned epochs of the cosine schedule",
    )
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="finetune: training items held out for early stopping"
    )
    batch_size: int = Field(64, gt=0)
    lr: float | None = Field(
        None,
        gt=0,
        description=f"learning rate; None: {PROBE_LR:g} for a probe, {FINETUNE_LR:g} for a "
        "finetune (see ``learning_rate``)",
    )
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine",
        description="finetune: linear warm-up over warmup_fraction of the planned steps, "
        "then a half cosine to 0 (AudioMAE's fine-tune), or constant; a probe's rate is "
        "always constant",
    )
    warmup_fraction: float = Field(
        0.1, ge=0, lt=1, description="finetune: share of the planned steps that warm up"
    )
    head_epochs: int = Field(
        0,
        ge=0,
        description="finetune: first train the head alone (LayerNorm + linear, at the "
        "probe's rate) on the frozen encoders' pooled features for this many epochs, then "
        "fine-tune everything from it (LP-FT); 0: the fine-tune starts from a random head",
    )
    patch_keep: float = Field(
        FINETUNE_PATCH_KEEP,
        gt=0,
        le=1,
        description="finetune: share of each clip's patches the encoders see in a training "
        "step, a random subset per clip and step (patch dropout); evaluation sees every "
        "patch; 1: all",
    )
    weight_decay: float = Field(1e-4, ge=0)
    specaugment_freq: int = Field(0, ge=0, description="max frequency-mask width (finetune)")
    specaugment_time: int = Field(0, ge=0, description="max time-mask width (finetune)")
    mixup: float = Field(0.0, ge=0, description="mixup alpha (finetune), 0 = off")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    seed: int = Field(0, ge=0)
    probe_seeds: int = Field(
        1,
        ge=1,
        description="probe: train the linear head this many times (seeds seed, seed+1, ...) "
        "on the same frozen features and report the mean; cuts the probe's own noise",
    )
    max_train_items: int | None = Field(None, gt=0)
    max_eval_items: int | None = Field(None, gt=0)
    compile: bool = Field(False, description="torch.compile the encoders (fusion included)")

    def identity(self) -> dict[str, Any]:
        """What determines the evaluation's result, for run ids. ``probe_seeds`` enters only
        when it is not 1, ``lr`` as the rate used, and the fine-tune's schedule only for a
        finetune, so the run ids of grids written before these existed stay the same."""
        payload = self.model_dump(mode="json")
        if self.probe_seeds == 1:
            del payload["probe_seeds"]
        if self.mode == "probe" or self.head_epochs == 0:
            del payload["head_epochs"]
        if self.mode == "probe":
            del payload["patch_keep"]
        if self.mode == "probe":
            del payload["lr_schedule"], payload["warmup_fraction"]
            if self.patience is None:  # a probe never stops early: ids keep the old default
                payload["patience"] = PROBE_ID_PATIENCE
        payload["lr"] = self.learning_rate  # the rate used, whether given or defaulted
        return payload

    @property
    def learning_rate(self) -> float:
        """``lr``, or the mode's default when it is None: ``PROBE_LR`` or ``FINETUNE_LR``."""
        if self.lr is not None:
            return self.lr
        return PROBE_LR if self.mode == "probe" else FINETUNE_LR

    @property
    def probe_epochs(self) -> int:
        return self.epochs if self.epochs is not None else PROBE_EPOCHS


def load_pretrain_config(payload: dict[str, Any]) -> PretrainConfig:
    """Validate a dict (from YAML/JSON/CLI) into a PretrainConfig; errors are one line."""
    from pydantic import ValidationError

    from diffmavil.config import format_validation_error

    try:
        return PretrainConfig.model_validate(payload)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
