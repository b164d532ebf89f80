"""Multi-step inverse models: Efroni's exogenous invariance, AC-State's union, Levine et al.'s failure
and its forward-invariant repair, each as a property over random systems with shrunk witnesses."""

import numpy as np
import pytest
import sympy
from hypothesis import find, given, settings
from hypothesis import strategies as st

from lamproof.inverse import (
    controllable_closure,
    encoder_directions,
    forward_closure,
    inverse_model,
    same_subspace,
    sampled_inverse_model,
    union_of_directions,
)
from lamproof.statespace import StateSpaceSystem
from lamproof.strategies import kalman_form_systems, state_space_systems

#: A coefficient counts as zero below this, relative to the largest: exact window moments carry
#: ~1e-15 relative error, and pseudo-inverses of well-conditioned covariances keep it below 1e-12.
ZERO_RTOL = 1e-9
#: Least squares on 200 000 windows: coefficients of O(1) standardized regressors have standard
#: error ~1/√n ≈ 0.002 per unit of residual scale; 0.03 is ~10σ.
SAMPLED_ATOL = 0.03
WITNESS_SEARCH = settings(max_examples=300, database=None, deadline=None)


def _exogenous_weight(system, directions: np.ndarray) -> float:
    x = list(system.exogenous)
    return float(np.max(np.abs(directions[x]), initial=0.0))


@settings(max_examples=20)
@given(
    state_space_systems(exogenous=st.integers(1, 2), n=st.integers(3, 4), coupling=False, feedback=False),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_multistep_inverse_models_ignore_exogenous_state(system, horizon, context):
    """Efroni et al.: exogenous coordinates that drive nothing and that the policy does not read get
    zero weight at every horizon (and with a context)."""
    model = inverse_model(system.transition(horizon, context))
    blocks = np.vstack(model.frame_blocks)
    scale = max(float(np.max(np.abs(blocks))), 1e-300)
    assert _exogenous_weight(system, blocks.T) <= ZERO_RTOL * scale


def test_a_one_step_inverse_model_reads_exogenous_state_the_policy_reads():
    """The plausible claim "a one-step inverse model ignores exogenous noise" is false: shrunk witness."""

    def reads_exogenous(system):
        directions = encoder_directions(system, 1)
        return _exogenous_weight(system, directions) > 1e-6

    witness = find(
        state_space_systems(exogenous=1, n=2, feedback=True), reads_exogenous, settings=WITNESS_SEARCH
    )
    x = list(witness.exogenous)
    assert np.any(witness.policy_gain[:, x] != 0)  # the policy reads the exogenous state
    assert witness.n == 2 and witness.d_a == 1


@settings(max_examples=25)
@given(kalman_form_systems(singular=False))
def test_ac_state_union_is_the_controllable_part_plus_what_couples_into_it(system):
    """AC-State (invertible controllable block): ∪_{k≤n} E_k = ⟨Fᵀ | 𝒞⟩, nothing exogenous."""
    union = union_of_directions(system, system.n)
    target = controllable_closure(system)
    assert same_subspace(union, target)
    assert target.shape[1] == system.n - len(system.exogenous)


def test_levine_failure_is_a_singular_controllable_block():
    """The AC-State claim over all controllability-form systems is false; the shrunk witness has F_cc = 0."""

    def fails(system):
        return not same_subspace(union_of_directions(system, system.n), controllable_closure(system))

    search = kalman_form_systems(
        n_controllable=st.integers(1, 2), n_coupled=st.integers(0, 2), n_exogenous=st.integers(0, 1)
    )
    witness = find(search, fails, settings=WITNESS_SEARCH)
    c = witness.n - len(witness.exogenous) - _coupled(witness)
    F_cc = witness.dynamics[:c, :c]
    assert np.linalg.matrix_rank(F_cc) < c  # singular controllable dynamics
    assert witness.n <= 3 and witness.d_a == 1
    # the actions' effect dies after one step: no inverse model beyond k = 1 sees them
    assert all(encoder_directions(witness, k).shape[1] == 0 for k in range(2, witness.n + 1))


def _coupled(system) -> int:
    """Coordinates between the controllable block and the exogenous one (controllability form)."""
    G = system.action_matrix
    reached = int(np.max(np.flatnonzero(np.any(G != 0, axis=1)))) + 1
    return system.n - len(system.exogenous) - reached


@settings(max_examples=25)
@given(kalman_form_systems())
def test_forward_invariant_closure_repairs_the_union(system):
    """⟨Fᵀ | ∪ E_k⟩ = ⟨Fᵀ | 𝒞⟩ for every system, singular controllable block or not."""
    union = union_of_directions(system, system.n)
    assert same_subspace(forward_closure(union, system.dynamics), controllable_closure(system))


@settings(max_examples=6)
@given(
    state_space_systems(n=st.integers(1, 3), observation="generic", observation_noise=True, feedback=None),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_inverse_model_matches_least_squares_on_samples(system, horizon, context):
    t = system.transition(horizon, context)
    exact = inverse_model(t)
    sampled = sampled_inverse_model(t, 200_000, np.random.default_rng(3))
    residual = float(np.sqrt(np.max(np.diag(exact.residual_cov))))
    y_scale = np.sqrt(np.diag(t.cov(t.stacked("obs", "next_obs"))))
    scaled = (sampled.coefficients - exact.coefficients) * y_scale  # per unit of regressor spread
    assert np.max(np.abs(scaled)) <= SAMPLED_ATOL * max(residual, 1e-3)


# -- exact rational arithmetic ---------------------------------------------------------------------
def _exact_inverse(F, G, Q, P0, k):
    """Λ of E[a_t | s_t, s_{t+k}] in SymPy (K = 0, Σ_e = 1): Cov(a, y) Cov(y)⁻¹ from the iterated map."""
    Fk = F**k
    W = sympy.zeros(F.rows, F.rows)
    for j in range(k):
        W += F**j * (G * G.T + Q) * (F**j).T
    cov_yy = sympy.Matrix(sympy.BlockMatrix([[P0, P0 * Fk.T], [Fk * P0, Fk * P0 * Fk.T + W]]))
    cov_ay = sympy.Matrix.hstack(sympy.zeros(1, F.rows), G.T * (F ** (k - 1)).T)
    return cov_ay * cov_yy.inv()


def _stationary(F, Q):
    """Exact stationary covariance: solve P = F P Fᵀ + Q as a linear system in rationals."""
    n = F.rows
    P = sympy.Matrix(n, n, lambda i, j: sympy.Symbol(f"p_{min(i, j)}_{max(i, j)}"))
    solution = sympy.solve(list(P - F * P * F.T - Q), list(P.free_symbols), dict=True)[0]
    return P.subs(solution)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_inverse_model_equals_the_exact_rational_model(k):
    """The closed form Σ_a Gᵀ F^{k−1}ᵀ W_k⁻¹ (s_{t+k} − Fᵏ s_t) (Efroni et al.'s linear form, D12), in
    rationals, against the window."""
    F = sympy.Matrix(
        [
            [sympy.Rational(1, 2), sympy.Rational(1, 3), 0],
            [0, sympy.Rational(-1, 4), 0],
            [0, 0, sympy.Rational(2, 3)],
        ]
    )
    G = sympy.Matrix([[1], [1], [0]])
    Q = sympy.diag(1, sympy.Rational(1, 2), 2)
    P0 = _stationary(F + 0 * G * G.T, Q + G * G.T)
    exact = _exact_inverse(F, G, Q, P0, k)
    Wk = sum(((F**j) * (G * G.T + Q) * (F**j).T for j in range(k)), sympy.zeros(3, 3))
    closed = G.T * (F ** (k - 1)).T * Wk.inv()
    assert exact == sympy.Matrix.hstack(-closed * F**k, closed)  # the closed form, zero tolerance
    system = StateSpaceSystem(
        np.array(F, dtype=float),
        np.array(G, dtype=float),
        process_noise_cov=np.array(Q, dtype=float),
        exogenous=[2],
    )
    numeric = inverse_model(system.transition(k)).coefficients
    np.testing.assert_allclose(numeric, np.array(exact, dtype=float), atol=1e-12)
    assert exact[0, 2] == 0 and exact[0, 5] == 0  # the exogenous coordinate, exactly


def test_levine_witness_in_exact_arithmetic():
    """F_cc = 0, u₂ → u₁ → c: the union of exact inverse directions has rank 2, its Fᵀ-closure rank 3."""
    F = sympy.Matrix([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    G = sympy.Matrix([[1], [0], [0]])
    Q = sympy.eye(3)
    P0 = _stationary(F, Q + G * G.T)
    rows = []
    for k in range(1, 4):
        coefficients = _exact_inverse(F, G, Q, P0, k)
        rows += [coefficients[:, :3], coefficients[:, 3:]]
    union = sympy.Matrix.vstack(*rows)
    assert union.rank() == 2
    closure = sympy.Matrix.vstack(union, union * F, union * F**2)
    assert closure.rank() == 3
    assert all(entry == 0 for entry in _exact_inverse(F, G, Q, P0, 2))
