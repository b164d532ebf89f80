"""Controllability: Kalman, PBH and Gramian answers agree; exact and numeric routes agree.

Ground truths never come from the function under test: exact ranks from SymPy's rational
arithmetic (integer systems, Cayley-transform orthogonal systems), ranks by construction
(block-triangular systems with a known uncontrollable part), the Lyapunov equation, direct sums
of matrix powers, and the System's exact k-step transition moments.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from _random_systems import random_system as shared_random_system
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamproof import control
from lamproof.systems import System

seeds = st.integers(0, 2**32 - 1)


# -- strategies --------------------------------------------------------------------------------
@st.composite
def integer_pairs(draw):
    """Small integer ``(F, B)`` as float arrays: often defective, often uncontrollable."""
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, n))
    F = draw(hnp.arrays(np.int64, (n, n), elements=st.integers(-2, 2)))
    if draw(st.booleans()):
        F = np.triu(F)  # exact, repeated eigenvalues
    B = draw(hnp.arrays(np.int64, (n, m), elements=st.integers(-1, 1)))
    return F.astype(float), B.astype(float)


def cayley(draw, n: int) -> sympy.Matrix:
    """``(I − S)(I + S)⁻¹`` for a rational skew-symmetric ``S``: exactly orthogonal."""
    S = sympy.zeros(n, n)
    for i in range(n):
        for j in range(i + 1, n):
            value = sympy.Rational(draw(st.integers(-3, 3)), 2)
            S[i, j], S[j, i] = value, -value
    identity = sympy.eye(n)
    return (identity - S) * (identity + S).inv()


@st.composite
def cayley_pairs(draw):
    """``F = (4/5) Q`` with ``Q`` a Cayley orthogonal matrix (or two blocks of one), exact."""
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, n))
    B = sympy.Matrix(draw(hnp.arrays(np.int64, (n, m), elements=st.integers(-1, 1))).tolist())
    if n > 1 and draw(st.booleans()):  # two decoupled blocks, inputs reach one
        split = draw(st.integers(1, n - 1))
        Q = sympy.diag(cayley(draw, split), cayley(draw, n - split))
        B[split:, :] = sympy.zeros(n - split, m)
    else:
        Q = cayley(draw, n)
    return sympy.Rational(4, 5) * Q, B


def to_float(matrix: sympy.Matrix) -> np.ndarray:
    return np.array(matrix.tolist(), dtype=np.float64).reshape(matrix.shape)


def stable(rng: np.random.Generator, n: int, radius: float = 0.8) -> np.ndarray:
    F = rng.standard_normal((n, n))
    return F * (radius / control.spectral_radius(F))


def random_psd(rng: np.random.Generator, n: int) -> np.ndarray:
    """PSD, singular about half the time."""
    factor = rng.standard_normal((n, int(rng.integers(1, n + 1))))
    return factor @ factor.T


def power_sum(F: np.ndarray, Q: np.ndarray, steps: int) -> np.ndarray:
    """The Gramian's definition, term by term (the library uses doubling)."""
    return sum(np.linalg.matrix_power(F, j) @ Q @ np.linalg.matrix_power(F, j).T for j in range(steps))


# -- Kalman == PBH == Gramian ------------------------------------------------------------------
@settings(deadline=None)
@given(integer_pairs(), st.integers(1, 7))
def test_kalman_pbh_and_gramian_agree_with_the_exact_rank(pair, steps):
    F, B = pair
    n = F.shape[0]
    exact = control.exact_kalman_rank(F, B)
    assert control.kalman_rank(F, B) == exact
    assert control.controllable_subspace(F, B).shape == (n, exact)
    assert control.pbh_test(F, B).controllable == (exact == n)
    assert control.exact_is_controllable(F, B) == (exact == n)
    # The Gramian W_k = K_k K_kᵀ: same rank as the k-step Kalman matrix, exactly.
    exact_k = control.exact_kalman_rank(F, B, steps)
    assert control.exact_gramian(F, B @ B.T, steps).rank() == exact_k
    assert control.kalman_rank(F, B, steps=steps) == exact_k
    # Numerically the Gramian holds half the digits: check where its spectrum has a clear gap.
    W = control.gramian(F, B @ B.T, steps)
    eigenvalues = np.sort(np.linalg.eigvalsh(W))[::-1]
    if exact_k == 0 or eigenvalues[exact_k - 1] > 1e-6 * eigenvalues[0]:
        assert control.gramian_rank(W) == exact_k


@given(seeds)
def test_a_known_uncontrollable_block_is_found_by_every_route(seed):
    """``F = T [[A11, A12], [0, A22]] Tᵀ``, ``B = T [B1; 0]``: rank r, uncontrollable modes eig(A22)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    r = int(rng.integers(0, n + 1))
    m = int(rng.integers(1, n + 1))
    T = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = rng.standard_normal((n, n))
    A[r:, :r] = 0
    A *= 0.9 / max(control.spectral_radius(A), 1e-3)
    B0 = rng.standard_normal((n, m))
    B0[r:] = 0
    F, B = T @ A @ T.T, T @ B0
    # F and B carry round-off from the change of basis T, so rank at 1e-10, not at eps.
    assert control.kalman_rank(F, B, tol=1e-10) == r
    basis = control.controllable_subspace(F, B, tol=1e-10)
    np.testing.assert_allclose(basis @ basis.T, T[:, :r] @ T[:, :r].T, atol=1e-8)
    pbh = control.pbh_test(F, B, tol=1e-10)
    assert pbh.controllable == (r == n)
    # The uncontrollable modes are eig(A22): compare characteristic polynomials (order-free).
    np.testing.assert_allclose(np.poly(pbh.uncontrollable), np.poly(np.linalg.eigvals(A[r:, r:])), atol=1e-7)
    assert control.gramian_rank(control.gramian(F, B @ B.T, n)) == r


# -- exact == numeric --------------------------------------------------------------------------
@settings(deadline=None)
@given(cayley_pairs(), st.integers(1, 7))
def test_exact_and_numeric_routes_agree_on_rational_orthogonal_systems(pair, steps):
    F, B = pair
    assert F * F.T == sympy.Rational(16, 25) * sympy.eye(F.rows)  # Cayley: exactly orthogonal
    Ff, Bf = to_float(F), to_float(B)
    exact_K = control.exact_kalman_matrix(F, B, steps)
    np.testing.assert_allclose(
        control.kalman_matrix(Ff, Bf, steps), to_float(exact_K), rtol=1e-12, atol=1e-12
    )
    assert control.kalman_rank(Ff, Bf, steps=steps) == exact_K.rank()
    Q = B * B.T
    np.testing.assert_allclose(
        control.gramian(Ff, to_float(Q), steps),
        to_float(control.exact_gramian(F, Q, steps)),
        rtol=1e-12,
        atol=1e-12,
    )
    controllable = control.exact_is_controllable(F, B)
    assert control.pbh_test(Ff, Bf).controllable == controllable
    assert control.kalman_rank(Ff, Bf) == control.exact_kalman_rank(F, B)
    assert control.exact_controllable_subspace(F, B).cols == control.exact_kalman_rank(F, B)


@settings(deadline=None)
@given(integer_pairs(), st.integers(1, 3))
def test_statespace_kalman_matrix_is_the_prefix_of_the_longer_one(pair, extra):
    """``steps = n`` goes through ``StateSpace.controllability_matrix``, other horizons do not."""
    F, B = pair
    n, m = B.shape
    assert control.exact_kalman_matrix(F, B, n + extra)[:, : n * m] == control.exact_kalman_matrix(F, B)


@given(
    hnp.arrays(np.int64, (3, 3), elements=st.integers(-8, 8)),
    hnp.arrays(np.int64, (3, 2), elements=st.integers(-8, 8)),
)
def test_exactly_representable_floats_are_taken_exactly(F_int, B_int):
    F, B = F_int / 4.0, B_int / 8.0  # dyadic: exact in float64
    as_rationals = sympy.Matrix(3, 3, lambda i, j: sympy.Rational(int(F_int[i, j]), 4))
    assert control.exact_matrix(F, "dynamics") == as_rationals
    B_rationals = [[sympy.Rational(int(v), 8) for v in row] for row in B_int]
    assert control.exact_kalman_matrix(F, B) == control.exact_kalman_matrix(as_rationals, B_rationals)


# -- Gramians ----------------------------------------------------------------------------------
@given(seeds, st.integers(1, 40))
def test_gramian_equals_the_sum_of_its_terms(seed, steps):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    F, Q = stable(rng, n, radius=float(rng.uniform(0.1, 1.3))), random_psd(rng, n)
    expected = power_sum(F, Q, steps)
    np.testing.assert_allclose(
        control.gramian(F, Q, steps), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()
    )
    K = control.kalman_matrix(F, _factor(Q), steps)  # W_k = K_k K_kᵀ with Q = B Bᵀ
    np.testing.assert_allclose(K @ K.T, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def _factor(Q: np.ndarray) -> np.ndarray:
    """Some ``B`` with ``B Bᵀ = Q``."""
    eigenvalues, vectors = np.linalg.eigh(Q)
    return vectors * np.sqrt(np.clip(eigenvalues, 0, None))


@given(seeds)
def test_infinite_gramian_solves_lyapunov_and_is_the_limit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    F, Q = stable(rng, n), random_psd(rng, n)
    W = control.infinite_gramian(F, Q)
    scale = np.abs(W).max()
    np.testing.assert_allclose(F @ W @ F.T + Q, W, atol=1e-10 * scale)
    for k in (1, 5, 20):
        # W_∞ − W_k = F^k W_∞ F^kᵀ (the tail of the series), and it is PSD.
        Fk = np.linalg.matrix_power(F, k)
        tail = W - control.gramian(F, Q, k)
        np.testing.assert_allclose(tail, Fk @ W @ Fk.T, atol=1e-9 * scale)
        assert np.linalg.eigvalsh(tail).min() >= -1e-9 * scale
    np.testing.assert_allclose(control.gramian(F, Q, 400), W, atol=1e-9 * scale)


# -- the System's Gramians against its exact transition moments ---------------------------------
def random_system(rng: np.random.Generator, *, means: bool = False) -> System:
    """Random dimensions and unstructured dynamics ``F``, for the controllability tests."""
    d_o, d_a = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    return shared_random_system(
        rng,
        d_o,
        d_a,
        means=means,
        dynamics=rng.standard_normal((d_o, d_o)) / np.sqrt(d_o),
        noise=rng.random() < 0.7,
    )


@given(seeds, st.integers(1, 5))
def test_action_plus_noise_gramian_is_the_k_step_innovation(seed, k):
    rng = np.random.default_rng(seed)
    system = random_system(rng)
    transition = system.transition(k)
    S00 = transition.second_moment("obs")
    Sk0 = transition.second_moment("next_obs", "obs")
    innovation = transition.second_moment("next_obs") - Sk0 @ np.linalg.solve(S00, Sk0.T)
    action, noise = control.action_gramian(system, k), control.noise_gramian(system, k)
    scale = max(1.0, np.abs(innovation).max())
    np.testing.assert_allclose(action + noise, innovation, atol=1e-9 * scale)
    # Each part separately: the exploration-driven (noise-driven) part of o_k, read off the maps.
    d_o, d_a = system.d_o, system.d_a
    to_next = transition.maps["next_obs"]
    driven_by_exploration = np.zeros_like(to_next)
    driven_by_exploration[:, d_o : d_o + k * d_a] = to_next[:, d_o : d_o + k * d_a]
    np.testing.assert_allclose(action, transition.cov(driven_by_exploration), atol=1e-9 * scale)
    driven_by_noise = np.zeros_like(to_next)
    driven_by_noise[:, d_o + k * d_a :] = to_next[:, d_o + k * d_a :]
    np.testing.assert_allclose(noise, transition.cov(driven_by_noise), atol=1e-9 * scale)


@given(seeds, st.integers(1, 5))
def test_with_means_the_gramians_are_the_innovation_covariance(seed, k):
    rng = np.random.default_rng(seed)
    system = random_system(rng, means=True)
    transition = system.transition(k)
    C00 = transition.cov("obs")
    Ck0 = transition.cov("next_obs", "obs")
    residual = transition.cov("next_obs") - Ck0 @ np.linalg.solve(C00, Ck0.T)
    total = control.action_gramian(system, k) + control.noise_gramian(system, k)
    np.testing.assert_allclose(total, residual, atol=1e-9 * max(1.0, np.abs(residual).max()))


@given(seeds)
def test_infinite_system_gramians_are_limits_of_the_finite_ones(seed):
    rng = np.random.default_rng(seed)
    system = random_system(rng)
    target = stable(rng, system.d_o, 0.7)
    system = system.replace(dynamics=target - system.action_matrix @ system.policy_gain)  # F_cl = target
    assert control.spectral_radius(system.closed_loop) < 0.75
    for finite, infinite in (
        (control.action_gramian, control.infinite_action_gramian),
        (control.noise_gramian, control.infinite_noise_gramian),
    ):
        limit = infinite(system)
        np.testing.assert_allclose(finite(system, 300), limit, atol=1e-9 * max(1.0, np.abs(limit).max()))
    F_cl, B = control.control_pair(system)
    np.testing.assert_allclose(
        B @ B.T,
        system.action_matrix @ system.exploration_cov @ system.action_matrix.T,
        atol=1e-9 * max(1.0, np.abs(B).max() ** 2),
    )


# -- bad input ---------------------------------------------------------------------------------
EYE2, ONES21 = np.eye(2), np.ones((2, 1))
BAD_CALLS = {
    "non-square dynamics": (lambda: control.kalman_matrix(np.ones((2, 3)), ONES21), "dynamics"),
    "mismatched input rows": (lambda: control.kalman_rank(EYE2, np.ones((3, 1))), "input_matrix"),
    "vector input": (lambda: control.pbh_test(EYE2, np.ones(2)), "input_matrix"),
    "steps zero": (lambda: control.kalman_matrix(EYE2, ONES21, 0), "steps"),
    "steps float": (lambda: control.gramian(EYE2, EYE2, 2.0), "steps"),
    "gramian steps zero": (lambda: control.gramian(EYE2, EYE2, 0), "steps"),
    "NaN dynamics": (lambda: control.kalman_rank([[np.nan, 0], [0, 1]], ONES21), "dynamics"),
    "NaN input": (lambda: control.controllable_subspace(EYE2, [[1.0], [np.nan]]), "input_matrix"),
    "negative tol": (lambda: control.kalman_rank(EYE2, ONES21, tol=-1.0), "tol"),
    "indefinite input_cov": (lambda: control.gramian(EYE2, np.diag([1.0, -1.0]), 2), "input_cov"),
    "mismatched input_cov": (lambda: control.gramian(EYE2, np.eye(3), 2), "input_cov"),
    "unstable dynamics": (lambda: control.infinite_gramian(1.2 * EYE2, EYE2), "dynamics"),
    "marginal dynamics": (lambda: control.infinite_gramian(EYE2, EYE2), "dynamics"),
    "unstable closed loop": (lambda: control.infinite_action_gramian(System(np.eye(2))), "closed_loop"),
    "horizon zero": (lambda: control.action_gramian(System(np.eye(2)), 0), "horizon"),
    "not a system": (lambda: control.noise_gramian(np.eye(2), 1), "system"),
    "exact non-square": (lambda: control.exact_kalman_rank([[1, 2]], [[1]]), "dynamics"),
    "exact mismatched": (lambda: control.exact_kalman_matrix([[1]], [[1], [2]]), "input_matrix"),
    "exact NaN": (lambda: control.exact_kalman_rank([[float("nan")]], [[1]]), "dynamics"),
    "exact symbol": (lambda: control.exact_kalman_rank([[sympy.Symbol("a")]], [[1]]), "dynamics"),
    "exact irrational": (lambda: control.exact_is_controllable([[sympy.sqrt(2)]], [[1]]), "dynamics"),
    "exact steps": (lambda: control.exact_kalman_matrix([[1]], [[1]], 0), "steps"),
    "exact asymmetric cov": (
        lambda: control.exact_gramian([[1, 0], [0, 1]], [[1, 1], [0, 1]], 1),
        "input_cov",
    ),
    "exact indefinite cov": (
        lambda: control.exact_gramian([[1, 0], [0, 1]], [[1, 0], [0, -1]], 1),
        "input_cov",
    ),
    "exact gramian steps": (lambda: control.exact_gramian([[1]], [[1]], 0), "steps"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_value_error_naming_the_argument(case):
    call, name = BAD_CALLS[case]
    with pytest.raises(ValueError, match=rf"^{name}: "):
        call()
