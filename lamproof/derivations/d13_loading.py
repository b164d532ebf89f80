"""D13 — Exogenous loading and latent consistency: what the three claims of Lee et al. mean linearly.

Lee, Cho, Zhao, Lee (*Why Latent Actions Fail, and How to Prevent It*, arXiv 2605.20223) state
that (1) reconstruction makes latents encode exogenous information from the future observation,
(2) a representation focused on endogenous components mitigates it, and (3) action supervision
makes latents consistent across exogenous states. We could not read their full text; these are
lamproof's linear formalizations, on the scalar example of D11 (endogenous random walk ``s' = s + g a``,
exogenous AR(1) ``x' = e x + η``, ``o = [s; x]``, ``T = k = 1``) and on a mixed observation.

Statement. Let ``X = σ_η²`` (``A`` learned) or ``X = 2σ_η²/(1 + e)`` (``A = I``) be the exogenous
eigenvalue of the innovation (D11) and ``A_a = g²σ_a²`` the action's.

(1) With ``d_z = 1`` the optimal latent is the exogenous one iff ``X > A_a``: its exogenous loading
    (share of the captured variance from the exogenous innovation) is ``σ_η²/X`` — 1 for ``A``
    learned, ``(1 + e)/2`` for ``A = I`` (the rest is the drift ``(e − 1)x``) — and its
    consistency ``tr E[Var(z | a)]/tr Var(z)`` is 1. With ``d_z = 2`` the loading is
    ``σ_η²/(A_a + X)``, whatever the order.
(2) With ``o = M_s s + M_x x`` and a fixed representation ``W`` that annihilates the exogenous
    embedding (``W M_x = 0``), the LAM on ``W o`` has loading 0 for every ``σ_η``.
(3) An action head of weight ``λ`` makes the reduced-rank-regression operator's action eigenvalue
    ``A_a + λσ_a²`` (the exogenous one stays ``X``): the ``d_z = 1`` latent switches to the action,
    and its consistency from 1 to 0, at ``λ* = (X − A_a)/σ_a²``.

Assumptions. As D11; ``K = 0``; ties excluded (``X ≠ A_a``, ``λ ≠ λ*``); consistency is read on the
clean latent ``z = Uᵀ v`` (a leaky member ``z + N o`` of the optimal family has any consistency up to 1).

SymPy steps. The eigenvalues of the regression operator ``Cov(ŷ)``, ``ŷ = [v; √λ E[a | v]]``
(``eigenvals``); ``λ*`` solved; the loadings as ratios of the innovation's blocks.

Check. The population minimizer (never given ``v``) on drawn scalars: the loading of its captured
space and the consistency of the clean latent on it against the formulas, ``d_z ∈ {1, 2}``, both
FDM paths; with an action head (``A = I``, tied IDM: no leakage) the consistency of its latent
against ``1[λ < λ*]``; a random mixed observation with ``W = I − M_x M_x⁺``: loading 0.
``exact=True``: rational scalars, the two-direction loading from exact window maps, zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof.context import innovation
from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.exogenous import exogenous_loading, latent_consistency
from lamproof.lam import LAMSpec
from lamproof.numeric.linalg import orthonormal_basis
from lamproof.numeric.population import minimize_population
from lamproof.statespace import StateSpaceSystem, random_walk_with_exogenous
from lamproof.symbolic.windows import exact_window

NAME = "D13"
TITLE = "Exogenous loading and latent consistency (Lee et al., linearly)"
DEFAULT_EXAMPLES = 8

g = sympy.Symbol("g", positive=True)
s_a, s_eta, lam = sympy.symbols("sigma_a^2 sigma_eta^2 lambda", positive=True)
e = sympy.Symbol("e", real=True)
X = sympy.Symbol("X", positive=True)
#: Loadings and consistencies of the minimizer's optimum: its parameters are exact to ~1e-5
#: relative (the objective to ~1e-10), so ratios of variances agree to ~1e-5.
RATIO_ATOL = 1e-4
#: Cases closer than this (relative) to a tie or to λ* decide nothing and are skipped.
CLEAR = 0.1


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    operator: sympy.Matrix
    eigenvalues: dict
    action_eigenvalue_found: bool
    lambda_star: sympy.Expr
    exogenous_eigenvalue: dict
    loading_exogenous_latent: dict
    loading_two: dict


@cache
def derive() -> Results:
    # the regression operator Cov(ŷ), ŷ = [v_s, v_x, √λ E[a | v]] with v_s = g a, E[a | v] = v_s / g
    operator = sympy.Matrix(
        [[g**2 * s_a, 0, sympy.sqrt(lam) * g * s_a], [0, X, 0], [sympy.sqrt(lam) * g * s_a, 0, lam * s_a]]
    )
    eigenvalues = {sympy.simplify(value): count for value, count in operator.eigenvals().items()}
    action_value = g**2 * s_a + lam * s_a
    switch = sympy.solve(sympy.Eq(action_value, X), lam)[0]
    exo = {"learned": s_eta, "identity": 2 * s_eta / (1 + e)}
    return Results(
        operator=operator,
        eigenvalues=eigenvalues,
        action_eigenvalue_found=any(sympy.simplify(v - action_value) == 0 for v in eigenvalues),
        lambda_star=switch,
        exogenous_eigenvalue=exo,
        loading_exogenous_latent={path: sympy.simplify(s_eta / x) for path, x in exo.items()},
        loading_two={path: s_eta / (g**2 * s_a + x) for path, x in exo.items()},
    )


def latex() -> str:
    d = derive()
    values = ", ".join(f"{fw.tex(v)}" for v in d.eigenvalues)
    steps = [
        "(1) The innovation of the scalar example is $\\mathrm{diag}(g^2\\sigma_a^2, X)$ with $X = \\sigma_\\eta^2$ "
        "($A$ learned) or $X = 2\\sigma_\\eta^2/(1+e)$ ($A = I$) (D11). Of $X$ the exogenous innovation $\\eta$ "
        "contributes $\\sigma_\\eta^2$, so the loading of the exogenous latent is "
        f"${fw.tex(d.loading_exogenous_latent['learned'])}$ and "
        f"${fw.tex(d.loading_exogenous_latent['identity'])}$, and with both directions captured "
        f"${fw.tex(d.loading_two['learned'])}$ resp. ${fw.tex(d.loading_two['identity'])}$.",
        "(2) A representation $W$ with $W M_x = 0$ removes $x$ from every frame, hence from the innovation: the "
        "exogenous block of $W S_v W^T$ is zero and so is the loading.",
        "(3) With an action head the optimum is reduced-rank regression of $y = [v; \\sqrt{\\lambda}\\,a]$ on the LAM's "
        "inputs; the regression $\\hat y = [v_s, v_x, \\sqrt\\lambda\\, v_s/g]$ has covariance",
        fw.display(f"\\mathrm{{Cov}}(\\hat y) &= {fw.tex(d.operator)}"),
        f"with eigenvalues ${values}$ (SymPy), so the action direction's value is "
        "$g^2\\sigma_a^2 + \\lambda\\sigma_a^2$ and the latent switches at",
        fw.display(f"\\lambda^* &= {fw.tex(d.lambda_star)}."),
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="(1) Reconstruction captures the exogenous innovation of the future frame whenever its variance "
        "beats the action's (loading $\\sigma_\\eta^2/X$, consistency 1); (2) a representation that "
        "annihilates the exogenous embedding has loading 0; (3) an action head of weight $\\lambda > "
        "\\lambda^* = (X - g^2\\sigma_a^2)/\\sigma_a^2$ turns the latent to the action (consistency 0). These "
        "are lamproof's linear readings of Lee et al.'s three claims (arXiv 2605.20223), whose full text we "
        "could not read.",
        assumptions=[
            "The scalar example of D11 ($T = k = 1$, $K = 0$), and for (2) a mixed observation "
            "$o = M_s s + M_x x$; no ties ($X \\ne g^2\\sigma_a^2$, $\\lambda \\ne \\lambda^*$).",
            "Consistency is read on the clean latent; leakage $z + N o$ (free IDM, learned $A$) is optimal "
            "too and moves it anywhere up to 1.",
        ],
        steps=steps,
        result="Loading $\\sigma_\\eta^2/X$ (1 or $(1+e)/2$) and consistency 1 when the exogenous direction wins, 0 and "
        "0 when the action wins, $\\sigma_\\eta^2/(g^2\\sigma_a^2 + X)$ with $d_z = 2$; 0 under an "
        "endogenous-focused $W$; the action head flips the latent at $\\lambda^*$.",
        check="The population minimizer's captured space and latent on drawn scalars (loading, consistency, $d_z \\in "
        "\\{1, 2\\}$, both FDM paths, with and without an action head), and a random mixed observation under "
        "$W = I - M_x M_x^{+}$; with \\texttt{--exact}, the two-direction loading of rational scalars from exact "
        "window maps, zero tolerance.",
    )


# -- verification ----------------------------------------------------------------------------------
def _cases():
    return st.fixed_dictionaries(
        {
            "scalar": draws.exogenous_scalars(0.8),
            "path": st.sampled_from(["learned", "identity"]),
            "d_z": st.integers(1, 2),
            "weight": st.floats(0.0, 4.0),
            "seed": fw.generator_seeds(),
        }
    )


def _numeric_case(case, results: Results, checker: fw.Checker) -> None:
    gv, av, ev, sv = case["scalar"]
    path, d_z = case["path"], case["d_z"]
    context = f"case {case}"
    values = {g: gv, s_a: av, e: ev, s_eta: sv}
    exo = fw.evaluate(results.exogenous_eigenvalue[path], values)
    action = gv * gv * av
    system = random_walk_with_exogenous(gv, av, ev, sv)
    t = system.transition()
    inn = innovation(t, path)
    if abs(exo - action) > CLEAR * max(exo, action) or d_z == 2:
        idm = "tied" if path == "identity" else "free"
        params = minimize_population(t, LAMSpec(d_z, path, idm), starts=2).params
        captured = orthonormal_basis(params.next_obs_map)
        if d_z == 2:
            formula = fw.evaluate(results.loading_two[path], values)
        else:
            formula = fw.evaluate(results.loading_exogenous_latent[path], values) if exo > action else 0.0
        checker.close(
            f"loading of the optimum ({path}, d_z={d_z})",
            exogenous_loading(t, captured, path),
            formula,
            atol=RATIO_ATOL,
            context=context,
        )
        if d_z == 1:
            clean = captured.T @ inn.map  # z = Uᵀ v, the leak-free member
            checker.close(
                f"consistency of the clean latent ({path})",
                latent_consistency(t, clean),
                1.0 if exo > action else 0.0,
                atol=RATIO_ATOL,
                context=context,
            )
    # (3) the action head, A = I with a tied IDM (no leakage): the switch at λ*
    weight = case["weight"]
    exo_identity = fw.evaluate(results.exogenous_eigenvalue["identity"], values)
    star = fw.evaluate(results.lambda_star, {g: gv, s_a: av, X: exo_identity})
    if abs(weight - star) > CLEAR * max(1.0, abs(star)) and weight > 0:
        params = minimize_population(
            t, LAMSpec(1, "identity", "tied", action_loss_weight=weight), starts=2
        ).params
        checker.close(
            "consistency with an action head = 1[λ < λ*]",
            latent_consistency(t, params.latent_map),
            1.0 if weight < star else 0.0,
            atol=RATIO_ATOL,
            context=f"{context} λ*={star:.4g}",
        )
    # (2) an endogenous-focused representation of a mixed observation
    rng = np.random.default_rng(case["seed"])
    M = rng.standard_normal((3, 2))
    focus = np.eye(3) - np.outer(M[:, 1], M[:, 1]) / float(M[:, 1] @ M[:, 1])
    mixed = StateSpaceSystem(
        system.dynamics,
        system.action_matrix,
        observation=focus @ M,
        process_noise_cov=system.process_noise_cov,
        exploration_cov=system.exploration_cov,
        exogenous=[1],
        initial={"cov": system.initial_cov},
    )
    tm = mixed.transition()
    params = minimize_population(tm, LAMSpec(1, path), starts=2).params
    checker.close(
        "loading under W with W M_x = 0",
        exogenous_loading(tm, orthonormal_basis(params.next_obs_map), path) or 0.0,
        0.0,
        atol=RATIO_ATOL,
        context=context,
    )


def _exact_case(rng: np.random.Generator, results: Results, checker: fw.Checker) -> None:
    """Rational scalars: the loading with both directions captured, from exact window maps."""
    gv = sympy.Rational(int(rng.integers(1, 4)), 2)
    av = sympy.Rational(int(rng.integers(1, 5)), 2)
    ev = sympy.Rational(int(rng.integers(-3, 4)), 4)
    sv = sympy.Rational(int(rng.integers(1, 5)), 2)
    F, G, H, K = sympy.diag(1, ev), sympy.Matrix([[gv], [0]]), sympy.eye(2), sympy.zeros(1, 2)
    Sw, Sv, Se = sympy.diag(0, sv), sympy.zeros(2, 2), sympy.Matrix([[av]])
    window = exact_window(F, G, H, K, Sw, Sv, Se, sympy.diag(1, sv / (1 - ev**2)), 1, 1)
    now, nxt = window.frames[0], window.next_obs
    S_oo, S_po = window.cov(now, now), window.cov(nxt, now)
    zero = sympy.zeros(2, 2)
    for path, L in (("learned", S_po * S_oo.inv()), ("identity", sympy.eye(2))):
        v = {
            src: nxt.get(src, zero[:, : M.cols]) - L * now.get(src, zero[:, : M.cols])
            for src, M in {**now, **nxt}.items()
        }
        total = window.cov(v, v).trace()
        exo_map = v[("w", 0)][:, 1:]  # the exogenous coordinate of the horizon's process noise
        exo = (exo_map * Sw[1:, 1:] * exo_map.T).trace()
        formula = results.loading_two[path].subs({g: gv, s_a: av, e: ev, s_eta: sv})
        checker.equal(
            f"exact: loading with both directions ({path})",
            formula,
            sympy.cancel(exo / total),
            context=f"g={gv} σa²={av} e={ev} ση²={sv}",
        )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "regression operator's action eigenvalue = g²σ_a² + λσ_a² (symbolic)", results.action_eigenvalue_found
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D13's loading and consistency against window solvers and probes (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
    exact_examples=4,
)
