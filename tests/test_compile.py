"""torch.compile on CPU (inductor): the tiny model compiled once, checked against eager.

Tolerance (fp32): inductor fuses and reorders the elementwise and reduction work, so the
compiled loss matches eager to a relative 1e-5 and every gradient to a relative 1e-3 of
its parameter's largest eager gradient (atol 1e-6). Masks, timesteps and noise are drawn
eagerly in both and must be bit-identical, and so the token counts that set the FLOPs.
"""

from __future__ import annotations

import copy
import shutil

import pytest
import torch

from diffmavil import rng
from diffmavil.config import make_config
from diffmavil.inputs import random_inputs
from diffmavil.model import DiffMAViL
from diffmavil.training.compile import (
    COMPILED_COMPONENTS,
    compile_components,
    decompile,
    is_compiled,
)

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler")

RATIOS = (0.8, 0.9)
SEED = 3
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-3


def _step(model: DiffMAViL, audio, video, ratios=RATIOS):
    """(output, {parameter: grad}) of one forward + backward at sample ids 10, 11."""
    model.zero_grad(set_to_none=True)
    output = model(audio, video, ratios, torch.tensor([10, 11]), seed=SEED)
    output.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return output, grads


@pytest.fixture(scope="module")
def runs():
    """Eager and compiled copies of the tiny cross-attn model, one step each (batch 2)."""
    config = make_config("tiny", "cross-attn")
    audio, video = random_inputs(config, 2, torch.device("cpu"))
    torch.manual_seed(0)
    eager = DiffMAViL(config)
    compiled = copy.deepcopy(eager)
    stats = compile_components(compiled)
    eager_output, eager_grads = _step(eager, audio, video)
    compiled_output, compiled_grads = _step(compiled, audio, video)
    first_graphs = dict(stats.graphs)
    _step(compiled, audio, video)  # the same shapes again: must reuse every graph
    return {
        "first_graphs": first_graphs,
        "second_graphs": dict(stats.graphs),
        "config": config,
        "inputs": (audio, video),
        "eager": (eager, eager_output, eager_grads),
        "compiled": (compiled, compiled_output, compiled_grads),
        "stats": stats,
    }


def test_loss_and_every_term_match_eager(runs):
    _, eager, _ = runs["eager"]
    _, compiled, _ = runs["compiled"]
    torch.testing.assert_close(compiled.loss, eager.loss, rtol=LOSS_RTOL, atol=0)
    assert compiled.losses.keys() == eager.losses.keys()
    for name in eager.losses:
        torch.testing.assert_close(
            compiled.losses[name], eager.losses[name], rtol=LOSS_RTOL, atol=0
        )


def test_every_gradient_matches_eager(runs):
    _, _, eager = runs["eager"]
    _, _, compiled = runs["compiled"]
    assert compiled.keys() == eager.keys()
    for name, grad in eager.items():
        scale = float(grad.abs().max())
        error = float((compiled[name] - grad).abs().max())
        assert error <= GRAD_RTOL * scale + 1e-6, f"{name}: {error:.3g} vs scale {scale:.3g}"


def test_masks_timesteps_and_noise_are_bit_identical(runs):
    _, eager, _ = runs["eager"]
    _, compiled, _ = runs["compiled"]
    for modality in ("audio", "video"):
        a, b = getattr(eager, modality), getattr(compiled, modality)
        for field in ("keep", "masked", "restore"):
            assert torch.equal(getattr(a.mask, field), getattr(b.mask, field))
        assert torch.equal(a.timesteps, b.timesteps)
        assert torch.equal(a.decoder_input, b.decoder_input)  # noised patches: same noise
        assert torch.equal(a.target, b.target)


def test_flops_are_unchanged(runs):
    """Model FLOPs follow the token counts, and the compiled step used the eager step's
    counts (FlopCounterMode itself cannot run compiled code: a dispatch mode makes dynamo
    refuse, with fullgraph an error; FLOPs are counted on eager models)."""
    from diffmavil.flops import model_flops
    from diffmavil.masking import keep_count

    _, eager, _ = runs["eager"]
    _, compiled, _ = runs["compiled"]
    config = runs["config"]
    for modality, ratio in zip(("audio", "video"), RATIOS, strict=True):
        kept = keep_count(config.num_patches(modality), ratio)
        for output in (eager, compiled):
            mask = getattr(output, modality).mask
            assert mask.keep.shape == (2, kept)
            assert mask.masked.shape == (2, config.num_patches(modality) - kept)
    assert model_flops(config, RATIOS, 2).total > 0


def test_blocks_share_graphs_and_the_state_dict_is_plain(runs):
    compiled, _, _ = runs["compiled"]
    eager, _, _ = runs["eager"]
    stats = runs["stats"]
    # tiny cross-attn: 9 self-attention blocks at 192 (encoders, fusion), 2 at 128 (audio
    # decoder), 2 cross-attention blocks at 128 (video decoder): 3 kinds of graph, each
    # compiled once (token counts symbolic from the first graph: fusion's longer sequence
    # and the encoders' shorter ones share one graph)
    assert set(stats.graphs) == {
        "SelfAttentionBlock-192",
        "SelfAttentionBlock-128",
        "CrossAttentionBlock-128",
    }
    assert all(n == 1 for n in runs["first_graphs"].values()), runs["first_graphs"]
    assert runs["second_graphs"] == runs["first_graphs"]  # the second step compiled nothing
    assert is_compiled(compiled) and not is_compiled(eager)
    keys = list(compiled.state_dict())
    assert keys == list(eager.state_dict())
    assert not any("_orig_mod" in key for key in keys)
    fresh = DiffMAViL(runs["config"])
    fresh.load_state_dict(compiled.state_dict(), strict=True)


def test_a_curriculum_reuses_the_first_graphs(runs):
    """New mask ratios change the token counts: no new graph (the token dimension is
    symbolic from the first graph on); losses still match eager."""
    compiled, _, _ = runs["compiled"]
    eager, _, _ = runs["eager"]
    audio, video = runs["inputs"]
    stats = runs["stats"]
    before = dict(stats.graphs)
    counts = []
    for ratios in ((0.7, 0.85), (0.6, 0.8), (0.75, 0.95)):
        output, _ = _step(compiled, audio, video, ratios)
        reference, _ = _step(eager, audio, video, ratios)
        torch.testing.assert_close(output.loss, reference.loss, rtol=LOSS_RTOL, atol=0)
        counts.append(dict(stats.graphs))
    assert counts == [before] * 3, (before, counts)
    assert stats.recompiles == 0 and stats.total_graphs == len(stats.graphs)


def test_decompile_restores_eager_bits(runs):
    eager, eager_output, _ = runs["eager"]
    audio, video = runs["inputs"]
    model = copy.deepcopy(eager)
    compile_components(model)  # lazy: nothing compiles before the first call
    plain = decompile(model)
    assert not is_compiled(plain)
    with torch.no_grad():
        output = plain(audio, video, RATIOS, torch.tensor([10, 11]), seed=SEED)
    assert torch.equal(output.loss, eager_output.loss.detach())


def test_randomness_runs_eager_inside_a_whole_compiled_function():
    """rng's draws are compiler-disabled: compiling a caller (dynamic shapes, AOTAutograd)
    leaves them eager and bit-identical. Without that, AOTAutograd replayed rng.normal's
    aliased views wrongly (IndexError) and inductor crashed on the whole model."""
    ids = torch.arange(4)

    def draws(sample_ids):
        return (
            rng.normal(0, sample_ids, rng.STREAM_AUDIO_NOISE, (10, 48)),
            rng.integers(0, sample_ids, rng.STREAM_AUDIO_TIMESTEP, 1, 1000),
            rng.random_bits(0, sample_ids, rng.STREAM_AUDIO_MASK, 50),
        )

    compiled = torch.compile(draws, backend="aot_eager", dynamic=True)
    for got, want in zip(compiled(ids), draws(ids), strict=True):
        assert torch.equal(got, want)


def test_profile_of_the_compiled_model_splits_matmuls_from_the_rest(runs, tmp_path):
    """The profiler's labels (hooks) stay eager around the compiled forwards."""
    from bench.timing.profiler import profile_train_step

    compiled, _, _ = runs["compiled"]
    audio, video = runs["inputs"]
    weights = copy.deepcopy(compiled.state_dict())  # the profiled steps update them
    try:
        result = profile_train_step(compiled, audio, video, RATIOS, tmp_path, warmup=0, active=1)
    finally:
        compiled.load_state_dict(weights)
    split = result.time_split
    assert 0 < split["matmul_ms"] < split["step_ms"]
    assert split["other_ms"] == pytest.approx(split["step_ms"] - split["matmul_ms"], abs=0.01)
    assert {row["component"] for row in result.top_ops} == set(COMPILED_COMPONENTS)


def test_a_compile_failure_is_one_line_and_says_so(capsys, tmp_path, monkeypatch):
    """fullgraph=True turns a graph break into an error (never a silent eager run); the
    CLI's handler prints one line naming torch.compile."""
    from bench.errors import TRACEBACK_DIR_ENV, UNEXPECTED_EXIT, handle_error

    def breaks(x):
        torch._dynamo.graph_break()
        return x + 1

    monkeypatch.setenv(TRACEBACK_DIR_ENV, str(tmp_path))
    with pytest.raises(Exception) as raised:
        torch.compile(breaks, fullgraph=True, backend="eager")(torch.ones(2))
    assert handle_error(raised.value) == UNEXPECTED_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: torch.compile failed (")
