"""Closed-form FLOP model of DiffMAViL: a pure function of the config, the mask ratios and
the batch size. Nothing here imports torch.

Convention (the one ``torch.utils.flop_counter.FlopCounterMode`` uses):

- **2 FLOPs per multiply-accumulate**, matmul family only: linear layers, matmul / bmm, and
  attention's two products (scores ``q k^T`` and the weighted sum ``softmax(.) v``).
- Not counted: elementwise ops, biases, normalisation, softmax, GELU/SiLU, noising,
  position adds, gathers, reductions (mean pooling, losses' sums).
- **Model FLOPs** (the headline): the backward of a matmul is 2x its forward (gradient of
  the input and of the weight), attention's backward is 2x its forward (no recomputation),
  and a linear layer whose input needs no gradient (the patch embeddings, the noised-patch
  embedding, the first timestep-MLP layer, all fed by data) has a 1x backward (weight
  gradient only).
- **Hardware FLOPs** add what fused attention kernels recompute: their backward recomputes
  the scores, so they do 2.5x the forward (``hardware_attention_extra``: 0.5x the attention
  forward), reported apart from the headline.

Token counts come from ``diffmavil.tokens.keep_count``, the function the model masks with.
The terms mirror ``diffmavil/encoders.py``, ``decoders.py`` and ``model.py`` one to one;
``bench/flops`` checks them against two independent counters exactly, per component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from diffmavil.config import COMPONENTS, MODALITIES, DecoderSpec, ModelConfig
from diffmavil.tokens import keep_count

__all__ = [
    "FlopBreakdown",
    "attention_flops",
    "hardware_attention_extra",
    "model_flops",
]


@dataclass(frozen=True)
class FlopBreakdown:
    """Model FLOPs per component (keys: ``diffmavil.config.COMPONENTS``) for one batch.

    forward / backward: matmul-family FLOPs, 2 per multiply-accumulate; backward is model
    FLOPs (attention backward = 2x forward, 1x for layers whose input needs no gradient).
    attention: the forward FLOPs of the attention products alone, per component (also
    included in ``forward``); 0.5x of it is the fused-kernel recompute extra.
    """

    forward: dict[str, int]
    backward: dict[str, int]
    attention: dict[str, int] = field(default_factory=dict)

    @property
    def total_forward(self) -> int:
        return sum(self.forward.values())

    @property
    def total_backward(self) -> int:
        return sum(self.backward.values())

    @property
    def total(self) -> int:
        """Forward + backward (one training step without the optimizer)."""
        return self.total_forward + self.total_backward

    def component_total(self, component: str) -> int:
        return self.forward[component] + self.backward[component]


class _Tally:
    """Forward, backward and attention FLOPs of one component, built term by term."""

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.attention = 0

    def linear(self, rows: int, d_in: int, d_out: int, input_needs_grad: bool = True) -> None:
        """``rows`` x [d_in] @ [d_in, d_out]: 2 * rows * d_in * d_out forward. Backward:
        grad of the weight (same cost) always, grad of the input (same cost) only when the
        input needs one."""
        flops = 2 * rows * d_in * d_out
        self.forward += flops
        self.backward += 2 * flops if input_needs_grad else flops

    def attention_products(self, batch: int, queries: int, keys: int, dim: int) -> None:
        """Scores q k^T [B, h, M, d] x [B, h, d, K] and the weighted sum [B, h, M, K] x
        [B, h, K, d], summed over heads (h * d = dim): 2 * (2 * B * M * K * dim) forward,
        2x that backward (grads of q, k, v and of the probabilities, model FLOPs)."""
        flops = 2 * (2 * batch * queries * keys * dim)
        self.forward += flops
        self.backward += 2 * flops
        self.attention += flops

    def matmul(self, batch: int, m: int, k: int, n: int) -> None:
        """A plain matmul [B, m, k] x [k, n] whose operands both need gradients."""
        flops = 2 * batch * m * k * n
        self.forward += flops
        self.backward += 2 * flops


def _self_attention_block(t: _Tally, batch: int, tokens: int, dim: int, mlp_dim: int) -> None:
    """``blocks.SelfAttentionBlock`` over ``tokens`` tokens of width ``dim``."""
    rows = batch * tokens
    t.linear(rows, dim, 3 * dim)  # fused qkv projection
    t.attention_products(batch, tokens, tokens, dim)  # softmax(q k^T) v, all heads
    t.linear(rows, dim, dim)  # attention output projection
    t.linear(rows, dim, mlp_dim)  # MLP fc1
    t.linear(rows, mlp_dim, dim)  # MLP fc2


def _cross_attention_block(
    t: _Tally, batch: int, queries: int, context: int, spec: DecoderSpec
) -> None:
    """``blocks.CrossAttentionBlock``: ``queries`` masked positions attend to ``context``
    visible latents (CLS included); cross-self adds self-attention among the queries."""
    dim, q_rows = spec.dim, batch * queries
    t.linear(q_rows, dim, dim)  # query projection (masked positions)
    t.linear(batch * context, dim, 2 * dim)  # fused kv projection of the context
    t.attention_products(batch, queries, context, dim)  # queries x context keys
    t.linear(q_rows, dim, dim)  # cross-attention output projection
    if spec.kind == "cross-self":
        t.linear(q_rows, dim, 3 * dim)  # self-attention qkv among the queries
        t.attention_products(batch, queries, queries, dim)  # queries x queries
        t.linear(q_rows, dim, dim)  # self-attention output projection
    t.linear(q_rows, dim, spec.mlp_dim)  # MLP fc1
    t.linear(q_rows, spec.mlp_dim, dim)  # MLP fc2


def _encoder(t: _Tally, config: ModelConfig, modality: str, visible: int, batch: int) -> None:
    """``encoders.ModalityEncoder`` on ``visible`` patches (+ CLS)."""
    enc = config.encoder
    # patch embedding of the visible patches only; its input is data (no grad): 1x backward
    t.linear(batch * visible, config.spec(modality).patch_dim, enc.dim, input_needs_grad=False)
    for _ in range(enc.depth):  # pre-norm ViT blocks over CLS + visible tokens
        _self_attention_block(t, batch, visible + 1, enc.dim, enc.mlp_dim)


def _fusion(t: _Tally, config: ModelConfig, visible: dict[str, int], batch: int) -> None:
    """``encoders.FusionEncoder``: joint blocks over both modalities' CLS + visible tokens."""
    tokens = sum(visible[m] + 1 for m in MODALITIES)
    for _ in range(config.fusion_depth):
        _self_attention_block(t, batch, tokens, config.encoder.dim, config.encoder.mlp_dim)


def _decoder(t: _Tally, config: ModelConfig, modality: str, visible: int, batch: int) -> None:
    """``decoders.SelfAttentionDecoder`` / ``CrossAttentionDecoder`` of one modality."""
    spec = config.decoder(modality)
    patches = config.num_patches(modality)
    patch_dim = config.spec(modality).patch_dim
    masked = patches - visible
    # projection of the fused latents (CLS + visible) to decoder width
    t.linear(batch * (visible + 1), config.encoder.dim, spec.dim)
    if spec.diffusion:
        # noised masked patches x_t embedded linearly; x_t is data (no grad): 1x backward
        t.linear(batch * masked, patch_dim, spec.dim, input_needs_grad=False)
        # timestep MLP, once per sample: its first layer reads the fixed sinusoidal
        # embedding (no grad, 1x backward), the second reads the first's output (2x)
        t.linear(batch, spec.dim, spec.dim, input_needs_grad=False)
        t.linear(batch, spec.dim, spec.dim)
    # ([MASK] tokens cost no FLOPs: an expanded parameter)
    if spec.kind == "self":
        for _ in range(spec.depth):  # self-attention over CLS + all L positions
            _self_attention_block(t, batch, patches + 1, spec.dim, spec.mlp_dim)
    else:
        for _ in range(spec.depth):  # masked queries x (CLS + visible) context
            _cross_attention_block(t, batch, masked, visible + 1, spec)
    # prediction head on the masked positions only
    t.linear(batch * masked, spec.dim, patch_dim)


def _other(t: _Tally, config: ModelConfig, batch: int) -> None:
    """Contrastive projections and InfoNCE logits (``model.forward_loss``, ``losses``).
    MSE, normalisation and noising are elementwise: not counted."""
    loss, width = config.loss, config.encoder.dim
    if loss.contrastive_weight > 0:
        for _ in MODALITIES:  # projection of the mean-pooled encoder output
            t.linear(batch, width, loss.contrastive_dim)
        # symmetric InfoNCE: a @ b^T and b @ a^T, [B, C] x [C, B] each
        t.matmul(1, batch, loss.contrastive_dim, batch)
        t.matmul(1, batch, loss.contrastive_dim, batch)
    if loss.intra_contrastive_weight > 0:
        for _ in MODALITIES:
            # projections of the first view (again) and of the second view
            t.linear(batch, width, loss.contrastive_dim)
            t.linear(batch, width, loss.contrastive_dim)
            # symmetric InfoNCE between the two views
            t.matmul(1, batch, loss.contrastive_dim, batch)
            t.matmul(1, batch, loss.contrastive_dim, batch)


@lru_cache(maxsize=4096)
def _breakdown(config: ModelConfig, visible: tuple[int, int], batch: int) -> FlopBreakdown:
    tallies = {name: _Tally() for name in COMPONENTS}
    kept = dict(zip(MODALITIES, visible, strict=True))
    passes = 2 if config.loss.intra_contrastive_weight > 0 else 1  # second masked view
    for m in MODALITIES:
        for _ in range(passes):
            _encoder(tallies[f"{m}_encoder"], config, m, kept[m], batch)
    _fusion(tallies["fusion"], config, kept, batch)
    for m in MODALITIES:
        _decoder(tallies[f"{m}_decoder"], config, m, kept[m], batch)
    _other(tallies["other"], config, batch)
    return FlopBreakdown(
        forward={name: t.forward for name, t in tallies.items()},
        backward={name: t.backward for name, t in tallies.items()},
        attention={name: t.attention for name, t in tallies.items()},
    )


def _visible(config: ModelConfig, mask_ratio: tuple[float, float]) -> tuple[int, int]:
    if len(mask_ratio) != 2:
        raise ValueError(f"mask_ratio must be (audio, video), got {mask_ratio!r}")
    audio, video = mask_ratio
    return (
        keep_count(config.num_patches("audio"), float(audio)),
        keep_count(config.num_patches("video"), float(video)),
    )


def model_flops(
    config: ModelConfig, mask_ratio: tuple[float, float], batch_size: int = 1
) -> FlopBreakdown:
    """Model FLOPs of one training step (forward and backward) per component.

    ``mask_ratio`` is (audio, video); ``batch_size`` samples (the InfoNCE logits grow as
    batch_size**2, everything else linearly). Returns a frozen ``FlopBreakdown``.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    cached = _breakdown(config, _visible(config, mask_ratio), int(batch_size))
    # copies: the cached breakdown is shared, its dicts must not be mutated by callers
    return FlopBreakdown(dict(cached.forward), dict(cached.backward), dict(cached.attention))


def attention_flops(
    config: ModelConfig, mask_ratio: tuple[float, float], batch_size: int = 1
) -> dict[str, int]:
    """Forward FLOPs of the attention products alone, per component."""
    return dict(model_flops(config, mask_ratio, batch_size).attention)


def hardware_attention_extra(
    config: ModelConfig, mask_ratio: tuple[float, float], batch_size: int = 1
) -> int:
    """FLOPs a fused attention kernel recomputes in its backward (the scores): 0.5x the
    attention forward, so its backward is 2.5x the forward instead of the model's 2x.
    Hardware FLOPs = model FLOPs + this; it is never part of the headline."""
    return sum(model_flops(config, mask_ratio, batch_size).attention.values()) // 2
