"""D15 — Augmentation removes observation leakage at a rate ∝ s²: the steps it needs, and §6.

Statement. Learned FDM path, free IDM, augmentation ``s``, data with ``L = I`` and ``S_oo = I``
(``o' = o + Δ`` with ``Δ`` independent of ``o``: the paper's §4–§6). Without augmentation the
optimum is a family: ``C = −D + N``, ``A = I − BN`` for every leakage ``N`` (D2). At a clean
optimum with a balanced decoder (``BᵀB = I``), write ``X = Bᵀ(A − I)`` and ``N`` for the
deviations along that family. The trainer's loss ``ℓ = J/d_o`` is, in ``(X, N)``,

    ℓ = (1/d_o) [ ‖X + N‖² + s²‖N‖² + s²‖X‖² ]   (per column of o),

with Hessian ``(2/d_o)·[[1 + s², 1], [1, 1 + s²]]``: eigenvalues ``(2/d_o)(2 + s²)`` (the fit)
and ``(2/d_o) s²`` along ``X = −N``, which is the family direction: **leakage is removed at the
rate ``2s²/d_o`` per unit time**. With ``B`` and ``D`` free too, the ``d_z·d_o`` leakage
directions keep curvatures ``∝ s²``: the ``d_z(d_o − d_z)`` columns outside the captured space at
``(2/d_o)s²(1 + O(s²))`` — the slowest — and the ``d_z²`` inside it somewhat faster (their
coefficient exceeds 1: 1.2 at ``σ = 0.3``, found with the engine's Hessian).

- Gradient descent: leakage shrinks by ``1 − 2 lr s²/d_o`` per step; by a factor ``ρ`` after
  ``n = d_o log(1/ρ) / (2 lr s²)`` steps (``6.4·10⁸`` steps per ``e``-fold at ``s = 0.01``,
  ``d_o = 128``, ``lr = 1e-3``).
- Stochastic Adam near convergence: its second moment is the minibatch gradient *noise*, so a
  coordinate moves at ``lr/σ`` times its mean gradient. The ``A`` coordinates carry noise
  ``σ_A = (2/d_o)·√(E[e_i²](1 + s²)/n)`` (residual ``e``, batch ``n``) while the ``C``
  coordinates see ``Bᵀe = 0`` (``E[e_i²]`` is averaged over the rows of ``A`` the leakage moves:
  ``1/√E = Σ_i P_ii/√E[e_i²] / d_z``, ``P = BD``); the slow eigenvalue of the preconditioned Hessian then is
  ``(2/d_o)·(lr/σ_A)·s²(2 + s²)/(1 + s²)``: **a rate ``≈ 2 s² lr √n / √(E[e_i²](1 + s²))`` per
  step**, still ``∝ s²``, with a constant set by the noise. Steps for a factor ``ρ``:
  ``n_ρ ≈ log(1/ρ) √(E[e_i²](1 + s²)) / (2 s² lr √n)``.
- Population Adam (exact gradients) has no noise to normalize by: its second moment decays with
  the gradients (over ``1/(1 − β₂) = 1000`` steps), and Adam's update is invariant to the
  gradient's scale, so once the rest has converged the leakage moves by ``O(lr)`` per step for
  any ``s``. It does not describe stochastic training along this flat direction (measured at
  §6's ``σ = 0.5``, ``d_z = 8``, ``s = 0.01``: action probe of ``z`` 0.86 after 10 000 steps, 0.046
  — the optimum — after 40 000).

§6 at ``s = 0.01`` (``d_o = n = 128``, ``lr = 1e-3``, 40 000 steps, ``E[e_i²]`` the optimal
loss per dimension: 0.0031, 0.027, 0.085 at ``σ = 0.1, 0.5, 1`` with ``d_z = 8``): the rate is
``4.1·10⁻⁵``, ``1.4·10⁻⁵``, ``7.7·10⁻⁶`` per step, so 20 %, 58 %, 73 % of the initial leakage
remains; at ``s = 0.1`` the rate is 100× larger and nothing remains. So the authors' latent at
``s = 0.01`` sits at a leaky member of the unaugmented family, where the action probe of ``z``
lies anywhere in ``[0, 1]`` (leakage hides the action): 0.35 (the authors) and 0.50 (lamproof's
trainer, another seed) are both such members, and their exact value depends on the initial
leakage, i.e. on the seed. The optimum (0) and population Adam (which removes the leakage) do
not explain them; gradient noise in the flat leakage direction does.

Check. SymPy: the eigen-decomposition of the ``(X, N)`` Hessian and the preconditioned slow
eigenvalue. The engine: the Hessian of ``ℓ`` (finite differences of the engine's gradient) at
a clean optimum has exactly ``d_z·d_o`` slow eigenvalues (the leakage) besides the ``d_z²``
symmetries ``B → BG``, and the smallest over ``(2/d_o)s²`` extrapolates to 1 as ``s → 0``. The
stochastic trainer: its leakage decay rate from a leaky optimum against the noise-dominated
estimate (within a factor 2: an estimate), and population Adam's leakage far below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy
from hypothesis import strategies as st

from lamproof.derivations import _framework as fw
from lamproof.lam import LAMSpec
from lamproof.numeric import dynamics as dyn
from lamproof.numeric.objective import LAMParameters
from lamproof.numeric.trainer import Trainer
from lamproof.systems import paper_system

NAME = "D15"
TITLE = "Augmentation removes observation leakage at a rate proportional to s squared"
DEFAULT_EXAMPLES = 2

s, p_x, p_n, d_o, lr, n_batch, e2 = sympy.symbols("s p_X p_N d_o lr n E_e2", positive=True)

#: Leakage curvatures lie in [1, ~1.3]·s² (units of 2/d_o); the next ones are ≥ ~15 s² for
#: s ≤ 0.1, σ ≥ 0.3: counting below 2.5 s² separates them.
SLOW_BELOW = 2.5
#: Central differences of the gradient with step 1e-6: Hessian entries to ~1e-9 (in units of 2/d_o).
HESSIAN_STEP = 1e-6
#: Richardson-extrapolated μ/s² must be 1 to this: the O(s⁴) term is removed, the O(s⁶) term at
#: s ≤ 0.15 is below 1e-3 relative to s² — well above the finite differences' 1e-6.
RICHARDSON_ATOL = 2e-3
#: The noise-dominated estimate of stochastic Adam's rate is an estimate (per-coordinate noise
#: replaced by its average, Adam's second moment by the noise variance): within a factor 2.
ESTIMATE_FACTOR = 2.0
TRAINER_LR, TRAINER_BATCH = 1e-3, 128
TRAINER_STEPS = (500, 2000)  # the late-phase rate is measured between these steps


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    hessian: sympy.Matrix
    eigen: dict
    slow: sympy.Expr
    slow_vector: sympy.Matrix
    preconditioned_slow: sympy.Expr
    sigma_A: sympy.Expr
    rate_gd: sympy.Expr
    rate_adam: sympy.Expr
    rate_adam_leading: sympy.Expr


@cache
def derive() -> Results:
    H = sympy.Matrix([[1 + s**2, 1], [1, 1 + s**2]])  # ℓ's Hessian in (X, N), units of 2/d_o
    eigen = {value: [sympy.simplify(v / v[0]) for v in vectors] for value, _, vectors in H.eigenvects()}
    slow = min(eigen, key=lambda v: v.subs(s, sympy.Rational(1, 10)))
    P = sympy.diag(p_x, p_n) * H  # Adam's per-coordinate steps p = lr/σ
    trace, det = P.trace(), P.det()
    slow_pre = 2 * det / (trace + sympy.sqrt(trace**2 - 4 * det))  # the smaller root, rationalized
    slow_limit = sympy.simplify(sympy.limit(slow_pre, p_n, sympy.oo))
    sigma_A = 2 / d_o * sympy.sqrt(e2 * (1 + s**2) / n_batch)
    rate_adam = sympy.simplify(2 / d_o * slow_limit.subs(p_x, lr / sigma_A))
    return Results(
        hessian=H,
        eigen=eigen,
        slow=slow,
        slow_vector=eigen[slow][0],
        preconditioned_slow=slow_limit,
        sigma_A=sigma_A,
        rate_gd=2 * lr * slow / d_o,
        rate_adam=rate_adam,
        rate_adam_leading=sympy.simplify(sympy.series(rate_adam, s, 0, 3).removeO()),
    )


def latex() -> str:
    d = derive()
    steps = [
        "On the family $C = -D + N$, $A = I - BN$ the reconstruction is unchanged, so with $X = B^T(A - I)$ "
        "(balanced $B^TB = I$, $S_{oo} = I$) the reconstruction's $o$-part is $\\|X + N\\|^2$ and the augmentation "
        "penalty $s^2\\|BN\\|^2 + s^2\\|A - I\\|^2 = s^2\\|N\\|^2 + s^2\\|X\\|^2$. In units of $2/d_o$ the Hessian is",
        fw.display(f"H &= {fw.tex(d.hessian)}"),
        "with eigenvalues and eigenvectors "
        + ", ".join(
            f"${fw.tex(value)}$: ${fw.tex(sympy.Matrix(vectors[0]).T)}$" for value, vectors in d.eigen.items()
        )
        + "; the slow one is the family direction $X = -N$.",
        "Gradient descent multiplies the leakage by $1 - \\mathrm{lr}\\cdot 2 s^2/d_o$ per step. Adam with "
        "per-coordinate steps $p_X, p_N$ has the slow eigenvalue of $\\mathrm{diag}(p_X, p_N) H$; as $p_N \\to \\infty$ "
        "(the $C$ coordinates carry no noise, $B^T e = 0$) it tends to",
        fw.display(f"\\mu &= {fw.tex(d.preconditioned_slow)}"),
        f"and with $p_X = \\mathrm{{lr}}/\\sigma_A$, $\\sigma_A = {fw.tex(d.sigma_A)}$, the rate per step is",
        fw.display(f"r_{{Adam}} &= {fw.tex(d.rate_adam)} \\approx {fw.tex(d.rate_adam_leading)}"),
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="Near a clean optimum the leakage is the direction of curvature $2s^2/d_o$ of the trainer's loss. "
        "Gradient descent removes it at $2\\,\\mathrm{lr}\\,s^2/d_o$ per step; stochastic Adam, whose second "
        "moment is the gradient noise, at $\\approx 2 s^2 \\mathrm{lr}\\sqrt{n}/\\sqrt{E[e_i^2](1+s^2)}$; "
        "population Adam, whose second moment decays with the gradients, by $O(\\mathrm{lr})$ per step "
        "once the rest has converged, for any $s$.",
        assumptions=[
            "Learned FDM path, free IDM; $L = I$, $S_{oo} = I$ (the paper's data); a clean optimum with a "
            "balanced decoder; leakage small enough for the quadratic expansion.",
            "Stochastic Adam: near convergence, so that each coordinate's second moment is its minibatch "
            "gradient variance; the noise of the $A$ coordinates replaced by its average.",
        ],
        steps=steps,
        result="Leakage decays as $e^{-r n}$ with $r_{GD} = 2\\,\\mathrm{lr}\\,s^2/d_o$ and "
        f"$r_{{Adam}} \\approx {fw.tex(d.rate_adam_leading)}$; steps for a factor $\\rho$: $\\log(1/\\rho)/r$. "
        "For the paper's $s = 0.01$ (40\\,000 steps) 20--73\\,\\% of the leakage remains: the authors' latent "
        "stays leaky, and the action probe of $z$ at a value set by the seed.",
        check="The engine's Hessian (finite differences of its gradient) at a clean optimum: $d_z d_o$ eigenvalues "
        "below $2.5 s^2$ (units $2/d_o$) besides the $d_z^2$ symmetries, the smallest extrapolating to $s^2$; "
        "the stochastic trainer's "
        "late decay rate against $r_{Adam}$ within a factor 2; population Adam's leakage far below the trainer's.",
    )


def _cases():
    return st.fixed_dictionaries(
        {
            "d_o": st.integers(4, 6),
            "d_a": st.integers(1, 2),
            "sigma": st.floats(0.3, 0.8),
            "s": st.floats(0.05, 0.1),
            "seed": fw.generator_seeds(),
        }
    )


def _clean_optimum(system, d_z) -> LAMParameters:
    U = system.action_matrix[:, :d_z]  # orthonormal: the top eigenvectors of S_Δ (isotropic noise)
    return LAMParameters(np.eye(system.d_o), U.copy(), -U.T.copy(), U.T.copy())


def _slow_eigenvalues(system, spec, point) -> np.ndarray:
    """Eigenvalues of the Hessian of ℓ at ``point`` in units of 2/d_o (finite differences of the gradient)."""
    engine = dyn.Engine(system.transition(), [spec])
    x0 = engine.pack([point])
    H = np.zeros((engine.size, engine.size))
    for i in range(engine.size):
        for sign in (1.0, -1.0):
            engine.theta[...] = x0
            engine.theta[i] += sign * HESSIAN_STEP
            H[:, i] += sign * engine.gradient() / (2 * HESSIAN_STEP)
    return np.sort(np.linalg.eigvalsh((H + H.T) / 2)) / engine.scale


def _leakage(params: LAMParameters) -> float:
    return float(np.linalg.norm(params.B @ (params.C + params.D)))


def _numeric_case(case, results, checker: fw.Checker) -> None:
    n_o, n_a = case["d_o"], case["d_a"]
    context = f"case {case}"
    system = paper_system(n_o, n_a, noise="isotropic", sigma=case["sigma"], seed=case["seed"] % 10_000)
    point = _clean_optimum(system, n_a)
    slow = sympy.lambdify(s, results.slow)
    # 1. the Hessian: d_z² symmetries, d_z·d_o slow directions (the leakage), the rest fast
    ratios = []
    for scale in (1.0, 0.5):
        aug = case["s"] * scale
        values = _slow_eigenvalues(system, LAMSpec(n_a, augmentation=aug), point)
        symmetries = n_a * n_a
        rest = values[symmetries:]
        count = int(np.sum(rest < SLOW_BELOW * aug**2))
        checker.holds(
            "the slow directions are the d_z·d_o leakage directions",
            count == n_a * n_o,
            context=f"{count} slow for s = {aug:.4g} ({context})",
        )
        ratios.append(rest[0] / float(slow(aug)))
    extrapolated = (4 * ratios[1] - ratios[0]) / 3  # removes the O(s²) relative correction
    # a limit, decided to the O(s⁶) remainder: pass/fail at RICHARDSON_ATOL (the report's worst error
    # is kept for comparisons that are exact up to round-off)
    checker.holds(
        "slowest curvature → (2/d_o) s² as s → 0 (Richardson)",
        abs(extrapolated - 1) <= RICHARDSON_ATOL,
        context=f"extrapolated μ/s² = {extrapolated:.6g} from {ratios} ({context})",
    )
    # 2. stochastic Adam from a leaky optimum: the noise-dominated rate; population Adam: gone
    rng = np.random.default_rng(case["seed"])
    N0 = 0.3 * rng.standard_normal((n_a, n_o))
    start = LAMParameters(np.eye(n_o) - point.B @ N0, point.B, point.C + N0, point.D)
    spec = LAMSpec(n_a, augmentation=case["s"] / 2)
    trainer = Trainer(system, spec, seed=case["seed"] % 1000, batch_size=TRAINER_BATCH, lr=TRAINER_LR)
    trainer.p["idm"][...] = np.hstack([start.C, start.D])
    trainer.p["fdm"][...] = np.hstack([start.A, start.B])
    trainer.run(TRAINER_STEPS[0])
    early = _leakage(trainer.params)
    trainer.run(TRAINER_STEPS[1] - TRAINER_STEPS[0])
    late = _leakage(trainer.params)
    measured = np.log(early / late) / (TRAINER_STEPS[1] - TRAINER_STEPS[0])
    S = system.transition().second_moment(("obs", "next_obs"))
    S_delta = S[n_o:, n_o:] - S[n_o:, :n_o] - S[:n_o, n_o:] + S[:n_o, :n_o]
    residual = np.eye(n_o) - point.B @ point.D
    P = point.B @ point.D
    # the leakage mode moves the rows of A in range(B): weight each row's noise by P_ii
    e2_rows = np.diag(residual @ S_delta @ residual.T)
    e2_value = float((np.sum(np.diag(P) / np.sqrt(e2_rows)) / n_a) ** -2)
    rate = sympy.lambdify((s, lr, n_batch, e2, d_o), results.rate_adam)
    estimate = float(rate(case["s"] / 2, TRAINER_LR, TRAINER_BATCH, e2_value, n_o))
    checker.holds(
        "stochastic Adam's leakage rate is the noise-dominated estimate (within a factor 2)",
        estimate / ESTIMATE_FACTOR <= measured <= estimate * ESTIMATE_FACTOR,
        context=f"measured {measured:.3g} vs estimate {estimate:.3g} per step ({context})",
    )
    population = dyn.population_dynamics(
        system,
        spec,
        dyn.DynamicsSettings(
            "adam",
            lr=TRAINER_LR,
            steps=TRAINER_STEPS[1],
            record=[TRAINER_STEPS[1]],
            init={"A": start.A, "B": start.B, "C": start.C, "D": start.D},
        ),
    )
    left = _leakage(population.params[-1])
    checker.holds(
        "population Adam removes the leakage that stochastic Adam keeps",
        left <= 0.1 * late,
        context=f"population {left:.3g} vs stochastic {late:.3g} ({context})",
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "the slow curvature is s², along the family X = −N (symbolic)",
        sympy.simplify(results.slow - s**2) == 0 and sympy.simplify(results.slow_vector[1] + 1) == 0,
        context=f"{results.slow}, {results.slow_vector}",
    )
    checker.holds(
        "preconditioned slow eigenvalue → p_X s²(2 + s²)/(1 + s²) (symbolic)",
        sympy.simplify(results.preconditioned_slow - p_x * s**2 * (2 + s**2) / (1 + s**2)) == 0,
        context=str(results.preconditioned_slow),
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D15's rates against the population engine and the stochastic trainer.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
)
