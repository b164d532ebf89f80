"""The public Hypothesis strategies: valid values, argument validation, shrinking to simple values."""

import numpy as np
import pytest
import sympy
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lamproof import LAMSpec, System, solve
from lamproof.strategies import (
    dimensions,
    integer_matrices,
    lam_specs,
    noises,
    orthonormal_matrices,
    policies,
    problems,
    psd_matrices,
    rational_orthogonal_matrices,
    systems,
)


@given(psd_matrices(dimensions(1, 5), condition=5.0))
def test_psd_matrices_are_symmetric_psd_with_bounded_condition(matrix):
    assert np.array_equal(matrix, matrix.T)
    values = np.linalg.eigvalsh(matrix)
    assert values[0] >= -1e-12
    nonzero = values[values > 1e-9]
    assert nonzero.size >= 1
    assert nonzero.max() / nonzero.min() <= 5.0 + 1e-9


@given(st.data())
def test_psd_rank_is_respected(data):
    n = data.draw(dimensions(1, 5))
    rank = data.draw(st.integers(0, n))
    matrix = data.draw(psd_matrices(n, rank=rank))
    assert np.linalg.matrix_rank(matrix, tol=1e-9) == rank


@given(orthonormal_matrices(dimensions(1, 6), 1))
def test_orthonormal_matrices_have_orthonormal_columns(matrix):
    assert np.allclose(matrix.T @ matrix, np.eye(matrix.shape[1]), atol=1e-12)


@given(rational_orthogonal_matrices(dimensions(1, 4), exact=True))
def test_exact_rational_orthogonal_is_exactly_orthogonal(matrix):
    assert all(isinstance(entry, sympy.Rational) for entry in matrix)
    assert matrix.T * matrix == sympy.eye(matrix.shape[0])


@given(systems(noise="any", feedback=None, dynamics=None, means=None, obs_cov="psd", exploration="psd"))
def test_systems_are_valid_systems(system):
    assert isinstance(system, System)
    assert 1 <= system.d_a <= system.d_o <= 6
    assert System.from_dict(system.to_dict()).d_o == system.d_o


@given(systems(d_o=5, d_a=2, noise="structured", noise_dim=3))
def test_structured_noise_is_orthogonal_to_orthonormal_actions(system):
    assert np.allclose(system.action_matrix.T @ system.noise_cov, 0.0, atol=1e-12)
    assert np.linalg.matrix_rank(system.noise_cov, tol=1e-9) == 3


@given(policies(2, 4))
def test_paper_policies(policy):
    assert 0.0 <= policy.chi <= 0.75
    assert np.allclose(policy.exploration_cov, (1 - policy.chi) ** 2 * np.eye(2))


@given(noises(3, kind="uniform", sigma=(0.5, 1.0)))
def test_uniform_noise_has_the_papers_moments(noise):
    assert noise.distribution == "uniform"
    assert np.allclose(noise.mean, noise.sigma / 2)
    assert np.allclose(noise.cov, noise.sigma**2 / 12 * np.eye(3))


@settings(max_examples=20)
@given(problems(systems(noise="any"), lambda s: lam_specs(s.d_o, idm="any", fdm_obs_path="any")))
def test_problems_solve(problem):
    system, spec = problem
    assert isinstance(spec, LAMSpec) and spec.d_z <= system.d_o
    assert solve(system, spec).optimal_loss >= -1e-9


def test_shrinking_reaches_simple_values():
    assert np.array_equal(find(psd_matrices(3), lambda m: True), np.eye(3))
    assert np.array_equal(find(orthonormal_matrices(3, 2), lambda m: True), np.eye(3)[:, :2])
    assert np.array_equal(find(integer_matrices(2, 2), lambda m: True), np.zeros((2, 2)))
    system = find(systems(noise="isotropic", feedback=None, dynamics=None), lambda s: True)
    assert (system.d_o, system.d_a) == (1, 1)
    assert system.to_dict()["policy_gain"] == [[0.0]] and system.to_dict()["dynamics"] == [[1.0]]
    assert find(lam_specs(4), lambda s: True).d_z == 1
    # a property that needs a bigger system shrinks to the smallest one that has it
    assert find(systems(), lambda s: s.d_o >= 3).d_o == 3


@pytest.mark.parametrize(
    "build",
    [
        lambda: dimensions(3, 2),
        lambda: dimensions(-1, 2),
        lambda: psd_matrices(0),
        lambda: psd_matrices(2, rank=3),
        lambda: psd_matrices(2, condition=0.5),
        lambda: psd_matrices(2, scale=0.0),
        lambda: orthonormal_matrices(2, 3),
        lambda: rational_orthogonal_matrices(2.5),
        lambda: integer_matrices(2, 2, min_value=3, max_value=1),
        lambda: policies(2, 3, kind="greedy"),
        lambda: policies(2, 3, chi=1.5),
        lambda: noises(3, kind="pink"),
        lambda: noises(3, sigma=-1.0),
        lambda: noises(3, sigma=(2.0, 1.0)),
        lambda: systems(d_o=2, d_a=3),
        lambda: systems(noise="brown"),
        lambda: systems(feedback="yes"),
        lambda: systems(action="sparse"),
        lambda: lam_specs(3, d_z=4),
        lambda: lam_specs(3, idm="shared"),
        lambda: lam_specs(3, augmentation=-0.1),
        lambda: lam_specs(3, horizon=0),
        lambda: problems(systems_strategy=3),
    ],
)
def test_bad_arguments_raise_invalid_argument(build):
    with pytest.raises(InvalidArgument):
        build()


def test_bad_value_drawn_from_a_strategy_raises_invalid_argument():
    with pytest.raises(InvalidArgument):
        find(orthonormal_matrices(st.just(2), st.just(3)), lambda m: True)
