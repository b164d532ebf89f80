"""D9 — Capture conditions: when the LAM carries the controllable change (docs/theory.md §10).

Statement. Let ``u = Σ_{j<k} F_clʲ G e_{k−1−j}`` be the ``k``-step controllable change
(covariance ``W_k^act``, independent of the rest of the innovation ``S_v``). The predicted change
``ô' − o`` carries all of it (``M₂ u = u``) iff ``d_z ≥ rank W_k^act`` (capacity) and
``range W_k^act`` lies in the captured top-``d_z`` eigenspace (dominance; margin
``m = λ_min(U_cᵀ S_v U_c) − μ_{d_z−r+1}(S_v|U_c^⊥)``). The action probe of ``ô' − o`` is then 0
iff in addition the ``k`` explorations are identifiable from ``M₂ u`` and ``ô' − o`` has no
other component along the controllable directions (and, with feedback, the policy part of the
actions is linear in that rest). In the paper's family (eigenvalues ``(1 − χ)²``, ``c²σ²``,
``τ²``) the boundaries are ``σ* = (1 − χ)/c`` (``σ² > 1`` at ``c = 1, χ = 0``),
``c* = (1 − χ)/σ``, ``λ* = c²σ² − 1`` (action loss) and, with an observation drift ``δ`` that
augmentation forces into the latent, ``s* = 1/√(δ² − 1)``.

Assumptions. Closed-form solutions (no eigenvalue tie); the family's embeddings orthonormal and
mutually orthogonal.

SymPy steps. ``solve`` the family boundaries (:func:`lamproof.conditions.family_thresholds`);
the augmentation cost ``min_α (δ − α)² + s²α² = δ²s²/(1 + s²)`` of leaving a drift direction to
``A``; ``family_action_captured`` as a Boolean formula.

Check. On Hypothesis-drawn systems (any noise, feedback, dynamics, rank-deficient ``G``, singular
``Σ_e``, horizons 1–3): where ``action_captured`` holds, the population minimizer's parameters
miss none of ``u`` (``E‖(I − M₂)u‖² = 0``), where it fails they miss a clear part; where
``actions_recoverable`` holds their action probe of ``ô' − o`` is 0, where it fails it is > 0.
The family formula against the conditions and the minimizer; the numeric cleaning threshold
(bisection) against ``c*``; the augmentation threshold ``s*`` against the minimizer with
augmentation on both sides of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof import control
from lamproof.conditions import (
    capture_conditions,
    cleaning_threshold,
    family_action_captured,
    family_thresholds,
)
from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.strategies import lam_specs, problems, systems
from lamproof.symbolic import families as fam
from lamproof.systems import System

NAME = "D9"
TITLE = "Capture conditions: when the LAM carries the controllable change"
DEFAULT_EXAMPLES = 12

#: Minimizer resolution (see _framework): a share below ZERO is 0, above CLEAR clearly positive;
#: cases whose predicted value lies between are too close to a boundary to decide and are skipped.
ZERO = 1e-4
CLEAR = 1e-3


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    thresholds: dict
    captured: sympy.Basic
    captured_head: sympy.Basic


@cache
def derive() -> Results:
    t = family_thresholds()
    return Results(
        thresholds=t,
        captured=family_action_captured(),
        captured_head=family_action_captured(head=True),
    )


def latex() -> str:
    d = derive()
    t = d.thresholds
    steps = [
        "The controllable change $u = \\sum_{j<k} F_{cl}^j G e_{k-1-j}$ is independent of the rest of the innovation, "
        "so $S_v = W_k^{\\mathrm{act}} + S_{\\mathrm{rest}}$ and the prediction carries it iff "
        "$\\mathrm{range}\\,W_k^{\\mathrm{act}} \\subseteq \\mathrm{range}\\,P$.",
        "When $\\mathrm{range}\\,W_k^{\\mathrm{act}}$ is invariant under $S_v$ (every family of the paper) this holds iff",
        fw.display(
            "m &= \\lambda_{\\min}(U_c^T S_v U_c) - \\mu_{d_z - r + 1}\\big(S_v|_{U_c^\\perp}\\big) > 0,"
            " \\qquad r = \\mathrm{rank}\\,W_k^{\\mathrm{act}} \\le d_z"
        ),
        "In the structured family SymPy solves the boundaries:",
        fw.display(
            f"\\sigma^* &= {fw.tex(t['sigma'])}",
            f"c^* &= {fw.tex(t['c'])}",
            f"\\lambda^* &= {fw.tex(t['lambda'])}",
        ),
        "Augmentation with a drift $o' = o + \\delta\\Theta\\Theta^T o + \\Phi e$: leaving a drift direction to $A$ costs",
        fw.display(
            f"\\min_\\alpha (\\delta-\\alpha)^2 + s^2\\alpha^2 &= {fw.tex(t['drift_value'])}",
            f"s^* &= {fw.tex(t['s'])} \\quad (\\delta > 1)",
        ),
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="The predicted change carries the whole $k$-step controllable change iff capacity "
        "($d_z \\ge \\mathrm{rank}\\,W_k^{\\mathrm{act}}$) and dominance hold; its action probe is 0 iff, "
        "in addition, the explorations are identifiable and nothing else shares their directions.",
        assumptions=[
            "Closed-form optimum without an eigenvalue tie at $d_z$.",
            "Family: orthonormal, mutually orthogonal embeddings; unit exploration (times $(1-\\chi)$).",
        ],
        steps=steps,
        result="Actions captured in the family iff "
        + f"${fw.tex(d.captured)}$"
        + "; with an action head ($\\chi = 0$) iff "
        + f"${fw.tex(d.captured_head)}$; "
        "augmentation pushes a drift $\\delta > 1$ into the latent once $s > s^*$.",
        check="Conditions against the population minimizer's parameters (missed share of $u$, action probe of "
        "$\\hat o' - o$) on random systems incl.\\ horizons $k>1$, singular $\\Sigma_e$, rank-deficient $G$; "
        "numeric bisection against $c^*$; the minimizer with augmentation on both sides of $s^*$.",
    )


# -- verification ----------------------------------------------------------------------------------
def _miss(M2: np.ndarray, system: System, k: int) -> float:
    W = control.action_gramian(system, k)
    R = np.eye(system.d_o) - M2
    return float(np.trace(R @ W @ R.T)) / max(float(np.trace(W)), 1e-300)


def _general_cases():
    kinds = st.sampled_from(
        [("orthonormal", "identity"), ("integer", "identity"), ("orthonormal", "psd"), ("integer", "psd")]
    )
    systems_ = kinds.flatmap(
        lambda kind: systems(
            noise="any", feedback=None, dynamics=None, means=None, action=kind[0], exploration=kind[1]
        )
    )
    return st.tuples(
        problems(systems_, lambda s: lam_specs(s.d_o, horizon=st.integers(1, 3), fdm_obs_path="any")),
        st.integers(0, 999),
    )


def _general_case(case, results: Results, checker: fw.Checker) -> None:
    (system, spec), seed = case
    solution = solve(system, spec, allow_numeric=False)
    conditions = capture_conditions(solution)
    captured, recoverable = conditions["action_captured"].holds, conditions["actions_recoverable"].holds
    gap, top = solution.eigengap, float(solution.innovation.eigenvalues[0]) or 1.0
    if captured is None or (gap is not None and solution.innovation.rank == spec.d_z and gap < 1e-2 * top):
        return
    result = draws.minimize(system, spec, seed)
    context = f"{system.to_dict()} {spec}"
    miss = _miss(result.params.next_obs_map, system, spec.horizon)
    if captured:
        checker.close("captured ⇒ minimizer misses none of u", miss, 0.0, atol=ZERO, context=context)
    elif _miss(solution.parameters.next_obs_map, system, spec.horizon) > CLEAR:
        checker.holds(
            "not captured ⇒ minimizer misses part of u",
            miss > CLEAR / 2,
            context=f"miss {miss:.3g} ({context})",
        )
    probe = probe_error(result.params.predicted_change_map, "action", solution.transition, rtol=NUMERIC)
    if probe is None or recoverable is None:
        return
    if recoverable:
        checker.close("recoverable ⇒ action probe of ô' − o = 0", probe, 0.0, atol=ZERO, context=context)
    elif probe_error(solution.parameters.predicted_change_map, "action", solution.transition) > CLEAR:
        checker.holds(
            "not recoverable ⇒ action probe of ô' − o > 0",
            probe > CLEAR / 2,
            context=f"probe {probe:.3g} ({context})",
        )


def _family_cases():
    return draws.cleaning_cases(chi=(0.0, 0.6), sigma=(0.3, 2.5), clean=(0.2, 1.0))


def _family_case(case, results: Results, checker: fw.Checker) -> None:
    n_o, n_a, n_b, n_z = case["dims"]
    system = draws.structured_system(
        n_o, n_a, n_b, case["seed"], sigma=case["sigma"], chi=case["chi"], clean=case["clean"]
    )
    spec = LAMSpec(n_z)
    values = {
        fam.d_o: n_o,
        fam.d_a: n_a,
        fam.d_b: n_b,
        fam.d_z: n_z,
        fam.sigma: case["sigma"],
        fam.chi: case["chi"],
        fam.c: case["clean"],
    }
    formula = bool(results.captured.subs(values))
    conditions = capture_conditions(solve(system, spec))
    context = f"case {case}"
    checker.holds(
        "family formula = action_captured",
        formula == conditions["action_captured"].holds,
        context=f"formula {formula} vs {conditions['action_captured']} ({context})",
    )
    result = draws.minimize(system, spec, case["seed"] % 1000)
    miss = _miss(result.params.next_obs_map, system, 1)
    checker.holds(
        "family formula = minimizer", formula == (miss < ZERO), context=f"miss {miss:.3g} ({context})"
    )
    if n_z == n_a and n_b >= 1:  # the boundary is c* exactly when the noise competes for the last slot
        numeric = cleaning_threshold(system, spec)  # relative to the system's noise c·σ: c* / c
        c_star = fw.evaluate(results.thresholds["c"], {fam.sigma: case["sigma"], fam.chi: case["chi"]})
        checker.close(
            "bisection c* = (1 − χ)/σ", numeric.value * case["clean"], c_star, rtol=1e-6, context=context
        )


def _augmentation_checks(results: Results, checker: fw.Checker) -> None:
    """The drift family on both sides of s*: the minimizer (with augmentation) keeps the action or the drift."""
    t = results.thresholds
    for delta in (1.5, 2.0, 3.0):
        s_star = float(t["s"].subs(t["delta"], delta))
        F = np.eye(4)
        F[1, 1] += delta
        system = System(np.eye(4)[:, :1], dynamics=F)
        for factor, action_first in ((0.7, True), (1.4, False)):
            result = draws.minimize(system, LAMSpec(1, augmentation=factor * s_star), 0)
            miss = _miss(result.params.next_obs_map, system, 1)
            expected = fw.evaluate(t["drift_value"], {t["delta"]: delta, t["s_symbol"]: factor * s_star})
            context = f"δ={delta} s={factor:g}·s*"
            checker.holds(
                "augmentation: s < s* keeps the action, s > s* the drift",
                (miss < ZERO) == action_first,
                context=f"miss {miss:.3g} ({context})",
            )
            checker.close(
                "augmentation: objective = min(1, δ²s²/(1+s²))",
                min(1.0, expected),
                result.objective.total,
                context=context,
            )


def _fixed_checks(results: Results, checker: fw.Checker) -> None:
    """The thresholds (symbolic) and the augmentation threshold on fixed drift systems."""
    t = results.thresholds
    checker.holds(
        "c* = (1 − χ)/σ (symbolic)",
        sympy.simplify(t["c"] - (1 - fam.chi) / fam.sigma) == 0,
        context=str(t["c"]),
    )
    checker.holds(
        "σ* = 1 at c = 1, χ = 0 (symbolic)", sympy.simplify(t["sigma"].subs({fam.c: 1, fam.chi: 0}) - 1) == 0
    )
    checker.holds(
        "λ* = c²σ² − 1 (symbolic)", sympy.simplify(t["lambda"] - (fam.c**2 * fam.sigma**2 - 1)) == 0
    )
    checker.holds("s* = 1/√(δ² − 1) (symbolic)", sympy.simplify(t["s"] ** 2 - 1 / (t["delta"] ** 2 - 1)) == 0)
    _augmentation_checks(results, checker)


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D9's conditions on general systems (4 per example) and its family formula against the minimizer.",
    fixed=_fixed_checks,
    numeric=[(_general_cases, _general_case, 4), (_family_cases, _family_case, 1)],
)
