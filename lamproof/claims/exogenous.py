"""Claims about hidden and exogenous state, context windows and multi-step inverse models (issue 10).

Declared with :func:`lamproof.claims.core.claim` over state-space systems
(:func:`lamproof.strategies.state_space_systems`, :func:`lamproof.strategies.kalman_form_systems`)
and part of the builtin registry (:data:`lamproof.claims.registry.REGISTRY`, so ``lamproof check
--builtin`` runs them). :func:`lamproof.claims.core.check` solves every drawn problem with
``solve()``, which reads the state-space window; the claims in :data:`NEEDS_SOLUTION` read that
solved optimum, the others only the system.

Each check compares two independent quantities: the window route (the solved optimum, or the moments
of the window's source maps) against a statement computed from the system's parameters (a closed
form, a Riccati or Lyapunov solution, a subspace built from ``F`` and ``G``). Names: ``I`` inverse
models (D12), ``C`` context windows (D10), ``X`` exogenous state (D11, D13).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lamproof.claims.core import assert_close, assert_family, claim
from lamproof.context import innovation
from lamproof.exogenous import (
    action_first,
    consistency_over_family,
    exogenous_loading_range,
    loading_over_family,
)
from lamproof.inverse import (
    controllable_closure,
    encoder_directions,
    forward_closure,
    same_subspace,
    union_of_directions,
)
from lamproof.numeric.probes import probe
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
#: Scores of the solved optimum's family (loading, consistency, probes): exact up to ~1e-10.
FAMILY_TOL = 1e-6
#: Claims stay this far (relative) from a threshold they decide on: at the threshold the optimum ties.
THRESHOLD_MARGIN = 0.05

STATE_SPACE_CLAIMS: list = []
#: Claims that read the solved optimum (the others read only the system and its windows).
NEEDS_SOLUTION: list = []


def _register(needs_solution: bool = False, **kwargs):
    def wrap(fn):
        c = claim(**kwargs)(fn)
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
    return random_walk_with_exogenous(
        draw(_floats(0.3, 2.0)), draw(_floats(0.2, 2.0)), draw(_floats(-0.9, 0.9)), draw(_floats(0.2, 2.0))
    )


def _scalar(system) -> tuple[float, float, float, float]:
    """``(g, σ_a², e, σ_η²)`` of a drawn scalar example."""
    return (
        float(system.action_matrix[0, 0]),
        float(system.exploration_cov[0, 0]),
        float(system.dynamics[1, 1]),
        float(system.process_noise_cov[1, 1]),
    )


def _far(a: float, b: float) -> bool:
    return abs(a - b) > THRESHOLD_MARGIN * max(1.0, abs(a), abs(b))


# -- multi-step inverse models (D12) -------------------------------------------------------------------
@_register(
    name="I1.multistep-inverse-ignores-exogenous",
    source="Efroni et al., arXiv 2110.08847 (Ex-BMDP); derivation D12",
    systems=state_space_systems(
        n=st.integers(2, 4), exogenous=st.integers(1, 1), coupling=False, feedback=False
    ),
    specs=lambda s: lam_specs(s.d_o, d_z=1, horizon=st.integers(1, 3)),
    statement="Multi-step inverse models E[a_t | o_t, o_{t+k}] give exogenous state that drives nothing and that "
    "the policy does not read zero weight, at every horizon k.",
)
def multistep_inverse_ignores_exogenous(system, spec, solution):
    for k in range(1, spec.horizon + 1):
        assert _exogenous_weight(system, encoder_directions(system, k)) <= EXACT_TOL, f"horizon {k} reads x"


@_register(
    name="I2.one-step-inverse-ignores-exogenous",
    expect="false",
    source="the one-step reading of Efroni et al. (arXiv 2110.08847), who show it can fail",
    systems=state_space_systems(n=st.integers(2, 3), exogenous=st.integers(1, 1), feedback=True),
    specs=_one_spec,
    statement="A one-step inverse model E[a_t | o_t, o_{t+1}] ignores exogenous state (zero weight on it).",
    note="False when the policy reads the exogenous state: a_t correlates with x_t, and the inverse model reads "
    "it (D12). The shrunk witness has n = 2.",
)
def one_step_inverse_ignores_exogenous(system, spec, solution):
    assert _exogenous_weight(system, encoder_directions(system, 1)) <= EXACT_TOL, "the one-step model reads x"


@_register(
    name="I3.ac-state-union",
    source="Lamb et al., AC-State, arXiv 2207.08229; derivation D12",
    systems=kalman_form_systems(singular=False),
    specs=_one_spec,
    statement="With an invertible controllable block, the union of the multi-step inverse directions over k ≤ n "
    "is ⟨Fᵀ | 𝒞⟩: the controllable part plus what couples into it.",
)
def ac_state_union(system, spec, solution):
    assert same_subspace(union_of_directions(system, system.n), controllable_closure(system)), (
        "union ≠ ⟨Fᵀ|𝒞⟩"
    )


@_register(
    name="I4.ac-state-union-any-dynamics",
    expect="false",
    source="Levine, Stone, Zhang, arXiv 2403.11940 (AC-State can fail); derivation D12",
    systems=kalman_form_systems(
        n_controllable=st.integers(1, 2),
        n_coupled=st.integers(1, 2),
        n_exogenous=st.integers(0, 1),
        singular=True,
    ),
    specs=_one_spec,
    statement="The AC-State union of multi-step inverse directions is ⟨Fᵀ | 𝒞⟩ for any controllable dynamics "
    "(drawn here with a singular controllable block and a coupled part; with an invertible block it "
    "holds, I3).",
    note="False (Levine et al.): with a singular controllable block (shrunk to F_cc = 0 and a chain u₂ → u₁ → c) "
    "the actions' effect dies after one step and the union misses what couples in; the forward-invariant "
    "closure repairs it (I5).",
)
def ac_state_union_any_dynamics(system, spec, solution):
    assert same_subspace(union_of_directions(system, system.n), controllable_closure(system)), (
        "union ≠ ⟨Fᵀ|𝒞⟩"
    )


@_register(
    name="I5.forward-closure-repairs",
    source="Levine, Stone, Zhang, arXiv 2403.11940; derivation D12",
    systems=kalman_form_systems(),
    specs=_one_spec,
    statement="The forward-invariant closure ⟨Fᵀ | ∪_k E_k⟩ of the inverse directions is ⟨Fᵀ | 𝒞⟩ for every "
    "controllability-form system, singular controllable block or not.",
)
def forward_closure_repairs(system, spec, solution):
    union = union_of_directions(system, system.n)
    assert same_subspace(forward_closure(union, system.dynamics), controllable_closure(system)), (
        "closure ≠ ⟨Fᵀ|𝒞⟩"
    )


# -- context windows (D10) -------------------------------------------------------------------------------
@_register(
    name="C1.long-context-is-the-kalman-limit",
    source="issue 10 (context windows, Genie; LAOM arXiv 2502.00379); derivation D10",
    systems=state_space_systems(
        n=st.integers(1, 3), observation="generic", observation_noise=True, feedback=None
    ),
    specs=_one_spec,
    statement="A LAM reading 40 frames compresses the steady-state Kalman innovation H P Hᵀ + Σ_v (P from the filter "
    "DARE on the open-loop F; the policy's feedback is a known input).",
)
def long_context_is_the_kalman_limit(system, spec, solution):
    S_v = innovation(system.transition(1, 40)).operator
    limit = system.kalman_innovation()
    assert_close(
        float(np.max(np.abs(S_v - limit))) / max(1.0, float(np.max(np.abs(limit)))),
        0.0,
        "distance to the Kalman limit",
        tol=LIMIT_TOL,
    )


@_register(
    name="C2.longer-context-lowers-loading",
    expect="false",
    source="a plausible reading of issue 10's context windows",
    systems=state_space_systems(
        n=st.integers(2, 3), exogenous=st.integers(1, 1), observation="generic", observation_noise=True
    ),
    specs=_one_spec,
    statement="A longer context always lowers the exogenous loading of the optimal latent.",
    note="False: the context removes the predictable part of the innovation, and what remains can be more "
    "exogenous (a hidden endogenous state is filtered better than the exogenous one).",
)
def longer_context_lowers_loading(system, spec, solution):
    short = exogenous_loading_range(system.transition(1, 1), spec.d_z).value
    longer = exogenous_loading_range(system.transition(1, 2), spec.d_z).value
    if short is not None and longer is not None:
        assert longer <= short + EXACT_TOL, f"loading {short:.6g} with one frame, {longer:.6g} with two"


@_register(
    name="C3.optimal-loss-is-context-innovation-tail",
    needs_solution=True,
    source="issue 10 (a LAM with context T and horizon k is PCA of the innovation given the context); D10",
    systems=state_space_systems(
        n=st.integers(1, 3), observation="generic", observation_noise=None, feedback=None
    ),
    specs=lambda s: lam_specs(
        s.d_o, fdm_obs_path="any", horizon=st.integers(1, 2), context=st.integers(1, 3)
    ),
    statement="Zero means: the optimal loss of a LAM with a context of T frames and horizon k is the eigenvalue tail "
    "beyond d_z of the innovation of o_{t+k}: the time-varying Kalman filter's H P Hᵀ + Σ_v after T frames "
    "(A learned), or Cov(o_{t+k} − o_t) (A = I).",
)
def optimal_loss_is_context_innovation_tail(system, spec, solution):
    if spec.fdm_obs_path == "learned":  # the Riccati recursion, never the window's regression
        S_v = system.filtered_innovation(spec.context, spec.horizon)
    else:  # the window's block moments of (o_t, o_{t+k}), not the factors the solver uses
        S = system.transition(spec.horizon, spec.context).second_moment(("current_obs", "next_obs"))
        d = system.d_o
        S_v = S[d:, d:] - S[d:, :d] - S[:d, d:] + S[:d, :d]
    tail = float(np.sum(np.clip(np.linalg.eigvalsh((S_v + S_v.T) / 2)[::-1][spec.d_z :], 0.0, None)))
    assert_close(solution.optimal_loss, tail, "optimal loss", tol=1e-7 * max(1.0, float(np.trace(S_v))))


# -- exogenous state (D11, D13) --------------------------------------------------------------------------
@_register(
    name="X1.scalar-action-first-thresholds",
    source="issue 10 (the scalar example); derivation D11",
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, fdm_obs_path="any", horizon=st.integers(1, 4)),
    statement="Endogenous random walk (gain g, action variance σ_a²) beside an exogenous AR(1) (persistence e, noise "
    "σ_η²): actions come first iff k g²σ_a² > σ_η²(1 − e^{2k})/(1 − e²) (A learned) or "
    "> 2σ_η²(1 − eᵏ)/(1 − e²) (A = I); at k = 1, g²σ_a² > σ_η² and > 2σ_η²/(1+e).",
)
def scalar_action_first_thresholds(system, spec, solution):
    g, s_a, e, s_eta = _scalar(system)
    k = spec.horizon
    exo = (
        s_eta * (1 - e ** (2 * k)) / (1 - e * e)
        if spec.fdm_obs_path == "learned"
        else 2 * s_eta * (1 - e**k) / (1 - e * e)
    )
    condition = action_first(system.transition(k), spec.fdm_obs_path)
    assert_close(condition.margin, k * g * g * s_a - exo, "action-first margin", tol=EXACT_TOL)


@_register(
    name="X2.identity-path-never-helps-actions",
    expect="false",
    source="a plausible reading of D11 (A = I adds the exogenous drift to the innovation)",
    systems=state_space_systems(n=st.integers(2, 3), initial=None),
    specs=_one_spec,
    statement="A fixed FDM path (A = I) never puts the actions first when a learned one does not.",
    note="False: drift of the endogenous state along the action directions adds to them under A = I.",
)
def identity_path_never_helps_actions(system, spec, solution):
    t = system.transition()
    if action_first(t, "identity").holds:
        assert action_first(t, "learned").holds is not False, "actions first with A = I only"


@_register(
    name="X3.reconstruction-loads-exogenous",
    needs_solution=True,
    source="Lee et al., arXiv 2605.20223, claim 1 (reconstruction encodes exogenous information), read linearly: D13",
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, fdm_obs_path="any"),
    statement="Scalar example, d_z = 1: where the exogenous innovation outweighs the action (σ_η² > g²σ_a² with A "
    "learned, 2σ_η²/(1+e) > g²σ_a² with A = I) every optimal LAM's predicted change is the exogenous "
    "change (e − 1)x + η and none of the action: exogenous loading 1 (A learned) or (1+e)/2 (A = I), "
    "exogenous probe of ô' − o (1 − e)/2 (η read through the drift of x), action probe 1; otherwise "
    "loading 0, exogenous probe 1 and action probe 0.",
)
def reconstruction_loads_exogenous(system, spec, solution):
    g, s_a, e, s_eta = _scalar(system)
    exo = s_eta if spec.fdm_obs_path == "learned" else 2 * s_eta / (1 + e)
    if not _far(exo, g * g * s_a):
        return
    exogenous_first = exo > g * g * s_a
    expected = (1.0 if spec.fdm_obs_path == "learned" else (1 + e) / 2) if exogenous_first else 0.0
    assert_family(loading_over_family(solution), expected, "exogenous loading", tol=FAMILY_TOL)
    assert_family(
        probe(solution, "exogenous", "predicted_change"),
        (1 - e) / 2 if exogenous_first else 1.0,
        "exogenous probe of ô' − o",
        tol=FAMILY_TOL,
    )
    assert_family(
        probe(solution, "action", "predicted_change"),
        1.0 if exogenous_first else 0.0,
        "action probe of ô' − o",
        tol=FAMILY_TOL,
    )


@_register(
    name="X4.action-first-latent-is-consistent",
    needs_solution=True,
    expect="false",
    source="a plausible reading of Lee et al., arXiv 2605.20223 (consistency across exogenous states)",
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1),
    statement="Scalar example, A learned: when the actions come first (g²σ_a² > σ_η²), every optimal latent is "
    "consistent across exogenous states: tr E[Var(z | a)]/tr Var(z) = 0 over the optimal family.",
    note="False: the change the LAM predicts is the action's, but observation leakage z + N o is free without "
    "augmentation, and the leaked observation (x_t among it) is not a function of the action: consistency "
    "ranges up to 1 (its canonical member is 0). Augmentation or an action head pins it (X5).",
)
def action_first_latent_is_consistent(system, spec, solution):
    g, s_a, _, s_eta = _scalar(system)
    if g * g * s_a > s_eta and _far(g * g * s_a, s_eta):
        assert_family(consistency_over_family(solution), 0.0, "latent consistency", tol=FAMILY_TOL)


@_register(
    name="X5.action-head-makes-latent-consistent",
    needs_solution=True,
    source="Lee et al., arXiv 2605.20223, claim 3 (action supervision makes latents consistent), read linearly: D13",
    systems=_scalar_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, action_loss_weight=(0.05, 8.0)),
    statement="Scalar example, A learned, action head of weight λ > 0: above λ* = (σ_η² − g²σ_a²)/σ_a² every optimal "
    "latent is a function of the action (consistency tr E[Var(z | a)]/tr Var(z) = 0 over the family), below "
    "it carries none of it (1).",
)
def action_head_makes_latent_consistent(system, spec, solution):
    g, s_a, _, s_eta = _scalar(system)
    star = (s_eta - g * g * s_a) / s_a
    weight = spec.action_loss_weight
    if _far(weight, star):
        assert_family(
            consistency_over_family(solution),
            0.0 if weight > star else 1.0,
            "latent consistency",
            tol=FAMILY_TOL,
        )


def _endogenous_view(coupling):
    """State-space systems observed through ``H`` with its exogenous columns zeroed: a representation of the
    endogenous components only (``W M_x = 0``)."""
    return state_space_systems(
        n=st.integers(2, 3), exogenous=st.integers(1, 1), observation="generic", coupling=coupling
    ).map(_drop_exogenous_columns)


def _drop_exogenous_columns(system):
    H = np.array(system.observation)
    H[:, list(system.exogenous)] = 0.0
    return system.replace(observation=H)


@_register(
    name="X6.endogenous-representation-has-no-loading",
    needs_solution=True,
    source="Lee et al., arXiv 2605.20223, claim 2 (an endogenous representation mitigates it), read linearly: D13",
    systems=_endogenous_view(False),
    specs=lambda s: lam_specs(
        s.d_o, fdm_obs_path="any", horizon=st.integers(1, 3), context=st.integers(1, 2)
    ),
    statement="An observation of the endogenous components only (H's exogenous columns zero), exogenous state that "
    "drives nothing: the exogenous loading of every optimal LAM is 0 and its predicted change carries no "
    "exogenous innovation (exogenous probe of ô' − o 1, or undefined), at any horizon and context.",
)
def endogenous_representation_has_no_loading(system, spec, solution):
    loading = loading_over_family(solution)
    if loading.value is not None:
        assert_family(loading, 0.0, "exogenous loading", tol=FAMILY_TOL)
    exogenous = probe(solution, "exogenous", "predicted_change")
    if exogenous.value is not None:
        assert_family(exogenous, 1.0, "exogenous probe of ô' − o", tol=FAMILY_TOL)


@_register(
    name="X7.endogenous-representation-with-coupling",
    needs_solution=True,
    expect="false",
    source="Lee et al., arXiv 2605.20223, claim 2, read without its assumption that exogenous state drives nothing",
    systems=_endogenous_view(True),
    specs=lambda s: lam_specs(s.d_o, horizon=st.integers(1, 2)),
    statement="An observation of the endogenous components only always has exogenous loading 0, even when the "
    "exogenous state drives the endogenous one.",
    note="False from horizon 2 on: exogenous noise w_{x,t} moves x_{t+1}, which drives the observed endogenous "
    "state at t + 2, so it is part of the innovation of o_{t+2} (at k = 1 it is not yet).",
)
def endogenous_representation_with_coupling(system, spec, solution):
    loading = loading_over_family(solution)
    if loading.value is not None:
        assert_family(loading, 0.0, "exogenous loading", tol=FAMILY_TOL)
