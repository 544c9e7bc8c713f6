"""Noise schedules: the noisiest input carries (almost) no signal at any T; no beta reaches 1."""

from __future__ import annotations

import numpy as np
import pytest

from diffmavil.config import DiffusionSpec
from diffmavil.diffusion import MAX_BETA, alphas_cumprod, betas


def _ddpm_linear_abar(steps: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    """Independent DDPM linear schedule (improved-diffusion's scaling), [T + 1] with abar_0 = 1."""
    scale = 1000 / steps
    beta = np.minimum(np.linspace(scale * start, scale * end, steps), 0.999)
    return np.concatenate([[1.0], np.cumprod(1 - beta)])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [50, 100, 1000])
def test_noisiest_input_keeps_almost_no_signal(schedule, steps):
    abar = alphas_cumprod(DiffusionSpec(timesteps=steps, schedule=schedule))
    signal_fraction = abar[-1].sqrt().item()  # x_T = sqrt(abar_T) x_0 + sqrt(1 - abar_T) eps
    assert signal_fraction < 0.01, (schedule, steps, signal_fraction)


@pytest.mark.parametrize("steps", [50, 100, 1000])
def test_linear_schedule_matches_ddpm_scaled_by_1000_over_t(steps):
    abar = alphas_cumprod(DiffusionSpec(timesteps=steps, schedule="linear")).numpy()
    np.testing.assert_allclose(abar, _ddpm_linear_abar(steps), rtol=1e-12)


def test_linear_schedule_at_t_1000_is_ddpm_unscaled():
    beta = betas(DiffusionSpec(timesteps=1000, schedule="linear")).numpy()
    assert beta[0] == pytest.approx(1e-4) and beta[-1] == pytest.approx(0.02)


def test_user_set_linear_betas_are_scaled_too():
    spec = DiffusionSpec(
        timesteps=200, schedule="linear", linear_beta_start=1e-3, linear_beta_end=0.01
    )
    beta = betas(spec).numpy()
    assert beta[0] == pytest.approx(5e-3) and beta[-1] == pytest.approx(0.05)
    np.testing.assert_allclose(
        alphas_cumprod(spec).numpy(), _ddpm_linear_abar(200, 1e-3, 0.01), rtol=1e-12
    )


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [2, 3, 5, 10, 20])
def test_no_beta_reaches_one_at_small_t(schedule, steps):
    beta = betas(DiffusionSpec(timesteps=steps, schedule=schedule))
    assert beta.shape == (steps,)
    assert bool((beta > 0).all()) and float(beta.max()) <= MAX_BETA < 1
    abar = alphas_cumprod(DiffusionSpec(timesteps=steps, schedule=schedule))
    # strictly decreasing and never zero: every step adds noise, no step erases the rest
    assert bool((abar[1:] < abar[:-1]).all()) and bool((abar > 0).all())
