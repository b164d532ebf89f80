"""D1 — The linear LAM is PCA of the innovation (docs/theory.md §2, R1).

Statement. For any linear system with bias-free LAM ``z = Co + Do'``, ``ô' = Ao + Bz``, let
``L = S_{o'o} S_oo⁻¹`` and ``S_r = S_{o'o'} − L S_{oo'}`` (the second moment of the innovation
``r = o' − L o``). Then ``ℓ = ‖(M₁ + M₂L − L) S_oo^{1/2}‖²_F + tr((M₂ − I) S_r (M₂ − I)ᵀ)``, the
optimum is ``M₂ = P`` (the projector on a top-``d_z`` eigenspace of ``S_r``),
``M₁ = (I − P)L``, and the minimal loss is ``Σ_{i>d_z} λ_i(S_r)``. With the FDM's observation
path fixed (``A = I``) the same holds with ``S_Δ``, the second moment of ``Δ = o' − o``; a tied
IDM (``D = −C``) with a learned ``A`` loses nothing.

Assumptions. ``S_oo`` invertible; nothing else (no Gaussianity, any means, any ``F``, ``K``).

SymPy steps.
1. The objective as ``Trace`` expressions in ``MatrixSymbol`` s (:func:`objective`).
2. The decomposition: substitute ``S_{oo'} = S_oo Lᵀ`` and ``S_{o'o'} = S_r + L S_oo Lᵀ`` and
   decide exactly that both sides agree (trace normal form).
3. Gradients by matrix calculus; the stationarity equations; the canonical optimum
   (``A = L, B = U, C = −UᵀL, D = Uᵀ`` with ``S_r U = UΛ``, ``UᵀU = I``) makes every gradient
   vanish identically — for the free, tied and fixed-path variants.

Check. The lambdified ``S_r`` gives the tail sum; the population minimizer (which never uses it)
gives the optimum on random general systems; they must agree, ``M₂`` must equal ``P`` where the
eigengap is clear, and the lambdified symbolic gradient must vanish at the minimizer's
parameters. ``exact=True`` adds rational systems from Cayley embeddings: the exact spectrum
equals the designed one, the exact canonical optimum's loss equals the tail sum, and its exact
gradients are zero — all with zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st
from sympy import Inverse

from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.symbolic import exact as ex
from lamproof.symbolic import objective as so

NAME = "D1"
TITLE = "The linear LAM is PCA of the innovation"
DEFAULT_EXAMPLES = 10

VARIANTS = (("learned", "free"), ("learned", "tied"), ("identity", "free"), ("identity", "tied"))
#: Variants whose canonical optimum is checked symbolically (the tied ones are checked numerically).
SYMBOLIC_VARIANTS = (("learned", "free"), ("identity", "free"))


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    objective: so.Objective
    decomposition_rhs: sympy.Expr
    decomposition_holds: bool
    equations: list
    stationarity: dict
    #: the results: the operator whose eigenvalue tail is the minimal loss, per FDM path
    innovation: dict


@cache
def derive() -> Results:
    """Every symbolic step of D1; the ``innovation`` entries are the results that are checked."""
    M = so.moments()
    obj = so.objective()
    _, rhs, lhs, rules = so.loss_decomposition()
    from lamproof.symbolic.algebra import is_zero_scalar

    stationarity = {}
    for fdm, idm in SYMBOLIC_VARIANTS:
        variant = so.objective(fdm_obs_path=fdm, idm=idm)
        stationarity[(fdm, idm)] = so.check_optimum(variant)
    innovation = M["S_pp"] - M["S_op"].T * Inverse(M["S_oo"]) * M["S_op"]
    difference = M["S_pp"] - M["S_op"] - M["S_op"].T + M["S_oo"]
    return Results(
        objective=obj,
        decomposition_rhs=rhs,
        decomposition_holds=is_zero_scalar(lhs - rhs, rules),
        equations=so.stationarity(obj),
        stationarity=stationarity,
        innovation={"learned": innovation, "identity": difference},
    )


def latex() -> str:
    d = derive()
    obj = d.objective
    eqs = [
        fw.broken(f"\\frac{{\\partial \\ell}}{{\\partial {name}}}", so.symmetrize(g), 2)
        for name, g in so.gradients(obj).items()
    ]
    checks = ", ".join(
        f"{fdm} $A$ / {idm} IDM: {'all gradients vanish' if c.holds else 'FAILS'}"
        for (fdm, idm), c in d.stationarity.items()
    )
    steps = [
        "The reconstruction loss, with $M_1 = A + BC$ and $M_2 = BD$, in the second moments:",
        fw.display(fw.broken("\\ell", obj.reconstruction, 1)),
        "Substituting $S_{oo'} = S_{oo} L^T$ and $S_{o'o'} = S_r + L S_{oo} L^T$ (the definitions of "
        "$L$ and $S_r$) and reducing both sides to a trace normal form, SymPy finds them identical "
        f"({'verified' if d.decomposition_holds else 'NOT verified'}):",
        fw.display(fw.broken("\\ell", d.decomposition_rhs, 1)),
        "Gradients by SymPy's matrix calculus; the stationarity equations set each to zero:",
        fw.display(*eqs),
        "With $B = U$, $D = U^T$, $C = -U^T L$, $A = L$, $S_r U = U\\Lambda$, $U^T U = I$ every "
        f"gradient reduces to zero. Variants: {checks}.",
        "The innovation operators (learned and fixed FDM observation path):",
        fw.display(
            "S_r &= " + fw.tex(d.innovation["learned"]), "S_\\Delta &= " + fw.tex(d.innovation["identity"])
        ),
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="The optimal bias-free linear LAM predicts $\\hat o' = L o + P r$, where $P$ projects on "
        "a top-$d_z$ eigenspace of the innovation moment $S_r$; its loss is the eigenvalue tail.",
        assumptions=[
            "$S_{oo}$ invertible; $L = S_{o'o} S_{oo}^{-1}$.",
            "Any means, dynamics $F$, policy gain $K$ and noise; no Gaussianity is used.",
        ],
        steps=steps,
        result="$\\min \\ell = \\sum_{i > d_z} \\lambda_i(S_r)$ (with $S_\\Delta$ when $A = I$); unique iff "
        "$\\lambda_{d_z}(S_r) > \\lambda_{d_z+1}(S_r)$ or the tail is zero.",
        check="Tail sum of the lambdified $S_r$ against the population minimizer on random general systems "
        "(all four variants), $M_2 = P$ where the eigengap is clear, the lambdified gradient at the "
        "minimizer; with \\texttt{--exact}, Cayley-embedded rational systems with zero tolerance.",
    )


# -- verification ------------------------------------------------------------------------------------
@cache
def _lambdified_innovation(fdm: str):
    M = so.moments()
    return so.lambdify_matrix(derive().innovation[fdm], [M["S_oo"], M["S_op"], M["S_pp"]])


@cache
def _lambdified_gradients(fdm: str, idm: str):
    M, P = so.moments(), so.parameters()
    args = [P["A"], P["B"], P["C"], P["D"], M["S_oo"], M["S_op"], M["S_pp"]]
    grads = so.gradients(so.objective(fdm_obs_path=fdm, idm=idm))
    return {name: so.lambdify_matrix(g, args) for name, g in grads.items()}


def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.dims(2, 5),
            "variant": st.sampled_from(VARIANTS),
            "feedback": st.booleans(),
            "dynamics": st.booleans(),
            "means": st.booleans(),
            "noise_rank": st.integers(0, 3),
            "seed": fw.generator_seeds(),
        }
    )


def _numeric_case(case, results, checker: fw.Checker) -> None:
    d_o, d_a, d_z = case["dims"]
    fdm, idm = case["variant"]
    system = draws.general_system(
        d_o,
        d_a,
        case["seed"],
        feedback=case["feedback"],
        dynamics=case["dynamics"],
        means=case["means"],
        noise_rank=min(case["noise_rank"], d_o),
    )
    spec = LAMSpec(d_z, fdm_obs_path=fdm, idm=idm)
    t = system.transition()
    S_oo, S_op, S_pp = t.second_moment("obs"), t.second_moment("obs", "next_obs"), t.second_moment("next_obs")
    if results is derive():
        f = _lambdified_innovation(fdm)
    else:
        M = so.moments()
        f = so.lambdify_matrix(results.innovation[fdm], [M["S_oo"], M["S_op"], M["S_pp"]])
    S_v = f(S_oo, S_op, S_pp)
    values, vectors = np.linalg.eigh((S_v + S_v.T) / 2)
    values, vectors = values[::-1], vectors[:, ::-1]
    tail = float(np.sum(values[d_z:]))
    result = draws.minimize(system, spec, case["seed"] % 1000)
    context = f"case {case}"
    checker.close("optimal loss = eigenvalue tail", tail, result.objective.reconstruction, context=context)
    scale = float(np.max(np.abs(values))) or 1.0
    gap = values[d_z - 1] - values[d_z] if d_z < d_o else np.inf
    if gap > 1e-2 * scale:
        # the prediction ô' = L_b o + P v is unique (M₂ itself need not be, when S_xx is singular)
        U = vectors[:, :d_z] * (values[:d_z] > 1e-9 * scale)
        P = U @ U.T
        L_b = S_op.T @ np.linalg.inv(S_oo) if fdm == "learned" else np.eye(d_o)
        difference = np.hstack(
            [result.params.obs_map - (np.eye(d_o) - P) @ L_b, result.params.next_obs_map - P]
        )
        S_xx = t.second_moment(t.stacked("obs", "next_obs"))
        error = float(np.trace(difference @ S_xx @ difference.T)) / max(1.0, float(np.trace(S_pp)))
        checker.close("prediction = L o + P r", error, 0.0, atol=fw.OBJECTIVE_RTOL, context=context)
    if (fdm, idm) not in SYMBOLIC_VARIANTS:
        return
    grads = _lambdified_gradients(fdm, idm)
    p = result.params
    moment_scale = max(1.0, float(np.max(np.abs(S_pp))), float(np.max(np.abs(S_oo))))
    residual = max(float(np.max(np.abs(g(p.A, p.B, p.C, p.D, S_oo, S_op, S_pp)))) for g in grads.values())
    checker.close(
        "symbolic gradient vanishes at the minimizer",
        residual / moment_scale,
        0.0,
        atol=1e-5,
        context=context,
    )


def _exact_case(rng: np.random.Generator, results, checker: fw.Checker) -> None:
    """A Cayley-embedded rational system with a designed spectrum, solved in rationals."""
    d_o = int(rng.integers(3, 6))
    d_a = int(rng.integers(1, d_o))
    d_b = int(rng.integers(0, d_o - d_a + 1))
    d_z = int(rng.integers(1, d_o + 1))
    Q = ex.rational_orthogonal(d_o, rng)
    # distinct designed eigenvalues: action gains g_i² and noise variances, all different
    pool = [sympy.Rational(v, 4) for v in rng.permutation(np.arange(1, 40))[: d_a + d_b]]
    gains = [sympy.sqrt(v) for v in pool[:d_a]]
    if any(not g.is_Rational for g in gains):  # keep the gains rational: use squares
        pool[:d_a] = [sympy.Rational(int(rng.integers(1, 7)) + i * 7, 2) ** 2 for i in range(d_a)]
        gains = [sympy.sqrt(v) for v in pool[:d_a]]
    Phi, Psi = Q[:, :d_a], Q[:, d_a : d_a + d_b]
    G = Phi * sympy.diag(*gains)
    noise = Psi * sympy.diag(*pool[d_a:]) * Psi.T if d_b else sympy.zeros(d_o, d_o)
    F = sympy.Matrix(d_o, d_o, lambda i, j: sympy.Rational(int(rng.integers(-3, 4)), 4))
    K = sympy.Matrix(d_a, d_o, lambda i, j: sympy.Rational(int(rng.integers(-2, 3)), 3))
    system = ex.ExactSystem.build(G, F=F, K=K, Sigma_n=noise)
    designed = sorted(pool + [0] * (d_o - d_a - d_b), key=lambda v: -float(v))
    mom = ex.exact_moments(system)
    M = so.moments()
    S_r = ex.exact_objective_value(
        results.innovation["learned"],
        {M["S_oo"]: mom["S_oo"], M["S_op"]: mom["S_op"], M["S_pp"]: mom["S_pp"]},
        {so.d_o: d_o},
    )
    spectrum = ex.exact_spectrum(S_r)
    context = f"exact d_o={d_o} d_a={d_a} d_b={d_b} d_z={d_z}"
    checker.holds(
        "exact spectrum = designed spectrum",
        spectrum == designed,
        context=f"{spectrum} vs {designed} ({context})",
    )
    V = ex.exact_top_space(S_r, d_z)
    params = ex.exact_canonical(system, V, d_z)
    P = so.parameters()
    values = {P[k]: params[k] for k in "ABCD"}
    values.update({M["S_oo"]: mom["S_oo"], M["S_op"]: mom["S_op"], M["S_pp"]: mom["S_pp"]})
    dims = {so.d_o: d_o, so.d_z: d_z}
    loss = ex.exact_objective_value(derive().objective.reconstruction, values, dims)
    checker.equal("exact loss = designed tail", sum(designed[d_z:]), loss, context=context)
    for name, g in so.gradients(so.objective()).items():
        value = ex.exact_objective_value(g, values, dims)
        checker.holds("exact gradients vanish", value.is_zero_matrix, context=f"∂/∂{name} ≠ 0 ({context})")


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds("decomposition (symbolic)", results.decomposition_holds)
    for variant, check in results.stationarity.items():
        checker.holds(
            "canonical optimum is stationary (symbolic)", check.holds, context=f"{variant}: {check.residuals}"
        )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D1's result against the population minimizer (and exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
)
