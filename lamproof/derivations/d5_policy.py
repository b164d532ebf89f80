"""D5 — Policy correlation (docs/theory.md §6, R5; paper §5).

Statement. With ``o ~ (0, I)``, ``o' = o + Φ a`` and the policy ``a = (1 − χ) e + χ P o``
(``Φ`` orthonormal columns, ``P`` orthonormal rows, ``e ~ (0, I)``), the best linear prediction
of ``o'`` from ``o`` is ``L = I + χ Φ P`` and the innovation moment is ``S_r = (1 − χ)² Φ Φᵀ``:
the latent keeps only the exploration. A probe of ``ô' − o`` fitted on the policy's data and
scored on random actions (``χ = 0``) has error ``((d_a − d_z)/d_a)(1 + χ²)`` for ``d_z < d_a``
and ``0`` for ``d_z ≥ d_a`` (``χ < 1``); the minimal loss is ``(1 − χ)² max(0, d_a − d_z)``.

Assumptions. ``χ ∈ [0, 1)``; no noise; ``F = I``.

SymPy steps. In the coordinates of ``Φ`` the predicted change on the policy's data is
``c = χ y + (1 − χ) Π e`` with ``y = P o`` and ``Π`` the captured projector (inside
``span Φ``); on random-action data it is ``χ (I − Π) y + Π a``. Per direction with captured
indicator ``π ∈ {0, 1}`` SymPy computes the fitted probe weight ``w = Cov(a, c)/Cov(c)`` and the
scored error ``E(w c − a)²``, and sums over the ``d_a`` directions.

Check. The lambdified formula against ``probe_error`` of the population minimizer's parameters
(fitted on the policy's transition, scored on the random-action one) on random embeddings, and
the minimal loss against the minimizer's; ``exact=True`` repeats it in rationals on Cayley
embeddings with zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st
from sympy import Max, symbols

from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.symbolic import exact as ex
from lamproof.symbolic.families import chi, d_a, d_z

NAME = "D5"
TITLE = "Policy correlation: the latent keeps only the exploration"
DEFAULT_EXAMPLES = 10


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    weights: dict
    direction_errors: dict
    total_error: sympy.Expr
    consistent: bool
    innovation_eigenvalue: sympy.Expr
    #: the results
    action_error: sympy.Expr
    optimal_loss: sympy.Expr


@cache
def derive() -> Results:
    pi = symbols("pi", nonnegative=True)  # 1 if the direction is captured, 0 if not
    # fitting data (the policy's): a = χ y + (1 − χ) e, c = χ y + (1 − χ) π e, y ⟂ e, unit variances
    cov_ac = chi * chi + (1 - chi) * (1 - chi) * pi
    cov_cc = chi**2 + (1 - chi) ** 2 * pi**2
    weight = {
        p: sympy.simplify((cov_ac / cov_cc).subs(pi, p)) if (cov_cc.subs(pi, p)) != 0 else 0 for p in (0, 1)
    }
    # scoring data (random actions a ⟂ y): c = χ (1 − π) y + π a
    errors = {}
    for p in (0, 1):
        w = weight[p]
        # E(w c − a)² with c = χ(1−p) y + p a:  (w χ (1−p))² + (w p − 1)²
        errors[p] = sympy.factor(sympy.expand((w * chi * (1 - p)) ** 2 + (w * p - 1) ** 2))
    k = symbols("k", integer=True, nonnegative=True)  # captured action directions
    total = sympy.factor(k * errors[1] + (d_a - k) * errors[0])
    error = Max(0, (d_a - d_z) / d_a) * (1 + chi**2)
    derived_at = sympy.simplify(total.subs(k, d_z) / d_a - (d_a - d_z) / d_a * (1 + chi**2))
    return Results(
        weights=weight,
        direction_errors=errors,
        total_error=total,
        consistent=derived_at == 0,
        innovation_eigenvalue=(1 - chi) ** 2,
        action_error=error,
        optimal_loss=(1 - chi) ** 2 * Max(0, d_a - d_z),
    )


def latex() -> str:
    d = derive()
    steps = [
        "Fitted on the policy's data, the probe weight per direction is "
        f"$w = {fw.tex(d.weights[1])}$ for a captured direction ($\\pi = 1$) and "
        f"$w = {fw.tex(d.weights[0])}$ for an uncaptured one ($\\pi = 0$, $\\chi > 0$; the direction "
        "carries $\\chi y$, which predicts $a$ on the policy's data).",
        "Scored on random actions, the squared errors per direction are",
        fw.display(
            f"\\pi = 1:&\\quad {fw.tex(d.direction_errors[1])}",
            f"\\pi = 0:&\\quad {fw.tex(d.direction_errors[0])}",
        ),
        "so with $k = \\min(d_z, d_a)$ captured directions the total error is",
        fw.display(f"E &= {fw.tex(d.total_error)}"),
        f"The innovation eigenvalue of every action direction is ${fw.tex(d.innovation_eigenvalue)}$.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="With $a = (1-\\chi) e + \\chi P o$, $L = I + \\chi\\Phi P$ and $S_r = (1-\\chi)^2\\Phi\\Phi^T$: "
        "the latent holds only the exploration, and a latent-to-action probe learned on such data "
        "transfers worse to random actions.",
        assumptions=[
            "$o \\sim (0, I)$, $o' = o + \\Phi a$, $\\Phi$ orthonormal columns, $P$ orthonormal rows.",
            "$0 \\le \\chi < 1$; no noise; the probe reads $\\hat o' - o$, fitted on the policy's "
            "data and scored on $\\chi = 0$ data.",
        ],
        steps=steps,
        result=f"$\\text{{action error}} = {fw.tex(d.action_error)}$ and "
        f"$\\min\\ell = {fw.tex(d.optimal_loss)}$.",
        check="Against \\texttt{probe\\_error} of the population minimizer's parameters (fitted on the policy, "
        "scored on random actions) and its loss, on random embeddings; with \\texttt{--exact}, in "
        "rationals on Cayley embeddings.",
    )


def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.dims(2, 6),
            "chi": st.floats(0.0, 0.9, allow_nan=False),
            "seed": fw.generator_seeds(),
        }
    )


def _numeric_case(case, results, checker: fw.Checker) -> None:
    d_o, n_a, n_z = case["dims"]
    x = case["chi"]
    system = draws.structured_system(d_o, n_a, 0, case["seed"], chi=x)
    random_actions = system.replace(policy_gain=np.zeros((n_a, d_o)), exploration_cov=np.eye(n_a))
    result = draws.minimize(system, LAMSpec(n_z), case["seed"] % 1000)
    values = {chi: x, d_a: n_a, d_z: n_z}
    formula = fw.evaluate(results.action_error, values)
    measured = probe_error(
        result.params.predicted_change_map,
        "action",
        system.transition(),
        random_actions.transition(),
        rtol=NUMERIC,
    )
    context = f"case {case}"
    checker.close("transfer probe error", formula, measured, atol=fw.PROBE_ATOL, context=context)
    checker.close(
        "optimal loss",
        fw.evaluate(results.optimal_loss, values),
        result.objective.reconstruction,
        context=context,
    )


def _exact_case(rng, results, checker: fw.Checker) -> None:
    n_o = int(rng.integers(2, 6))
    n_a = int(rng.integers(1, n_o + 1))
    n_z = int(rng.integers(1, n_o + 1))
    x = sympy.Rational(int(rng.integers(1, 9)), 10)
    Phi = ex.rational_orthogonal(n_o, rng)[:, :n_a]
    P = ex.rational_orthogonal(n_o, rng)[:n_a, :]
    system = ex.ExactSystem.build(Phi, K=x * P, Sigma_e=(1 - x) ** 2 * sympy.eye(n_a))
    random_actions = ex.ExactSystem.build(Phi)
    _, S_r = ex.exact_innovation(system)
    context = f"exact d_o={n_o} d_a={n_a} d_z={n_z} chi={x}"
    checker.equal(
        "exact innovation (1 − χ)² ΦΦᵀ",
        0,
        sympy.Matrix(S_r - results.innovation_eigenvalue.subs(chi, x) * Phi * Phi.T).norm(),
        context=context,
    )
    V = Phi[:, : min(n_z, n_a)]  # a member of the (tied) optimal family
    params = ex.exact_canonical(system, V, n_z)
    features = sympy.Matrix.hstack(
        params["A"] + params["B"] * params["C"] - sympy.eye(n_o), params["B"] * params["D"]
    )
    measured = ex.exact_probe_error(features, "action", system, random_actions)
    formula = results.action_error.subs({chi: x, d_a: n_a, d_z: n_z})
    checker.equal("exact transfer probe error", formula, measured, context=context)


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds("per-direction derivation sums to the formula (symbolic)", results.consistent)


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D5's transfer errors against probes of the population minimizer (exactly with ``exact=True``).",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
)
