"""D8 — The multi-step LAM compresses the controllability Gramian (docs/theory.md §9, R6).

Statement. Predicting ``o_k`` from ``o_0`` and one latent, with closed loop ``F_cl = F + G K``
and zero-mean exploration and noise, ``L = F_clᵏ`` and the innovation second moment is

    S_r = W_k^act + W_k^noise,   W_k^act = Σ_{j<k} F_clʲ G Σ_e Gᵀ F_clʲᵀ,   W_k^noise = Σ_{j<k} F_clʲ Σ_ε F_clʲᵀ,

the controllability Gramian of ``(F_cl, G Σ_e^{1/2})`` plus the noise Gramian; by R1 the
``k``-step LAM's latent is the top-``d_z`` eigenspace of that sum and its loss the tail.

Assumptions. ``S_oo`` invertible (any ``μ_o``), ``E e = E ε = 0``, sources independent.

SymPy steps. The ``k``-step map of the sources by iterating one step
``o_{j+1} = F o_j + G(K o_j + e_j) + ε_j`` on a generic ``2 × 2`` system with symbolic entries;
the covariance of ``o_k − F_clᵏ o_0`` expanded and compared with the Gramian sum for ``k ≤ 3``
(identically zero difference).

Check. On random systems at horizons 1–4: the transition's moments (which build ``o_k`` from the
sources, never from a Gramian) against :func:`lamproof.control.action_gramian` +
:func:`~lamproof.control.noise_gramian` (doubling); the population minimizer at horizon ``k``
against the eigenvalue tail of the Gramian sum and ``M₂`` against its top projector; the
``k → ∞`` limit against SciPy's Lyapunov solver for a stable ``F_cl``. ``exact=True``: rational
systems, the iterated source map in SymPy against :func:`lamproof.control.exact_gramian`, and the
exact Kalman rank (``StateSpace``) against the exact Gramian's rank, zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof import control
from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec

NAME = "D8"
TITLE = "The multi-step LAM compresses the controllability Gramian"
DEFAULT_EXAMPLES = 8
SYMBOLIC_HORIZONS = (1, 2, 3)


def _symbolic_system():
    f = sympy.Matrix(2, 2, sympy.symbols("f_11 f_12 f_21 f_22"))
    g = sympy.Matrix(2, 1, sympy.symbols("g_1 g_2"))
    kg = sympy.Matrix(1, 2, sympy.symbols("k_1 k_2"))
    s_e = sympy.Symbol("s_e", positive=True)
    n11, n12, n22 = sympy.symbols("n_11 n_12 n_22")
    noise = sympy.Matrix([[n11, n12], [n12, n22]])
    return f, g, kg, sympy.Matrix([[s_e]]), noise


def _iterated_innovation(F, G, K, Se, Sn, k):
    """Cov of ``o_k − F_clᵏ o_0`` from the source maps of ``k`` iterated steps (no Gramian used)."""
    n = F.rows
    e_maps, n_maps = [], []
    state_o = sympy.eye(n)  # o_j as a map of o_0
    for _ in range(k):
        # o_{j+1} = (F + G K) o_j + G e_j + ε_j, every earlier source carried along
        e_maps = [(F + G * K) * m for m in e_maps] + [G]
        n_maps = [(F + G * K) * m for m in n_maps] + [sympy.eye(n)]
        state_o = (F + G * K) * state_o
    cov = sympy.zeros(n, n)
    for m in e_maps:
        cov += m * Se * m.T
    for m in n_maps:
        cov += m * Sn * m.T
    return cov, state_o


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    identities: dict
    recursion: sympy.Basic
    F: sympy.Expr
    Q: sympy.Expr
    j: sympy.Expr
    k: sympy.Expr


@cache
def derive() -> Results:
    F, G, K, Se, Sn = _symbolic_system()
    Fcl = F + G * K
    identities = {}
    for k in SYMBOLIC_HORIZONS:
        iterated, L = _iterated_innovation(F, G, K, Se, Sn, k)
        gramian = sympy.zeros(2, 2)
        for j in range(k):
            P = Fcl**j
            gramian += P * (G * Se * G.T + Sn) * P.T
        identities[k] = (sympy.expand(iterated - gramian) == sympy.zeros(2, 2)) and sympy.expand(
            L - Fcl**k
        ) == sympy.zeros(2, 2)
    Fs, Qs = sympy.MatrixSymbol("F_{cl}", 2, 2), sympy.MatrixSymbol("Q", 2, 2)
    j, k = sympy.symbols("j k", integer=True, nonnegative=True)
    return Results(
        identities=identities,
        recursion=sympy.Eq(sympy.Symbol("W_{k+1}"), sympy.Symbol("F_{cl} W_k F_{cl}^T + Q")),
        F=Fs,
        Q=Qs,
        j=j,
        k=k,
    )


def latex() -> str:
    d = derive()
    checks = ", ".join(f"$k={k}$: {'identical' if ok else 'DIFFERENT'}" for k, ok in d.identities.items())
    steps = [
        "One step $o_{j+1} = F_{cl} o_j + G e_j + \\varepsilon_j$ with $F_{cl} = F + GK$, iterated $k$ times:",
        fw.display("o_k &= F_{cl}^k o_0 + \\sum_{j<k} F_{cl}^{k-1-j}(G e_j + \\varepsilon_j)"),
        "Sources are independent with $\\mathbb{E} e = \\mathbb{E}\\varepsilon = 0$, so $S_{o_k o_0} = F_{cl}^k S_{oo}$, "
        "$L = F_{cl}^k$, and the innovation's second moment is the recursion $W_{k+1} = F_{cl} W_k F_{cl}^T + Q$, "
        "$W_1 = Q$, unrolled:",
        fw.display(
            "S_r &= \\sum_{j<k} F_{cl}^j \\left(G\\Sigma_e G^T + \\Sigma_\\varepsilon\\right) (F_{cl}^j)^T "
            "= W_k^{\\mathrm{act}} + W_k^{\\mathrm{noise}}"
        ),
        "SymPy iterates the source maps of a generic $2\\times 2$ system (symbolic $F$, $G$, $K$, $\\Sigma_e$, "
        f"$\\Sigma_\\varepsilon$) and expands the difference to the Gramian sum: {checks}.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="The $k$-step LAM's innovation is the controllability Gramian of $(F_{cl}, G\\Sigma_e^{1/2})$ plus "
        "the noise Gramian; its latent is their sum's top-$d_z$ eigenspace and its loss the eigenvalue tail.",
        assumptions=[
            "$S_{oo}$ invertible, any $\\mu_o$; $\\mathbb{E} e = \\mathbb{E}\\varepsilon = 0$; independent sources.",
            "The controllable part lives in $\\mathrm{span}[G, F_{cl}G, \\dots, F_{cl}^{k-1}G]$ (Kalman).",
        ],
        steps=steps,
        result="$\\min\\ell_k = \\sum_{i>d_z}\\lambda_i(W_k^{\\mathrm{act}} + W_k^{\\mathrm{noise}})$, $\\hat o_k = F_{cl}^k o_0 + P r$; "
        "for a stable $F_{cl}$, $W_k \\to W_\\infty$ with $W_\\infty = F_{cl} W_\\infty F_{cl}^T + Q$.",
        check="The transition's exact $k$-step moments against the Gramians of \\texttt{lamproof.control}; the population "
        "minimizer at horizon $k$ against the tail and the top projector; $W_k \\to W_\\infty$ (SciPy's Lyapunov "
        "solver); with \\texttt{--exact}, rational systems in SymPy and \\texttt{StateSpace} Kalman ranks.",
    )


# -- verification ----------------------------------------------------------------------------------
def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.dims(2, 5),
            "horizon": st.integers(1, 4),
            "feedback": st.booleans(),
            "dynamics": st.booleans(),
            "obs_mean": st.booleans(),
            "noise_rank": st.integers(0, 3),
            "seed": fw.generator_seeds(),
        }
    )


def _numeric_case(case, results: Results, checker: fw.Checker) -> None:
    d_o, d_a, d_z = case["dims"]
    k = case["horizon"]
    system = draws.general_system(
        d_o,
        d_a,
        case["seed"],
        feedback=case["feedback"],
        dynamics=case["dynamics"],
        means=False,
        noise_rank=min(case["noise_rank"], d_o),
    )
    if case["obs_mean"]:
        system = system.replace(obs_mean=np.random.default_rng(case["seed"]).standard_normal(d_o))
    context = f"case {case}"
    t = system.transition(k)
    S_oo, S_op, S_pp = t.second_moment("obs"), t.second_moment("obs", "next_obs"), t.second_moment("next_obs")
    S_r = S_pp - S_op.T @ np.linalg.solve(S_oo, S_op)
    W = control.action_gramian(system, k) + control.noise_gramian(system, k)
    scale = max(1.0, float(np.max(np.abs(W))))
    checker.close(
        "S_r = W_act + W_noise", float(np.max(np.abs(S_r - W))) / scale, 0.0, atol=1e-9, context=context
    )
    values, vectors = np.linalg.eigh(W)
    values, vectors = values[::-1], vectors[:, ::-1]
    result = draws.minimize(system, LAMSpec(d_z, horizon=k), case["seed"] % 1000)
    checker.close(
        "k-step loss = Gramian tail",
        float(np.sum(values[d_z:])),
        result.objective.reconstruction,
        context=context,
    )
    top = float(values[0]) or 1.0
    if d_z < d_o and values[d_z - 1] - values[d_z] > 1e-2 * top:
        # the prediction ô' = L o + P r is unique (M₂ itself need not be when S_xx is singular)
        U = vectors[:, :d_z] * (values[:d_z] > 1e-9 * top)
        P = U @ U.T
        L = np.linalg.matrix_power(system.closed_loop, k)
        p = result.params
        difference = np.hstack([p.obs_map - (np.eye(d_o) - P) @ L, p.next_obs_map - P])
        S_xx = t.second_moment(t.stacked("obs", "next_obs"))
        error = float(np.trace(difference @ S_xx @ difference.T)) / max(1.0, float(np.trace(S_pp)))
        checker.close(
            "prediction = F_cl^k o + P r (P: top projector of the Gramian sum)",
            error,
            0.0,
            atol=fw.OBJECTIVE_RTOL,
            context=context,
        )
    F_cl = system.closed_loop
    F_cl = F_cl * (0.8 / max(control.spectral_radius(F_cl), 0.8))  # a stable closed loop for the limit
    Q = system.action_matrix @ system.exploration_cov @ system.action_matrix.T
    far = control.gramian(F_cl, Q, 400)
    limit = control.infinite_gramian(F_cl, Q)
    checker.close(
        "W_k → W_∞ (Lyapunov)",
        float(np.max(np.abs(far - limit))) / max(1.0, float(np.max(limit))),
        0.0,
        atol=1e-8,
        context=context,
    )


def _exact_case(rng: np.random.Generator, results: Results, checker: fw.Checker) -> None:
    n = int(rng.integers(2, 5))
    m = int(rng.integers(1, n + 1))
    k = int(rng.integers(1, 4))

    def R(rows, cols, lo, hi, den):
        return sympy.Matrix(rows, cols, lambda i, j: sympy.Rational(int(rng.integers(lo, hi)), den))

    F, G, K = R(n, n, -2, 3, 3), R(n, m, -1, 2, 1), R(m, n, -1, 2, 2)
    A, N = R(m, m, -1, 2, 1), R(n, 1, -1, 2, 1)
    Se, Sn = A * A.T, N * N.T
    iterated, L = _iterated_innovation(F, G, K, Se, Sn, k)
    Fcl = F + G * K
    exact = control.exact_gramian(Fcl, G * Se * G.T, k) + control.exact_gramian(Fcl, Sn, k)
    context = f"exact n={n} m={m} k={k}"
    checker.holds(
        "exact: iterated innovation = Gramian sum",
        (iterated - exact).is_zero_matrix and L == Fcl**k,
        context=context,
    )
    rank_kalman = control.exact_kalman_rank(Fcl, G * A, k)
    rank_gramian = control.exact_gramian(Fcl, G * Se * G.T, k).rank()
    checker.holds(
        "exact: Kalman rank = Gramian rank",
        rank_kalman == rank_gramian,
        context=f"{rank_kalman} vs {rank_gramian} ({context})",
    )
    checker.holds(
        "exact: StateSpace controllable iff full Gramian rank",
        control.exact_is_controllable(Fcl, G * A)
        == (control.exact_gramian(Fcl, G * Se * G.T, n).rank() == n),
        context=context,
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    for k, ok in results.identities.items():
        checker.holds("iterated source maps = Gramian sum (symbolic)", ok, context=f"k={k}")


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D8's Gramian identity against the population minimizer at horizon k (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
    exact_examples=4,
)
