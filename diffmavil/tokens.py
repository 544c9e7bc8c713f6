"""Token counts: pure functions shared by the model, the FLOP model and the schedules.

Nothing here imports torch, so the closed-form FLOP model and the schedule planner can
use exactly the same arithmetic as the model does at run time.
"""

from __future__ import annotations

import math

# Tolerance for float error in ``num_tokens * (1 - ratio)``: int(100 * (1 - 0.9)) is 9
# in IEEE doubles although the exact answer is 10. A ratio is never meant to resolve
# finer than 1e-9 of a token.
_RATIO_EPS = 1e-9


def keep_count(num_tokens: int, mask_ratio: float) -> int:
    """Number of visible (kept) tokens out of ``num_tokens`` at ``mask_ratio``.

    MAE semantics (``int(L * (1 - r))``) made safe against float error, and clamped so
    that at least one token is kept and at least one is masked, whatever the ratio.
    """
    if num_tokens < 2:
        raise ValueError(f"num_tokens={num_tokens}: need at least 2 tokens to mask")
    return min(num_tokens - 1, max(1, unclamped_keep_count(num_tokens, mask_ratio)))


def unclamped_keep_count(num_tokens: int, mask_ratio: float) -> int:
    """``int(L * (1 - r))`` safe against float error, before ``keep_count``'s clamp: 0 or
    ``num_tokens`` here means the grid is too coarse for this ratio (the clamp would change
    the ratio the run actually masks at)."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio={mask_ratio}: allowed values lie strictly between 0 and 1")
    return math.floor(num_tokens * (1.0 - mask_ratio) + _RATIO_EPS)


def masked_count(num_tokens: int, mask_ratio: float) -> int:
    """Number of masked tokens: ``num_tokens - keep_count(num_tokens, mask_ratio)``."""
    return num_tokens - keep_count(num_tokens, mask_ratio)
