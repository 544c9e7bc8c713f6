"""The paper's headline figures beside **our base-size** whole-run figures, computed when
results are produced (a grid's results, ``diffbench flops`` / ``time`` JSON) and stored in
them as a ``bench.schema.PaperHeadline``; the report only renders it.

The paper's figures (DiffMAViL abstract, arXiv 2310.03937): 32% fewer pre-training FLOPs and
18% less pre-training wall-clock than MAViL. Ours come from the closed-form FLOP model
(``diffmavil.flops.model_flops`` integrated over ``diffmavil.schedules.plan_run`` by
``bench.flops.run_saving``) for the full recipe (cross-attn + masking curriculum + adaptive
batch) against the MAViL recipe, both at the ``base`` preset.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from bench.flops.run import PAPER_SAVING

if TYPE_CHECKING:
    from bench.schema import PaperHeadline

PAPER_FLOPS_SAVING = PAPER_SAVING  # abstract: "32% reduction in pre-training FLOPS"
PAPER_WALL_CLOCK_SAVING = 0.18  # abstract: "18% decrease in pre-training wall clock time"
HEADLINE_SAMPLES = 2_000_000  # `diffbench flops` default whole-run budget
SENSITIVITY_SAMPLES = 200_000  # the saving moves < 0.01 points between 2e5 and 2e6 samples


def _recipe():
    from bench.requests import WHOLE_RUN_BATCH
    from diffmavil.config import make_config
    from diffmavil.schedules import BatchSchedule, MaskingSchedule

    return (
        make_config("base", "cross-attn"),
        MaskingSchedule(kind="curriculum"),
        BatchSchedule(kind="adaptive", batch_size=WHOLE_RUN_BATCH),
    )


def choices() -> list[dict[str, str]]:
    """Our design choices (docs/model.md), with the values the base recipe uses."""
    config, masking, batch = _recipe()
    dec = config.video_decoder
    diff = config.diffusion
    loss = config.loss
    return [
        {
            "label": "curriculum end points",
            "value": f"{masking.shape} over samples seen, from the fixed ratios "
            f"{masking.audio}/{masking.video} (audio/video) up to "
            f"{masking.audio_end}/{masking.video_end}, over {masking.fraction:.0%} of the "
            "budget; the paper states a curriculum, not its end points or direction",
        },
        {
            "label": "batch rule",
            "value": f"adaptive, rule `{batch.rule}` (visible encoder tokens per step constant), "
            f"multiple of {batch.multiple}, learning rate rescaled ({batch.lr_scaling}); "
            "the paper says only that the batch adapts to the masking ratio",
        },
        {
            "label": "decoder sizes",
            "value": f"{dec.dim} wide, {dec.depth} deep, {dec.heads} heads per decoder "
            "(AudioMAE's); MAViL's decoder sizes are unpublished",
        },
        {
            "label": "diffusion T and schedule",
            "value": f"T = {diff.timesteps}, {diff.schedule} noise schedule, x0 target "
            "(DiffMAE predicts pixels)",
        },
        {
            "label": "fixed mask ratios",
            "value": f"audio {masking.audio} (AudioMAE), video {masking.video} (VideoMAE practice)",
        },
        {
            "label": "contrastive loss",
            "value": f"inter-modal InfoNCE weight {loss.contrastive_weight}, temperature "
            f"{loss.temperature}",
        },
        {
            "label": "cross decoder context",
            "value": "the final (fused) encoder output; DiffMAE connects decoder blocks to encoder "
            "blocks top-down",
        },
    ]


@lru_cache(maxsize=2)
def paper_headline(
    samples: int = HEADLINE_SAMPLES, sensitivity_samples: int = SENSITIVITY_SAMPLES
) -> PaperHeadline:
    """The headline figures at base size (closed form), their sensitivity and our choices."""
    from bench.flops.run import run_saving, sensitivity
    from bench.schema import HeadlineFigure, PaperHeadline, SensitivityRow

    config, masking, batch = _recipe()
    result = run_saving(config, masking, batch, samples)
    run, base = result["run"], result["baseline"]
    return PaperHeadline(
        figures=[
            HeadlineFigure(
                figure="flops_saving",
                paper=PAPER_FLOPS_SAVING,
                ours_base=result["saving"],
                run_flops=run["total_flops"],
                baseline_flops=base["total_flops"],
                run_steps=run["steps"],
                baseline_steps=base["steps"],
                samples=samples,
            ),
            HeadlineFigure(figure="wall_clock_saving", paper=PAPER_WALL_CLOCK_SAVING),
        ],
        base_batch=batch.batch_size,
        headline_samples=samples,
        sensitivity_samples=sensitivity_samples,
        fixed_mask_ratio=masking.start,
        sensitivity=[
            SensitivityRow.model_validate(row)
            for row in sensitivity(config, masking, batch, sensitivity_samples)
        ],
        choices=choices(),
    )
