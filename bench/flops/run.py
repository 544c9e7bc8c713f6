"""Whole-run FLOPs: the closed form integrated over a recipe's step plan, the saving against
the MAViL baseline recipe, and how that saving moves with our own choices (sensitivity)."""

from __future__ import annotations

import copy
from collections import Counter
from functools import lru_cache
from typing import Any

from diffmavil.config import COMPONENTS, MODALITIES, ModelConfig
from diffmavil.flops import model_flops
from diffmavil.schedules import BatchSchedule, MaskingSchedule, plan_run
from diffmavil.tokens import keep_count

PAPER_SAVING = 0.32  # DiffMAViL abstract: "32% reduction in pre-training FLOPS"


def run_flops(
    config: ModelConfig,
    masking: MaskingSchedule,
    batch: BatchSchedule,
    budget_samples: int,
) -> dict[str, Any]:
    """Total model FLOPs (forward + backward) of a run: ``model_flops(config,
    step.mask_ratio, step.batch_size)`` summed over ``plan_run``'s steps.

    -> {total_flops, forward_flops, backward_flops, steps, samples, components: {c: fwd+bwd},
    mean_batch, first/last ratios}. Steps with the same visible-token counts and batch size
    cost the same, so they are summed in groups (exactly). Cached per recipe.
    """
    return copy.deepcopy(_run_flops(config, masking, batch, int(budget_samples)))


@lru_cache(maxsize=256)
def _run_flops(
    config: ModelConfig,
    masking: MaskingSchedule,
    batch: BatchSchedule,
    budget_samples: int,
) -> dict[str, Any]:
    plan = plan_run(config, masking, batch, budget_samples)
    groups: Counter[tuple[tuple[int, int], int]] = Counter()
    representative: dict[tuple[int, int], tuple[float, float]] = {}
    audio_patches, video_patches = (config.num_patches(m) for m in MODALITIES)
    for step in plan:
        audio, video = step.mask_ratio
        visible = (keep_count(audio_patches, audio), keep_count(video_patches, video))
        representative.setdefault(visible, step.mask_ratio)
        groups[(visible, step.batch_size)] += 1
    forward = backward = 0
    components = dict.fromkeys(COMPONENTS, 0)
    for (visible, size), count in groups.items():
        flops = model_flops(config, representative[visible], size)
        forward += count * flops.total_forward
        backward += count * flops.total_backward
        for name in COMPONENTS:
            components[name] += count * flops.component_total(name)
    return {
        "total_flops": forward + backward,
        "forward_flops": forward,
        "backward_flops": backward,
        "steps": len(plan),
        "samples": sum(step.batch_size for step in plan),
        "components": components,
        "mean_batch": sum(step.batch_size for step in plan) / len(plan),
        "first_mask_ratio": plan[0].mask_ratio,
        "last_mask_ratio": plan[-1].mask_ratio,
    }


def baseline_config(config: ModelConfig) -> ModelConfig:
    """The MAViL baseline of ``config``: same sizes, self-attention decoders, [MASK] tokens."""
    decoders = {
        f"{m}_decoder": config.decoder(m).model_copy(update={"kind": "self", "diffusion": False})
        for m in MODALITIES
    }
    return config.model_copy(update={**decoders, "variant": "mavil"})


def baseline_recipe(
    masking: MaskingSchedule, batch: BatchSchedule
) -> tuple[MaskingSchedule, BatchSchedule]:
    """MAViL's recipe: fixed masking at the recipe's start ratios, fixed base batch."""
    return (
        MaskingSchedule(kind="fixed", audio=masking.audio, video=masking.video),
        BatchSchedule(kind="fixed", batch_size=batch.batch_size),
    )


def run_saving(
    config: ModelConfig,
    masking: MaskingSchedule,
    batch: BatchSchedule,
    budget_samples: int,
) -> dict[str, Any]:
    """Whole-run FLOPs of a recipe and of the MAViL baseline recipe on the same budget.

    -> {run, baseline, saving}: saving = 1 - run / baseline (positive = fewer FLOPs)."""
    ours = run_flops(config, masking, batch, budget_samples)
    base_masking, base_batch = baseline_recipe(masking, batch)
    base = run_flops(baseline_config(config), base_masking, base_batch, budget_samples)
    return {
        "run": ours,
        "baseline": base,
        "saving": 1.0 - ours["total_flops"] / base["total_flops"],
    }


def _decoders(config: ModelConfig, **update: Any) -> ModelConfig:
    specs = {f"{m}_decoder": config.decoder(m).model_copy(update=update) for m in MODALITIES}
    return ModelConfig.model_validate({**config.model_dump(), **specs})


def sensitivity(
    config: ModelConfig,
    masking: MaskingSchedule,
    batch: BatchSchedule,
    budget_samples: int,
) -> list[dict[str, Any]]:
    """How the whole-run saving vs MAViL moves with our choices: each row changes one
    assumption of the given recipe (decoder width, decoder depth, curriculum end points,
    batch rule, masking kind), the baseline sharing the same decoder sizes."""
    rows: list[dict[str, Any]] = []

    def add(group: str, setting: str, cfg: ModelConfig, mask: MaskingSchedule, bat: BatchSchedule):
        result = run_saving(cfg, mask, bat, budget_samples)
        rows.append(
            {
                "assumption": group,
                "setting": setting,
                "saving": result["saving"],
                "run_flops": result["run"]["total_flops"],
                "baseline_flops": result["baseline"]["total_flops"],
                "steps": result["run"]["steps"],
                "reaches_paper": result["saving"] >= PAPER_SAVING,
            }
        )

    dec = config.video_decoder
    add("as given", _describe(config, masking, batch), config, masking, batch)
    for width in (128, 256, 384, 512, 768):
        heads = max(1, width // (dec.dim // dec.heads))
        narrow = _decoders(config, dim=width, heads=heads)
        add("decoder width", f"{width} ({heads} heads)", narrow, masking, batch)
    for depth in (1, 2, 4, 8, 12):
        add("decoder depth", str(depth), _decoders(config, depth=depth), masking, batch)
    for end in ((0.85, 0.925), (0.9, 0.95), (0.95, 0.95), (0.95, 0.975), (0.97, 0.985)):
        add("curriculum end", f"{end[0]}/{end[1]}", config, _curriculum(masking, end), batch)
    add("masking", "fixed", config, masking.model_copy(update={"kind": "fixed"}), batch)
    for rule in ("tokens", "flops"):
        adaptive = batch.model_copy(update={"kind": "adaptive", "rule": rule})
        add("batch rule", f"adaptive/{rule}", config, masking, adaptive)
    add("batch rule", "fixed", config, masking, batch.model_copy(update={"kind": "fixed"}))
    for variant in ("cross-attn", "cross-attn-both"):
        other = config.model_copy(
            update={
                "audio_decoder": config.audio_decoder.model_copy(
                    update={"kind": "cross" if variant == "cross-attn-both" else "self"}
                ),
                "variant": variant,
            }
        )
        add("variant", variant, other, masking, batch)
    # combinations: what it takes to reach the paper's figure under our other choices
    narrow = _decoders(config, dim=256, heads=max(1, 256 // (dec.dim // dec.heads)))
    high = _curriculum(masking, (0.95, 0.975))
    add("combined", "decoders 256 wide + end 0.95/0.975", narrow, high, batch)
    both = config.model_copy(
        update={"audio_decoder": config.audio_decoder.model_copy(update={"kind": "cross"})}
    )
    add("combined", "cross-attn-both + end 0.95/0.975", both, high, batch)
    narrow_both = _decoders(both, dim=256, heads=max(1, 256 // (dec.dim // dec.heads)))
    add("combined", "cross-attn-both + 256 wide + end 0.95/0.975", narrow_both, high, batch)
    return rows


def _curriculum(masking: MaskingSchedule, end: tuple[float, float]) -> MaskingSchedule:
    return masking.model_copy(
        update={"kind": "curriculum", "audio_end": end[0], "video_end": end[1]}
    )


def _describe(config: ModelConfig, masking: MaskingSchedule, batch: BatchSchedule) -> str:
    dec = config.video_decoder
    mask = (
        f"curriculum {masking.audio}/{masking.video}->{masking.audio_end}/{masking.video_end}"
        if masking.kind == "curriculum"
        else f"fixed {masking.audio}/{masking.video}"
    )
    bat = f"adaptive/{batch.rule}" if batch.kind == "adaptive" else "fixed"
    return f"{config.variant}, decoders {dec.dim}x{dec.depth}, {mask}, batch {bat}"
