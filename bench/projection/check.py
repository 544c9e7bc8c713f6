"""``diffbench check``'s whole-run projection row (the framework is ``bench.timing.check``):
MAViL's recipe and a curriculum recipe at tiny over a few steps, two interleaved rounds,
no minimum duration, no memory probe. The projected totals must add up and sit inside
their intervals, every part positive."""

from __future__ import annotations

import math

import torch

from bench.timing.check import PRESET, VARIANT, CheckContext, Outcome
from bench.timing.check_training import DATA


def projection_request(context: CheckContext):
    from bench.projection.recipes import ProjectionRequest, mavil_recipe
    from diffmavil.training.config import PretrainConfig

    config = PretrainConfig.model_validate(
        {
            "preset": PRESET, "variant": VARIANT, "data": DATA, "budget_samples": 8,
            "masking": {"kind": "curriculum"}, "batch": {"batch_size": 2},
            "checkpoint_every": 2, "seed": context.seed, "device": context.device.type,
            "threads": None if context.cuda else torch.get_num_threads(),
        }
    )  # fmt: skip
    return ProjectionRequest(
        recipes={"mavil": mavil_recipe(config), f"{VARIANT}+curriculum": config},
        repeats=2, windows=2, warmup=1, min_seconds=0.0, max_anchors=2, data_batches=1,
        fixed_repeats=1, memory=False, matmul_repeats=1, resamples=200, seed=context.seed,
    )  # fmt: skip


def projection_row(context: CheckContext) -> Outcome:
    """Both recipes projected: compute + data + overhead = projected, each part > 0, the
    interval around the estimate, a saving for the curriculum recipe only."""
    from bench.projection.measure import project_whole_run

    result = project_whole_run(projection_request(context))
    rows = {row.recipe: row for row in result.rows}
    problems = []
    for name, row in rows.items():
        parts = (row.compute_seconds, row.data_seconds, row.overhead_seconds)
        if not all(math.isfinite(p) and p > 0 for p in parts):
            problems.append(f"{name}: a part is not positive {parts}")
        if not math.isclose(sum(parts), row.projected_seconds, rel_tol=1e-9):
            problems.append(
                f"{name}: parts sum to {sum(parts):.4g}, not {row.projected_seconds:.4g}"
            )
        if not row.ci_low <= row.projected_seconds <= row.ci_high:
            problems.append(f"{name}: {row.projected_seconds:.4g} outside its interval")
    savings = {name: row.time_saving for name, row in rows.items()}
    if (
        len(rows) != 2
        or savings.get("mavil") is not None
        or None in [s for n, s in savings.items() if n != "mavil"]
    ):
        problems.append(f"recipes and savings: {savings}")
    ours = next((row for name, row in rows.items() if name != "mavil"), None)
    measured = "; ".join(problems) or (
        f"{len(rows)} recipes, {ours.steps} steps projected to {ours.projected_seconds:.2f} s "
        f"[{ours.ci_low:.2f}, {ours.ci_high:.2f}], time saving {100 * ours.time_saving:+.1f}%"
    )
    expected = "compute + data + overhead = projected, parts > 0, inside the 95% interval"
    figures = {} if ours is None else {"projected_s": round(ours.projected_seconds, 3)}
    return Outcome(not problems, expected, measured, figures)
