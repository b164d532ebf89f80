"""The symbolic layer: matrix calculus, normal forms, exact systems, parametric families."""

import numpy as np
import pytest
import sympy
from sympy import Identity, MatrixSymbol

from lamproof.lam import LAMSpec
from lamproof.numeric.objective import LAMParameters, population_objective
from lamproof.symbolic import exact as ex
from lamproof.symbolic import families as fam
from lamproof.symbolic import objective as so
from lamproof.symbolic.algebra import Rules, is_zero_matrix, is_zero_scalar
from lamproof.systems import System


def test_decomposition_of_the_loss_is_an_identity():
    assert so.check_decomposition()


@pytest.mark.parametrize("variant", [dict(), dict(fdm_obs_path="identity"), dict(augmentation=True)])
def test_canonical_optimum_is_stationary(variant):
    check = so.check_optimum(so.objective(**variant))
    assert check.holds, check.residuals


def test_whole_family_is_stationary():
    obj = so.objective()
    assert so.check_optimum(obj, so.canonical_candidate(obj, family=True)).holds


def test_a_wrong_candidate_is_not_stationary():
    """The decision procedure can say no: forget L in C (C = −Uᵀ instead of −UᵀL)."""
    obj = so.objective()
    good = so.canonical_candidate(obj)
    X, P = so.optimum_symbols(), so.parameters()
    wrong = dict(good.substitutions)
    wrong[P["C"]] = -X["U"].T
    bad = so.Candidate("wrong", wrong, good.rules, good.facts)
    check = so.check_optimum(obj, bad)
    assert not check.holds
    assert check.residuals["A"] != "0"


def test_normal_form_rules():
    n = sympy.Symbol("n", integer=True, positive=True)
    U, S, Lam = MatrixSymbol("U", n, 2), MatrixSymbol("S", n, n), MatrixSymbol("Lambda", 2, 2)
    rules = Rules(frozenset({S, Lam}), (((U.T, U), ()), ((S, U), (U, Lam))))
    assert is_zero_matrix(U.T * U - Identity(2), rules)
    assert is_zero_matrix(S * U - U * Lam, rules)
    assert not is_zero_matrix(U * U.T - Identity(n), rules)
    X = MatrixSymbol("X", n, n)
    assert is_zero_scalar(sympy.Trace(X * S) - sympy.Trace(S * X.T), rules)  # rotation and transposition


def test_symbolic_gradient_matches_finite_differences_of_the_core_objective():
    """The matrix-calculus gradient, lambdified, against the core's exact objective (independent code)."""
    rng = np.random.default_rng(1)
    d_o, d_z = 4, 2
    system = System(
        rng.standard_normal((d_o, 2)), noise_cov=0.3 * np.eye(d_o), obs_mean=rng.standard_normal(d_o)
    )
    t = system.transition()
    spec = LAMSpec(d_z, augmentation=0.4)
    obj = so.objective(augmentation=True)
    M, P = so.moments(), so.parameters()
    args = [P["A"], P["B"], P["C"], P["D"], M["S_oo"], M["S_op"], M["S_pp"], so.s]
    grads = {k: so.lambdify_matrix(g, args) for k, g in so.gradients(obj).items()}
    S_oo, S_op, S_pp = t.second_moment("obs"), t.second_moment("obs", "next_obs"), t.second_moment("next_obs")
    params = {
        k: rng.standard_normal(shape)
        for k, shape in dict(A=(d_o, d_o), B=(d_o, d_z), C=(d_z, d_o), D=(d_z, d_o)).items()
    }

    def f(p):
        return population_objective(LAMParameters(**p), t, spec).total

    h = 1e-6
    for name, g in grads.items():
        analytic = g(*(params[k] for k in "ABCD"), S_oo, S_op, S_pp, 0.4)
        numeric = np.zeros_like(params[name])
        for idx in np.ndindex(*params[name].shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][idx] += h
            down[name][idx] -= h
            numeric[idx] = (f(up) - f(down)) / (2 * h)
        assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-5), name


def test_lambdify_refuses_inconsistent_shapes():
    M = so.moments()
    f = so.lambdify_matrix(M["S_pp"] - M["S_oo"], [M["S_oo"], M["S_pp"]])
    assert np.allclose(f(np.eye(3), 2 * np.eye(3)), np.eye(3))
    with pytest.raises(ValueError, match="S_{o'o'}"):
        f(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="values"):
        f(np.eye(3))


def test_innovation_moment_refuses_bad_shapes():
    with pytest.raises(ValueError, match="S_oo"):
        so.innovation_moment(np.ones((2, 3)), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="S_pp"):
        so.innovation_moment(np.eye(2), np.eye(2), np.eye(3))
    S = so.innovation_moment(2 * np.eye(2), np.eye(2), np.eye(2))
    assert np.allclose(S, 0.5 * np.eye(2))


def test_cayley_is_exactly_orthogonal_and_validates():
    rng = np.random.default_rng(0)
    Q = ex.rational_orthogonal(5, rng)
    assert Q.T * Q == sympy.eye(5)
    with pytest.raises(ValueError, match="skew"):
        ex.cayley(sympy.Matrix([[0, 1, 2]]))
    with pytest.raises(ValueError, match="skew"):
        ex.cayley(sympy.Matrix([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="skew"):
        ex.cayley(sympy.Matrix([[0, sympy.sqrt(2)], [-sympy.sqrt(2), 0]]))
    # one rational converter for every exact routine (lamproof.control.exact_matrix): a float is
    # its exact binary value, so 0.5 is 1/2 and 0.1 is not 1/10
    half = sympy.Rational(1, 2)
    assert ex.cayley([[0, 0.5], [-0.5, 0]]) == ex.cayley(sympy.Matrix([[0, half], [-half, 0]]))
    assert ex.cayley([[0, 0.1], [-0.1, 0]]) != ex.cayley(
        sympy.Matrix([[0, sympy.Rational(1, 10)], [-sympy.Rational(1, 10), 0]])
    )


def test_exact_system_validates_and_solves():
    with pytest.raises(ValueError, match="F"):
        ex.ExactSystem.build(sympy.eye(3)[:, :1], F=sympy.eye(2))
    with pytest.raises(ValueError, match="Sigma_n"):
        ex.ExactSystem.build(sympy.eye(3)[:, :1], Sigma_n=sympy.Matrix([[1, 1, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match="S"):
        ex.exact_spectrum(sympy.ones(2, 3))
    system = ex.ExactSystem.build(sympy.eye(3)[:, :2] * 2)  # isotropic actions: a tie inside the block
    _, S_r = ex.exact_innovation(system)
    assert ex.exact_spectrum(S_r) == [4, 4, 0]
    with pytest.raises(ValueError, match="d: eigenvalue tie"):
        ex.exact_top_space(S_r, 1)
    V = ex.exact_top_space(S_r, 2)
    assert ex.projector(V) == sympy.diag(1, 1, 0)


def test_exact_objective_value_checks_shapes():
    obj = so.objective()
    P = so.parameters()
    with pytest.raises(ValueError, match="A"):
        ex.exact_objective_value(obj.reconstruction, {P["A"]: sympy.eye(2)}, {so.d_o: 3, so.d_z: 1})


def test_families():
    root, slope = fam.dominance_threshold()
    assert sympy.simplify(root - (1 - fam.chi) / fam.c) == 0
    assert fam.isotropic_reorders() == 0
    assert set(fam.rrr_block().eigenvals()) == {0, fam.lam + 1}
    with pytest.raises(ValueError, match="sizes"):
        fam.block_spectrum((0, 1, 1))
    # paper §7: 1 % labels with d_o = 128, d_a = 8 and batches of 128
    weight = fam.effective_weight().subs(
        {fam.d_o: 128, fam.d_a: 8, fam.batch: 128, fam.rho: sympy.Rational(1, 100)}
    )
    assert abs(float(weight) - 11.58) < 0.01
    with pytest.raises(ValueError, match="X"):
        so.gradient(sympy.Trace(MatrixSymbol("A", 2, 2)), "A")
