"""Search for a preset that keeps base's FLOP proportions at CPU cost.

A small preset answers the paper's efficiency question only if its FLOPs split like base's:
every Table-2 row's whole-run saving vs MAViL and every component's share of the run's
FLOPs must stay within a tolerance of base's. Both are ratios of the closed-form FLOP model
(``diffmavil.flops``) integrated over the rows' step plans (``bench.flops.run``), so the
search is exact arithmetic, no training: enumerate token grids, patch and tubelet sizes,
widths, depths and MLP ratios (``SearchSpace``), keep the candidates whose grids keep at
least one visible and one masked token per modality at every ratio of the recipe without
clamping, and rank those within the tolerance by training FLOPs per sample.

Two stages keep it fast: the fixed-masking rows are exact per sample (one ``model_flops``
call per variant), so they prune first with a slack for the InfoNCE term; only the
survivors get the whole-run plans of the curriculum rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bench.flops.run import run_saving
from diffmavil.config import (
    COMPONENTS,
    MODALITIES,
    VARIANTS,
    ConfigError,
    ModelConfig,
    make_config,
)
from diffmavil.flops import model_flops
from diffmavil.schedules import BatchSchedule, MaskingSchedule
from diffmavil.tokens import unclamped_keep_count

# Table 2's rows as recipes: (variant, masking kind, batch kind); every row's saving is
# against MAViL's recipe (fixed masking at the start ratios, fixed batch) on the same
# budget. Mirrors ablations/table2.yaml (the compute-matched control is MAViL on another
# budget: its proportions are MAViL's).
TABLE2_ROWS: dict[str, tuple[str, str, str]] = {
    "mavil": ("mavil", "fixed", "fixed"),
    "diff-self": ("diff-self", "fixed", "fixed"),
    "cross-attn": ("cross-attn", "fixed", "fixed"),
    "cross-attn+curriculum": ("cross-attn", "curriculum", "fixed"),
    "diffmavil": ("cross-attn", "curriculum", "adaptive"),
    "cross-attn-both+recipe": ("cross-attn-both", "curriculum", "adaptive"),
}
# Base's whole run as in ablations/table2-flops.yaml; a small preset's as in table2.yaml.
BASE_BATCH, BASE_BUDGET = 512, 2_000_000
PRESET_BATCH, PRESET_BUDGET = 16, 16_384
TOLERANCE = 0.02  # 2 points of saving and of every component's share


@dataclass(frozen=True)
class RowProportions:
    """One row's whole run: saving vs MAViL's recipe (fraction, positive = fewer FLOPs),
    each component's share of the run's FLOPs (fractions summing to 1) and training FLOPs
    (forward + backward) per sample seen."""

    saving: float
    shares: dict[str, float]
    flops_per_sample: float


def _recipe(masking: str, batch: str, batch_size: int) -> tuple[MaskingSchedule, BatchSchedule]:
    """Table 2's settings: the default curriculum (0.8/0.9 -> 0.9/0.95, linear over the
    budget) and adaptive batch (rule tokens), or the fixed ones."""
    return MaskingSchedule(kind=masking), BatchSchedule(kind=batch, batch_size=batch_size)


def proportions(
    config_of: Callable[[str], ModelConfig],
    batch_size: int = PRESET_BATCH,
    budget_samples: int = PRESET_BUDGET,
) -> dict[str, RowProportions]:
    """Every Table-2 row's whole-run proportions; ``config_of(variant)`` gives the model."""
    rows: dict[str, RowProportions] = {}
    for row, (variant, masking, batch) in TABLE2_ROWS.items():
        result = run_saving(
            config_of(variant), *_recipe(masking, batch, batch_size), budget_samples
        )
        run = result["run"]
        total = run["total_flops"]
        rows[row] = RowProportions(
            saving=result["saving"],
            shares={c: run["components"][c] / total for c in COMPONENTS},
            flops_per_sample=total / run["samples"],
        )
    return rows


def preset_proportions(
    preset: str, batch_size: int | None = None, budget_samples: int | None = None
) -> dict[str, RowProportions]:
    """A named preset's proportions; base at its Table-2 FLOP settings (batch 512, 2M
    samples), any other preset at table2.yaml's (batch 16, 16,384 samples) by default."""
    is_base = preset == "base"
    return proportions(
        lambda variant: make_config(preset, variant),
        batch_size or (BASE_BATCH if is_base else PRESET_BATCH),
        budget_samples or (BASE_BUDGET if is_base else PRESET_BUDGET),
    )


def deviation(candidate: dict[str, RowProportions], reference: dict[str, RowProportions]) -> float:
    """Largest absolute difference (fraction) over rows of the saving and of every share."""
    worst = 0.0
    for row, ref in reference.items():
        ours = candidate[row]
        worst = max(worst, abs(ours.saving - ref.saving))
        worst = max(worst, *(abs(ours.shares[c] - ref.shares[c]) for c in COMPONENTS))
    return worst


def recipe_ratios() -> list[tuple[float, float]]:
    """The (audio, video) mask ratios Table 2's recipes reach: the fixed/start ratios and
    the curriculum's end (keep counts are monotone in the ratio, so the ends suffice)."""
    schedule = MaskingSchedule(kind="curriculum")
    return [schedule.start, schedule.end]


def tokens_fit(config: ModelConfig, ratios: list[tuple[float, float]] | None = None) -> bool:
    """At least one visible and one masked token per modality at every ratio, before
    ``keep_count``'s clamp (a clamped count would mask at another ratio than asked)."""
    for pair in ratios or recipe_ratios():
        for modality, ratio in zip(MODALITIES, pair, strict=True):
            tokens = config.num_patches(modality)
            if not 1 <= unclamped_keep_count(tokens, ratio) <= tokens - 1:
                return False
    return True


class SearchSpace(BaseModel):
    """The candidates: every combination of these values. Audio grids are (time patches,
    frequency patches) of square patches; video grids (time tubes, spatial patches per side)
    of tubelet x patch x patch tubes. Every stack gets ``heads`` heads (heads do not change
    FLOPs; every width must be a multiple of it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audio_grids: tuple[tuple[int, int], ...] = ((12, 4), (16, 3), (16, 4))
    audio_patches: tuple[int, ...] = (6, 8)
    video_grids: tuple[tuple[int, int], ...] = ((4, 4), (4, 5), (4, 6))
    video_patches: tuple[int, ...] = (6,)
    tubelet: int = Field(2, gt=0)
    encoder_dims: tuple[int, ...] = (48, 64, 80, 96)
    encoder_depths: tuple[int, ...] = (6, 8, 12)
    fusion_depths: tuple[int, ...] = (1, 2, 3)
    decoder_dims: tuple[int, ...] = (32, 48, 64)
    decoder_depths: tuple[int, ...] = (2, 4, 6, 8)
    mlp_ratios: tuple[float, ...] = (4.0,)
    heads: int = Field(4, gt=0)
    contrastive_dim: int = Field(64, gt=0)

    def size(self) -> int:
        return (
            len(self.audio_grids) * len(self.audio_patches) * len(self.video_grids)
            * len(self.video_patches) * len(self.encoder_dims) * len(self.encoder_depths)
            * len(self.fusion_depths) * len(self.decoder_dims) * len(self.decoder_depths)
            * len(self.mlp_ratios)
        )  # fmt: skip

    def presets(self) -> Iterator[dict[str, Any]]:
        """Every candidate as a preset dict (the format of ``diffmavil.config.PRESETS``)."""
        for (at, af), ap, (vt, vs), vp, mlp in itertools.product(
            self.audio_grids, self.audio_patches, self.video_grids, self.video_patches,
            self.mlp_ratios,
        ):  # fmt: skip
            inputs = {
                "audio": {"target_frames": at * ap, "mel_bins": af * ap,
                          "patch_time": ap, "patch_freq": ap},
                "video": {"frames": vt * self.tubelet, "height": vs * vp, "width": vs * vp,
                          "tubelet": self.tubelet, "patch": vp},
            }  # fmt: skip
            for ed, edepth, fusion, dd, ddepth in itertools.product(
                self.encoder_dims, self.encoder_depths, self.fusion_depths,
                self.decoder_dims, self.decoder_depths,
            ):  # fmt: skip
                decoder = self._size(dd, ddepth, mlp)
                yield {
                    **inputs,
                    "encoder": self._size(ed, edepth, mlp),
                    "fusion_depth": fusion,
                    "audio_decoder": decoder,
                    "video_decoder": dict(decoder),
                    "loss": {"contrastive_dim": self.contrastive_dim},
                }

    def _size(self, dim: int, depth: int, mlp_ratio: float) -> dict[str, Any]:
        return {"dim": dim, "depth": depth, "heads": self.heads,
                "mlp_ratio": mlp_ratio}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """A preset within the tolerance: its dict, its largest deviation from base (fraction),
    MAViL's training FLOPs per sample at the start ratios, and its rows' proportions."""

    preset: dict[str, Any]
    deviation: float
    flops_per_sample: int
    rows: dict[str, RowProportions]


def _config(preset: dict[str, Any], variant: str) -> ModelConfig:
    # every size field of base is overridden by the candidate's dict
    return make_config("base", variant, preset).model_copy(update={"preset": "candidate"})


def _variants(mavil: ModelConfig) -> dict[str, ModelConfig]:
    """Every variant of a MAViL config, its decoders updated as ``VARIANTS`` says (a copy,
    not a re-validation: the search builds thousands)."""
    configs = {}
    for variant, override in VARIANTS.items():
        update = {
            f"{m}_decoder": mavil.decoder(m).model_copy(update=override[f"{m}_decoder"])
            for m in MODALITIES
        }
        configs[variant] = mavil.model_copy(update={**update, "variant": variant})
    return configs


def _fixed_rows_deviation(
    configs: dict[str, ModelConfig], reference: dict[str, RowProportions]
) -> float:
    """Per-sample deviation of the fixed-masking rows at the start ratios (exact up to the
    InfoNCE logits, which grow with the batch)."""
    start = MaskingSchedule().start
    fixed = [row for row, (_, masking, _) in TABLE2_ROWS.items() if masking == "fixed"]
    per_sample = {row: model_flops(configs[TABLE2_ROWS[row][0]], start, 1) for row in fixed}
    mavil = per_sample["mavil"].total
    worst = 0.0
    for row, flops in per_sample.items():
        worst = max(worst, abs(1.0 - flops.total / mavil - reference[row].saving))
        for c in COMPONENTS:
            share = flops.component_total(c) / flops.total
            worst = max(worst, abs(share - reference[row].shares[c]))
    return worst


def search(
    space: SearchSpace | None = None,
    *,
    tolerance: float = TOLERANCE,
    max_flops_per_sample: float | None = None,
    batch_size: int = PRESET_BATCH,
    budget_samples: int = PRESET_BUDGET,
    reference: dict[str, RowProportions] | None = None,
    limit: int = 10,
) -> list[Candidate]:
    """The cheapest candidates of ``space`` (MAViL's training FLOPs per sample at the
    start ratios, then deviation) whose whole-run proportions at (batch_size,
    budget_samples) lie within ``tolerance`` of ``reference`` (default: base's) and whose
    grids fit the recipe's ratios. At most ``limit`` are returned."""
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance={tolerance}: allowed values lie strictly between 0 and 1")
    reference = reference or preset_proportions("base")
    start = MaskingSchedule().start
    found: list[Candidate] = []
    for preset in (space or SearchSpace()).presets():
        try:
            mavil = _config(preset, "mavil")
        except ConfigError:  # e.g. a width that the heads do not divide
            continue
        if not tokens_fit(mavil):
            continue
        cost = model_flops(mavil, start, 1).total
        if max_flops_per_sample is not None and cost > max_flops_per_sample:
            continue
        configs = _variants(mavil)
        # the InfoNCE logits are < 0.1% of any candidate's FLOPs: 0.5 points of slack
        if _fixed_rows_deviation(configs, reference) > tolerance + 0.005:
            continue
        rows = proportions(configs.__getitem__, batch_size, budget_samples)
        worst = deviation(rows, reference)
        if worst <= tolerance:
            found.append(Candidate(preset, worst, cost, rows))
    found.sort(key=lambda c: (c.flops_per_sample, c.deviation))
    return found[:limit]


def describe(preset: dict[str, Any]) -> str:
    """One line: input grids, widths x depths."""
    config = _config(preset, "mavil")
    audio, video, enc, dec = config.audio, config.video, config.encoder, config.audio_decoder
    return (
        f"audio {audio.target_frames}x{audio.mel_bins} / {audio.patch_time}x{audio.patch_freq}"
        f" = {audio.num_patches}, video {video.frames}x{video.height}x{video.width} / "
        f"{video.tubelet}x{video.patch}x{video.patch} = {video.num_patches}, encoders "
        f"{enc.dim}x{enc.depth} (mlp {enc.mlp_ratio:g}), fusion {config.fusion_depth}, "
        f"decoders {dec.dim}x{dec.depth} (mlp {dec.mlp_ratio:g})"
    )


def comparison_rows(preset: str, reference: str = "base") -> list[dict[str, Any]]:
    """``preset`` beside ``reference`` row by row (each at its default whole-run settings):
    training FLOPs per sample seen, saving vs MAViL and component shares (fractions), then
    one row of the largest absolute difference per column."""
    ours, theirs = preset_proportions(preset), preset_proportions(reference)
    rows: list[dict[str, Any]] = []
    for row in TABLE2_ROWS:
        for name, table in ((preset, ours), (reference, theirs)):
            rows.append(
                {
                    "row": row,
                    "preset": name,
                    "gflop_per_sample": table[row].flops_per_sample / 1e9,
                    "saving": table[row].saving,
                    **table[row].shares,
                }
            )
    difference: dict[str, Any] = {"row": "max abs difference", "preset": f"{preset} - {reference}"}
    difference["gflop_per_sample"] = ""
    difference["saving"] = max(abs(ours[r].saving - theirs[r].saving) for r in TABLE2_ROWS)
    for c in COMPONENTS:
        difference[c] = max(abs(ours[r].shares[c] - theirs[r].shares[c]) for r in TABLE2_ROWS)
    rows.append(difference)
    return rows
