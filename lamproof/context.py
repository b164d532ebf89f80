"""What a LAM with a context window must explain: the innovation of ``o_{t+k}`` given its first input.

A LAM reads ``obs = [o_{t−T+1}; …; o_t]`` (``d_c = T·d_o``) and ``o_{t+k}``:

    z = C · obs + D o_{t+k},    ô_{t+k} = A · obs + B z,

without bias terms. Writing ``v = o_{t+k} − L_b · obs``, the loss splits as in the one-frame case
(D1): ``A`` absorbs the part predictable from ``obs`` and the latent keeps a top-``d_z``
eigenspace of ``S_v = E[v vᵀ]``.

- ``A`` learned: ``L_b = L = S_{o'c} S_cc⁺``, the best linear (bias-free) prediction of
  ``o_{t+k}`` from the context, and ``S_v = S_{o'o'} − S_{o'c} S_cc⁺ S_{co'}``;
- ``A = E`` (the identity path copies ``o_t``): ``L_b = E``, ``v = o_{t+k} − o_t``, whatever ``T``.

This is the operator of :mod:`lamproof.numeric.closed_form` (for every ``T``), and it is computed
there, once (:func:`lamproof.numeric.closed_form.moments`): on square-root factors, so that a
direction of tiny variance in the context is regressed out rather than cut by a pseudo-inverse's
threshold. As ``T → ∞`` (``k = 1``, zero means) ``S_v`` tends to the steady-state Kalman innovation
covariance ``H P Hᵀ + Σ_v`` (:meth:`lamproof.statespace.StateSpaceSystem.kalman_innovation`;
derivation D10).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lamproof._validation import as_choice
from lamproof.lam import FDM_OBS_PATHS
from lamproof.systems import Transition

__all__ = ["Innovation", "innovation"]


@dataclass(frozen=True, eq=False)
class Innovation:
    """``v = o_{t+k} − L_b · obs`` and its second moment ``S_v`` (the operator the latent compresses).

    ``prediction`` is ``L_b`` (``d_o × d_c``); ``map`` is ``[−L_b, I]``, ``v`` as a map of the
    LAM's inputs ``x = [obs; next_obs]``; ``operator`` is ``S_v = E[v vᵀ] = V Vᵀ`` with ``factor``
    ``V``, ``v`` in the transition's white source coordinates (:meth:`Transition.factor`).
    """

    fdm_obs_path: str
    prediction: np.ndarray
    map: np.ndarray
    operator: np.ndarray
    factor: np.ndarray = field(repr=False)

    def source_map(self, transition: Transition) -> np.ndarray:
        """``v`` as a dense map of the transition's stacked sources."""
        return self.map @ transition.stacked("obs", "next_obs")


def innovation(transition: Transition, fdm_obs_path: str = "learned") -> Innovation:
    """The innovation a LAM on ``transition`` must explain (module docstring); cached on the transition."""
    as_choice(fdm_obs_path, "fdm_obs_path", FDM_OBS_PATHS)
    return transition.memo(("innovation", fdm_obs_path), lambda: _innovation(transition, fdm_obs_path))


def _innovation(transition: Transition, fdm_obs_path: str) -> Innovation:
    from lamproof.numeric.closed_form import moments

    m = moments(transition)
    L = m.L if fdm_obs_path == "learned" else m.E
    V = m.innovation(L)
    operator = V @ V.T
    return Innovation(fdm_obs_path, L, np.hstack([-L, np.eye(m.d_o)]), (operator + operator.T) / 2, V)
