"""Exogenous state: action-first conditions (scalar thresholds, the population minimizer, k*),
exogenous loading and latent consistency against Monte Carlo."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof import LAMSpec
from lamproof.context import innovation
from lamproof.exogenous import (
    action_first,
    action_first_horizon,
    exogenous_loading,
    exogenous_loading_range,
    latent_consistency,
)
from lamproof.numeric.population import minimize_population
from lamproof.statespace import random_walk_with_exogenous
from lamproof.strategies import state_space_systems

#: Margins are differences of exact window moments (~1e-15 relative); 1e-10 is round-off.
MARGIN_ATOL = 1e-10
#: Monte Carlo with 100 000 windows: a variance share has standard error ~0.004; 0.03 is ~8σ.
SAMPLED_ATOL = 0.03

SCALARS = st.tuples(st.floats(0.3, 2.0), st.floats(0.2, 2.0), st.floats(-0.9, 0.9), st.floats(0.2, 2.0))


@settings(max_examples=30)
@given(SCALARS, st.integers(1, 4))
def test_scalar_action_first_thresholds(parameters, horizon):
    """A learned: k g²σ_a² vs σ_η²(1 − e^{2k})/(1 − e²); A = I: vs 2σ_η²(1 − eᵏ)/(1 − e²) (D11).

    At k = 1 these are the issue's g²σ_a² > σ_η² and g²σ_a² > 2σ_η²/(1 + e)."""
    g, s_a, e, s_eta = parameters
    system = random_walk_with_exogenous(g, s_a, e, s_eta)
    t = system.transition(horizon)
    k = horizon
    action = k * g * g * s_a
    for path, exo in (
        ("learned", s_eta * (1 - e ** (2 * k)) / (1 - e * e)),
        ("identity", 2 * s_eta * (1 - e**k) / (1 - e * e)),
    ):
        condition = action_first(t, path)
        assert condition.margin == pytest.approx(action - exo, abs=MARGIN_ATOL)
        if abs(action - exo) > 1e-6:
            assert condition.holds == (action > exo)


@settings(max_examples=12)
@given(
    SCALARS.filter(
        lambda p: min(abs(p[0] ** 2 * p[1] - p[3]), abs(p[0] ** 2 * p[1] - 2 * p[3] / (1 + p[2]))) > 0.05
    ),
    st.sampled_from(["learned", "identity"]),
    st.integers(1, 2),
)
def test_action_first_agrees_with_the_population_minimizer(parameters, path, context):
    """Independent route: the minimizer's d_z = 1 latent keeps the action direction iff actions come first."""
    system = random_walk_with_exogenous(*parameters)
    t = system.transition(1, context)
    result = minimize_population(t, LAMSpec(1, path, context=context), starts=2)
    M2 = result.params.next_obs_map  # ô' = M₁ obs + M₂ o', M₂ = B D: the captured change
    kept = float(np.linalg.norm(M2[:, 0])) / max(float(np.linalg.norm(M2)), 1e-300)
    assert (kept > 0.99) == bool(action_first(t, path).holds)


def test_smallest_horizon_at_which_actions_come_first():
    """k* by scanning the scalar formulas, against the window route."""
    g, s_a, e, s_eta = 0.5, 1.0, 0.9, 1.0
    system = random_walk_with_exogenous(g, s_a, e, s_eta)
    for path, exo in (
        ("learned", lambda k: s_eta * (1 - e ** (2 * k)) / (1 - e * e)),
        ("identity", lambda k: 2 * s_eta * (1 - e**k) / (1 - e * e)),
    ):
        expected = next(k for k in range(1, 200) if k * g * g * s_a > exo(k))
        found = action_first_horizon(system, path, max_horizon=64)
        assert found.horizon == expected
        assert all(m < 0 for m in found.margins[:-1]) and found.margins[-1] > 0
    assert (expected, action_first_horizon(system, "learned").horizon) == (42, 21)


def test_loading_range_over_a_tie():
    """g²σ_a² = σ_η² (A learned, d_z = 1): either direction is optimal, loading anywhere in [0, 1]."""
    system = random_walk_with_exogenous(1.0, 1.0, 0.5, 1.0)
    t = system.transition()
    tied = exogenous_loading_range(t, 1)
    assert (tied.min, tied.max, tied.identified) == (pytest.approx(0.0, abs=1e-12), pytest.approx(1.0), False)
    both = exogenous_loading_range(t, 2)
    assert both.identified and both.value == pytest.approx(0.5)
    assert action_first(t).holds is None  # a tie decides


@settings(max_examples=6)
@given(
    state_space_systems(
        n=st.integers(2, 3),
        exogenous=1,
        observation="generic",
        observation_noise=None,
        coupling=None,
        feedback=None,
    ),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["learned", "identity"]),
)
def test_exogenous_loading_matches_monte_carlo(system, context, horizon, path):
    """The share of the captured variance that regressing v on the sampled exogenous noise explains."""
    t = system.transition(horizon, context)
    inn = innovation(t, path)
    U = np.linalg.eigh(inn.operator)[1][:, -1:]  # the leading innovation direction
    loading = exogenous_loading(t, U, path)
    rng = np.random.default_rng(4)
    draws = t.sample(100_000, rng)
    v = np.hstack([draws["obs"], draws["next_obs"]]) @ inn.map.T @ U
    sources = draws["sources"][:, t.exogenous_columns]
    if loading is None:
        assert float(np.mean(v**2)) < 1e-9
        return
    coef, *_ = np.linalg.lstsq(sources, v, rcond=None)
    explained = float(np.mean((sources @ coef) ** 2))
    assert explained / float(np.mean(v**2)) == pytest.approx(loading, abs=SAMPLED_ATOL)


@settings(max_examples=6)
@given(
    state_space_systems(n=st.integers(1, 3), observation="generic", observation_noise=True, feedback=None),
    st.integers(1, 2),
    st.integers(1, 2),
)
def test_latent_consistency_matches_monte_carlo(system, context, horizon):
    t = system.transition(horizon, context)
    W = np.random.default_rng(5).standard_normal((1, t.d_c + t.d_o))
    value = latent_consistency(t, W)
    draws = t.sample(100_000, np.random.default_rng(6), ("obs", "next_obs", "action"))
    z = np.hstack([draws["obs"], draws["next_obs"]]) @ W.T
    design = np.hstack([draws["action"], np.ones((len(z), 1))])
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    assert float(np.var(z - design @ coef)) / float(np.var(z)) == pytest.approx(value, abs=SAMPLED_ATOL)


def test_consistency_of_the_clean_latents_in_the_scalar_example():
    """z = Δs is a function of the action (0); z = Δx carries none of it (1)."""
    t = random_walk_with_exogenous(1.0, 1.0, 0.5, 1.0).transition()
    assert latent_consistency(t, [[-1.0, 0.0, 1.0, 0.0]]) == pytest.approx(0.0, abs=1e-12)
    assert latent_consistency(t, [[0.0, -1.0, 0.0, 1.0]]) == pytest.approx(1.0)


def test_bad_arguments_name_the_field():
    t = random_walk_with_exogenous().transition()
    with pytest.raises(ValueError, match="^captured:"):
        exogenous_loading(t, np.ones((3, 1)))
    with pytest.raises(ValueError, match="^features:"):
        latent_consistency(t, np.ones((1, 3)))
    with pytest.raises(ValueError, match="^transition:"):
        exogenous_loading(random_walk_with_exogenous().replace(exogenous=[]).transition(), np.eye(2))
    with pytest.raises(ValueError, match="^persistence:"):
        random_walk_with_exogenous(persistence=1.0)
