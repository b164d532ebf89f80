"""D12 — Multi-step inverse models: exogenous invariance, AC-State's union, Levine et al.'s failure.

Statement. For a fully observed system with ``K = 0`` and exploration ``Σ_e``, the linear inverse
model of horizon ``k`` is

    E[a_t | s_t, s_{t+k}] = λ_k (s_{t+k} − Fᵏ s_t),   λ_k = Σ_e Gᵀ F^{k−1}ᵀ W_k⁻¹,
    W_k = Σ_{j<k} Fʲ (G Σ_e Gᵀ + Σ_w) Fʲᵀ,

whatever the distribution of ``s_t`` (Efroni et al., arXiv 2110.08847). Its encoder directions are
``span(λ_kᵀ) + span(Fᵏᵀ λ_kᵀ)``. (i) An exogenous block that drives nothing gets zero weight at
every ``k`` (``W_k`` and ``Fᵏ`` are block diagonal, ``G_x = 0``); if it drives the endogenous state
(``F_nx ≠ 0``) the model reads it through ``Fᵏ``. (ii) AC-State (Lamb et al., arXiv 2207.08229):
in controllability form ``[c; u; x]`` (``(F_cc, G_c)`` controllable, ``u`` observable through
``F_cu``) with ``F_cc`` invertible, ``∪_{k≤n} E_k = ⟨Fᵀ | 𝒞⟩``, the controllable part plus what
couples into it. (iii) Levine, Stone, Zhang (arXiv 2403.11940): with ``F_cc = 0`` the actions'
effect dies after one step, ``λ_k = 0`` for ``k ≥ 2``, and the union is ``𝒞 + rowspace(F_cu)``,
missing what couples into ``𝒞`` through more than one step; the forward-invariant closure
``⟨Fᵀ | ∪_k E_k⟩`` repairs it.

Assumptions. ``H = I``, ``Σ_v = 0``, ``K = 0``, ``W_k`` invertible (positive definite process
noise); block-diagonal noise in the controllability form.

SymPy steps. The normal equations ``Cov(a, y) = Λ Cov(y)`` with ``y = [s_t; s_{t+k}]`` in matrix
symbols (``Λ = [−λΦ, λ]`` solves them for any ``P = Cov(s_t)``); the exogenous column of ``λ`` and
``λ Fᵏ`` on a symbolic two-block system (zero without coupling, proportional to the coupling
otherwise); Levine's witness (``F_cc = 0``, ``u₂ → u₁ → c``) in rational arithmetic from the exact
window moments: the union has rank 2, its ``Fᵀ``-closure rank 3.

Check. On drawn controllability-form systems: the window's inverse model against ``λ_k`` and
``−λ_k Fᵏ`` (lambdified), zero exogenous weight, AC-State for invertible ``F_cc``, the repair for
every ``F_cc``, least squares on sampled windows; ``exact=True``: rational systems, the exact
window inverse model against the closed form, zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof.derivations import _framework as fw
from lamproof.inverse import (
    controllable_closure,
    forward_closure,
    inverse_model,
    same_subspace,
    sampled_inverse_model,
    union_of_directions,
)
from lamproof.strategies import kalman_form_systems
from lamproof.symbolic.windows import exact_stationary_cov, exact_window

NAME = "D12"
TITLE = "Multi-step inverse models: exogenous invariance, AC-State, and Levine's failure"
DEFAULT_EXAMPLES = 10

#: Coefficients from window moments against the closed form: both exact to ~1e-13.
COEFFICIENT_ATOL = 1e-9
#: Least squares on 100 000 windows, per unit of regressor spread: ~10σ.
SAMPLED_ATOL = 0.05


def _exact_inverse(window, d_a: int) -> sympy.Matrix:
    """``Cov(a_t, y) Cov(y)⁻¹`` for ``y = [s_t; s_{t+k}]`` from an exact window (``H = I``)."""
    y = [window.frames[window.context - 1], window.next_obs]
    cov_yy = window.stack_cov(y, y)
    cov_ay = window.stack_cov([window.actions[window.context - 1]], y)
    return cov_ay * cov_yy.inv()


def _levine_witness():
    F = sympy.Matrix([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    G = sympy.Matrix([[1], [0], [0]])
    Q = sympy.eye(3)
    P0 = exact_stationary_cov(F, Q + G * G.T)
    rows = []
    for k in (1, 2, 3):
        window = exact_window(
            F, G, sympy.eye(3), sympy.zeros(1, 3), Q, sympy.zeros(3, 3), sympy.eye(1), P0, 1, k
        )
        coefficients = _exact_inverse(window, 1)
        rows += [coefficients[:, :3], coefficients[:, 3:]]
    union = sympy.Matrix.vstack(*rows)
    closure = sympy.Matrix.vstack(union, union * F, union * F**2)
    return union.rank(), closure.rank(), F


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    lambda_k: sympy.Expr
    normal_equations: bool
    exogenous_weights: dict
    uncoupled_zero: bool
    witness: dict


@cache
def derive() -> Results:
    n = sympy.Symbol("n", integer=True, positive=True)
    m = sympy.Symbol("m", integer=True, positive=True)
    P, Phi, Psi, W = (sympy.MatrixSymbol(name, n, n) for name in ("P", "Phi", "Psi", "W"))
    G, Se = sympy.MatrixSymbol("G", n, m), sympy.MatrixSymbol("Sigma_e", m, m)
    lam = Se * G.T * Psi.T * W.I
    # normal equations, block by block: Λ Cov(y) with Λ = [−λΦ, λ], Cov(y) = [[P, PΦᵀ], [ΦP, ΦPΦᵀ + W]]
    first = sympy.expand(-lam * Phi * P + lam * Phi * P)
    second = sympy.expand(-lam * Phi * P * Phi.T + lam * (Phi * P * Phi.T + W) - Se * G.T * Psi.T)
    normal = first == sympy.ZeroMatrix(m, n) and sympy.simplify(second) == sympy.ZeroMatrix(m, n)
    # two blocks (endogenous n, exogenous x), scalar each; coupling c from x into n
    f, h, cpl, gg, qn, qx = sympy.symbols("f h c g q_n q_x", real=True)
    F2 = sympy.Matrix([[f, cpl], [0, h]])
    G2 = sympy.Matrix([[gg], [0]])
    Q2 = sympy.diag(qn, qx)
    weights = {}
    for kk in (1, 2):
        Wk = sum(((F2**jj) * (G2 * G2.T + Q2) * (F2**jj).T for jj in range(kk)), sympy.zeros(2, 2))
        lam2 = (G2.T * (F2 ** (kk - 1)).T * Wk.inv()).applyfunc(sympy.simplify)
        weights[kk] = {"next": sympy.simplify(lam2[0, 1]), "current": sympy.simplify(-(lam2 * F2**kk)[0, 1])}
    witness_union, witness_closure, witness_F = _levine_witness()
    return Results(
        lambda_k=lam,
        normal_equations=normal,
        exogenous_weights=weights,
        uncoupled_zero=all(
            sympy.simplify(w.subs(cpl, 0)) == 0 for ws in weights.values() for w in ws.values()
        ),
        witness={"union_rank": witness_union, "closure_rank": witness_closure, "F": witness_F},
    )


def latex() -> str:
    d = derive()
    w1 = d.exogenous_weights[1]
    steps = [
        "Write $y = [s_t; s_{t+k}]$, $s_{t+k} = \\Phi s_t + \\sum_{j<k} F^{k-1-j}(G e_{t+j} + w_{t+j})$ with "
        "$\\Phi = F^k$, $\\Psi = F^{k-1}$, $P = \\mathrm{Cov}(s_t)$; then $\\mathrm{Cov}(y) = "
        "\\begin{pmatrix} P & P\\Phi^T \\\\ \\Phi P & \\Phi P\\Phi^T + W_k\\end{pmatrix}$ and "
        "$\\mathrm{Cov}(a_t, y) = (0,\\ \\Sigma_e G^T\\Psi^T)$. With",
        fw.display(
            f"\\lambda_k &= {fw.tex(d.lambda_k)}, \\qquad \\Lambda = (-\\lambda_k\\Phi,\\ \\lambda_k)"
        ),
        "SymPy verifies the normal equations $\\mathrm{Cov}(a_t, y) = \\Lambda\\,\\mathrm{Cov}(y)$ block by block "
        f"for any $P$ ({'verified' if d.normal_equations else 'NOT verified'}).",
        "On a two-block system ($F = \\begin{pmatrix} f & c \\\\ 0 & h\\end{pmatrix}$, $G = (g, 0)^T$, noise "
        "$\\mathrm{diag}(q_n, q_x)$) the weight of the exogenous coordinate at $k = 1$ is "
        f"${fw.tex(w1['next'])}$ on $x_{{t+1}}$ and ${fw.tex(w1['current'])}$ on $x_t$; at $k = 2$ both weights are "
        "rational functions with the factor $c$ (the one on $x_{t+2}$ denoises the exogenous noise that $c$ carried "
        f"into the endogenous state): {'all zero' if d.uncoupled_zero else 'NOT all zero'} at $c = 0$, and "
        "nonzero once $x$ drives the endogenous state.",
        "Levine's witness $c' = u_1 + g a$, $u_1' = u_2$, $u_2' = 0$ (plus noise; $F_{cc} = 0$) in rational "
        "arithmetic, each inverse model from the exact window moments: the union of the directions over "
        f"$k \\le 3$ has rank {d.witness['union_rank']}, its $F^T$-closure rank {d.witness['closure_rank']}.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="The $k$-step linear inverse model is $\\lambda_k(s_{t+k} - F^k s_t)$ with "
        "$\\lambda_k = \\Sigma_e G^T F^{(k-1)T} W_k^{-1}$; exogenous state that drives nothing gets zero "
        "weight; the union of the directions over $k \\le n$ is $\\langle F^T \\mid \\mathcal{C}\\rangle$ "
        "when the controllable block is invertible, misses part of it when $F_{cc} = 0$ (Levine et al.), "
        "and its forward-invariant closure always equals it.",
        assumptions=[
            "Fully observed ($H = I$, $\\Sigma_v = 0$), $K = 0$, $W_k$ invertible.",
            "For (ii)--(iii): controllability form $[c; u; x]$, $(F_{cc}, G_c)$ controllable, $u$ observable "
            "through $F_{cu}$, $x$ exogenous and driving nothing, block-diagonal noise.",
        ],
        steps=steps,
        result="$\\bigcup_{k\\le n} E_k = \\langle F^T\\mid\\mathcal{C}\\rangle$ for invertible $F_{cc}$; for "
        "$F_{cc} = 0$, $E_k = 0$ ($k \\ge 2$) and $\\bigcup_k E_k = \\mathcal{C} + \\mathrm{row}(F_{cu})$; in "
        "both cases $\\langle F^T \\mid \\bigcup_k E_k\\rangle = \\langle F^T\\mid\\mathcal{C}\\rangle$.",
        check="The window's inverse models against $\\lambda_k$ on drawn controllability-form systems, zero exogenous "
        "weight, AC-State for invertible $F_{cc}$, the closure for every $F_{cc}$, least squares on sampled "
        "windows; with \\texttt{--exact}, rational systems from exact window moments, zero tolerance.",
    )


# -- verification ----------------------------------------------------------------------------------
def _cases():
    return st.fixed_dictionaries({"system": kalman_form_systems(), "horizon": st.integers(1, 3)})


def _closed_form(system, k: int) -> np.ndarray:
    F, G, Se = system.dynamics, system.action_matrix, system.exploration_cov
    W = sum(
        np.linalg.matrix_power(F, j)
        @ (G @ Se @ G.T + system.process_noise_cov)
        @ np.linalg.matrix_power(F, j).T
        for j in range(k)
    )
    lam = Se @ G.T @ np.linalg.matrix_power(F, k - 1).T @ np.linalg.inv(W)
    return np.hstack([-lam @ np.linalg.matrix_power(F, k), lam])


def _numeric_case(case, results: Results, checker: fw.Checker) -> None:
    system, k = case["system"], case["horizon"]
    context = f"case {case}"
    t = system.transition(k)
    model = inverse_model(t)
    closed = _closed_form(system, k)
    scale = max(1.0, float(np.max(np.abs(closed))))
    checker.close(
        "window inverse model = λ_k (s_{t+k} − Fᵏ s_t)",
        float(np.max(np.abs(model.coefficients - closed))) / scale,
        0.0,
        atol=COEFFICIENT_ATOL,
        context=context,
    )
    x = list(system.exogenous)
    n = system.n
    exo = np.abs(model.coefficients[:, x + [n + i for i in x]]) if x else np.zeros(1)
    checker.close(
        "exogenous weight = 0 (Efroni)",
        float(np.max(exo)) / scale,
        0.0,
        atol=COEFFICIENT_ATOL,
        context=context,
    )
    union = union_of_directions(system, n)
    target = controllable_closure(system)
    c = n - len(x) - _coupled_dim(system)
    if np.linalg.matrix_rank(system.dynamics[:c, :c]) == c:
        checker.holds(
            "AC-State: ∪ E_k = ⟨Fᵀ|𝒞⟩ (invertible F_cc)", same_subspace(union, target), context=context
        )
    checker.holds(
        "forward closure of ∪ E_k = ⟨Fᵀ|𝒞⟩ (any F_cc)",
        same_subspace(forward_closure(union, system.dynamics), target),
        context=context,
    )
    sampled = sampled_inverse_model(t, 100_000, np.random.default_rng(0))
    spread = np.sqrt(np.diag(t.cov(t.stacked("obs", "next_obs"))))
    residual = float(np.sqrt(np.max(np.diag(model.residual_cov))))
    checker.sampled(
        "least squares on sampled windows = λ_k",
        float(np.max(np.abs((sampled.coefficients - model.coefficients) * spread))) / max(residual, 1e-3),
        0.0,
        atol=SAMPLED_ATOL,
        context=context,
    )


def _coupled_dim(system) -> int:
    G = system.action_matrix
    reached = int(np.max(np.flatnonzero(np.any(G != 0, axis=1)))) + 1
    return system.n - len(system.exogenous) - reached


def _exact_case(rng: np.random.Generator, results: Results, checker: fw.Checker) -> None:
    n = int(rng.integers(2, 4))
    F = sympy.Matrix(n, n, lambda i, j: sympy.Rational(int(rng.integers(-1, 2)), 3) if j >= i else 0)
    G = sympy.Matrix(n, 1, lambda i, j: int(rng.integers(-1, 2)) if i < n - 1 else 0)
    if all(v == 0 for v in G):
        G[0, 0] = 1
    Q = sympy.diag(*[sympy.Rational(int(rng.integers(1, 3)), 2) for _ in range(n)])
    P0 = exact_stationary_cov(F, Q + G * G.T)
    k = int(rng.integers(1, 3))
    window = exact_window(F, G, sympy.eye(n), sympy.zeros(1, n), Q, sympy.zeros(n, n), sympy.eye(1), P0, 1, k)
    exact = _exact_inverse(window, 1)
    W = sum(((F**j) * (G * G.T + Q) * (F**j).T for j in range(k)), sympy.zeros(n, n))
    lam = G.T * (F ** (k - 1)).T * W.inv()
    closed = sympy.Matrix.hstack(-lam * F**k, lam)
    checker.holds(
        "exact: window inverse model = closed form",
        (exact - closed).applyfunc(sympy.simplify).is_zero_matrix,
        context=f"exact n={n} k={k} F={F.tolist()} G={G.T.tolist()}",
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds("normal equations (symbolic)", results.normal_equations)
    checker.holds("uncoupled exogenous weight = 0 (symbolic)", results.uncoupled_zero)
    checker.holds(
        "Levine witness: union rank 2, closure rank 3 (exact)",
        (results.witness["union_rank"], results.witness["closure_rank"]) == (2, 3),
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D12's inverse models against the window's regression (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
)
