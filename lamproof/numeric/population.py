"""Population minimizer of the exact LAM objective: an independent route to the optimum.

This solver never uses the closed-form solution (docs/theory.md §2–§4, §8): it minimizes the exact
population objective by L-BFGS-B from several random starts, with analytic gradients. The
closed form is checked against it, so it must stay free of any result it is meant to verify.

Write ``x = [o; o']`` with second moment ``S = E[x xᵀ]`` and ``W = [C, D]`` (so ``z = W x``).
The reconstruction error is ``ô' − o' = R x`` with ``R = [A, −I] + B W``, hence

    reconstruction = tr(R S Rᵀ)                       ∂/∂R = 2 R S
    penalty        = s²‖B(C + D)‖²_F + s²‖A − I‖²_F (+ λ s²‖H(C + D)‖²_F with a head; C Sh with a window)
    action loss    = tr(S_aa) − 2 tr(H W S_xa) + tr(H W S Wᵀ Hᵀ)

and every evaluation is a handful of small matrix products on moments computed once.

With a context window ``o`` is the stack of ``T`` frames (``d_c = T·d_o``, the transition's
``frame_selector`` ``E`` and ``frame_shift`` ``Sh``): the identity path is ``A = E``, the tied IDM
``D = −C₀``, ``C = C₀ E`` (free ``C₀``, ``d_z × d_o``), and the penalty is
``s²‖B(C Sh + D)‖²_F + s²‖A Sh − I‖²_F``. One frame is ``E = Sh = I``.

Two facts about the landscape, found with this solver:

- it has spurious local minima (seen with an action head and a learned ``A``, about half of
  plain random starts on small generic systems), hence the screening of candidates per start;
- with a learned ``A``, a free IDM, no augmentation, ``λ > 0`` and actions correlated with ``o``
  (policy feedback ``K ≠ 0``) the infimum is NOT attained: one latent coordinate can carry ``o``
  for the action head and, scaled down, ``o'`` for an ever larger ``B`` whose ``o`` part ``A``
  cancels; the weights diverge while the objective creeps down. ``converged`` is then unreliable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.objective import (
    LAMParameters,
    ObjectiveValue,
    population_objective,
)
from lamproof.systems import Transition

#: L-BFGS-B settings: tight enough that independent starts agree to ~1e-9 relative.
GRADIENT_TOLERANCE = 1e-10
MAX_ITERATIONS = 50_000
#: Each start is the best of this many random draws after a short screening run (basin choice).
SCREEN_CANDIDATES = 8
SCREEN_ITERATIONS = 150
#: A start counts as converged when its relative gradient norm is below this.
CONVERGED_GRADIENT = 1e-6


@dataclass(frozen=True, eq=False)
class PopulationResult:
    """The best of several L-BFGS-B runs on the exact objective.

    ``totals`` holds the final objective of every start (their spread shows whether the starts
    found the same minimum); ``converged`` says whether the best start reached a stationary point.
    """

    params: LAMParameters
    objective: ObjectiveValue
    totals: list[float]
    converged: bool


class _Problem:
    """The objective and its gradient as a function of one flat parameter vector.

    Holds the moments (computed once), the layout of the free parameters for this spec, and a
    scale that makes the objective O(1), so that L-BFGS-B's absolute tolerances act as relative.
    """

    def __init__(self, transition: Transition, spec: LAMSpec):
        d_o, d_c = transition.d_o, transition.d_c
        if spec.d_z > d_o:
            raise InputError(f"d_z: must be in [1, d_o] = [1, {d_o}], got {spec.d_z}")
        self.d_o, self.d_c, self.d_z = d_o, d_c, spec.d_z
        self.windowed = d_c != d_o
        self.E = transition.frame_selector
        self.shift = transition.frame_shift
        self.learn_A = spec.fdm_obs_path == "learned"
        self.tied = spec.idm == "tied"
        self.s2 = spec.augmentation**2
        self.weight = spec.action_loss_weight
        self.has_head = self.weight > 0
        observed = transition.stacked("obs", "next_obs")
        self.S = transition.second_moment(observed)
        actions = transition.maps["action"]
        self.d_act = actions.shape[0]
        if self.has_head:
            self.S_ax = transition.second_moment(actions, observed)
            self.trace_S_aa = float(np.trace(transition.second_moment(actions)))
        # The loss of the trivial model ô' = o_t (A = E, B = 0): the natural unit of the objective.
        now = slice(d_c - d_o, d_c)
        trivial = np.trace(self.S[d_c:, d_c:]) - 2 * np.trace(self.S[now, d_c:]) + np.trace(self.S[now, now])
        scale = trivial + (self.weight * self.trace_S_aa if self.has_head else 0.0)
        self.scale = float(scale) if scale > 0 else 1.0
        # Layout: (name, shape, fan_in) of every optimized matrix, in the flat vector's order.
        d_z = self.d_z
        layout = []
        if self.learn_A:
            layout.append(("A", (d_o, d_c), d_c + d_z))
        layout.append(("B", (d_o, d_z), d_c + d_z))
        layout.append(("C", (d_z, d_o) if self.tied else (d_z, d_c), d_c + d_o))
        if not self.tied:
            layout.append(("D", (d_z, d_o), d_c + d_o))
        if self.has_head:
            layout.append(("H", (self.d_act, d_z), d_z))
        self.layout = layout
        self.size = sum(int(np.prod(shape)) for _, shape, _ in layout)
        self._setup_preconditioner()

    # -- packing -----------------------------------------------------------------------------
    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, shape, _ in self.layout:
            stop = start + shape[0] * shape[1]
            out[name] = theta[start:stop].reshape(shape)
            start = stop
        return out

    def random_start(self, rng: np.random.Generator) -> np.ndarray:
        """Gaussian entries of scale 1/sqrt(fan_in) in the preconditioned coordinates."""
        return np.concatenate(
            [rng.standard_normal(shape[0] * shape[1]) / np.sqrt(fan_in) for _, shape, fan_in in self.layout]
        )

    def parameters(self, theta: np.ndarray) -> LAMParameters:
        """The model's parameters from an (unpreconditioned) flat vector."""
        parts = {k: v.copy() for k, v in self.unpack(np.asarray(theta, dtype=np.float64)).items()}
        A = parts["A"] if self.learn_A else (self.E.copy() if self.windowed else np.eye(self.d_o))
        C = parts["C"]
        D = -C if self.tied else parts["D"]
        if self.tied and self.windowed:  # z = D(o' − E obs): C = −D E
            C = C @ self.E
        return LAMParameters(A=A, B=parts["B"], C=C, D=D, H=parts.get("H"))

    # -- preconditioning ---------------------------------------------------------------------
    def _setup_preconditioner(self) -> None:
        """Right factors ``T`` that whiten each layer's input: optimize ``P̃`` with ``P = P̃ T``.

        A linear change of variables (it moves no minimum), which makes L-BFGS-B fast on
        ill-conditioned systems. Inputs are whitened with their augmented second moment; a
        small ridge keeps the factor bounded where that moment is singular.
        """
        d_o, d_c, s2 = self.d_o, self.d_c, self.s2

        def inverse_root(M: np.ndarray) -> np.ndarray:
            values, vectors = np.linalg.eigh((M + M.T) / 2)
            ridge = 1e-3 * max(float(np.mean(values)), 1e-300)
            return (vectors / np.sqrt(np.clip(values, 0.0, None) + ridge)) @ vectors.T

        S = self.S
        factors = {}
        if not self.windowed:
            eye = np.eye(d_o)
            if self.learn_A:
                factors["A"] = inverse_root(S[:d_o, :d_o] + s2 * eye)
            if self.tied:
                difference = S[:d_o, :d_o] - S[:d_o, d_o:] - S[d_o:, :d_o] + S[d_o:, d_o:]
                factors["C"] = inverse_root(difference)
            else:
                shared = s2 * np.block([[eye, eye], [eye, eye]])
                factors["W"] = inverse_root(S + shared)
        else:  # the same whitening of each layer's (augmented) input, for a stack of frames
            shift = self.shift
            if self.learn_A:
                factors["A"] = inverse_root(S[:d_c, :d_c] + s2 * shift @ shift.T)
            if self.tied:
                change = np.hstack([-self.E, np.eye(d_o)])
                factors["C"] = inverse_root(change @ S @ change.T)
            else:
                both = np.vstack([shift, np.eye(d_o)])
                factors["W"] = inverse_root(S + s2 * both @ both.T)
        self.factors = factors

    def to_model(self, theta_tilde: np.ndarray) -> np.ndarray:
        """Preconditioned flat vector → model flat vector."""
        d_o = self.d_c  # the split of W = [C, D]
        tilde = self.unpack(theta_tilde)
        out = {name: value for name, value in tilde.items()}
        if "A" in self.factors:
            out["A"] = tilde["A"] @ self.factors["A"]
        if self.tied:
            out["C"] = tilde["C"] @ self.factors["C"]
        else:
            W = np.hstack([tilde["C"], tilde["D"]]) @ self.factors["W"]
            out["C"], out["D"] = W[:, :d_o], W[:, d_o:]
        return np.concatenate([out[name].ravel() for name, _, _ in self.layout])

    def gradient_to_tilde(self, gradient: np.ndarray) -> np.ndarray:
        """Chain rule for :meth:`to_model` (every factor is symmetric)."""
        d_o = self.d_c  # the split of W = [C, D]
        grads = self.unpack(gradient)
        out = dict(grads)
        if "A" in self.factors:
            out["A"] = grads["A"] @ self.factors["A"]
        if self.tied:
            out["C"] = grads["C"] @ self.factors["C"]
        else:
            W = np.hstack([grads["C"], grads["D"]]) @ self.factors["W"]
            out["C"], out["D"] = W[:, :d_o], W[:, d_o:]
        return np.concatenate([out[name].ravel() for name, _, _ in self.layout])

    # -- objective ---------------------------------------------------------------------------
    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The true (unscaled) objective and its gradient with respect to ``theta``.

        A context window multiplies by ``E`` and ``Sh`` where one frame has the identity; the
        one-frame path skips those products, so it computes exactly what it did before windows.
        """
        d_o, d_c, windowed = self.d_o, self.d_c, self.windowed
        E, shift = self.E, self.shift
        p = self.unpack(theta)
        A = p["A"] if self.learn_A else None
        B, C = p["B"], p["C"]
        D = -C if self.tied else p["D"]
        if self.tied and windowed:  # free C₀: D = −C₀, C = C₀ E
            C = C @ E
        W = np.hstack([C, D])
        S = self.S

        R = B @ W
        identity = np.eye(d_o)
        if A is None:
            R[:, d_c - d_o : d_c] += identity
        else:
            R[:, :d_c] += A
        R[:, d_c:] -= identity
        RS = R @ S
        value = float(np.sum(R * RS))
        grad_R = 2.0 * RS
        grad_W = B.T @ grad_R
        grad_B = grad_R @ W.T
        grad_A = grad_R[:, :d_c].copy() if A is not None else None

        if self.s2 > 0:
            if not self.tied:  # with C = −D E the term B(C Sh + D) vanishes identically (E Sh = I)
                U = (C @ shift if windowed else C) + D
                BU = B @ U
                value += self.s2 * float(np.sum(BU * BU))
                grad_B += 2.0 * self.s2 * BU @ U.T
                grad_U = 2.0 * self.s2 * B.T @ BU
                grad_W[:, :d_c] += grad_U @ shift.T if windowed else grad_U
                grad_W[:, d_c:] += grad_U
            if A is not None:
                A_minus_I = (A @ shift if windowed else A) - identity
                value += self.s2 * float(np.sum(A_minus_I * A_minus_I))
                grad_A += 2.0 * self.s2 * (A_minus_I @ shift.T if windowed else A_minus_I)

        grad_H = None
        if self.has_head:
            H = p["H"]
            HW = H @ W
            HWS = HW @ S
            action_loss = self.trace_S_aa - 2.0 * float(np.sum(HW * self.S_ax)) + float(np.sum(HW * HWS))
            value += self.weight * action_loss
            grad_HW = 2.0 * self.weight * (HWS - self.S_ax)
            grad_H = grad_HW @ W.T
            grad_W += H.T @ grad_HW
            if self.s2 > 0 and not self.tied:  # the head reads the augmented latent: λ s²‖H(C Sh + D)‖²
                U = (C @ shift if windowed else C) + D
                HU = H @ U
                value += self.weight * self.s2 * float(np.sum(HU * HU))
                grad_H += 2.0 * self.weight * self.s2 * HU @ U.T
                grad_U = 2.0 * self.weight * self.s2 * H.T @ HU
                grad_W[:, :d_c] += grad_U @ shift.T if windowed else grad_U
                grad_W[:, d_c:] += grad_U

        grads = {"B": grad_B}
        if A is not None:
            grads["A"] = grad_A
        if self.tied:
            grads["C"] = (grad_W[:, :d_c] @ E.T if windowed else grad_W[:, :d_c]) - grad_W[:, d_c:]
        else:
            grads["C"] = grad_W[:, :d_c]
            grads["D"] = grad_W[:, d_c:]
        if grad_H is not None:
            grads["H"] = grad_H
        gradient = np.concatenate([grads[name].ravel() for name, _, _ in self.layout])
        return value, gradient

    def scaled(self, theta_tilde: np.ndarray) -> tuple[float, np.ndarray]:
        """What L-BFGS-B sees: the objective of preconditioned parameters, divided by ``scale``."""
        value, gradient = self.value_and_gradient(self.to_model(theta_tilde))
        return value / self.scale, self.gradient_to_tilde(gradient) / self.scale


def objective_and_gradient(transition: Transition, spec: LAMSpec):
    """``(f, unpack, size)``: the exact objective of a flat vector, its decoder, its length.

    ``f(theta) -> (value, gradient)``; ``unpack(theta) -> LAMParameters``. Exposed for tests
    (finite differences) and for anyone who wants to run their own optimizer.
    """
    problem = _Problem(transition, spec)
    return problem.value_and_gradient, problem.parameters, problem.size


def minimize_population(
    transition: Transition,
    spec: LAMSpec,
    *,
    starts: int = 4,
    seed: int = 0,
    candidates: int = SCREEN_CANDIDATES,
) -> PopulationResult:
    """Minimize the exact population objective by L-BFGS-B from ``starts`` random starts.

    The objective has spurious local minima (seen with an action head and a learned ``A``), so
    each start is the best of ``candidates`` random draws after a short screening run, then
    polished to tight tolerance. Returns the best start. Independent of the closed form, so the
    two can check each other.
    """
    problem = _Problem(transition, spec)
    rng = np.random.default_rng(seed)
    best_theta, best_value, totals, best_converged = None, np.inf, [], False
    for _ in range(max(1, int(starts))):
        screened = [
            minimize(
                problem.scaled,
                problem.random_start(rng),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": SCREEN_ITERATIONS, "maxcor": 30},
            )
            for _ in range(max(1, int(candidates)))
        ]
        theta0 = min(screened, key=lambda run: run.fun).x
        result = minimize(
            problem.scaled,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": MAX_ITERATIONS,
                "maxfun": 2 * MAX_ITERATIONS,
                "gtol": GRADIENT_TOLERANCE,
                "ftol": 1e-15,
                "maxcor": 30,
            },
        )
        value, gradient = problem.scaled(result.x)
        totals.append(value * problem.scale)
        if value < best_value:
            best_value, best_theta = value, problem.to_model(result.x)
            # Gradient of the scaled objective, relative to the parameters' own size.
            size = max(1.0, float(np.linalg.norm(result.x)))
            best_converged = bool(np.linalg.norm(gradient) <= CONVERGED_GRADIENT * size)
    params = problem.parameters(best_theta)
    return PopulationResult(
        params=params,
        objective=population_objective(params, transition, spec),
        totals=totals,
        converged=best_converged,
    )
