"""The System: exact moments against samples, the paper's constructors, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof import LAMSpec, System, effective_action_weight, paper_system
from lamproof.strategies import systems

#: Monte-Carlo check of moments with n = 200 000 draws: the standard error of an entry of a
#: second moment of O(1) variables is ~sqrt(2/n) ≈ 0.003; 0.03 relative to the scale is ~10σ,
#: so the test fails only on a real error in the exact moments or in the sampler.
SAMPLES = 200_000
MOMENT_ATOL = 0.03


@settings(max_examples=15)
@given(
    systems(d_o=st.integers(1, 4), noise="any", feedback=None, dynamics=None, means=None), st.integers(1, 3)
)
def test_exact_moments_match_samples(system, horizon):
    transition = system.transition(horizon)
    draws = transition.sample(SAMPLES, np.random.default_rng(0))
    names = ("obs", "next_obs", "action", "noise")
    stacked = np.hstack([draws[name] for name in names])
    empirical = stacked.T @ stacked / SAMPLES
    exact = transition.second_moment(names)
    scale = max(1.0, float(np.max(np.abs(np.diag(exact)))))
    assert np.max(np.abs(empirical - exact)) <= MOMENT_ATOL * scale
    assert np.max(np.abs(stacked.mean(axis=0) - transition.mean(names))) <= MOMENT_ATOL * np.sqrt(scale)


@settings(max_examples=15)
@given(
    systems(d_o=st.integers(1, 5), noise="any", feedback=None, dynamics=None, means=None), st.integers(1, 3)
)
def test_block_moments_equal_dense_source_products(system, horizon):
    """Named moments are formed block by block; the dense source maps are the other route."""
    t = system.transition(horizon)
    names = ("obs", "next_obs", "action", "exploration", "noise")
    dense = t.stacked(*names)
    np.testing.assert_allclose(t.cov(names), dense @ t.source_cov @ dense.T, atol=1e-10, rtol=1e-10)
    np.testing.assert_allclose(t.mean(names), dense @ t.source_mean, atol=1e-12)


def test_uniform_noise_is_uniform_on_zero_sigma():
    system = paper_system(16, 4, noise="uniform", sigma=0.5, seed=3)
    noise = system.transition().sample(50_000, np.random.default_rng(1))["noise"]
    assert noise.min() >= 0.0 and noise.max() < 0.5
    np.testing.assert_allclose(noise.mean(axis=0), 0.25, atol=0.01)
    np.testing.assert_allclose(noise.var(axis=0), 0.5**2 / 12, rtol=0.05)


def test_paper_constructors():
    structured = paper_system(32, 4, noise="structured", sigma=2.0, noise_dim=3, seed=5)
    phi = structured.action_matrix
    np.testing.assert_allclose(phi.T @ phi, np.eye(4), atol=1e-12)
    # noise directions are orthonormal, orthogonal to Φ, with variance σ² each
    values = np.linalg.eigvalsh(structured.noise_cov)[::-1]
    np.testing.assert_allclose(values[:3], 4.0, atol=1e-12)
    np.testing.assert_allclose(values[3:], 0.0, atol=1e-12)
    np.testing.assert_allclose(structured.noise_cov @ phi, 0.0, atol=1e-12)
    policy = paper_system(32, 4, chi=0.25, seed=5)
    np.testing.assert_allclose(policy.action_matrix, paper_system(32, 4, seed=5).action_matrix)
    P = policy.policy_gain / 0.25
    np.testing.assert_allclose(P @ P.T, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(policy.exploration_cov, 0.75**2 * np.eye(4))


def test_effective_action_weight_matches_a_batch_simulation():
    """λ = (d_o/d_a)(1 − (1−ρ)^128), against simulated batches of the paper's masked loss."""
    rng = np.random.default_rng(0)
    rho, batches = 0.01, 200_000
    has_label = (rng.random((batches, 128)) < rho).any(axis=1)
    assert effective_action_weight(rho, 128, 8) == pytest.approx(16 * has_label.mean(), rel=0.01)
    assert effective_action_weight(0.0, 128, 8) == 0.0


# -- bad input --------------------------------------------------------------------------------
G = np.eye(3)[:, :2]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"noise_cov": [[1, 2, 0], [0, 1, 0], [0, 0, 1]]}, "noise_cov"),  # not symmetric
        ({"noise_cov": -np.eye(3)}, "noise_cov"),  # indefinite
        ({"obs_cov": np.diag([1.0, -0.5, 1.0])}, "obs_cov"),
        ({"obs_cov": np.eye(2)}, "obs_cov"),  # wrong shape
        ({"obs_mean": [0.0, np.nan, 0.0]}, "obs_mean"),
        ({"obs_mean": [0.0, 0.0]}, "obs_mean"),
        ({"dynamics": np.ones((3, 2))}, "dynamics"),
        ({"dynamics": [[np.inf, 0, 0], [0, 1, 0], [0, 0, 1]]}, "dynamics"),
        ({"policy_gain": np.zeros((3, 2))}, "policy_gain"),
        ({"exploration_cov": np.eye(3)}, "exploration_cov"),
        ({"exploration_cov": "eye"}, "exploration_cov"),
        ({"noise_mean": "zero"}, "noise_mean"),
        ({"noise_distribution": "laplace"}, "noise_distribution"),
    ],
)
def test_system_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        System(G, **kwargs)


@pytest.mark.parametrize("matrix", [[[np.nan]], np.zeros((0, 2)), [1.0, 2.0], "identity"])
def test_system_rejects_bad_action_matrix(matrix):
    with pytest.raises(ValueError, match="^action_matrix:"):
        System(matrix)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"d_z": 0}, "d_z"),
        ({"d_z": 2.0}, "d_z"),
        ({"d_z": 1, "augmentation": -0.1}, "augmentation"),
        ({"d_z": 1, "augmentation": float("nan")}, "augmentation"),
        ({"d_z": 1, "action_loss_weight": -1}, "action_loss_weight"),
        ({"d_z": 1, "horizon": 0}, "horizon"),
        ({"d_z": 1, "idm": "shared"}, "idm"),
        ({"d_z": 1, "fdm_obs_path": "fixed"}, "fdm_obs_path"),
    ],
)
def test_lam_spec_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        LAMSpec(**kwargs)


def test_d_z_above_d_o_and_bad_labeled_fraction():
    from lamproof import solve

    with pytest.raises(ValueError, match="^d_z:"):
        solve(System(G), LAMSpec(4))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="^labeled_fraction:"):
            effective_action_weight(bad, 128, 8)
    with pytest.raises(ValueError, match="^sigma:"):
        paper_system(noise="isotropic", sigma=-1.0)
    with pytest.raises(ValueError, match="^chi:"):
        paper_system(chi=1.5)
