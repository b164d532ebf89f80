"""D11 — Exogenous state: when do actions come first, with A learned and with A = I?

Statement. Let the state be ``[s_n; x]`` with ``x`` exogenous (evolves on its own, drives
nothing, the policy does not read it; stationary, ``x' = F_x x + η``, ``Σ_x = F_x Σ_x F_xᵀ + Σ_η``)
and both parts observed (``o = [s_n; x]``). The ``k``-step innovation the LAM compresses is
block diagonal, and its exogenous block is

    A learned:  X_L(k) = Σ_x − F_xᵏ Σ_x F_xᵏᵀ = Σ_{j<k} F_xʲ Σ_η F_xʲᵀ          (the exogenous innovation)
    A = I:      X_I(k) = 2Σ_x − F_xᵏ Σ_x − Σ_x F_xᵏᵀ = X_L(k) + (I − F_xᵏ) Σ_x (I − F_xᵏ)ᵀ

so the fixed FDM path sees the exogenous drift on top of its innovation (``X_I ⪰ X_L``). Actions
come first iff the weakest controllable direction of the endogenous block beats the top of
``X(k)`` and every other endogenous direction (the margin of :func:`lamproof.exogenous.action_first`).
Scalar example (endogenous random walk ``s' = s + g a``, exogenous AR(1) with persistence ``e``):

    A learned:  k g²σ_a² > σ_η² (1 − e^{2k}) / (1 − e²)       (k = 1: g²σ_a² > σ_η²)
    A = I:      k g²σ_a² > 2σ_η² (1 − eᵏ) / (1 − e²)          (k = 1: g²σ_a² > 2σ_η²/(1 + e))

The exogenous part is bounded (by ``Σ_x = σ_η²/(1 − e²)``, resp. ``2Σ_x(1 + max(0, −e))``: an
oscillating ``x`` moves most in one step) while the controllable part grows like ``k``, so the
smallest horizon ``k*`` at which actions come first exists for every ``g σ_a > 0``, satisfies
``k* ≤ ⌊c Σ_x/(g²σ_a²)⌋ + 1`` (``c = 1`` learned, ``c = 2(1 + max(0, −e))`` for ``A = I``), and
``k*_I ≥ k*_L``: a fixed FDM path never needs a shorter horizon.

Assumptions. ``T = 1`` (``x`` observed; a context adds nothing for a Markov, fully observed
state); the endogenous part independent of ``x``; zero means.

SymPy steps. ``X_I − X_L = (I − Φ)Σ(I − Φ)ᵀ`` with matrix symbols and the stationarity
``Σ = ΦΣΦᵀ + W``; the scalar sums ``Σ_{j<k} e^{2j}`` (``summation``); the thresholds solved for
``σ_a²``; the horizon bound from ``X < lim_{k→∞} X``.

Check. The margins of the window route against the lambdified thresholds on drawn scalars and
horizons; ``k*`` against a scan of the formulas and the bound; the population minimizer's
``d_z``-dimensional optimum keeps the actions iff the margin is positive; general blocks (several
actions, a matrix AR(1)) against ``X_L``, ``X_I`` with SciPy's Lyapunov solver for ``Σ_x``.
``exact=True``: rational scalars, the exact window innovation in SymPy against the thresholds,
zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.linalg
import sympy
from hypothesis import strategies as st

from lamproof.context import innovation
from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.exogenous import action_first, action_first_horizon
from lamproof.lam import LAMSpec
from lamproof.numeric.population import minimize_population
from lamproof.statespace import StateSpaceSystem, random_walk_with_exogenous
from lamproof.symbolic.windows import exact_innovation, exact_window

NAME = "D11"
TITLE = "Exogenous state: when actions come first"
DEFAULT_EXAMPLES = 10

g = sympy.Symbol("g", positive=True)
s_a, s_eta = sympy.symbols("sigma_a^2 sigma_eta^2", positive=True)
e = sympy.Symbol("e", real=True)
k = sympy.Symbol("k", integer=True, positive=True)
j = sympy.Symbol("j", integer=True, nonnegative=True)
#: Margins on both routes are differences of exact moments: agreement to 1e-9 relative.
MARGIN_RTOL = 1e-9
#: The minimizer is compared only where the margin is clear of zero (a tie decides nothing).
CLEAR_MARGIN = 0.05


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    matrix_identity: bool
    X_L: sympy.Expr
    X_I: sympy.Expr
    drift: sympy.Expr
    learned_check: bool
    identity_check: bool
    margins: dict
    thresholds: dict
    limits: dict
    limit_check: bool
    k_bound: dict


@cache
def derive() -> Results:
    n = sympy.Symbol("n", integer=True, positive=True)
    Phi, Sigma, W = (sympy.MatrixSymbol(name, n, n) for name in ("Phi", "Sigma", "W"))
    eye = sympy.Identity(n)
    X_L = Sigma - Phi * Sigma * Phi.T
    X_I = 2 * Sigma - Phi * Sigma - Sigma * Phi.T
    drift = (eye - Phi) * Sigma * (eye - Phi).T
    matrix_identity = sympy.expand(X_I - X_L - drift) == sympy.ZeroMatrix(n, n)
    sigma_x = s_eta / (1 - e**2)
    # the geometric sum's branch for |e| < 1 (SymPy also returns the e² = 1 case, k σ_η²)
    learned = sympy.piecewise_fold(sympy.summation(e ** (2 * j) * s_eta, (j, 0, k - 1))).args[-1][0]
    identity = sympy.simplify(learned + (1 - e**k) ** 2 * sigma_x)
    identity_closed = 2 * sigma_x * (1 - e**k)
    identity_check = sympy.simplify(identity - identity_closed) == 0
    learned_closed = sigma_x * (1 - e ** (2 * k))
    learned_check = sympy.simplify(learned - learned_closed) == 0
    action = k * g**2 * s_a
    thresholds = {
        "learned": sympy.solve(sympy.Eq(action.subs(k, 1), learned_closed.subs(k, 1)), s_a)[0],
        "identity": sympy.solve(sympy.Eq(action.subs(k, 1), identity_closed.subs(k, 1)), s_a)[0],
    }
    bounds = {
        "learned": sympy.limit(learned_closed.subs(e, sympy.Rational(1, 2)), k, sympy.oo),
        "identity": sympy.limit(identity_closed.subs(e, sympy.Rational(1, 2)), k, sympy.oo),
    }
    return Results(
        matrix_identity=matrix_identity,
        X_L=X_L,
        X_I=X_I,
        drift=drift,
        learned_check=learned_check,
        identity_check=identity_check,
        margins={"learned": action - learned_closed, "identity": action - identity_closed},
        thresholds={path: sympy.simplify(value) for path, value in thresholds.items()},
        limits={"learned": sigma_x, "identity": 2 * sigma_x},
        limit_check=bounds
        == {
            "learned": sigma_x.subs(e, sympy.Rational(1, 2)),
            "identity": 2 * sigma_x.subs(e, sympy.Rational(1, 2)),
        },
        k_bound={
            path: sympy.floor(bound / (g**2 * s_a)) + 1
            for path, bound in {"learned": sigma_x, "identity": 2 * sigma_x * (1 + sympy.Max(0, -e))}.items()
        },
    )


def latex() -> str:
    d = derive()
    steps = [
        "With $x$ independent of the endogenous state, the best prediction of $x_{t+k}$ from $o_t$ uses $x_t$ only, "
        "$\\mathbb{E}[x_{t+k} \\mid x_t] = \\Phi x_t$ with $\\Phi = F_x^k$, and the innovation's exogenous block is "
        f"$X_L = {fw.tex(d.X_L)}$. The fixed path $A = I$ leaves $x_{{t+k}} - x_t$, of covariance "
        f"$X_I = {fw.tex(d.X_I)}$. SymPy expands",
        fw.display(f"X_I - X_L &= {fw.tex(d.drift)}"),
        f"({'verified' if d.matrix_identity else 'NOT verified'}), positive semi-definite: the drift of the "
        "exogenous state competes with the actions only when $A$ is fixed.",
        "Scalar example: $\\Sigma_x = \\sigma_\\eta^2/(1 - e^2)$, $\\sum_{j<k} e^{2j}\\sigma_\\eta^2$ by "
        f"\\texttt{{summation}} ({'matches' if d.learned_check else 'DIFFERS from'} $\\Sigma_x(1 - e^{{2k}})$), "
        f"and $X_I = 2\\Sigma_x(1 - e^k)$ ({'verified' if d.identity_check else 'NOT verified'}). The controllable "
        "part of a random walk over $k$ steps is $k g^2\\sigma_a^2$, so the margins are",
        fw.display(f"m_L(k) &= {fw.tex(d.margins['learned'])}", f"m_I(k) &= {fw.tex(d.margins['identity'])}"),
        "At $k = 1$ the boundaries solved for $\\sigma_a^2$ are "
        f"$\\sigma_a^2 = {fw.tex(d.thresholds['learned'])}$ ($A$ learned) and "
        f"$\\sigma_a^2 = {fw.tex(d.thresholds['identity'])}$ ($A = I$).",
        "As $k\\to\\infty$ the exogenous parts tend to $\\Sigma_x$ and $2\\Sigma_x$ "
        f"({'limits verified' if d.limit_check else 'limits NOT verified'}); $X_L < \\Sigma_x$ for every $k$, and "
        "$X_I \\le 2\\Sigma_x(1 + \\max(0, -e))$ (an oscillating $x$ moves most in one step). So $m(k) > 0$ as soon "
        "as $k g^2\\sigma_a^2$ exceeds that bound: $k^* \\le \\lfloor c\\,\\Sigma_x/(g^2\\sigma_a^2)\\rfloor + 1$ "
        "with $c = 1$ ($A$ learned) or $c = 2(1 + \\max(0, -e))$ ($A = I$); and $m_I \\le m_L$ gives "
        "$k^*_I \\ge k^*_L$.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="With an observed exogenous state beside the endogenous one, the innovation a LAM compresses has "
        "the exogenous block $X_L(k) = \\Sigma_x - F_x^k\\Sigma_x F_x^{kT}$ ($A$ learned) or "
        "$X_I(k) = X_L(k) + (I - F_x^k)\\Sigma_x(I - F_x^k)^T$ ($A = I$); actions come first iff their "
        "weakest direction beats it. In the scalar example: $g^2\\sigma_a^2 > \\sigma_\\eta^2$ ($A$ "
        "learned), $g^2\\sigma_a^2 > 2\\sigma_\\eta^2/(1+e)$ ($A = I$), and a smallest horizon $k^*$ always "
        "exists.",
        assumptions=[
            "$x$ exogenous: $G_x = 0$, $F_{xn} = 0$, its noise uncorrelated with the rest; it does not drive "
            "the endogenous state and the policy does not read it; stationary; both parts observed.",
            "$T = 1$ and zero means. The general (hidden, coupled, context) case is the window route "
            "\\texttt{lamproof.exogenous.action\\_first}.",
        ],
        steps=steps,
        result="Scalar: actions first iff $k g^2\\sigma_a^2 > \\sigma_\\eta^2\\frac{1 - e^{2k}}{1 - e^2}$ ($A$ learned) "
        "or $> 2\\sigma_\\eta^2\\frac{1 - e^k}{1 - e^2}$ ($A = I$); $k^*$ exists for $g\\sigma_a > 0$, "
        "$k^*_I \\ge k^*_L$.",
        check="The window route's margins against the lambdified formulas on drawn scalars and horizons, $k^*$ against "
        "a scan and the bound, the population minimizer's optimum against the sign of the margin, general "
        "blocks against $X_L$, $X_I$ with SciPy's Lyapunov solver; with \\texttt{--exact}, rational scalars "
        "in SymPy with zero tolerance.",
    )


# -- verification ----------------------------------------------------------------------------------
def _cases():
    return st.fixed_dictionaries(
        {
            "scalar": draws.exogenous_scalars(0.9),
            "horizon": st.integers(1, 4),
            "path": st.sampled_from(["learned", "identity"]),
            "blocks": st.tuples(st.integers(1, 3), st.integers(1, 3)),
            "seed": fw.generator_seeds(),
        }
    )


def _values(case) -> dict:
    gv, av, ev, sv = case["scalar"]
    return {g: gv, s_a: av, e: ev, s_eta: sv, k: case["horizon"]}


def _numeric_case(case, results: Results, checker: fw.Checker) -> None:
    path, horizon = case["path"], case["horizon"]
    context = f"case {case}"
    system = random_walk_with_exogenous(*case["scalar"])
    values = _values(case)
    formula = fw.evaluate(results.margins[path], values)
    condition = action_first(system.transition(horizon), path)
    checker.close(
        f"margin ({path}) = k g²σ_a² − X(k)", condition.margin, formula, rtol=MARGIN_RTOL, context=context
    )
    # k*: the window route against a scan of the formula and the bound, and k*_I ≥ k*_L
    found = {}
    for p in ("learned", "identity"):
        bound = int(fw.evaluate(results.k_bound[p], values))
        scan = next(
            (kk for kk in range(1, 65) if fw.evaluate(results.margins[p], {**values, k: kk}) > 0), None
        )
        checker.holds(
            f"k* ({p}) ≤ the bound", scan is None or scan <= bound, context=f"{scan} vs {bound} ({context})"
        )
        found[p] = action_first_horizon(system, p, max_horizon=min(bound, 64)).horizon
        checker.holds(
            f"k* ({p}) = first positive margin", found[p] == scan, context=f"{found[p]} vs {scan} ({context})"
        )
    # the population minimizer's d_z = 1 latent keeps the action iff the margin is positive
    if abs(formula) > CLEAR_MARGIN:
        t = system.transition(horizon)
        params = minimize_population(t, LAMSpec(1, path, horizon=horizon), starts=2).params
        M2 = params.next_obs_map
        kept = float(np.linalg.norm(M2[:, 0])) / max(float(np.linalg.norm(M2)), 1e-300)
        checker.holds(
            "population minimizer keeps the action iff margin > 0",
            (kept > 0.99) == (formula > 0),
            context=f"kept {kept:.3g}, margin {formula:.3g} ({context})",
        )
    _general_case(case, checker, context)


def _general_case(case, checker: fw.Checker, context: str) -> None:
    """Several actions on an endogenous random walk beside a matrix AR(1): the exogenous block."""
    n_n, n_x = case["blocks"]
    rng = np.random.default_rng(case["seed"])
    Q = np.linalg.qr(rng.standard_normal((n_x, n_x)))[0]
    F_x = Q @ np.diag(rng.uniform(-0.8, 0.8, n_x)) @ Q.T
    root = rng.standard_normal((n_x, n_x))
    S_eta = root @ root.T / n_x + 0.1 * np.eye(n_x)
    S_x = scipy.linalg.solve_discrete_lyapunov(F_x, S_eta)
    n = n_n + n_x
    F = scipy.linalg.block_diag(np.eye(n_n), F_x)
    G = np.vstack([rng.standard_normal((n_n, n_n)), np.zeros((n_x, n_n))])
    W = np.zeros((n, n))
    W[n_n:, n_n:] = S_eta
    cov0 = scipy.linalg.block_diag(np.eye(n_n), S_x)
    system = StateSpaceSystem(F, G, process_noise_cov=W, exogenous=list(range(n_n, n)), initial={"cov": cov0})
    horizon = case["horizon"]
    Phi = np.linalg.matrix_power(F_x, horizon)
    formulas = {"learned": S_x - Phi @ S_x @ Phi.T, "identity": 2 * S_x - Phi @ S_x - S_x @ Phi.T}
    for path, X in formulas.items():
        block = innovation(system.transition(horizon), path).operator[n_n:, n_n:]
        error = float(np.max(np.abs(block - X))) / max(1.0, float(np.max(np.abs(X))))
        checker.close(
            f"exogenous block X_{'L' if path == 'learned' else 'I'}(k) (matrix AR(1), Lyapunov)",
            error,
            0.0,
            atol=1e-10,
            context=f"{context} n_n={n_n} n_x={n_x}",
        )


def _exact_case(rng: np.random.Generator, results: Results, checker: fw.Checker) -> None:
    gv = sympy.Rational(int(rng.integers(1, 4)), 2)
    av = sympy.Rational(int(rng.integers(1, 5)), 2)
    ev = sympy.Rational(int(rng.integers(-3, 4)), 4)
    sv = sympy.Rational(int(rng.integers(1, 5)), 2)
    kv = int(rng.integers(1, 4))
    F, G, H, K = sympy.diag(1, ev), sympy.Matrix([[gv], [0]]), sympy.eye(2), sympy.zeros(1, 2)
    Sw, Sv, Se = sympy.diag(0, sv), sympy.zeros(2, 2), sympy.Matrix([[av]])
    P0 = sympy.diag(1, sv / (1 - ev**2))
    window = exact_window(F, G, H, K, Sw, Sv, Se, P0, 1, kv)
    S_learned = exact_innovation(window)
    delta = {
        src: window.next_obs.get(src, sympy.zeros(2, M.cols))
        - window.frames[0].get(src, sympy.zeros(2, M.cols))
        for src, M in {**window.frames[0], **window.next_obs}.items()
    }
    S_identity = window.cov(delta, delta)
    values = {g: gv, s_a: av, e: ev, s_eta: sv, k: kv}
    for path, S in (("learned", S_learned), ("identity", S_identity)):
        exact_margin = sympy.cancel(S[0, 0] - S[1, 1])
        formula = results.margins[path].subs(values)
        checker.equal(
            f"exact: margin ({path})",
            formula,
            exact_margin,
            context=f"g={gv} σa²={av} e={ev} ση²={sv} k={kv}",
        )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    for key in ("matrix_identity", "learned_check", "identity_check", "limit_check"):
        checker.holds("symbolic identities", getattr(results, key), context=key)


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D11's exogenous block, thresholds and k* against window solvers (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
    exact_examples=4,
)
