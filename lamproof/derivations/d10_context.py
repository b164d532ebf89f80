"""D10 — A context window: the LAM compresses the Kalman innovation, and its T → ∞ limit.

Statement. A LAM whose IDM and FDM read the last ``T`` frames ``c = [o_{t−T+1}; …; o_t]`` (``A``
learned) is PCA of ``S_v(T) = S_{o'o'} − S_{o'c} S_cc⁺ S_{co'}`` (the argument of D1 with ``o``
replaced by ``c``). With zero means ``S_v(T)`` is the innovation covariance of the Kalman filter
after ``T`` frames, ``H P_T Hᵀ + Σ_v`` (``k = 1``), with ``P_0 = Σ_0`` and

    P_{j+1} = F P_j Fᵀ + Q − F P_j Hᵀ (H P_j Hᵀ + R)⁻¹ H P_j Fᵀ,   Q = Σ_w + G Σ_e Gᵀ,  R = Σ_v.

The policy's feedback ``G K o_t`` is known once ``o_t`` is seen, so the filter runs on the
open-loop ``F``; the closed loop ``F_cl = F + G K H`` acts only on the steps the context does not
see (``k > 1``: ``P ← F_cl P F_clᵀ + Q + G K Σ_v Kᵀ Gᵀ``, ``k − 1`` times). As ``T → ∞`` ``P_T``
tends to the stabilizing solution ``P`` of the filter DARE (``scipy.linalg.solve_discrete_are``),
geometrically: ``‖S_v(T) − S_∞‖ = O(ρ(F_p)^{2T})`` with ``F_p = F − F P Hᵀ (H P Hᵀ + R)⁻¹ H``.

Assumptions. Zero means (``μ_w = 0``, zero initial mean; with means the bias-free prediction also
learns the mean from the context and converges only like ``1/T``); sources independent;
``(F, H)`` detectable and no unit-circle mode of ``F`` left unexcited by ``Q`` (for the DARE).

SymPy steps. On the scalar system with symbolic ``f, g, κ, q, r, σ_e², p_0``: the window's exact
innovation (iterated source maps) equals ``P_T + r`` of the open-loop Riccati recursion for
``T = 1, 2`` (and the closed-loop continuation for ``k = 2``); the scalar DARE solved for its
positive root; the derivative of the Riccati map at its fixed point equals ``f_p²``, the rate.

Check. On random hidden-state systems (Hypothesis): window moments against the Riccati recursion
for ``T ≤ 4`` and ``k ≤ 2``, ``T = 40`` against the DARE, the population minimizer on the window
(the eigenvalue tail of ``S_v(T)``), least squares on sampled stationary trajectories; on scalar
systems the measured ratio of successive errors against ``f_p²``. ``exact=True``: rational
systems, the exact window innovation against the exact Riccati iterate, zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof.context import innovation
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.population import minimize_population
from lamproof.statespace import StateSpaceSystem, windows
from lamproof.strategies import state_space_systems
from lamproof.symbolic.windows import (
    exact_innovation,
    exact_stationary_cov,
    exact_window,
    riccati_step,
)

NAME = "D10"
TITLE = "A context window: the Kalman innovation and its limit"
DEFAULT_EXAMPLES = 6

f, g, kappa, q, r, s_e, p0 = sympy.symbols("f g kappa q r sigma_e^2 p_0", real=True)
P = sympy.Symbol("P", positive=True)
#: Least squares on 4 000 trajectories × their windows: relative standard error of a residual
#: second moment ~1 %; 0.1 of the scale is ~10σ.
SAMPLED_RTOL = 0.1
#: T = 40 against the DARE: the error decays like ρ(F_p)^{2T}; the drawn systems have ρ(F) ≤ 3/4.
LIMIT_RTOL = 1e-7
#: The measured decay ratio of successive errors is f_p² up to O(error): compared at errors near 1e-6.
RATE_RTOL = 1e-3


def _scalar(M) -> sympy.Matrix:
    return sympy.Matrix([[M]])


def _vanishes(expr) -> bool:
    """Whether a rational function is identically zero: its numerator over a common denominator, expanded."""
    return sympy.expand(sympy.numer(sympy.together(expr))) == 0


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    slope: sympy.Expr
    identities: dict
    riccati: sympy.Expr
    steady_state: sympy.Expr
    innovation_limit: sympy.Expr
    rate: sympy.Expr
    rate_is_squared_filter_loop: bool
    Q: sympy.Expr
    r: sympy.Expr


@cache
def derive() -> Results:
    F, G, H, K = _scalar(f), _scalar(g), _scalar(1), _scalar(kappa)
    Sw, Sv, Se = _scalar(q), _scalar(r), _scalar(s_e)
    Q, R = Sw + G * Se * G.T, Sv
    identities = {}
    P_T = _scalar(p0)
    for T in (1, 2):
        P_T = riccati_step(P_T, F, H, Q, R)
        window = exact_window(F, G, H, K, Sw, Sv, Se, _scalar(p0), T, 1)
        identities[f"T={T}, k=1"] = _vanishes(exact_innovation(window)[0, 0] - (P_T[0, 0] + r))
    # k = 2 after one frame: the unseen step runs on the closed loop
    F_cl = F + G * K * H
    P_1 = riccati_step(_scalar(p0), F, H, Q, R)
    ahead = F_cl * P_1 * F_cl.T + Q + G * K * Sv * K.T * G.T
    window = exact_window(F, G, H, K, Sw, Sv, Se, _scalar(p0), 1, 2)
    identities["T=1, k=2"] = _vanishes(exact_innovation(window)[0, 0] - (ahead[0, 0] + r))
    Qs = sympy.Symbol("Q", positive=True)
    rs = sympy.Symbol("r", positive=True)
    riccati = f**2 * P - f**2 * P**2 / (P + rs) + Qs
    quadratic = sympy.numer(sympy.together(P - riccati))  # (P + r)(P − φ(P)), a quadratic in P
    roots = sympy.solve(quadratic, P, simplify=False)
    steady = [root for root in roots if root.subs({f: sympy.Rational(1, 2), Qs: 1, rs: 1}) > 0][0]
    slope = sympy.factor(sympy.diff(riccati, P))
    rate = slope.subs(P, steady)
    closed_loop = f * rs / (steady + rs)
    return Results(
        slope=slope,
        identities=identities,
        riccati=riccati,
        steady_state=sympy.simplify(steady),
        innovation_limit=sympy.simplify(steady + rs),
        rate=rate,
        rate_is_squared_filter_loop=sympy.simplify(rate - closed_loop**2) == 0,
        Q=Qs,
        r=rs,
    )


def latex() -> str:
    d = derive()
    checks = ", ".join(f"{key}: {'identical' if ok else 'DIFFERENT'}" for key, ok in d.identities.items())
    steps = [
        "Write the window's frames as maps of the independent sources $s_0, v_j, e_j, w_j$. With $A$ learned, the "
        "loss splits as in D1 with $o$ replaced by the stacked context $c$, so the optimum is PCA of",
        fw.display("S_v(T) &= S_{o'o'} - S_{o'c} S_{cc}^{+} S_{co'}."),
        "The actions are $a_t = K o_t + e_t$, so $s_{t+1} = F s_t + G K o_t + (G e_t + w_t)$: the term $G K o_t$ is a "
        "known input once $o_t$ is in the context. The linear innovations of $o_{t+1}$ given $c$ are those of the "
        "Kalman filter of $(F, H)$ with $Q = \\Sigma_w + G\\Sigma_e G^T$, $R = \\Sigma_v$, started at "
        "$P_0 = \\Sigma_0$:",
        fw.display(
            "P_{j+1} &= F P_j F^T + Q - F P_j H^T (H P_j H^T + R)^{-1} H P_j F^T, \\qquad "
            "S_v(T) = H P_T H^T + R."
        ),
        "For $k > 1$ the frames after $o_t$ are unseen and the closed loop $F_{cl} = F + GKH$ carries the error on: "
        "$P \\leftarrow F_{cl} P F_{cl}^T + Q + G K \\Sigma_v K^T G^T$, $k-1$ times.",
        "SymPy checks these identities on the scalar system with symbolic $f, g, \\kappa, q, r, \\sigma_e^2, p_0$, "
        f"the window's innovation computed from its iterated source maps: {checks}.",
        "The scalar fixed point ($h = 1$, $Q = q + g^2\\sigma_e^2$) is the positive root of $P = "
        f"{fw.tex(d.riccati)}$:",
        fw.display(f"P &= {fw.tex(d.steady_state)},", "S_\\infty &= P + r."),
        f"The Riccati map's derivative is ${fw.tex(d.slope)}$; at the fixed point SymPy reduces it to $f_p^2$ with "
        "$f_p = f r/(P + r)$, the filter's closed loop "
        f"({'verified' if d.rate_is_squared_filter_loop else 'NOT verified'}): near the limit the error shrinks by "
        "$f_p^2$ per frame.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="A LAM with a context of $T$ frames and a learned FDM path compresses the innovation of "
        "$o_{t+k}$ given the context; with zero means that is the Kalman filter's innovation after $T$ "
        "frames, and as $T\\to\\infty$ ($k=1$) the steady-state innovation $H P H^T + \\Sigma_v$ of the "
        "filter DARE, reached geometrically at rate $\\rho(F_p)^{2T}$.",
        assumptions=[
            "Zero means; $w, v, e$ and the initial state independent; $s_0 \\sim (0, \\Sigma_0)$ at the "
            "window's first frame (stationary or explicit).",
            "The policy reads the observation ($a = Ko + e$): its feedback is a known input to the filter, "
            "so the recursion runs on the open-loop $F$; $F_{cl}$ matters only for unseen steps ($k>1$).",
            "For the limit: $(F, H)$ detectable and no unit-circle mode of $F$ unexcited by $Q$.",
        ],
        steps=steps,
        result="$S_v(T) = H P_T H^T + \\Sigma_v$ for every $T$ ($k = 1$); $S_v(T) \\to H P H^T + \\Sigma_v$ with "
        "$\\|S_v(T) - S_\\infty\\| = O(\\rho(F_p)^{2T})$, $F_p = F - F P H^T (H P H^T + R)^{-1} H$. For a "
        "fully observed system ($H = I$, $\\Sigma_v = 0$) $P_1 = Q$ already: one frame is the limit.",
        check="Window moments against the Riccati recursion ($T \\le 4$, $k \\le 2$) and $T = 40$ against SciPy's "
        "DARE on random hidden-state systems; the population minimizer on the window (the eigenvalue tail); "
        "least squares on sampled trajectories; the measured decay ratio against $f_p^2$ on scalar systems; "
        "with \\texttt{--exact}, rational systems in SymPy with zero tolerance.",
    )


# -- verification ----------------------------------------------------------------------------------
def _cases():
    return st.fixed_dictionaries(
        {
            "system": state_space_systems(
                n=st.integers(1, 3),
                observation="generic",
                observation_noise=True,
                feedback=None,
                initial=None,
            ),
            "context": st.integers(1, 4),
            "horizon": st.integers(1, 2),
            "d_z": st.integers(1, 2),
            "scalar": st.tuples(st.floats(-0.95, 0.95), st.floats(0.1, 2.0), st.floats(0.1, 2.0)),
        }
    )


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))


def _numeric_case(case, results: Results, checker: fw.Checker) -> None:
    system, T, k = case["system"], case["context"], case["horizon"]
    context = f"case {case}"
    t = system.transition(k, T)
    S_v = innovation(t).operator
    checker.close(
        "window innovation = Riccati recursion",
        _relative(S_v, system.filtered_innovation(T, k)),
        0.0,
        atol=1e-9,
        context=context,
    )
    limit = system.kalman_innovation(k)
    checker.close(
        "T = 40 → steady-state Kalman innovation (DARE)",
        _relative(innovation(system.transition(k, 40)).operator, limit),
        0.0,
        atol=LIMIT_RTOL,
        context=context,
    )
    d_z = min(case["d_z"], system.d_o)
    result = minimize_population(t, LAMSpec(d_z, horizon=k, context=T), starts=2)
    tail = float(np.sum(np.clip(np.linalg.eigvalsh(S_v)[::-1][d_z:], 0.0, None)))
    checker.close(
        "population minimizer = eigenvalue tail of S_v(T)",
        tail,
        result.objective.reconstruction,
        context=context,
    )
    if system.stationary:
        draws = windows(system.sample_trajectories(4_000, T + k + 4, np.random.default_rng(0)), T, k)
        c, o = draws["obs"], draws["next_obs"]
        coef, *_ = np.linalg.lstsq(c, o, rcond=None)
        residual = o - c @ coef
        sampled = residual.T @ residual / len(o)
        checker.sampled(
            "least squares on sampled trajectories = S_v(T)",
            _relative(sampled, S_v),
            0.0,
            atol=SAMPLED_RTOL,
            context=context,
        )
    # the rate, on a scalar system: successive errors shrink by f_p²
    f_value, q_value, r_value = case["scalar"]
    scalar = StateSpaceSystem(
        [[f_value]],
        [[0.0]],
        process_noise_cov=[[q_value]],
        observation_noise_cov=[[r_value]],
        exploration_cov=[[0.0]],
        initial={"cov": [[4.0 * q_value + 1.0]]},
    )
    steady = float(scalar.kalman_innovation()[0, 0]) - r_value
    predicted = fw.evaluate(results.rate, {f: f_value, results.Q: q_value, results.r: r_value})
    checker.close(
        "scalar DARE root = SciPy's",
        fw.evaluate(results.steady_state, {f: f_value, results.Q: q_value, results.r: r_value}),
        steady,
        rtol=1e-10,
        context=context,
    )
    errors = [abs(S[0, 0] - (steady + r_value)) for S in scalar.filtered_innovations(200)]
    near = [i for i, e in enumerate(errors[:-1]) if 1e-7 * (steady + r_value) < e < 1e-5 * (steady + r_value)]
    if near and predicted > 1e-3:
        i = near[0]
        checker.close(
            "error ratio per frame = f_p² (Riccati derivative)",
            errors[i + 1] / errors[i],
            predicted,
            rtol=RATE_RTOL,
            context=f"{context} T={i + 1}",
        )


def _exact_case(rng: np.random.Generator, results: Results, checker: fw.Checker) -> None:
    R = lambda rows, cols, lo, hi, den: sympy.Matrix(  # noqa: E731
        rows, cols, lambda i, j: sympy.Rational(int(rng.integers(lo, hi)), den)
    )
    n, d_o = int(rng.integers(1, 3)), 1
    F = sympy.diag(*[sympy.Rational(int(rng.integers(-2, 3)), 4) for _ in range(n)])
    G, H, K = R(n, 1, -1, 2, 1), R(d_o, n, 1, 3, 1), R(1, d_o, -1, 2, 4)
    Sw, Sv, Se = sympy.eye(n) / 2, sympy.eye(d_o), sympy.eye(1)
    GK = G * K
    P0 = exact_stationary_cov(F + GK * H, Sw + G * Se * G.T + GK * Sv * GK.T)
    Q = Sw + G * Se * G.T
    P_T = P0
    for T in (1, 2, 3):
        P_T = riccati_step(P_T, F, H, Q, Sv)
        window = exact_window(F, G, H, K, Sw, Sv, Se, P0, T, 1)
        difference = (exact_innovation(window) - (H * P_T * H.T + Sv)).applyfunc(sympy.cancel)
        checker.holds(
            "exact: window innovation = Riccati iterate",
            difference.is_zero_matrix,
            context=f"exact n={n} T={T} F={F.tolist()} K={K.tolist()}",
        )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    for key, ok in results.identities.items():
        checker.holds("window innovation = open-loop Riccati (symbolic)", ok, context=key)
    checker.holds("Riccati derivative = f_p² (symbolic)", results.rate_is_squared_filter_loop)


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D10's window innovation and its limit against the window's solver (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
)
