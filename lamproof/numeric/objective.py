"""The LAM's parameters and its exact population objective.

Every solver (closed form, population minimizer, stochastic trainer) returns
:class:`LAMParameters`, and :func:`population_objective` scores any of them exactly from the
system's moments, so solvers are compared on one footing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lamproof.lam import LAMSpec
from lamproof.systems import Transition

#: The variables a LAM sees, stacked: x = [o; o'] (with a context window, x = [obs; o_{t+k}]).
OBSERVED = ("obs", "next_obs")


def frame_selector(d_o: int, d_c: int) -> np.ndarray:
    """``E = [0 … 0 I]`` (``d_o × d_c``): the current frame, the last of the LAM's first input."""
    return np.hstack([np.zeros((d_o, d_c - d_o)), np.eye(d_o)])


@dataclass(frozen=True, eq=False)
class LAMParameters:
    """``z = C o + D o'``, ``ô' = A o + B z``, ``â = H z`` (``H`` is ``None`` without an action head).

    With a context window ``o`` is the stack of ``T`` frames: ``A`` is ``d_o × d_c`` and ``C``
    is ``d_z × d_c``. ``E`` (``d_o × d_c``, ``o_t = E o``) says where the current frame sits in
    ``o``; ``None`` means the transitions' convention, the last frame (:func:`frame_selector`,
    the identity for one frame). It is only read, never learned.
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    H: np.ndarray | None = None
    E: np.ndarray | None = field(default=None, repr=False)

    @property
    def selector(self) -> np.ndarray:
        """``E`` with ``o_t = E o`` (given, or the last frame of ``o``)."""
        return frame_selector(*self.A.shape) if self.E is None else self.E

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
        """``[M₁ − E, M₂]``: the predicted change ``ô' − o_t`` as a map of ``[o; o']`` (``E = I`` for one frame)."""
        return np.hstack([self.obs_map - self.selector, self.next_obs_map])

    @property
    def predicted_change_ingredients(self) -> np.ndarray:
        """``[|A| + |B||C| + |E|, |B||D|]``: the size of the terms each entry of
        :attr:`predicted_change_map` sums, so that an entry that cancels to round-off is seen as such."""
        B = np.abs(self.B)
        return np.hstack([np.abs(self.A) + B @ np.abs(self.C) + np.abs(self.selector), B @ np.abs(self.D)])

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"A": self.A, "B": self.B, "C": self.C, "D": self.D}
        if self.H is not None:
            out["H"] = self.H
        return out


@dataclass(frozen=True)
class ObjectiveValue:
    """The parts of the population objective (sums over dimensions, expectations exact)."""

    reconstruction: float  # E‖ô' − o'‖² on un-augmented inputs
    augmentation_penalty: float  # s²‖B(C S + D)‖²_F + s²‖A S − I‖²_F (+ λ s²‖H(C S + D)‖²_F with a head)
    action_loss: float  # E‖a − H z‖² (0 without a head)
    total: float  # reconstruction + penalty + λ·action_loss


def population_objective(params: LAMParameters, transition: Transition, spec: LAMSpec) -> ObjectiveValue:
    """The exact objective of ``params`` on ``transition`` (docs/theory.md §1.2, §4, §8).

    With a context window the augmentation penalty reads the frame shift ``S`` of the transition:
    every frame and ``o'`` move with one ``κ₁``, every frame with one ``κ₂``.
    """
    d_o = params.A.shape[0]
    S_xx = transition.second_moment(OBSERVED)  # x = [o; o']
    error_map = np.hstack([params.obs_map, params.next_obs_map - np.eye(d_o)])  # ô' − o' = error_map · x
    reconstruction = float(np.sum((error_map @ S_xx) * error_map))
    s2 = spec.augmentation**2
    if params.A.shape[1] == d_o:  # one frame: S = I
        penalty = s2 * float(
            np.sum((params.B @ (params.C + params.D)) ** 2) + np.sum((params.A - np.eye(d_o)) ** 2)
        )
    else:
        shift = transition.frame_shift
        penalty = s2 * float(
            np.sum((params.B @ (params.C @ shift + params.D)) ** 2)
            + np.sum((params.A @ shift - np.eye(d_o)) ** 2)
        )
    action_loss = 0.0
    if params.H is not None:
        # The head reads the latent of the augmented inputs, z + (C S + D)κ₁: E‖a − Hz‖² gains s²‖H(C S + D)‖².
        shifted = params.C if params.A.shape[1] == d_o else params.C @ transition.frame_shift
        penalty += spec.action_loss_weight * s2 * float(np.sum((params.H @ (shifted + params.D)) ** 2))
        # E‖a − H W x‖² with W = [C, D]
        head = params.H @ params.latent_map
        S_ax = transition.second_moment("action", OBSERVED)
        S_aa = transition.second_moment("action")
        action_loss = float(np.trace(S_aa) - 2 * np.sum(head * S_ax) + np.sum((head @ S_xx) * head))
    total = reconstruction + penalty + spec.action_loss_weight * action_loss
    return ObjectiveValue(reconstruction, penalty, action_loss, total)
