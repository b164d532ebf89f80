"""D14 — Learning order and time: sigmoidal modes under gradient flow, and where Adam departs.

Statement. Take the identity-FDM, tied-IDM LAM ``ô' = o + B D (o' − o)``: a linear autoencoder
of the change ``Δ = o' − o`` with ``S_Δ = E[ΔΔᵀ] = Σ λ_i u_i u_iᵀ``, trained on the trainer's loss
``ℓ = E‖ô' − o'‖²/d_o``. From a balanced start aligned with the eigenvectors,
``B(0) = Σ a_i(0) u_i e_iᵀ``, ``D(0) = B(0)ᵀ``, gradient flow keeps both forms and the captured
fraction of direction ``i``, ``m_i = u_iᵀ B D u_i = a_i²``, is logistic (Saxe et al.,
arXiv 1312.6120):

    dm_i/dt = (4 λ_i / d_o) m_i (1 − m_i),   m_i(t) = m₀ e^{κ_i t} / (1 − m₀ + m₀ e^{κ_i t}),  κ_i = 4λ_i/d_o,

so direction ``i`` is half learned at ``t_i = (d_o / 4λ_i) log((1 − m₀)/m₀)`` — time ∝
``(1/λ_i) log(1/m₀)``, larger eigenvalues first; gradient descent with step ``lr`` takes
``t_i / lr`` steps (as ``lr → 0``).

Adam departs. Its update depends on the gradient only through ``m/√v``, which is homogeneous of
degree 0 in the gradient (up to ``eps``). When the eigenvectors are the coordinate axes every
direction's gradient is ``λ_i`` times one and the same function of ``a_i``, so under Adam every
direction follows the *same* trajectory ``a(n)``: the learning time does not depend on ``λ_i``
at all. With rotated eigenvectors Adam's per-coordinate normalization couples the directions and
the order is no longer the order of the eigenvalues (measured by the engine below).

Domain of validity (of the sigmoid): gradient flow or small-step gradient descent; the loss a
linear autoencoder of ``Δ`` (identity FDM path, tied IDM, no augmentation penalty — tied makes it
zero — and no action head); a balanced aligned start (from a small *random* start, an alignment
phase comes first and the formula holds approximately, with ``m₀`` the initial overlap); distinct
eigenvalues (tied ones share one sigmoid). A learned FDM path adds the ``d_o × d_o`` matrix ``A``,
which relaxes at rate ``(2/d_o)·λ(S_oo)`` and, from PyTorch's initialization, far from ``I``:
the innovation directions are then coupled to it and the sigmoid no longer applies.

Check. The logistic solution against SymPy's ``dsolve``; on Hypothesis-drawn spectra and
rotations, the engine's gradient flow from the aligned balanced start against ``m_i(t)`` at
``t_i`` and ``2t_i``; population Adam's half-steps equal across eigenvalues in the axis-aligned
case; and the stochastic trainer's half-steps, ∝ λ^-p with p ≤ 1/4 (the flow: p = 1).

Measured departure of stochastic from population Adam: minibatch noise moves ``B`` along its
rotations ``B → BR`` (an exact symmetry of the loss, expected gradient 0) by about ``lr`` per
step whatever the batch size — Adam normalizes the noise away — and there its per-coordinate
steps add up: from ``m₀ = 0.1``, ``lr = 1e-3`` the trainer is half-way at ~230–290 steps where
population Adam needs ~370, for batches of 4096 and 65 536 alike.
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
from lamproof.numeric.trainer import Trainer
from lamproof.systems import System, random_orthonormal

NAME = "D14"
TITLE = "Learning order and time: sigmoidal modes under gradient flow, and where Adam departs"
DEFAULT_EXAMPLES = 3

t, lam, d_o, m0, eps_ = sympy.symbols("t lambda d_o m_0 epsilon", positive=True)
a = sympy.Function("a")
m = sympy.Function("m")

#: The engine integrates the flow to ~1e-8 relative (solve_ivp's tolerance): 1e-6 absolute on a
#: captured fraction in [0, 1] leaves two orders of margin.
FLOW_ATOL = 1e-6
#: The trainer's half-steps, fitted as ∝ λ^-p over spectra with λ_max/λ_min ≥ 2: gradient flow has
#: p = 1, Adam p = 0; minibatch noise (which moves the modes along B's rotations unevenly) spreads
#: them by up to ~15 %, i.e. p ≈ 0.1 at a ratio of 4 — 1/4 leaves margin on both sides.
TRAINER_EXPONENT = 0.25
#: The trainer check: m₀ = 0.1, lr = 1e-3 (half capture after ~300 steps), batch 1024.
TRAINER_M0, TRAINER_LR, TRAINER_STEPS, TRAINER_BATCH = 0.1, 1e-3, 700, 1024


@dataclass(frozen=True)
class Results(fw.Derived):
    """What :func:`derive` returns: the SymPy steps and results, read-only."""

    a_ode: sympy.Basic
    m_ode: sympy.Basic
    solution: sympy.Expr
    residual: sympy.Expr
    general: sympy.Basic
    half_time: sympy.Expr
    time_to_reach: sympy.Expr
    kappa: sympy.Expr


@cache
def derive() -> Results:
    # The mode ODE: with B = Σ a_i u_i e_iᵀ, D = Bᵀ, ∂ℓ/∂B restricted to mode i is −(2/d_o) λ a (1 − a²).
    a_ode = sympy.Eq(a(t).diff(t), 2 * lam / d_o * a(t) * (1 - a(t) ** 2))
    # m = a²: dm/dt = 2a da/dt
    m_rhs = sympy.expand(2 * a(t) * a_ode.rhs).subs(a(t) ** 2, m(t)).subs(a(t) ** 4, m(t) ** 2)
    m_ode = sympy.Eq(m(t).diff(t), sympy.factor(m_rhs))
    kappa = 4 * lam / d_o
    solution = m0 * sympy.exp(kappa * t) / (1 - m0 + m0 * sympy.exp(kappa * t))
    residual = sympy.simplify(solution.diff(t) - m_ode.rhs.subs(m(t), solution))
    general = sympy.dsolve(m_ode, m(t))
    # solve for u = e^{κt} (a rational equation), then t = log(u)/κ: the real branch
    u = sympy.symbols("u", positive=True)
    in_u = solution.subs(sympy.exp(kappa * t), u)
    half = sympy.log(sympy.solve(sympy.Eq(in_u, sympy.Rational(1, 2)), u)[0]) / kappa
    reach = sympy.log(sympy.solve(sympy.Eq(in_u, 1 - eps_), u)[0]) / kappa
    return Results(
        a_ode=a_ode,
        m_ode=m_ode,
        solution=solution,
        residual=residual,
        general=general,
        half_time=half,
        time_to_reach=sympy.expand_log(reach, force=True),
        kappa=kappa,
    )


def latex() -> str:
    d = derive()
    steps = [
        "With $B = \\sum_i a_i u_i e_i^T$ and $D = B^T$ the error is $(BD - I)\\Delta$ and "
        "$\\partial \\ell/\\partial B = \\frac{2}{d_o}(BD - I) S_\\Delta D^T$ keeps both forms; mode $i$ obeys",
        fw.display(f"{fw.tex(d.a_ode.lhs)} &= {fw.tex(d.a_ode.rhs)}"),
        "and its captured fraction $m_i = u_i^T B D u_i = a_i^2$ the logistic equation",
        fw.display(f"{fw.tex(d.m_ode.lhs)} &= {fw.tex(d.m_ode.rhs)}"),
        f"SymPy's \\texttt{{dsolve}} gives ${fw.tex(d.general)}$; with $m(0) = m_0$,",
        fw.display(f"m(t) &= {fw.tex(d.solution)}"),
        f"(the residual of the ODE simplifies to ${fw.tex(d.residual)}$). Solving $m = 1/2$ and $m = 1 - \\epsilon$:",
        fw.display(f"t_{{1/2}} &= {fw.tex(d.half_time)}", f"t_{{1-\\epsilon}} &= {fw.tex(d.time_to_reach)}"),
        "Adam: its step $\\mathrm{lr}\\,\\hat m/(\\sqrt{\\hat v} + \\mathrm{eps})$ is unchanged when every gradient "
        "of a coordinate is multiplied by one constant (up to eps). With $u_i = e_i$ the gradient of mode $i$ is "
        "$\\lambda_i$ times a function of $a_i$ alone, so every mode follows the same $a(n)$.",
    ]
    return fw.section(
        NAME,
        TITLE,
        statement="Under gradient flow from a small balanced start, each eigen-direction of the change is learned "
        "along a sigmoid whose half-time is proportional to $(1/\\lambda_i)\\log(1/m_0)$; under Adam the "
        "time does not depend on $\\lambda_i$ when the eigenvectors are the coordinate axes.",
        assumptions=[
            "Identity FDM path, tied IDM (a linear autoencoder of $\\Delta = o' - o$), no action head; "
            "the trainer's loss $E\\|\\hat o' - o'\\|^2/d_o$.",
            "Gradient flow (or gradient descent with a small step); a balanced start aligned with the "
            "eigenvectors of $S_\\Delta$; distinct eigenvalues.",
            "Not covered: a learned FDM path (the matrix $A$ relaxes from PyTorch's initialization and "
            "couples to the modes) and Adam (its per-coordinate normalization).",
        ],
        steps=steps,
        result=f"$t_{{1/2}} = {fw.tex(d.half_time)}$ under gradient flow (steps: $t/\\mathrm{{lr}}$); under Adam with "
        "axis-aligned eigenvectors, one half-time for every $\\lambda_i$.",
        check="SymPy's dsolve against the logistic solution; the engine's gradient flow from the aligned balanced "
        "start against $m_i(t)$ at $t_{1/2}$ and $2t_{1/2}$ on Hypothesis-drawn spectra and rotations; "
        "population Adam's half-steps equal across eigenvalues (axis-aligned), and the stochastic trainer's "
        "nearly so: fitted as $\\propto \\lambda^{-p}$ over spectra with $\\lambda_{max}/\\lambda_{min} \\ge 2$, "
        "$p \\le 1/4$ where the flow has $p = 1$.",
    )


def _cases():
    return st.fixed_dictionaries(
        {
            "spectrum": st.lists(st.floats(0.3, 3.0), min_size=2, max_size=3).filter(
                lambda v: (
                    min(abs(x - y) for i, x in enumerate(v) for y in v[i + 1 :]) > 0.2
                    and max(v) >= 2.0 * min(v)
                )
            ),
            "m0": st.floats(1e-4, 1e-2),
            "seed": fw.generator_seeds(),
        }
    )


def _system(spectrum, U) -> System:
    """``o ~ N(0, I)``, ``o' = o + U Λ^{1/2} a``: ``S_Δ = U Λ Uᵀ``."""
    return System(U * np.sqrt(np.asarray(spectrum)))


def _aligned_start(U, m_0) -> dict:
    a_0 = np.sqrt(m_0)
    return {"B": a_0 * U, "C": -a_0 * U.T}  # tied: D = −C = a₀ Uᵀ


def _captured(params, U) -> np.ndarray:
    return np.einsum("ij,ij->j", U, params.B @ (params.D @ U))


def _half_steps(params_list, steps, U) -> list[int | None]:
    curves = np.array([_captured(p, U) for p in params_list])
    return [
        next((s for s, c in zip(steps, curves[:, i], strict=True) if c >= 0.5), None)
        for i in range(U.shape[1])
    ]


def _numeric_case(case, results, checker: fw.Checker) -> None:
    spectrum = sorted(case["spectrum"], reverse=True)
    n = len(spectrum)
    rng = np.random.default_rng(case["seed"])
    U = random_orthonormal(n, n, rng)
    spec = LAMSpec(n, fdm_obs_path="identity", idm="tied")
    context = f"case {case}"
    half = sympy.lambdify((lam, d_o, m0), results.half_time)
    value = sympy.lambdify((t, lam, d_o, m0), results.solution)
    # 1. gradient flow from the aligned balanced start, rotated eigenvectors
    system = _system(spectrum, U)
    times = sorted({float(half(l, n, case["m0"])) * k for l in spectrum for k in (1.0, 2.0)})
    lr = times[0] / 10  # step n ↔ t = n·lr: record exactly the times above
    records = [0] + [int(round(x / lr)) for x in times]
    records = sorted(set(records))
    flow = dyn.population_dynamics(
        system,
        spec,
        dyn.DynamicsSettings(
            "flow", lr=lr, steps=records[-1], record=records, init=_aligned_start(U, case["m0"])
        ),
    )
    for step, params in zip(flow.steps, flow.params, strict=True):
        captured = _captured(params, U)
        for i, l in enumerate(spectrum):
            checker.close(
                "gradient flow: m_i(t) is logistic",
                float(value(step * lr, l, n, case["m0"])),
                captured[i],
                atol=FLOW_ATOL,
                context=f"t = {step * lr:.4g}, λ = {l:.4g}, {context}",
            )
    # 2. Adam with axis-aligned eigenvectors: one half-time for every λ
    axes = np.eye(n)
    system = _system(spectrum, axes)
    adam_lr, steps = 1e-2, int(1.2 / 1e-2)
    records = list(range(steps + 1))
    settings = dyn.DynamicsSettings(
        "adam", lr=adam_lr, steps=steps, record=records, init=_aligned_start(axes, case["m0"])
    )
    adam = dyn.population_dynamics(system, spec, settings)
    halves = _half_steps(adam.params, records, axes)
    checker.holds(
        "Adam (axis-aligned): every direction is half learned at the same step",
        None not in halves and max(halves) - min(halves) <= 1,
        context=f"half-steps {halves} for λ = {spectrum} ({context})",
    )
    # 3. the stochastic trainer (PyTorch's Adam on minibatches), axis-aligned, from m₀ = 0.1: its
    # half-steps do not follow 1/λ either (they agree with each other, not with the flow's ratio).
    # They are not population Adam's: minibatch noise moves B along its rotations B → BR (an exact
    # symmetry of the loss, where the expected gradient is 0) by ~lr per step whatever the batch,
    # and there Adam's per-coordinate steps add up faster.
    settings = dyn.DynamicsSettings(
        "adam", lr=TRAINER_LR, steps=TRAINER_STEPS, record=[0], init=_aligned_start(axes, TRAINER_M0)
    )
    start = dyn.initial_parameters(system, spec, settings)
    trainer = Trainer(system, spec, seed=case["seed"] % 1000, batch_size=TRAINER_BATCH, lr=TRAINER_LR)
    trainer.p["idm"][...] = start.C
    trainer.p["fdm"][...] = start.B
    halves: list[int | None] = [None] * n
    for step in range(1, TRAINER_STEPS + 1):
        trainer.step()
        captured = _captured(trainer.params, axes)
        for i in range(n):
            if halves[i] is None and captured[i] >= 0.5:
                halves[i] = step
        if None not in halves:
            break
    ratio = max(spectrum) / min(spectrum)
    exponent = np.log(max(halves) / min(halves)) / np.log(ratio) if None not in halves else np.inf
    checker.holds(
        "stochastic Adam (axis-aligned): half-step ∝ λ^-p with p ≤ 1/4, not ∝ 1/λ",
        exponent <= TRAINER_EXPONENT,
        context=f"half-steps {halves} for λ = {spectrum}: p = {exponent:.3g} ({context})",
    )


def _symbolic_checks(results: Results, checker: fw.Checker) -> None:
    checker.holds(
        "the logistic solves the mode equation (symbolic)",
        results.residual == 0,
        context=str(results.residual),
    )
    general = results.general.rhs
    constants = sorted(general.free_symbols - {t, lam, d_o}, key=str)
    matches = sympy.solve(sympy.Eq(general.subs(t, 0), m0), constants[0]) if constants else []
    checker.holds(
        "dsolve's general solution is the logistic (symbolic)",
        bool(matches) and sympy.simplify(general.subs(constants[0], matches[0]) - results.solution) == 0,
        context=str(results.general),
    )


verify = fw.verifier(
    NAME,
    TITLE,
    derive,
    default_examples=DEFAULT_EXAMPLES,
    doc="Check D14's modes against gradient flow on the population objective and the stochastic trainer.",
    fixed=_symbolic_checks,
    numeric=[(_cases, _numeric_case, 1)],
)
