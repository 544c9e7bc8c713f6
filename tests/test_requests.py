"""Typed requests (``bench.requests``): built from options or YAML, validated once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bench.requests import (
    FinetuneRequest,
    FlopsRequest,
    PretrainFlags,
    RunSpec,
    TimeRequest,
    TimeSpec,
    pretrain_config,
)
from diffmavil.config import DEFAULT_MASK_RATIO, ConfigError, deep_merge
from diffmavil.schedules import MaskingSchedule
from diffmavil.training.config import PretrainConfig


def test_flags_override_the_file_and_sets_override_both():
    file_payload = {
        "preset": "cpu",
        "masking": {"kind": "curriculum", "audio": 0.7},
        "model_overrides": {"fusion_depth": 2},
        "budget_samples": 64,
    }
    flags = PretrainFlags(
        preset="tiny",
        mask_ratio="0.75,0.85",
        decoder_video="self",
        samples=2e3,
        lr=1e-3,
        workers=2,
    )
    config = pretrain_config(flags, file_payload, {"batch": {"max_batch": 40}})
    assert config.preset == "tiny"  # flag over file
    assert config.masking.kind == "curriculum"  # file kept where no flag
    assert (config.masking.audio, config.masking.video) == (0.75, 0.85)
    assert config.model_overrides == {"fusion_depth": 2, "video_decoder.kind": "self"}
    assert config.model.video_decoder.kind == "self" and config.model.fusion_depth == 2
    assert config.budget_samples == 2000 and isinstance(config.budget_samples, int)
    assert config.optimizer.base_lr == 1e-3 and config.num_workers == 2
    assert config.batch.max_batch == 40
    # no flags and no file: exactly the defaults
    assert pretrain_config(PretrainFlags(), {}, {}) == PretrainConfig()


def test_every_flag_reaches_its_field():
    flags = PretrainFlags(
        preset="tiny",
        variant="mavil",
        decoder_audio="cross",
        diffusion=True,
        data="synthetic:classes=4,size=8",
        masking="curriculum",
        mask_ratio=0.7,
        mask_end="0.8,0.95",
        curriculum_shape="cosine",
        batch="adaptive",
        batch_size=8,
        batch_rule="flops",
        max_batch=32,
        samples=100,
        lr=2e-3,
        seed=3,
        device="cpu",
        dtype="fp32",
        threads=1,
        workers=0,
    )
    config = pretrain_config(flags, {}, {})
    dumped = config.model_dump()
    assert dumped["masking"] == {
        **MaskingSchedule().model_dump(),
        "kind": "curriculum",
        "audio": 0.7,
        "video": 0.7,
        "audio_end": 0.8,
        "video_end": 0.95,
        "shape": "cosine",
    }
    assert (config.batch.kind, config.batch.batch_size, config.batch.rule) == (
        "adaptive",
        8,
        "flops",
    )
    assert config.batch.max_batch == 32 and config.seed == 3 and config.threads == 1
    assert config.model.audio_decoder.kind == "cross"
    assert config.model.audio_decoder.diffusion and config.model.video_decoder.diffusion
    assert config.variant == "mavil" and config.data == "synthetic:classes=4,size=8"


def test_every_flag_sets_a_config_field_that_exists():
    from bench.requests.commands import Sets

    spelled_out = {"decoder_audio", "decoder_video", "diffusion", "mask_ratio", "mask_end"}
    for name, info in PretrainFlags.model_fields.items():
        paths = [m.path for m in info.metadata if isinstance(m, Sets)]
        assert len(paths) == (name not in spelled_out), name
        model = PretrainConfig
        for part in paths[0].split(".") if paths else ():
            assert part in model.model_fields, (name, paths[0])
            model = model.model_fields[part].annotation


def test_bad_flag_values_are_rejected_once():
    with pytest.raises(ValidationError, match="mask ratio"):
        PretrainFlags(mask_ratio="0.8,1.5")
    with pytest.raises(ConfigError, match=r"masking\.kind"):
        pretrain_config(PretrainFlags(masking="sometimes"), {}, {})


def test_deep_merge_recurses_and_copies():
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    merged = deep_merge(base, {"a": {"b": 2}, "e": {"f": 3}})
    assert merged == {"a": {"b": 2, "c": [1]}, "d": 1, "e": {"f": 3}}
    merged["a"]["c"].append(2)
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_one_default_mask_ratio():
    assert MaskingSchedule().start == DEFAULT_MASK_RATIO
    assert TimeRequest().mask_ratio == DEFAULT_MASK_RATIO
    assert FlopsRequest().mask_ratio == DEFAULT_MASK_RATIO
    end = FlopsRequest().curriculum_end
    assert end == (MaskingSchedule().audio_end, MaskingSchedule().video_end)


def test_time_request_for_a_grid_row():
    config = PretrainConfig(
        preset="tiny",
        variant="mavil",
        model_overrides={"video_decoder": {"depth": 1}},
        masking={"audio": 0.6, "video": 0.7},
        seed=4,
        threads=1,
    )
    request = TimeRequest.for_row(TimeSpec(repeats=3, batch_size=2), config)
    assert request.variants == ("mavil",) and request.preset == "tiny"
    assert request.overrides == {"video_decoder.depth": 1}
    assert request.mask_ratio == (0.6, 0.7)  # the row's starting ratios
    assert (request.repeats, request.batch_size, request.seed, request.threads) == (3, 2, 4, 1)
    fixed = TimeRequest.for_row(TimeSpec(mask_ratio=[0.5, 0.5]), config)
    assert fixed.mask_ratio == (0.5, 0.5)


def test_time_request_validates_models_and_peer_repeats():
    with pytest.raises(ValidationError, match="unknown variant"):
        TimeRequest(variants=("crossattn",))
    with pytest.raises(ValidationError, match="at least 10"):
        TimeSpec(peer=True, repeats=5)
    with pytest.raises(ValidationError, match="extra"):
        TimeSpec(repeat=5)


def test_flops_request_samples_and_schedules():
    request = FlopsRequest(samples="2e4", masking="curriculum", batch="adaptive")
    assert request.samples == 20000 and request.whole_run
    assert request.masking_schedule().kind == "curriculum"
    assert request.batch_schedule().batch_size == 32
    assert not FlopsRequest().whole_run
    with pytest.raises(ValidationError, match="positive whole number"):
        FlopsRequest(samples="-3")


def test_finetune_request_needs_a_checkpoint_for_checkpoint_init(tmp_path):
    with pytest.raises(ValidationError, match="give a CHECKPOINT"):
        FinetuneRequest()
    request = FinetuneRequest(init="random", preset="tiny", variant="mavil")
    assert request.resolve_model().audio_decoder.kind == "self"
    assert request.probe.seed == 0 and request.run_dir is None


def test_run_spec_parts_are_typed():
    run = RunSpec.model_validate(
        {"probe": {"epochs": 2}, "controls": ["fbank"], "time": {"repeats": 3}}
    )
    assert run.probe is not None and run.probe.epochs == 2
    assert run.time is not None and run.time.repeats == 3 and run.time.mask_ratio is None
    with pytest.raises(ValidationError, match="each run's seed"):
        RunSpec.model_validate({"probe": {"seed": 1}})
    with pytest.raises(ValidationError, match=r"need run\.probe"):
        RunSpec.model_validate({"controls": ["random"]})
    with pytest.raises(ValidationError, match="flops_only"):
        RunSpec.model_validate({"pretrain": False})
