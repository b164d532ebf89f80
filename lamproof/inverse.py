"""Multi-step inverse models: which observation directions an action-predicting encoder keeps.

For a horizon ``k`` the linear inverse model is the best affine prediction of the first action
from the window,

    E[a_t | obs, o_{t+k}] = Λ [obs; o_{t+k}] + c,    Λ = Cov(a_t, y) Cov(y)⁺,  y = [obs; o_{t+k}],

with ``obs = o_t`` (or the context ``[o_{t−T+1}; …; o_t]``). An encoder ``φ(o) = Φ o`` shared by
all frames supports it iff every frame's block of ``Λ`` reads only ``range Φᵀ``: the model's
*encoder directions* are the sum of the row spaces of those blocks (a subspace of frame space),
and over horizons ``k ≤ K`` their sum (AC-State, Lamb et al., arXiv 2207.08229).

Linear forms of the literature's claims (derivation D12; fully observed, ``K = 0``):

- Efroni et al. (arXiv 2110.08847): with ``W_k = Σ_{j<k} Fʲ(GΣ_eGᵀ + Σ_w)Fʲᵀ`` the model is
  ``Σ_e Gᵀ F^{k−1}ᵀ W_k⁻¹ (s_{t+k} − Fᵏ s_t)``; exogenous coordinates that do not drive the rest
  and that the policy does not read get a zero coefficient, at every ``k``.
- AC-State: the union of the directions over ``k ≤ K`` is ``𝒯 = ⟨Fᵀ | 𝒞⟩``, the smallest
  ``Fᵀ``-invariant subspace that contains the controllable subspace ``𝒞`` (the controllable
  part plus what couples into it) — when the controllable block's dynamics are invertible.
- Levine, Stone, Zhang (arXiv 2403.11940): with a singular controllable block (``F_cc = 0``)
  the actions' effect dies after one step, ``E_k = 0`` for ``k ≥ 2``, and the union misses what
  couples into ``𝒞`` through more than one step; the forward-invariant closure ``⟨Fᵀ | ∪ E_k⟩``
  repairs it.

Directions are compared as subspaces of the state through ``Hᵀ`` (a frame functional ``r`` reads
the state functional ``Hᵀ r``), so the closure under the dynamics is defined for hidden state too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamproof import control
from lamproof._validation import MAX_HORIZON, as_int
from lamproof.numeric.linalg import orthonormal_basis, pinv_psd
from lamproof.numeric.tolerances import FACTOR_RANK_RTOL
from lamproof.systems import Transition, psd_sqrt

__all__ = [
    "SUBSPACE_TOL",
    "InverseModel",
    "inverse_model",
    "sampled_inverse_model",
    "encoder_directions",
    "union_of_directions",
    "forward_closure",
    "controllable_closure",
    "same_subspace",
    "contains",
]

#: Two orthonormal bases span the same subspace when the sine of their largest principal angle is
#: below this. Bases come from SVDs of exact window moments (error ~1e-14 relative) with the rank
#: rule of :data:`lamproof.numeric.tolerances.FACTOR_RANK_RTOL` (singular values ≥ 1e-5 relative count), so
#: a genuine difference shows up at 1e-5 or more and round-off stays below 1e-9.
SUBSPACE_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class InverseModel:
    """``E[a_t | obs, o_{t+k}] = coefficients · [obs; o_{t+k}] + intercept`` and its residual covariance."""

    horizon: int
    context: int
    d_o: int
    coefficients: np.ndarray  # d_a × (d_c + d_o)
    intercept: np.ndarray
    residual_cov: np.ndarray

    @property
    def frame_blocks(self) -> list[np.ndarray]:
        """The ``d_a × d_o`` coefficient of each frame: ``o_{t−T+1}, …, o_t``, then ``o_{t+k}``."""
        d_o = self.d_o
        return [self.coefficients[:, i : i + d_o] for i in range(0, self.coefficients.shape[1], d_o)]

    @property
    def directions(self) -> np.ndarray:
        """Orthonormal basis (columns, frame space) of the sum of the frame blocks' row spaces."""
        return orthonormal_basis(np.vstack(self.frame_blocks).T)


def inverse_model(transition: Transition) -> InverseModel:
    """The exact linear inverse model of a window (module docstring), from its moments."""
    d_a = transition.maps["action"].shape[0] // transition.horizon
    first = transition.maps["action"][:d_a]
    y = transition.stacked("obs", "next_obs")
    cov_yy = transition.cov(y)
    cov_ay = transition.cov(first, y)
    coefficients = cov_ay @ pinv_psd(cov_yy)
    intercept = transition.mean(first) - coefficients @ transition.mean(y)
    residual = transition.cov(first) - coefficients @ cov_ay.T
    return InverseModel(
        transition.horizon,
        transition.context,
        transition.d_o,
        coefficients,
        intercept,
        (residual + residual.T) / 2,
    )


def sampled_inverse_model(transition: Transition, samples: int, rng: np.random.Generator) -> InverseModel:
    """The inverse model by least squares on ``samples`` draws of the window (an independent route)."""
    samples = as_int(samples, "samples", minimum=2)
    draws = transition.sample(samples, rng, ("obs", "next_obs", "action"))
    d_a = draws["action"].shape[1] // transition.horizon
    design = np.hstack([draws["obs"], draws["next_obs"], np.ones((samples, 1))])
    target = draws["action"][:, :d_a]
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ solution
    return InverseModel(
        transition.horizon,
        transition.context,
        transition.d_o,
        solution[:-1].T,
        solution[-1],
        residual.T @ residual / samples,
    )


def _state_space(system):
    from lamproof.statespace import StateSpaceSystem

    if isinstance(system, StateSpaceSystem):
        return system
    return StateSpaceSystem.from_system(system)


def encoder_directions(system, horizon: int, context: int = 1) -> np.ndarray:
    """The horizon-``k`` inverse model's encoder directions as state functionals (columns ``Hᵀ r``)."""
    system = _state_space(system)
    model = inverse_model(system.transition(horizon, context))
    return orthonormal_basis(system.observation.T @ model.directions)


def union_of_directions(system, max_horizon: int, context: int = 1) -> np.ndarray:
    """Orthonormal basis of ``Σ_{k ≤ K} E_k`` (state functionals), ``K = max_horizon``."""
    K = as_int(max_horizon, "max_horizon", minimum=1, maximum=MAX_HORIZON)
    system = _state_space(system)
    return orthonormal_basis(np.hstack([encoder_directions(system, k, context) for k in range(1, K + 1)]))


def forward_closure(directions: np.ndarray, dynamics: np.ndarray) -> np.ndarray:
    """``⟨Fᵀ | span(directions)⟩``: the smallest ``Fᵀ``-invariant subspace containing them (Krylov).

    Invariance under ``Fᵀ`` of a space of state functionals is what a latent forward model
    needs: ``Φ s' = Φ F s + …`` is a function of ``Φ s`` iff ``range Φᵀ`` is ``Fᵀ``-invariant.
    """
    F = np.asarray(dynamics, dtype=np.float64)
    basis = orthonormal_basis(np.asarray(directions, dtype=np.float64))
    if basis.shape[1] == 0:
        return basis
    return control.controllable_subspace(F.T, basis, steps=F.shape[0], tol=FACTOR_RANK_RTOL)


def controllable_closure(system) -> np.ndarray:
    """``𝒯 = ⟨Fᵀ | 𝒞⟩`` for the controllable subspace ``𝒞`` of ``(F, GΣ_e^{1/2})``: AC-State's target."""
    system = _state_space(system)
    F = system.dynamics
    B = system.action_matrix @ psd_sqrt(system.exploration_cov)
    if not np.any(B):
        return np.zeros((system.n, 0))
    return forward_closure(control.controllable_subspace(F, B, tol=FACTOR_RANK_RTOL), F)


def _principal_sine(a: np.ndarray, b: np.ndarray) -> float:
    """Largest sine of the principal angles from ``range a`` into ``range b`` (orthonormal columns)."""
    if a.shape[1] == 0:
        return 0.0
    if b.shape[1] == 0:
        return 1.0
    return float(np.linalg.norm(a - b @ (b.T @ a), 2))


def contains(big: np.ndarray, small: np.ndarray) -> bool:
    """Whether ``range small ⊆ range big`` (orthonormal bases; :data:`SUBSPACE_TOL`)."""
    return _principal_sine(small, big) <= SUBSPACE_TOL


def same_subspace(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two orthonormal bases span the same subspace (:data:`SUBSPACE_TOL`)."""
    if a.shape[1] != b.shape[1]:
        return False
    return contains(a, b) and contains(b, a)
