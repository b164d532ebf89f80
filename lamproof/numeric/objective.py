"""The LAM's parameters and its exact population objective.

Every solver (closed form, population minimizer, stochastic trainer) returns
:class:`LAMParameters`, and :func:`population_objective` scores any of them exactly from the
system's moments, so solvers are compared on one footing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamproof.lam import LAMSpec
from lamproof.systems import Transition

#: The variables a LAM sees, stacked: x = [o; o'].
OBSERVED = ("obs", "next_obs")


@dataclass(frozen=True, eq=False)
class LAMParameters:
    """``z = C o + D o'``, ``ô' = A o + B z``, ``â = H z`` (``H`` is ``None`` without an action head)."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    H: np.ndarray | None = None

    @property
    def obs_map(self) -> np.ndarray:
        """``M₁ = A + B C``: the prediction's coefficient on ``o``."""
        return self.A + self.B @ self.C

    @property
    def next_obs_map(self) -> np.ndarray:
        """``M₂ = B D``: the prediction's coefficient on ``o'`` (rank ≤ d_z)."""
        return self.B @ self.D

    @property
    def latent_map(self) -> np.ndarray:
        """``[C, D]``: the latent as a map of ``[o; o']``."""
        return np.hstack([self.C, self.D])

    @property
    def predicted_change_map(self) -> np.ndarray:
        """``[M₁ − I, M₂]``: the predicted change ``ô' − o`` as a map of ``[o; o']``."""
        return np.hstack([self.obs_map - np.eye(self.A.shape[0]), self.next_obs_map])

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"A": self.A, "B": self.B, "C": self.C, "D": self.D}
        if self.H is not None:
            out["H"] = self.H
        return out


@dataclass(frozen=True)
class ObjectiveValue:
    """The parts of the population objective (sums over dimensions, expectations exact)."""

    reconstruction: float  # E‖ô' − o'‖² on un-augmented inputs
    augmentation_penalty: float  # s²‖B(C + D)‖²_F + s²‖A − I‖²_F (+ λ s²‖H(C + D)‖²_F with a head)
    action_loss: float  # E‖a − H z‖² (0 without a head)
    total: float  # reconstruction + penalty + λ·action_loss


def population_objective(params: LAMParameters, transition: Transition, spec: LAMSpec) -> ObjectiveValue:
    """The exact objective of ``params`` on ``transition`` (math.md §2, §5, §6)."""
    d_o = params.A.shape[0]
    S_xx = transition.second_moment(OBSERVED)  # x = [o; o']
    error_map = np.hstack([params.obs_map, params.next_obs_map - np.eye(d_o)])  # ô' − o' = error_map · x
    reconstruction = float(np.sum((error_map @ S_xx) * error_map))
    s2 = spec.augmentation**2
    penalty = s2 * float(np.sum((params.B @ (params.C + params.D)) ** 2) + np.sum((params.A - np.eye(d_o)) ** 2))
    action_loss = 0.0
    if params.H is not None:
        # The head reads the latent of the augmented inputs, z + (C + D)κ₁: E‖a − Hz‖² gains s²‖H(C + D)‖².
        penalty += spec.action_loss_weight * s2 * float(np.sum((params.H @ (params.C + params.D)) ** 2))
        # E‖a − H W x‖² with W = [C, D]
        head = params.H @ params.latent_map
        S_ax = transition.second_moment("action", OBSERVED)
        S_aa = transition.second_moment("action")
        action_loss = float(np.trace(S_aa) - 2 * np.sum(head * S_ax) + np.sum((head @ S_xx) * head))
    total = reconstruction + penalty + spec.action_loss_weight * action_loss
    return ObjectiveValue(reconstruction, penalty, action_loss, total)
