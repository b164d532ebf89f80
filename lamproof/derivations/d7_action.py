"""D7 — Auxiliary action prediction is reduced-rank regression (docs/theory.md §8, R4; paper §7).

Statement. With a head ``â = H z`` and weight ``λ``, the clean latent ``z = W r`` solves the
reduced-rank regression of ``y = [r; √λ a]`` on ``r``: ``z`` spans the top-``d_z`` eigenvectors
of ``S_{yr} S_r⁻¹ S_{ry}``. For orthonormal, mutually orthogonal action and noise embeddings,
unit action variance and structured noise variance ``σ²``, each action direction contributes
the block ``[[1, √λ], [√λ, λ]]`` (eigenvalues ``1 + λ`` and ``0``) and each noise direction
``σ²``: the actions come first iff ``1 + λ > σ²``. The optimal objective is
``d_a(1 + λ) + d_b σ² − (sum of the top d_z of those eigenvalues)``; the action probe of ``z``
is ``1 − k_a/d_a``. In the paper's normalization ``λ = (d_o/d_a)(1 − (1 − ρ)^{n_B})``, so the
labeled fraction needed is ``ρ* = 1 − (1 − d_a(σ² − 1)/d_o)^{1/n_B}``.

Assumptions. ``o ~ (0, I)``, ``F = I``, ``a ~ (0, I)`` independent of ``o`` (``E[a oᵀ] = 0``);
``1 + λ ≠ σ²``; augmentation ``s ≥ 0`` (its penalty vanishes on the clean member when ``L = I``).

SymPy steps. Eigenvalues of the per-direction block; ``reduce_inequalities`` for ``λ``; ``solve``
the effective weight for ``ρ``; the paper's numbers (``d_o = 128, d_a = 8, n_B = 128``).

Check. The optimal objective and the action probe of ``z`` against the population minimizer
with the action head (its objective, ``probe_error`` of its latent); the effective weight
against the expectation computed from the binomial distribution of labeled samples per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st
from scipy.stats import binom

from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.symbolic import families as fam
from lamproof.symbolic.families import batch, d_a, d_b, d_o, d_z, k_a, lam, rho, sigma

NAME = "D7"
TITLE = "Auxiliary action prediction: reduced-rank regression and its threshold"
DEFAULT_EXAMPLES = 8

PAPER_VALUES = {d_o: 128, d_a: 8, batch: 128}


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    block: sympy.Matrix
    block_eigenvalues: dict
    threshold: sympy.Basic
    captured_actions: sympy.Expr
    objective: sympy.Expr
    action_error: sympy.Expr
    effective_weight: sympy.Expr
    rho_star: sympy.Expr
    paper_weight_1pct: sympy.Expr
    paper_rho_star_sigma2: sympy.Expr


@cache
def derive() -> Results:
    block = fam.rrr_block()
    block_eigenvalues = block.eigenvals()
    action_value = max(block_eigenvalues, key=lambda v: v.subs(lam, 1))
    threshold = sympy.reduce_inequalities([action_value > sigma**2], lam)
    weight = fam.effective_weight()
    rho_star = sympy.solve(sympy.Eq(weight, sigma**2 - 1), rho)[0]
    captured = fam.captured_action_dims(cond=action_value > sigma**2)
    k_b = sympy.Min(d_z - k_a, d_b)
    objective = d_a * action_value + d_b * sigma**2 - k_a * action_value - k_b * sigma**2
    paper_weight = weight.subs(PAPER_VALUES).subs(rho, sympy.Rational(1, 100))
    paper_rho_star = rho_star.subs(PAPER_VALUES).subs(sigma, 2)
    return Results(
        block=block,
        block_eigenvalues=block_eigenvalues,
        threshold=threshold,
        captured_actions=captured,
        objective=objective,
        action_error=1 - k_a / d_a,
        effective_weight=weight,
        rho_star=rho_star,
        paper_weight_1pct=paper_weight,
        paper_rho_star_sigma2=paper_rho_star,
    )


def latex() -> str:
    d = derive()
    eig = ", ".join(fw.tex(v) for v in d.block_eigenvalues)
    steps = [
        f"Per action direction $S_{{yr}}S_r^{{-1}}S_{{ry}}$ restricted to $(\\Phi v, v)$ is "
        f"${fw.tex(d.block)}$ with eigenvalues ${eig}$; per noise direction it is $\\sigma^2$.",
        f"Actions first iff ${fw.tex(d.threshold)}$ (\\texttt{{reduce\\_inequalities}}).",
        "Captured action directions:",
        fw.display(f"k_a &= {fw.tex(d.captured_actions)}"),
        "The paper's weight and the labeled fraction at the threshold:",
        fw.display(f"\\lambda(\\rho) &= {fw.tex(d.effective_weight)}", f"\\rho^* &= {fw.tex(d.rho_star)}"),
        f"With $d_o = 128$, $d_a = 8$, $n_B = 128$: $\\lambda(1\\%) = {float(d.paper_weight_1pct):.4f}$ "
        f"$> \\sigma^2 - 1 = 3$ at $\\sigma = 2$; the threshold is $\\rho^* = "
        f"{float(d.paper_rho_star_sigma2):.5f}$ (about {100 * float(d.paper_rho_star_sigma2):.2f}\\,\\% labels).",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="An auxiliary action loss turns the LAM into reduced-rank regression of $[r; \\sqrt\\lambda a]$ "
        "on $r$; the actions win the latent once $1 + \\lambda > \\sigma^2$, which the paper's "
        "normalization reaches with a fraction of a percent of labels.",
        assumptions=[
            "$o \\sim (0, I)$, $o' = o + \\Phi a + \\sigma\\Psi b$, $a \\perp o$, $\\Phi \\perp \\Psi$ "
            "orthonormal.",
            "$1 + \\lambda \\neq \\sigma^2$; any augmentation scale $s$.",
        ],
        steps=steps,
        result=f"$\\min(\\ell + \\lambda\\,\\mathbb{{E}}\\|a - Hz\\|^2) = {fw.tex(d.objective)}$; action probe of "
        f"$z$: ${fw.tex(d.action_error)}$.",
        check="The objective and the latent's action probe against the population minimizer with the head; "
        "$\\lambda(\\rho)$ against the binomial expectation of a labeled sample per batch.",
    )


def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.noise_dims(1),
            "sigma": st.floats(0.5, 2.5, allow_nan=False),
            # λ = 0 (no head) or clearly positive: at λ ≈ 0 the head's pull is below the minimizer's tolerance
            "lambda": st.one_of(st.just(0.0), st.floats(0.1, 4.0, allow_nan=False)),
            "augmentation": st.sampled_from([0.0, 0.1]),
            "rho": st.floats(0.0, 1.0, allow_nan=False),
            "batch": st.integers(1, 256),
            "seed": fw.generator_seeds(),
        }
    ).filter(lambda k: abs(1 + k["lambda"] - k["sigma"] ** 2) >= 0.1)


def _numeric_case(case, results, checker: fw.Checker) -> None:
    n_o, n_a, n_b, n_z = case["dims"]
    values = {d_o: n_o, d_a: n_a, d_b: n_b, d_z: n_z, sigma: case["sigma"], lam: case["lambda"]}
    system = draws.structured_system(n_o, n_a, n_b, case["seed"], sigma=case["sigma"])
    spec = LAMSpec(n_z, action_loss_weight=case["lambda"], augmentation=case["augmentation"])
    result = draws.minimize(system, spec, case["seed"] % 1000)
    ka = fw.evaluate(results.captured_actions, values)
    context = f"case {case}"
    checker.close(
        "optimal objective",
        fw.evaluate(results.objective, {**values, k_a: ka}),
        result.objective.total,
        context=context,
    )
    if case["lambda"] > 0:  # without a head the latent's action content is the PCA one (D4)
        checker.close(
            "action probe of z",
            fw.evaluate(results.action_error, {**values, k_a: ka}),
            probe_error(result.params.latent_map, "action", system.transition(), rtol=NUMERIC),
            atol=fw.PROBE_ATOL,
            context=context,
        )
    # the effective weight: (d_o/d_a) · P(the batch holds at least one labeled sample)
    n = case["batch"]
    expectation = (n_o / n_a) * float(np.sum(binom.pmf(np.arange(1, n + 1), n, case["rho"])))
    checker.close(
        "effective weight",
        fw.evaluate(results.effective_weight, {rho: case["rho"], d_o: n_o, d_a: n_a, batch: n}),
        expectation,
        rtol=1e-10,
        context=context,
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "threshold is λ > σ² − 1 (symbolic)",
        sympy.simplify(results.threshold.lhs - results.threshold.rhs) != 0
        and results.threshold == (lam > sigma**2 - 1),
        context=str(results.threshold),
    )
    checker.holds(
        "paper: λ(1%) > σ² − 1 at σ = 2 (exact)",
        bool(results.paper_weight_1pct > 3),
        context=str(results.paper_weight_1pct),
    )


def _exact_case(rng, results: Results, checker: fw.Checker) -> None:
    """The block's eigenvalues at rational λ, exactly (fixed values: ``rng`` is not used)."""
    for value in (sympy.Rational(1, 3), sympy.Rational(5, 2), 7):
        eig = fam.rrr_block(value).eigenvals()
        checker.equal("exact block eigenvalue 1 + λ", 1 + value, max(eig), context=f"λ = {value}")


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D7's threshold, probe and weight against the population minimizer with an action head.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
    exact_case=_exact_case,
    exact_examples=1,
)
