"""D3 — Augmentation selects the clean latent, and what happens when ``L ≠ I`` (docs/theory.md §4, R3).

Statement. With the IDM fed ``(o + κ₁, o' + κ₁)`` and the FDM ``o + κ₂`` (output shifted back),
``κ₁, κ₂ ~ (0, s² I)`` independent of everything, the objective gains exactly
``s²‖B(C + D)‖²_F + s²‖A − I‖²_F``. When ``L = I`` the clean member ``C = −D``, ``A = I`` of
the PCA optimum has zero penalty, so the augmented optimum is the clean latent
``z = D(o' − o)``: the observation probe of ``z`` is ``1`` and the objective is unchanged. When
``L ≠ I`` the penalty trades off against reconstruction:
``Σ_{i>d_z} λ_i(S_r) ≤ min(ℓ + penalty) ≤ Σ_{i>d_z} λ_i(S_Δ)`` (the unaugmented optimum below,
the clean PCA of ``Δ = o' − o`` above). Under the χ-policy without noise and with
``d_z = d_a`` the upper bound is ``0``: ``z`` then carries the whole action ``χ P o + (1 − χ) e``,
so observation leaks *through the policy*, with observation probe
``1 − χ² d_a / (d_o (χ² + (1 − χ)²))``.

Assumptions. Zero means for the probe statements; ``d_z ≤ rank S_Δ`` where the observation probe
of ``z`` is claimed (spare latent dimensions that ``B`` ignores are free).

SymPy steps. The augmented error is ``R x + B(C + D) κ₁ + (A − I) κ₂``; independence kills the
cross terms and ``E[κκᵀ] = s² I`` leaves the two traces. The clean member is stationary for the
augmented objective (matrix calculus, as in D1). The probe through the policy is a
per-direction computation.

Check. The lambdified penalty against the augmented loss computed from the definition (sources
extended by ``κ₁, κ₂``) at random parameters; the augmented population minimizer against the
formulas and bounds above.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st
from scipy.linalg import block_diag

from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.objective import LAMParameters
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.symbolic import objective as so
from lamproof.symbolic.families import chi, d_a, d_o

NAME = "D3"
TITLE = "Augmentation selects the clean latent; the trade-off when L is not I"
DEFAULT_EXAMPLES = 10


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    objective: so.Objective
    stationarity: so.StationarityCheck
    #: results
    penalty: sympy.Expr
    observation_error_clean: sympy.Expr
    observation_error_policy: sympy.Expr


@cache
def derive() -> Results:
    obj = so.objective(augmentation=True)
    check = so.check_optimum(obj)
    var_a = chi**2 + (1 - chi) ** 2
    explained_obs_per_action_dim = sympy.simplify(chi**2 / var_a)  # Cov(o, a) = χ Pᵀ, Var(a) = var_a
    return Results(
        objective=obj,
        stationarity=check,
        penalty=obj.penalty,
        observation_error_clean=sympy.Integer(1),
        observation_error_policy=1 - d_a * explained_obs_per_action_dim / d_o,
    )


def latex() -> str:
    d = derive()
    steps = [
        "With $x = [o; o']$ and $R = [A + BC,\\; BD - I]$, the augmented error is "
        "$R x + B(C + D)\\kappa_1 + (A - I)\\kappa_2$. The three terms are uncorrelated, and "
        "$E[\\kappa\\kappa^T] = s^2 I$, so the objective gains",
        fw.display(fw.broken("\\text{penalty}", d.penalty, 1)),
        "The clean member $A = I$, $B = U$, $C = -U^T$, $D = U^T$ (with $L = I$: $S_{oo'} = S_{oo}$, "
        f"$S_{{o'o'}} = S_r + S_{{oo}}$) makes every gradient of the augmented objective vanish "
        f"({'verified' if d.stationarity.holds else 'FAILED'}), and its penalty is zero.",
        "Under the $\\chi$-policy with $d_z = d_a$ and no noise, $o' - o = \\Phi a$ lies in a $d_a$-dimensional "
        "space, so the clean member reconstructs exactly: $z$ is an invertible map of $a = \\chi P o + "
        "(1-\\chi) e$, and the observation it carries is what $a$ carries.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="Shared shifts of the IDM's inputs and of the FDM's observation penalize exactly the "
        "observation leakage; when the observation predicts the change, the penalty competes with "
        "reconstruction.",
        assumptions=[
            "$\\kappa_1, \\kappa_2 \\sim (0, s^2 I)$ independent of the data and of each other.",
            "Zero means; $d_z \\le \\operatorname{rank} S_\\Delta$ for statements about the latent.",
        ],
        steps=steps,
        result="$L = I$: observation probe of $z$ is "
        f"${fw.tex(d.observation_error_clean)}$ and the optimum is unchanged. $L \\ne I$: "
        "$\\sum_{i>d_z}\\lambda_i(S_r) \\le \\min \\le \\sum_{i>d_z}\\lambda_i(S_\\Delta)$; with the "
        f"$\\chi$-policy, $d_z = d_a$, no noise: observation probe ${fw.tex(d.observation_error_policy)}$.",
        check="The lambdified penalty against the augmented loss computed from its definition at random "
        "parameters; the augmented population minimizer against the formulas and the bounds.",
    )


def _augmented_loss(params: LAMParameters, transition, s: float) -> float:
    """``E‖A(o + κ₂) + B(C(o + κ₁) + D(o' + κ₁)) − κ₂ − o'‖²`` from the definition (sources + κ)."""
    d_obs = params.A.shape[0]
    n_src = transition.source_cov.shape[0]
    cov = block_diag(transition.source_cov, s**2 * np.eye(d_obs), s**2 * np.eye(d_obs))
    mean = np.concatenate([transition.source_mean, np.zeros(2 * d_obs)])
    pad = np.zeros((d_obs, 2 * d_obs))
    o = np.hstack([transition.maps["obs"], pad])
    o_next = np.hstack([transition.maps["next_obs"], pad])
    k1 = np.hstack([np.zeros((d_obs, n_src)), np.eye(d_obs), np.zeros((d_obs, d_obs))])
    k2 = np.hstack([np.zeros((d_obs, n_src)), np.zeros((d_obs, d_obs)), np.eye(d_obs)])
    z = params.C @ (o + k1) + params.D @ (o_next + k1)
    error = params.A @ (o + k2) + params.B @ z - k2 - o_next
    m = error @ mean
    return float(np.trace(error @ cov @ error.T) + m @ m)


def _tail(S: np.ndarray, k: int) -> float:
    return float(np.sum(np.sort(np.linalg.eigvalsh((S + S.T) / 2))[::-1][k:]))


def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.dims(2, 5),
            "kind": st.sampled_from(["L = I", "policy, d_z = d_a", "policy"]),
            "chi": st.floats(0.1, 0.8, allow_nan=False),
            "tau": st.floats(0.2, 1.0, allow_nan=False),
            "s": st.floats(0.05, 1.0, allow_nan=False),
            "seed": fw.generator_seeds(),
        }
    )


def _numeric_case(case, results, checker: fw.Checker) -> None:
    n_o, n_a, n_z = case["dims"]
    rng = np.random.default_rng(case["seed"])
    s = case["s"]
    context = f"case {case}"
    P = so.parameters()
    penalty = so.lambdify_matrix(results.penalty, [P["A"], P["B"], P["C"], P["D"], so.s])
    # 1. the penalty formula against the augmented loss from its definition, at random parameters
    system = draws.structured_system(n_o, n_a, 0, case["seed"], chi=case["chi"], tau=case["tau"])
    t = system.transition()
    random = LAMParameters(
        *(rng.standard_normal(shape) for shape in ((n_o, n_o), (n_o, n_z), (n_z, n_o), (n_z, n_o)))
    )
    plain = _augmented_loss(random, t, 0.0)
    checker.close(
        "penalty = augmented − plain loss",
        penalty(random.A, random.B, random.C, random.D, s),
        _augmented_loss(random, t, s) - plain,
        rtol=1e-9,
        context=context,
    )
    # 2. the augmented optimum
    kind = case["kind"]
    if kind == "L = I":
        system = draws.structured_system(n_o, n_a, 0, case["seed"], tau=case["tau"])
    elif kind == "policy, d_z = d_a":
        n_z = n_a
        system = draws.structured_system(n_o, n_a, 0, case["seed"], chi=case["chi"])
    t = system.transition()
    spec = LAMSpec(n_z, augmentation=s)
    result = draws.minimize(system, spec, case["seed"] % 1000)
    S = t.second_moment(t.stacked("obs", "next_obs"))
    S_r = so.innovation_moment(S[:n_o, :n_o], S[:n_o, n_o:], S[n_o:, n_o:])
    E = np.hstack([-np.eye(n_o), np.eye(n_o)])
    S_delta = E @ S @ E.T
    latent_obs = probe_error(result.params.latent_map, "observation", t, rtol=NUMERIC)
    if kind == "L = I":
        checker.close(
            "L = I: objective is the PCA tail", _tail(S_r, n_z), result.objective.total, context=context
        )
        checker.close(
            "L = I: observation probe of z",
            float(results.observation_error_clean),
            latent_obs,
            atol=fw.PROBE_ATOL,
            context=context,
        )
    elif kind == "policy, d_z = d_a":
        checker.close("policy, d_z = d_a: objective is 0", 0.0, result.objective.total, context=context)
        formula = fw.evaluate(results.observation_error_policy, {chi: case["chi"], d_a: n_a, d_o: n_o})
        checker.close(
            "policy, d_z = d_a: observation leaks through the action",
            formula,
            latent_obs,
            atol=fw.PROBE_ATOL,
            context=context,
        )
    else:
        low, high, value = _tail(S_r, n_z), _tail(S_delta, n_z), result.objective.total
        slack = fw.OBJECTIVE_RTOL * max(1.0, high)
        checker.holds(
            "L ≠ I: tail(S_r) ≤ optimum ≤ tail(S_Δ)",
            low - slack <= value <= high + slack,
            context=f"{low:.6g} ≤ {value:.6g} ≤ {high:.6g} ({context})",
        )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "clean member is stationary with augmentation (symbolic)",
        results.stationarity.holds,
        context=str(results.stationarity.residuals),
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D3's clean latent against the population minimizer with augmentation.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
)
