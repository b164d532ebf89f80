"""D6 — Data cleaning (paper insight 6).

Statement. Cleaning scales the structured noise by ``c`` (``ε → c ε``). Under the policy
``a = (1 − χ) e + χ P o`` the action directions of the innovation have eigenvalue ``(1 − χ)²``
and the noise directions ``c² σ²``, so the actions return to the latent iff
``c < c* = (1 − χ)/σ``. With ``k_a`` action directions captured, the action probe of
``ô' − o`` on the policy's own data is ``(1 − χ)² (d_a − k_a) / (d_a (χ² + (1 − χ)²))``: the
predictable part ``χ P o`` is always in ``ô' − o``; only the exploration needs the latent.

Assumptions. ``o ~ (0, I)``, ``F = I``, ``Φ ⟂ Ψ`` orthonormal, ``0 ≤ χ < 1``, ``c σ ≠ 1 − χ``.

SymPy steps. ``solve`` the boundary ``(1 − χ)² = c² σ²`` for ``σ`` and for ``c``; the gap's
derivative in ``c`` is negative (cleaning only helps); per action direction with captured
indicator ``π``, the unexplained variance ``Var(a_i) − Cov(a_i, f_i)² / Var(f_i)`` of the feature
``f_i = χ y_i + (1 − χ) π e_i``.

Check. Against ``probe_error`` of the population minimizer's parameters and its loss, on random
embeddings with random ``χ``, ``σ``, ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy
from sympy import symbols

from lamproof.conditions import family_thresholds
from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.symbolic import families as fam
from lamproof.symbolic.families import c, chi, d_a, d_b, d_o, d_z, k_a, sigma, tau

NAME = "D6"
TITLE = "Data cleaning moves the actions back into the latent"
DEFAULT_EXAMPLES = 10


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    sigma_star: sympy.Expr
    c_star: sympy.Expr
    slope_c: sympy.Expr
    unexplained: dict
    captured_actions: sympy.Expr
    action_error: sympy.Expr
    optimal_loss: sympy.Expr


@cache
def derive() -> Results:
    sigma_star, slope_sigma = fam.dominance_threshold()
    # c* has one home: the boundary (1 − χ)² = c²σ² solved by SymPy in the capture conditions
    c_star = family_thresholds()["c"]
    slope_c = sympy.diff(fam.ACTION - fam.NOISE, c)
    pi = symbols("pi", nonnegative=True)
    var_a = chi**2 + (1 - chi) ** 2
    cov_af = chi**2 + (1 - chi) ** 2 * pi
    var_f = chi**2 + (1 - chi) ** 2 * pi**2
    unexplained = {p: sympy.factor(sympy.simplify((var_a - cov_af**2 / var_f).subs(pi, p))) for p in (0, 1)}
    captured = fam.captured_action_dims().subs(tau, 0)
    error = (d_a - k_a) * unexplained[0] / (d_a * var_a)
    return Results(
        sigma_star=sigma_star,
        c_star=c_star,
        slope_c=slope_c,
        unexplained=unexplained,
        captured_actions=captured,
        action_error=error,
        optimal_loss=fam.optimal_loss().subs(tau, 0),
    )


def latex() -> str:
    d = derive()
    steps = [
        f"The boundary $(1-\\chi)^2 = c^2\\sigma^2$ solved by SymPy: $\\sigma^* = {fw.tex(d.sigma_star)}$, "
        f"$c^* = {fw.tex(d.c_star)}$; $\\partial_c(\\lambda_a - \\lambda_b) = {fw.tex(d.slope_c)} \\le 0$, "
        "so lowering $c$ only ever favours the actions.",
        "Unexplained action variance per direction, captured ($\\pi = 1$) and not ($\\pi = 0$, $\\chi > 0$):",
        fw.display(
            f"\\pi = 1:&\\quad {fw.tex(d.unexplained[1])}", f"\\pi = 0:&\\quad {fw.tex(d.unexplained[0])}"
        ),
        "Captured action directions:",
        fw.display(f"k_a &= {fw.tex(d.captured_actions)}"),
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="Scaling the noise by $c$ brings the actions back into the latent once $c < (1-\\chi)/\\sigma$.",
        assumptions=[
            "$o \\sim (0, I)$, $o' = o + \\Phi a + c\\sigma\\Psi b$, $a = (1-\\chi)e + \\chi P o$, "
            "$\\Phi \\perp \\Psi$ orthonormal.",
            "$0 \\le \\chi < 1$, $c\\sigma \\ne 1 - \\chi$.",
        ],
        steps=steps,
        result=f"Action probe of $\\hat o' - o$ on the policy's data: ${fw.tex(d.action_error)}$; "
        "and\n" + fw.display(fw.broken("\\min\\ell", (fam.optimal_loss(ka=k_a).subs(tau, 0)), 2)),
        check="Against \\texttt{probe\\_error} of the population minimizer's parameters and its loss on random "
        "embeddings with random $\\chi$, $\\sigma$, $c$ away from the boundary.",
    )


def _cases():
    return draws.cleaning_cases(chi=(0.0, 0.7), sigma=(0.5, 3.0), clean=(0.0, 1.0))


def _numeric_case(case, results, checker: fw.Checker) -> None:
    n_o, n_a, n_b, n_z = case["dims"]
    values = {
        d_o: n_o,
        d_a: n_a,
        d_b: n_b,
        d_z: n_z,
        sigma: case["sigma"],
        chi: case["chi"],
        c: case["clean"],
    }
    system = draws.structured_system(
        n_o, n_a, n_b, case["seed"], sigma=case["sigma"], chi=case["chi"], clean=case["clean"]
    )
    result = draws.minimize(system, LAMSpec(n_z), case["seed"] % 1000)
    ka = fw.evaluate(results.captured_actions, values)
    formula = fw.evaluate(results.action_error, {**values, k_a: ka})
    measured = probe_error(result.params.predicted_change_map, "action", system.transition(), rtol=NUMERIC)
    context = f"case {case}"
    checker.close("action probe on the policy's data", formula, measured, atol=fw.PROBE_ATOL, context=context)
    checker.close(
        "optimal loss",
        fw.evaluate(results.optimal_loss, values),
        result.objective.reconstruction,
        context=context,
    )
    # the threshold: actions are captured first exactly when c < c*
    c_star = fw.evaluate(results.c_star, {sigma: case["sigma"], chi: case["chi"]})
    checker.holds(
        "c < c* iff actions first",
        (case["clean"] < c_star) == ((1 - case["chi"]) ** 2 > (case["clean"] * case["sigma"]) ** 2),
        context=context,
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "c* = (1 − χ)/σ (symbolic)",
        sympy.simplify(results.c_star - (1 - chi) / sigma) == 0,
        context=str(results.c_star),
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D6's threshold and probe against the population minimizer.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
)
