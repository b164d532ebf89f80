"""Claims about hidden and exogenous state, context windows and multi-step inverse models (issue 10).

Declared with :func:`lamproof.claims.core.claim` over state-space systems
(:func:`lamproof.strategies.state_space_systems`, :func:`lamproof.strategies.kalman_form_systems`).
They are kept in :data:`STATE_SPACE_CLAIMS`, not yet in the builtin registry, because
:func:`lamproof.claims.core.check` solves every drawn problem with ``solve()``, and ``solve()`` does
not read state-space windows yet. Every claim but those in :data:`NEEDS_SOLUTION` ignores the
solution and is checked today by ``tests/test_claims_exogenous.py`` with ``solution=None``.

Each check compares two independent quantities: the window route (moments of the source maps)
against a statement computed from the system's parameters (a closed form, a Riccati or Lyapunov
solution, a subspace built from ``F`` and ``G``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lamproof.claims.core import assert_close, claim
from lamproof.context import innovation
from lamproof.exogenous import action_first, exogenous_loading_range, latent_consistency
from lamproof.inverse import (
    controllable_closure,
    encoder_directions,
    forward_closure,
    same_subspace,
    union_of_directions,
)
from lamproof.statespace import random_walk_with_exogenous
from lamproof.strategies import (
    _floats,
    kalman_form_systems,
    lam_specs,
    state_space_systems,
)

#: Window moments are exact to ~1e-13; coefficients and margins compared at 1e-9.
EXACT_TOL = 1e-9
#: A context of 40 frames is within ~1e-10 of the Kalman limit for the drawn systems (D10).
LIMIT_TOL = 1e-7

STATE_SPACE_CLAIMS: list = []
#: Claims that read the solved optimum: they wait on ``solve()`` for windows (phase 2).
NEEDS_SOLUTION: list = []


def _register(needs_solution: bool = False, **kwargs):
    def wrap(fn):
        c = claim(source=kwargs.pop("source", "issue 10"), **kwargs)(fn)
        STATE_SPACE_CLAIMS.append(c)
        if needs_solution:
            NEEDS_SOLUTION.append(c)
        return c

    return wrap


def _exogenous_weight(system, directions: np.ndarray) -> float:
    return float(np.max(np.abs(directions[list(system.exogenous)]), initial=0.0))


def _one_spec(system):
    return lam_specs(system.d_o, d_z=1)


@st.composite
def _scalar_systems(draw):
    """The scalar example of D11, drawn: gain, action variance, persistence, exogenous variance."""
    return random_walk_with_exogenous(draw(_floats(0.3, 2.0)), draw(_floats(0.2, 2.0)), draw(_floats(-0.9, 0.9)),
                                      draw(_floats(0.2, 2.0)))


# -- multi-step inverse models (D12) -------------------------------------------------------------------
@_register(
    systems=state_space_systems(n=st.integers(2, 4), exogenous=st.integers(1, 1), coupling=False, feedback=False),
    specs=lambda s: lam_specs(s.d_o, d_z=1, horizon=st.integers(1, 3)),
    statement="Multi-step inverse models E[a_t | o_t, o_{t+k}] give exogenous state that drives nothing and that "
              "the policy does not read zero weight, at every horizon (Efroni et al., arXiv 2110.08847).",
)
def multistep_inverse_ignores_exogenous(system, spec, solution):
    for k in range(1, spec.horizon + 1):
        assert _exogenous_weight(system, encoder_directions(system, k)) <= EXACT_TOL, f"horizon {k} reads x"


@_register(
    expect="false",
    systems=state_space_systems(n=st.integers(2, 3), exogenous=st.integers(1, 1), feedback=True),
    specs=_one_spec,
    statement="A one-step inverse model ignores exogenous noise. (False: when the policy reads the exogenous "
              "state, a_t correlates with x_t and the model reads it.)",
)
def one_step_inverse_ignores_exogenous(system, spec, solution):
    assert _exogenous_weight(system, encoder_directions(system, 1)) <= EXACT_TOL, "the one-step model reads x"


@_register(
    systems=kalman_form_systems(singular=False),
    specs=_one_spec,
    statement="AC-State (Lamb et al., arXiv 2207.08229): with an invertible controllable block, the union of the "
              "multi-step inverse directions over k ≤ n is ⟨Fᵀ | 𝒞⟩, the controllable part plus what couples into it.",
)
def ac_state_union(system, spec, solution):
    assert same_subspace(union_of_directions(system, system.n), controllable_closure(system)), "union ≠ ⟨Fᵀ|𝒞⟩"


@_register(
    expect="false",
    systems=kalman_form_systems(n_controllable=st.integers(1, 2), n_coupled=st.integers(0, 2),
                                n_exogenous=st.integers(0, 1)),
    specs=_one_spec,
    statement="The AC-State union is ⟨Fᵀ | 𝒞⟩ for any controllable dynamics. (False, Levine et al., arXiv "
              "2403.11940: with F_cc = 0 the actions' effect dies after one step.)",
)
def ac_state_union_any_dynamics(system, spec, solution):
    assert same_subspace(union_of_directions(system, system.n), controllable_closure(system)), "union ≠ ⟨Fᵀ|𝒞⟩"


@_register(
    systems=kalman_form_systems(),
    specs=_one_spec,
    statement="The forward-invariant closure ⟨Fᵀ | ∪_k E_k⟩ of the inverse directions is ⟨Fᵀ | 𝒞⟩ for every "
              "controllability-form system, singular controllable block or not (the repair of Levine et al.).",
)
def forward_closure_repairs(system, spec, solution):
    union = union_of_directions(system, system.n)
    assert same_subspace(forward_closure(union, system.dynamics), controllable_closure(system)), "closure ≠ ⟨Fᵀ|𝒞⟩"


# -- context windows (D10) -------------------------------------------------------------------------------
@_register(
    systems=state_space_systems(n=st.integers(1, 3), observation="generic", observation_noise=True, feedback=None),
    specs=_one_spec,
    statement="A LAM reading 40 frames compresses the steady-state Kalman innovation H P Hᵀ + Σ_v (P from the filter "
              "DARE on the open-loop F; the policy's feedback is a known input).",
)
def long_context_is_the_kalman_limit(system, spec, solution):
    S_v = innovation(system.transition(1, 40)).operator
    limit = system.kalman_innovation()
    assert_close(float(np.max(np.abs(S_v - limit))) / max(1.0, float(np.max(np.abs(limit)))), 0.0,
                 "distance to the Kalman limit", tol=LIMIT_TOL)


@_register(
    expect="false",
    systems=state_space_systems(n=st.integers(2, 3), exogenous=st.integers(1, 1), observation="generic",
                                observation_noise=True),
    specs=_one_spec,
    statement="A longer context always lowers the exogenous loading of the optimal latent. (False: the context "
              "removes the predictable part of the innovation, and what remains can be more exogenous.)",
)
def longer_context_lowers_loading(system, spec, solution):
    short = exogenous_loading_range(system.transition(1, 1), spec.d_z).value
    longer = exogenous_loading_range(system.transition(1, 2), spec.d_z).value
    if short is not None and longer is not None:
        assert longer <= short + EXACT_TOL, f"loading {short:.6g} with one frame, {longer:.6g} with two"


# -- exogenous state (D11, D13) --------------------------------------------------------------------------
@_register(
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, fdm_obs_path="any", horizon=st.integers(1, 4)),
    statement="Endogenous random walk beside an exogenous AR(1): actions come first iff "
              "k g²σ_a² > σ_η²(1 − e^{2k})/(1 − e²) (A learned) or > 2σ_η²(1 − eᵏ)/(1 − e²) (A = I); "
              "at k = 1, g²σ_a² > σ_η² and > 2σ_η²/(1+e).",
)
def scalar_action_first_thresholds(system, spec, solution):
    g, s_a = system.action_matrix[0, 0], system.exploration_cov[0, 0]
    e, s_eta = system.dynamics[1, 1], system.process_noise_cov[1, 1]
    k = spec.horizon
    exo = s_eta * (1 - e ** (2 * k)) / (1 - e * e) if spec.fdm_obs_path == "learned" \
        else 2 * s_eta * (1 - e**k) / (1 - e * e)
    condition = action_first(system.transition(k), spec.fdm_obs_path)
    assert_close(condition.margin, k * g * g * s_a - exo, "action-first margin", tol=EXACT_TOL)


@_register(
    expect="false",
    systems=state_space_systems(n=st.integers(2, 3), initial=None),
    specs=_one_spec,
    statement="A fixed FDM path (A = I) never puts the actions first when a learned one does not. (False: drift of "
              "the endogenous state along the action directions adds to them under A = I.)",
)
def identity_path_never_helps_actions(system, spec, solution):
    t = system.transition()
    if action_first(t, "identity").holds:
        assert action_first(t, "learned").holds is not False, "actions first with A = I only"


@_register(
    needs_solution=True,
    systems=state_space_systems(n=st.integers(1, 3), observation="generic", observation_noise=None, feedback=None),
    specs=lambda s: lam_specs(s.d_o, horizon=st.integers(1, 2), context=st.integers(1, 3)),
    statement="The optimal loss of a LAM with a context window is the eigenvalue tail of the innovation given the "
              "context (waits on phase 2: solve() on windows).",
)
def optimal_loss_is_context_innovation_tail(system, spec, solution):
    S_v = innovation(system.transition(spec.horizon, spec.context), spec.fdm_obs_path).operator
    tail = float(np.sum(np.clip(np.linalg.eigvalsh(S_v)[::-1][spec.d_z:], 0.0, None)))
    assert_close(solution.optimal_loss, tail, "optimal loss")


@_register(
    needs_solution=True,
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, fdm_obs_path="identity", idm="tied", action_loss_weight=(0.0, 8.0)),
    statement="Action supervision makes the latent consistent across exogenous states: with a weight above "
              "λ* = (2σ_η²/(1+e) − g²σ_a²)/σ_a² the optimal latent is a function of the action (consistency 0), below "
              "it carries none of it (1) (D13; waits on phase 2: solve() on windows).",
)
def action_head_makes_latent_consistent(system, spec, solution):
    g, s_a = system.action_matrix[0, 0], system.exploration_cov[0, 0]
    e, s_eta = system.dynamics[1, 1], system.process_noise_cov[1, 1]
    star = (2 * s_eta / (1 + e) - g * g * s_a) / s_a
    weight = spec.action_loss_weight
    if weight > 0 and abs(weight - star) > 0.1 * max(1.0, abs(star)):
        value = latent_consistency(system.transition(), solution.parameters.latent_map)
        assert_close(value, 1.0 if weight < star else 0.0, "consistency", tol=1e-4)
