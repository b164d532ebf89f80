"""D2 — The optimum is a family: observation leakage is free (docs/theory.md §3, R2).

Statement. Take the canonical optimum ``M₂ = P = UUᵀ``, ``M₁ = (I − P)L``. For every invertible
``G`` and every ``N``, the parameters ``B = UG``, ``D = G⁻¹Uᵀ``, ``C = N − DL``, ``A = L − BN``
are optimal too: they give the same ``M₁``, ``M₂`` and make every gradient vanish. Their latent
is ``z = D r + N o`` — any amount of observation rides along at zero cost. With
``o ~ (0, Σ_o)`` and ``E[r oᵀ] = 0``, the observation probe of ``z`` ranges over the family from
``1`` (the clean member ``N = 0``) down to ``1 − Σ_{i ≤ d_z} λ_i(Σ_o) / tr Σ_o`` (approached as
``N`` grows along the top eigenvectors of ``Σ_o``); for ``Σ_o = I``, ``[1 − d_z/d_o, 1]``. The
predicted change ``ô' − o`` is the same for every member.

Assumptions. ``S_oo`` invertible, zero means (so that ``E[r oᵀ] = 0`` means uncorrelated).

SymPy steps. Substitute the family into the gradients and reduce with ``UᵀU = I``,
``S_r U = UΛ``, ``G⁻¹G = I``: every gradient vanishes identically; ``M₁``, ``M₂`` and
``C + DL = N`` reduce to the canonical ones.

Check. On random systems: members ``C + N``, ``A − BN`` of the population minimizer's optimum
(random ``N``) have the minimizer's objective; a member leaking the top ``d_z`` observation
directions (large ``N``) reaches the formula's minimum, the clean member its maximum; the
closed-form solver's exact family range agrees with the formula; the predicted change's action
probe is the same for every member.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st
from sympy import Identity

from lamproof.derivations import _draws as draws
from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.numeric.objective import LAMParameters, population_objective
from lamproof.numeric.probes import probe, probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL as NUMERIC
from lamproof.symbolic import objective as so
from lamproof.symbolic.algebra import is_zero_matrix
from lamproof.symbolic.families import d_o, d_z

NAME = "D2"
TITLE = "The optimal family: observation leakage is free"
DEFAULT_EXAMPLES = 10

#: The leak scale of the "leaky" member: its probe is within O(1/t²) of the infimum.
LEAK_SCALE = 1e3


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    candidate: so.Candidate
    stationarity: so.StationarityCheck
    invariants: dict
    #: results: the observation probe range of z for Σ_o = I
    observation_min: sympy.Expr
    observation_max: sympy.Expr


@cache
def derive() -> Results:
    obj = so.objective()
    candidate = so.canonical_candidate(obj, family=True)
    check = so.check_optimum(obj, candidate)
    X = so.optimum_symbols()
    U, L, N = X["U"], X["L"], X["N"]
    P = so.parameters()
    subs = candidate.substitutions
    M1 = obj.maps["M1"].xreplace(subs)
    M2 = obj.maps["M2"].xreplace(subs)
    leak = (P["C"] + P["D"] * L).xreplace(subs)
    invariants = {
        "M1 = (I − UUᵀ)L": is_zero_matrix(M1 - (Identity(U.shape[0]) - U * U.T) * L, candidate.rules),
        "M2 = UUᵀ": is_zero_matrix(M2 - U * U.T, candidate.rules),
        "C + DL = N": is_zero_matrix(leak - N, candidate.rules),
    }
    return Results(
        candidate=candidate,
        stationarity=check,
        invariants=invariants,
        observation_min=1 - d_z / d_o,
        observation_max=sympy.Integer(1),
    )


def latex() -> str:
    d = derive()
    subs = ", ".join(
        f"{fw.tex(k)} = {fw.tex(v)}"
        for k, v in d.candidate.substitutions.items()
        if str(k) in ("A", "B", "C", "D")
    )
    names = {
        "M1 = (I − UUᵀ)L": "$M_1 = (I - UU^T)L$",
        "M2 = UUᵀ": "$M_2 = UU^T$",
        "C + DL = N": "$C + DL = N$",
    }
    inv = "; ".join(f"{names[k]}: {'holds' if v else 'FAILS'}" for k, v in d.invariants.items())
    grads = ", ".join(f"$\\partial_{k}\\ell$" for k in d.stationarity.vanishing)
    steps = [
        f"The family: ${subs}$ with $G$ invertible and $N$ arbitrary.",
        f"Substituted into the gradients of D1 and reduced with $U^TU = I$, $S_rU = U\\Lambda$, $G^{{-1}}G = I$, "
        f"the gradients {grads} all vanish identically"
        f"{'' if d.stationarity.holds else ' (FAILED)'}.",
        f"Reductions ({inv}) show that every member has the same $M_1$, $M_2$ and the latent $z = D r + N o$.",
        "Since $E[r o^T] = 0$, the clean member ($N = 0$) explains none of $o$; a member with $N = t V^T$ "
        "($V$ the top-$d_z$ eigenvectors of $\\Sigma_o$) explains $\\sum_{i \\le d_z}\\lambda_i(\\Sigma_o)$ as "
        "$t \\to \\infty$ (Ky Fan), and no $d_z$-dimensional feature explains more.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="Nothing in the loss stops the latent from carrying the observation: the FDM's $A$ cancels it.",
        assumptions=["$S_{oo}$ invertible, zero means; $B$ of full column rank on the captured space."],
        steps=steps,
        result=f"Observation probe of $z$ over the optimal family ($\\Sigma_o = I$): "
        f"$[{fw.tex(d.observation_min)}, {fw.tex(d.observation_max)}]$; the predicted change "
        "$\\hat o' - o$ is the same for every member.",
        check="Family members of the population minimizer's optimum keep its objective; leaky and clean members "
        "reach the range's ends (\\texttt{probe\\_error}); the closed-form solver's exact range agrees.",
    )


def _cases():
    return st.fixed_dictionaries(
        {
            "dims": draws.dims(2, 6),
            "chi": st.floats(0.0, 0.8, allow_nan=False),
            "tau": st.floats(0.0, 1.0, allow_nan=False),
            "seed": fw.generator_seeds(),
        }
    )


def _member(params: LAMParameters, N: np.ndarray) -> LAMParameters:
    return LAMParameters(params.A - params.B @ N, params.B, params.C + N, params.D)


def _numeric_case(case, results, checker: fw.Checker) -> None:
    n_o, n_a, n_z = case["dims"]
    rng = np.random.default_rng(case["seed"])
    system = draws.structured_system(n_o, n_a, 0, case["seed"], chi=case["chi"], tau=case["tau"])
    spec = LAMSpec(n_z)
    t = system.transition()
    result = draws.minimize(system, spec, case["seed"] % 1000)
    p = result.params
    context = f"case {case}"
    values = {d_o: n_o, d_z: n_z}
    # leakage is free: random members of the family have the optimal objective
    for scale in (0.3, 3.0):
        member = _member(p, scale * rng.standard_normal((n_z, n_o)))
        checker.close(
            "leaky members are optimal",
            population_objective(member, t, spec).total,
            result.objective.total,
            context=context,
        )
    # the ends of the range: clean member (N = −(C + D L)) and a member leaking top observation directions
    S = t.second_moment(t.stacked("obs", "next_obs"))
    L = S[n_o:, :n_o] @ np.linalg.inv(S[:n_o, :n_o])
    clean = _member(p, -(p.C + p.D @ L))
    checker.close(
        "clean member: observation probe max",
        fw.evaluate(results.observation_max, values),
        probe_error(clean.latent_map, "observation", t, rtol=NUMERIC),
        atol=fw.PROBE_ATOL,
        context=context,
    )
    V = np.linalg.qr(rng.standard_normal((n_o, n_z)))[0]  # Σ_o = I: any orthonormal V is a top eigenbasis
    leaky = _member(clean, LEAK_SCALE * V.T)
    checker.close(
        "leaky member: observation probe min",
        fw.evaluate(results.observation_min, values),
        probe_error(leaky.latent_map, "observation", t, rtol=NUMERIC),
        atol=fw.PROBE_ATOL,
        context=context,
    )
    # the closed-form solver's exact family range (the other route for the range)
    score = probe(solve(system, spec), "observation", "latent")
    if score.bounds == "exact":
        checker.close(
            "closed-form family range (min)",
            fw.evaluate(results.observation_min, values),
            score.min,
            atol=1e-9,
            context=context,
        )
        checker.close(
            "closed-form family range (max)",
            fw.evaluate(results.observation_max, values),
            score.max,
            atol=1e-9,
            context=context,
        )
    # the predicted change does not depend on the member
    before = probe_error(p.predicted_change_map, "action", t, rtol=NUMERIC)
    after = probe_error(leaky.predicted_change_map, "action", t, rtol=NUMERIC)
    checker.close(
        "predicted change identical across members", before, after, atol=fw.PROBE_ATOL, context=context
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "family is stationary (symbolic)",
        results.stationarity.holds,
        context=str(results.stationarity.residuals),
    )
    for name, ok in results.invariants.items():
        checker.holds(f"{name} (symbolic)", ok)


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D2's family against the population minimizer's optima.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
)
