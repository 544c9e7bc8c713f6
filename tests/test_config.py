"""Config: presets, variants, validation messages, token counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffmavil import PRESETS, VARIANTS, ConfigError, keep_count, make_config, parse_mask_ratio
from diffmavil.config import MODALITIES
from diffmavil.tokens import masked_count


@pytest.mark.parametrize(
    ("num_tokens", "ratio", "expected"),
    [
        (100, 0.9, 10),
        (100, 0.8, 20),
        (784, 0.9, 78),
        (512, 0.8, 102),
        (20, 0.95, 1),
        (1000, 0.7, 300),
    ],
)
def test_keep_count_is_safe_against_float_error(num_tokens, ratio, expected):
    assert int(100 * (1 - 0.9)) == 9  # the naive formula is off by one
    assert keep_count(num_tokens, ratio) == expected


@given(
    num_tokens=st.integers(min_value=2, max_value=5000),
    ratio=st.floats(min_value=1e-6, max_value=1 - 1e-6),
)
def test_keep_count_always_keeps_and_masks_at_least_one(num_tokens, ratio):
    kept = keep_count(num_tokens, ratio)
    assert 1 <= kept <= num_tokens - 1
    assert kept + masked_count(num_tokens, ratio) == num_tokens


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("ratio", [0.01, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
def test_every_preset_keeps_visible_and_masked_tokens(preset, ratio):
    config = make_config(preset, "mavil")
    for modality in MODALITIES:
        kept = config.visible_tokens(modality, ratio)
        assert 1 <= kept < config.num_patches(modality)


def test_grids_are_derived_from_the_config():
    base = make_config("base", "cross-attn")
    assert base.audio.grid == (64, 8) and base.audio.num_patches == 512
    assert base.video.grid == (4, 14, 14) and base.video.num_patches == 784
    assert base.audio.patch_dim == 256 and base.video.patch_dim == 1536
    cpu = make_config("cpu", "cross-attn")
    assert cpu.audio.num_patches == base.audio.num_patches
    assert cpu.video.num_patches == base.video.num_patches


def test_variants_set_decoders_and_diffusion():
    expected = {
        "mavil": ("self", "self", False),
        "diff-self": ("self", "self", True),
        "cross-attn": ("self", "cross", True),
        "cross-attn-both": ("cross", "cross", True),
    }
    assert set(expected) == set(VARIANTS)
    for variant, (audio_kind, video_kind, diffusion) in expected.items():
        config = make_config("tiny", variant)
        assert config.audio_decoder.kind == audio_kind
        assert config.video_decoder.kind == video_kind
        assert config.audio_decoder.diffusion == config.video_decoder.diffusion == diffusion


def test_overrides_dotted_and_nested():
    config = make_config("tiny", "mavil", {"video_decoder.kind": "cross-self", "fusion_depth": 2})
    assert config.video_decoder.kind == "cross-self" and config.fusion_depth == 2
    nested = make_config("tiny", "mavil", {"loss": {"temperature": 0.2}})
    assert nested.loss.temperature == 0.2 and nested.loss.contrastive_weight == 0.01


def test_config_is_frozen():
    config = make_config("tiny", "mavil")
    with pytest.raises(Exception, match="frozen"):
        config.fusion_depth = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"variant": "crossattn"},
            r"unknown variant 'crossattn' \(did you mean 'cross-attn'\?\); allowed: mavil",
        ),
        (
            {"preset": "huge"},
            r"unknown preset 'huge'; allowed: base, small, cpu, proportional, tiny",
        ),
        ({"overrides": {"video.patch": 7}}, r"video.patch=7 does not divide video.height=64"),
        (
            {"overrides": {"audio.patch_time": 24}},
            r"audio.patch_time=24 does not divide audio.target_frames=256",
        ),
        (
            {"overrides": {"video_decoder.kind": "crosss"}},
            r"video_decoder.kind: .*'self', 'cross' or 'cross-self'",
        ),
        ({"overrides": {"encoder.heads": 5}}, r"heads=5 does not divide dim=192"),
        ({"overrides": {"decoder_width": 5}}, r"decoder_width: unknown field"),
        ({"overrides": {"fusion_depth": 0}}, r"fusion_depth: .*greater than or equal to 1"),
    ],
)
def test_bad_configs_name_the_field_and_allowed_values(kwargs, message):
    kwargs = {"preset": "tiny", "variant": "mavil", **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_config(**kwargs)


@pytest.mark.parametrize("text", ["0", "1", "1.2", "-0.1", "0.8,0.9,0.1", "a,b"])
def test_bad_mask_ratios_are_rejected(text):
    with pytest.raises(ConfigError, match="mask ratio"):
        parse_mask_ratio(text)


def test_mask_ratio_parsing():
    assert parse_mask_ratio("0.8,0.9") == (0.8, 0.9)
    assert parse_mask_ratio("0.75") == (0.75, 0.75)
