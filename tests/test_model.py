"""The DiffMAViL model: shapes, masking, diffusion inputs, decoders, training signal."""

from __future__ import annotations

import math

import pytest
import torch

from diffmavil import PRESETS, DiffMAViL, count_parameters_by_component, make_config
from diffmavil.config import MODALITIES, ModelConfig
from diffmavil.masking import random_masking
from diffmavil.patching import (
    patchify_audio,
    patchify_video,
    sincos_positions,
    unpatchify_audio,
    unpatchify_video,
)
from tests.conftest import ALL_VARIANTS, make_inputs

RATIO_PAIRS = [(0.8, 0.9), (0.9, 0.95), (0.5, 0.75)]


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_meta_shapes_at_full_input_sizes(meta_models, variant):
    """base on meta (small has base's inputs and token grids at half the width)."""
    model = meta_models[("base", variant)]
    config = model.config
    with torch.device("meta"):
        audio, video = make_inputs_meta(config, batch=2)
        for ratios in RATIO_PAIRS:
            out = model(audio, video, ratios)
            for modality, ratio in zip(MODALITIES, ratios, strict=True):
                spec = config.spec(modality)
                masked = spec.num_patches - config.visible_tokens(modality, ratio)
                result = getattr(out, modality)
                assert result.prediction.shape == (2, masked, spec.patch_dim)
                assert result.target.shape == (2, masked, spec.patch_dim)
                kept = config.visible_tokens(modality, ratio)
                assert result.encoded.shape == (2, 1 + kept, config.encoder.dim)


def make_inputs_meta(config: ModelConfig, batch: int):
    audio = torch.empty(batch, config.audio.target_frames, config.audio.mel_bins, device="meta")
    v = config.video
    video = torch.empty(batch, v.channels, v.frames, v.height, v.width, device="meta")
    return audio, video


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_tiny_losses_are_finite_for_every_variant(tiny_models, variant):
    model = tiny_models[variant]
    audio, video = make_inputs(model.config, batch=3)
    out = model(audio, video, (0.8, 0.9))
    assert torch.isfinite(out.loss)
    expected_terms = {"audio_recon", "video_recon", "contrastive"}
    assert set(out.losses) == expected_terms
    assert all(torch.isfinite(v) for v in out.losses.values())


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_cpu_preset_losses_are_finite(variant):
    torch.manual_seed(0)
    model = DiffMAViL(make_config("cpu", variant))
    audio, video = make_inputs(model.config, batch=2)
    out = model(audio, video, (0.8, 0.9))
    assert torch.isfinite(out.loss)
    assert out.video.prediction.shape == (2, 784 - 78, model.config.video.patch_dim)


def test_patchify_round_trips():
    config = make_config("tiny", "mavil")
    audio, video = make_inputs(config, batch=2)
    audio_patches = patchify_audio(audio, config.audio)
    video_patches = patchify_video(video, config.video)
    assert audio_patches.shape == (2, config.audio.num_patches, config.audio.patch_dim)
    assert video_patches.shape == (2, config.video.num_patches, config.video.patch_dim)
    assert torch.equal(unpatchify_audio(audio_patches, config.audio), audio)
    assert torch.equal(unpatchify_video(video_patches, config.video), video)
    # patch 0 of audio is the top-left 16x16 block of the spectrogram
    assert torch.equal(audio_patches[0, 0], audio[0, :16, :16].reshape(-1))
    # the second audio patch is the next frequency block (row-major over the grid)
    assert torch.equal(audio_patches[0, 1], audio[0, :16, 16:32].reshape(-1))


def test_sincos_positions_are_distinct_and_bounded():
    positions = sincos_positions(96, (4, 14, 14))
    assert positions.shape == (784, 96)
    assert positions.abs().max() <= 1.0
    assert torch.unique(positions, dim=0).shape[0] == 784


# --------------------------------------------------------------------------- masking
@pytest.mark.parametrize(("num_tokens", "ratio"), [(100, 0.9), (784, 0.95), (512, 0.8), (32, 0.9)])
def test_masking_invariants(num_tokens, ratio):
    ids = torch.arange(16)
    mask = random_masking(num_tokens, ratio, ids, seed=3, stream=1)
    kept = math.floor(num_tokens * (1 - ratio) + 1e-9)
    assert mask.keep.shape == (16, kept)
    assert mask.masked.shape == (16, num_tokens - kept)
    union = torch.sort(torch.cat([mask.keep, mask.masked], dim=1), dim=1).values
    assert torch.equal(union, torch.arange(num_tokens).expand(16, -1))
    restored = torch.gather(torch.cat([mask.keep, mask.masked], dim=1), 1, mask.restore)
    assert torch.equal(restored, torch.arange(num_tokens).expand(16, -1))
    assert mask.as_bool().sum(dim=1).eq(num_tokens - kept).all()
    assert len({tuple(row.tolist()) for row in mask.keep}) == 16  # different samples differ


def test_mask_depends_only_on_seed_and_sample_id():
    ids = torch.tensor([5, 9, 11, 2])
    batch = random_masking(100, 0.8, ids, seed=7, stream=1)
    reordered = random_masking(100, 0.8, torch.tensor([11, 5]), seed=7, stream=1)
    alone = random_masking(100, 0.8, torch.tensor([9]), seed=7, stream=1)
    assert torch.equal(reordered.keep[0], batch.keep[2])
    assert torch.equal(reordered.keep[1], batch.keep[0])
    assert torch.equal(alone.keep[0], batch.keep[1])
    other_seed = random_masking(100, 0.8, ids, seed=8, stream=1)
    assert not torch.equal(other_seed.keep, batch.keep)


def test_encoder_receives_exactly_keep_count_visible_patches(tiny_models):
    model = tiny_models["cross-attn"]
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        getattr(model, f"{m}_encoder").patch_embed.register_forward_hook(
            lambda mod, args, out, m=m: seen.__setitem__(m, tuple(args[0].shape))
        )
        for m in MODALITIES
    ]
    audio, video = make_inputs(model.config, batch=2)
    try:
        for ratios in [(0.9, 0.95), (0.8, 0.9), (0.5, 0.5)]:  # the ratio changes per call
            model(audio, video, ratios)
            assert seen["audio"] == (2, model.config.visible_tokens("audio", ratios[0]), 256)
            assert seen["video"] == (2, model.config.visible_tokens("video", ratios[1]), 1536)
    finally:
        for hook in hooks:
            hook.remove()


def test_visible_patches_are_never_noised(tiny_models):
    model = tiny_models["diff-self"]
    audio, video = make_inputs(model.config, batch=2)
    captured = {}
    hook = model.video_encoder.patch_embed.register_forward_hook(
        lambda mod, args, out: captured.__setitem__("input", args[0])
    )
    try:
        out = model(audio, video, (0.8, 0.9))
    finally:
        hook.remove()
    clean = patchify_video(video, model.config.video)
    expected = torch.gather(
        clean, 1, out.video.mask.keep[..., None].expand(-1, -1, clean.shape[-1])
    )
    assert torch.equal(captured["input"], expected)


# --------------------------------------------------------------------------- diffusion
def _cosine_abar(t: torch.Tensor, steps: int) -> torch.Tensor:
    """Independent closed form of the cosine schedule (Nichol & Dhariwal), betas clipped."""
    s = 0.008
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
    alphas = 1 - (1 - f[1:] / f[:-1]).clamp(max=0.999)
    abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(alphas, 0)])
    return abar[t]


def test_decoder_inputs_are_noised_masked_patches(tiny_models):
    model = tiny_models["cross-attn"]
    audio, video = make_inputs(model.config, batch=3)
    captured = {}
    hook = model.video_decoder.masked_inputs.noisy_patch_embed.register_forward_hook(
        lambda mod, args, out: captured.__setitem__("x_t", args[0])
    )
    try:
        out = model(audio, video, (0.8, 0.9), sample_ids=torch.tensor([4, 8, 15]), seed=1)
    finally:
        hook.remove()
    t = out.video.timesteps
    assert t.shape == (3,) and bool(((t >= 1) & (t <= 1000)).all())
    x_t = captured["x_t"]
    assert torch.equal(x_t, out.video.decoder_input)
    x0 = out.video.target
    abar = _cosine_abar(t, 1000).float()[:, None, None]
    noise = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
    # the implied noise is standard normal and independent of the target
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05
    # x0 is the per-patch normalised masked patch
    clean = patchify_video(video, model.config.video)
    masked = torch.gather(
        clean, 1, out.video.mask.masked[..., None].expand(-1, -1, clean.shape[-1])
    )
    normalised = (masked - masked.mean(-1, keepdim=True)) / (
        masked.var(-1, keepdim=True) + 1e-6
    ).sqrt()
    torch.testing.assert_close(x0, normalised)


def test_timesteps_and_noise_follow_sample_ids(tiny_models):
    model = tiny_models["diff-self"]
    audio, video = make_inputs(model.config, batch=3)
    first = model(audio, video, (0.8, 0.9), sample_ids=torch.tensor([1, 2, 3]))
    second = model(audio[[2, 0]], video[[2, 0]], (0.8, 0.9), sample_ids=torch.tensor([3, 1]))
    assert torch.equal(second.audio.timesteps, first.audio.timesteps[[2, 0]])
    assert torch.equal(second.video.decoder_input, first.video.decoder_input[[2, 0]])


def test_mavil_feeds_the_mask_token(tiny_models):
    model = tiny_models["mavil"]
    captured = {}
    hook = model.audio_decoder.masked_inputs.register_forward_hook(
        lambda mod, args, out: captured.__setitem__("inputs", out)
    )
    audio, video = make_inputs(model.config, batch=2)
    try:
        out = model(audio, video, (0.8, 0.9))
    finally:
        hook.remove()
    token = model.audio_decoder.masked_inputs.mask_token
    assert torch.equal(captured["inputs"], token.expand_as(captured["inputs"]))
    assert out.audio.decoder_input is None and out.audio.timesteps is None


# --------------------------------------------------------------------------- decoders
def test_cross_decoder_queries_are_only_masked_positions(tiny_models):
    model = tiny_models["cross-attn"]
    shapes = {}
    block = model.video_decoder.blocks[0]
    hook = block.register_forward_hook(
        lambda mod, args, out: shapes.update(q=tuple(args[0].shape), ctx=tuple(args[1].shape))
    )
    self_shapes = {}
    self_hook = model.audio_decoder.blocks[0].register_forward_hook(
        lambda mod, args, out: self_shapes.update(x=tuple(args[0].shape))
    )
    audio, video = make_inputs(model.config, batch=2)
    try:
        for ratios in [(0.8, 0.9), (0.5, 0.75)]:
            model(audio, video, ratios)
            kept = model.config.visible_tokens("video", ratios[1])
            assert shapes["q"] == (2, 32 - kept, 128)  # masked queries only
            assert shapes["ctx"] == (2, 1 + kept, 128)  # CLS + visible latents
            # the self decoder always sees CLS + all 64 audio positions
            assert self_shapes["x"] == (2, 65, 128)
    finally:
        hook.remove()
        self_hook.remove()


def test_cross_self_decoder_has_self_attention():
    model = DiffMAViL(make_config("tiny", "cross-attn", {"video_decoder.kind": "cross-self"}))
    assert all(block.self_attn is not None for block in model.video_decoder.blocks)
    audio, video = make_inputs(model.config, batch=2)
    assert torch.isfinite(model(audio, video, (0.8, 0.9)).loss)


# --------------------------------------------------------------------------- training signal
def _smooth_inputs(config: ModelConfig, batch: int):
    generator = torch.Generator().manual_seed(0)
    phase = torch.rand(batch, 1, 1, generator=generator) * 6
    t = torch.linspace(0, 1, config.audio.target_frames)[None, :, None]
    f = torch.linspace(0, 1, config.audio.mel_bins)[None, None, :]
    audio = torch.sin(6 * t + phase) * torch.cos(4 * f + phase)
    v = config.video
    y = torch.linspace(0, 1, v.height)[None, None, None, :, None]
    x = torch.linspace(0, 1, v.width)[None, None, None, None, :]
    video = torch.sin(5 * y + phase[..., None, None]) * torch.cos(3 * x)
    return audio, video.expand(batch, v.channels, v.frames, v.height, v.width).contiguous()


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_overfitting_one_batch_halves_the_loss(variant):
    torch.manual_seed(0)
    model = DiffMAViL(make_config("tiny", variant))
    audio, video = _smooth_inputs(model.config, batch=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):  # measured min of the last 5 / first: mavil 0.44, the others < 0.05
        loss = model(audio, video, (0.8, 0.9)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.5 * losses[0]


@pytest.mark.parametrize("variant", [*ALL_VARIANTS, "cross-self"])
def test_every_parameter_gets_a_gradient(variant):
    overrides = {"video_decoder.kind": "cross-self"} if variant == "cross-self" else {}
    torch.manual_seed(0)
    model = DiffMAViL(
        make_config("tiny", "cross-attn" if variant == "cross-self" else variant, overrides)
    )
    audio, video = make_inputs(model.config, batch=3)
    model(audio, video, (0.8, 0.9)).loss.backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or p.grad.norm() == 0]
    assert without == []


def test_same_seed_gives_identical_losses():
    def run() -> list[float]:
        torch.manual_seed(123)
        model = DiffMAViL(make_config("tiny", "cross-attn"))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        audio, video = make_inputs(model.config, batch=2, seed=5)
        losses = []
        for step in range(3):
            loss = model(
                audio, video, (0.8, 0.9), sample_ids=torch.tensor([2 * step, 2 * step + 1])
            ).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    assert run() == run()


def test_intra_modal_contrastive_adds_terms():
    model = DiffMAViL(make_config("tiny", "cross-attn", {"loss.intra_contrastive_weight": 0.1}))
    audio, video = make_inputs(model.config, batch=3)
    out = model(audio, video, (0.8, 0.9))
    assert {"audio_intra_contrastive", "video_intra_contrastive"} <= set(out.losses)


def test_no_contrastive_builds_no_projection():
    model = DiffMAViL(make_config("tiny", "mavil", {"loss.contrastive_weight": 0.0}))
    assert model.audio_projection is None and model.video_projection is None
    assert "contrastive" not in model(*make_inputs(model.config, 2), (0.8, 0.9)).losses
    with pytest.raises(ValueError, match="contrastive_weight"):
        model.contrastive_loss(*make_inputs(model.config, 2))


@pytest.mark.parametrize("variant", ["mavil", "cross-attn"])
def test_contrastive_loss_equals_the_forward_term(tiny_models, variant):
    """The encoder-only InfoNCE sees the same masks and features as forward's term."""
    model = tiny_models[variant]
    audio, video = make_inputs(model.config, batch=4, seed=3)
    ids = torch.tensor([7, 11, 2, 40])
    with torch.no_grad():
        full = model(audio, video, (0.5, 0.75), sample_ids=ids, seed=5).losses["contrastive"]
        alone = model.contrastive_loss(audio, video, (0.5, 0.75), sample_ids=ids, seed=5)
        other_masks = model.contrastive_loss(audio, video, (0.5, 0.75), sample_ids=ids, seed=6)
    torch.testing.assert_close(alone, full)
    assert not torch.isclose(other_masks, full)


# --------------------------------------------------------------------------- encode path
def test_encode_returns_pooled_features(tiny_models):
    model = tiny_models["cross-attn"]
    audio, video = make_inputs(model.config, batch=2)
    both = model.encode(audio, video)
    assert both.audio.shape == both.video.shape == both.joint.shape == (2, 192)
    audio_only = model.encode(audio=audio)
    assert audio_only.video is None and audio_only.audio_fused.shape == (2, 192)
    torch.testing.assert_close(audio_only.audio, both.audio)  # encoder output: no fusion yet


# --------------------------------------------------------------------------- parameters
def _linear(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def _self_block(d: int, mlp: int) -> int:
    return 2 * d + _linear(d, 3 * d) + _linear(d, d) + 2 * d + _linear(d, mlp) + _linear(mlp, d)


def _cross_block(d: int, mlp: int, with_self: bool) -> int:
    cross = 2 * d + 2 * d + _linear(d, d) + _linear(d, 2 * d) + _linear(d, d)
    extra = 2 * d + _linear(d, 3 * d) + _linear(d, d) if with_self else 0
    return cross + extra + 2 * d + _linear(d, mlp) + _linear(mlp, d)


def closed_form_parameters(config: ModelConfig) -> dict[str, int]:
    enc = config.encoder
    counts = {}
    for m in MODALITIES:
        spec = config.spec(m)
        counts[f"{m}_encoder"] = (
            _linear(spec.patch_dim, enc.dim)
            + enc.dim
            + enc.depth * _self_block(enc.dim, enc.mlp_dim)
            + 2 * enc.dim
        )
        dec = config.decoder(m)
        inputs = (
            (_linear(spec.patch_dim, dec.dim) + 2 * _linear(dec.dim, dec.dim))
            if dec.diffusion
            else dec.dim
        )
        if dec.kind == "self":
            blocks = dec.depth * _self_block(dec.dim, dec.mlp_dim)
        else:
            blocks = dec.depth * _cross_block(dec.dim, dec.mlp_dim, dec.kind == "cross-self")
        counts[f"{m}_decoder"] = (
            _linear(enc.dim, dec.dim)
            + inputs
            + blocks
            + 2 * dec.dim
            + _linear(dec.dim, spec.patch_dim)
        )
    counts["fusion"] = config.fusion_depth * _self_block(enc.dim, enc.mlp_dim) + 2 * enc.dim
    counts["other"] = 2 * _linear(enc.dim, config.loss.contrastive_dim)
    return counts


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_base_parameter_counts_match_closed_form(meta_models, variant):
    model = meta_models[("base", variant)]
    assert count_parameters_by_component(model) == closed_form_parameters(model.config)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_cross_self_parameter_count(preset):
    config = make_config(preset, "cross-attn-both", {"audio_decoder.kind": "cross-self"})
    with torch.device("meta"):
        model = DiffMAViL(config)
    assert count_parameters_by_component(model) == closed_form_parameters(config)
