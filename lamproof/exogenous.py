"""Exogenous state in a LAM's innovation: loading, consistency, and when actions come first.

Every quantity is a function of a window transition (:class:`lamproof.statespace.WindowTransition`)
and of what a LAM keeps, so that a solver can attach ranges over its optimal family. The
innovation ``v`` the latent compresses is that of :func:`lamproof.context.innovation` (``A``
learned: ``v = o_{t+k} − L · obs``; ``A = E``: ``v = o_{t+k} − o_t``). Because the window's sources
are independent, ``S_v`` splits into what each source contributes
(:meth:`lamproof.systems.Transition.cov_from`):

- ``S_act``: the horizon's exploration ``e_t … e_{t+k−1}`` (the controllable change);
- ``S_exo``: the horizon's exogenous process noise ``w_{x,t} … w_{x,t+k−1}`` (the exogenous
  innovation ``ξ = x_{t+k} − E[x_{t+k} | x_t]`` and whatever it drives).

=====================  ==========================================================================
``exogenous_loading``  ``tr(P S_exo) / tr(P S_v)`` for the projector ``P`` on the captured change
                       directions: the fraction of the captured variance that the exogenous
                       innovation contributes. With ``A = E`` the drift ``(F_xxᵏ − I) x_t`` of the
                       exogenous state is in ``v`` too but is not an innovation and is not counted.
``latent_consistency`` ``tr E[Var(z | a)] / tr Var(z)`` for ``z = W x`` (``x = [obs; next_obs]``) and
                       the horizon's actions ``a``, with the linear (Gaussian) conditional variance
                       ``Var(z) − Cov(z, a) Var(a)⁺ Cov(a, z)``: 0 when the latent is a function of
                       the actions, 1 when it carries nothing of them.
``action_first``       the controllable directions ``range S_act = range U_a`` are the top
                       ``r = rank S_act`` eigenspace of ``S_v`` (or lie in the top ``d_z``); margin
                       ``λ_min(U_aᵀ S_v U_a) − λ_{d−r+1}(U_⊥ᵀ S_v U_⊥)`` (``U_⊥`` spans the rest):
                       the weakest action direction against the best direction competing for
                       the latent. When ``range U_a`` is invariant under ``S_v`` (actions share
                       no direction with the rest of ``v``) the condition holds iff the margin is
                       positive (scalar example: ``g²σ_a² − σ_η²`` for ``A`` learned,
                       ``g²σ_a² − 2σ_η²/(1+e)`` for ``A = I``; derivation D11).
``action_first_horizon``  the smallest horizon ``k*`` at which actions come first.
=====================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamproof._validation import as_int
from lamproof.conditions import CONTAINMENT_TOL, Condition
from lamproof.context import innovation
from lamproof.errors import InputError
from lamproof.lam import MAX_HORIZON
from lamproof.numeric.linalg import pinv_psd, scale_of, top_eigenspace_of
from lamproof.numeric.tolerances import PSD_RANK_RTOL
from lamproof.systems import Transition

__all__ = ["LoadingRange", "HorizonResult", "action_operator", "exogenous_operator", "exogenous_loading",
           "exogenous_loading_range", "latent_consistency", "action_first", "action_first_horizon"]


def _columns(transition: Transition, name: str) -> np.ndarray:
    columns = getattr(transition, f"{name}_columns", None)
    if name == "exploration" and columns is None:  # a one-frame Transition: its exploration blocks
        return transition.source_columns(transition.blocks_of("exploration"))
    if columns is None or (name == "exogenous" and "exogenous" not in transition.variables):
        raise InputError("transition: no exogenous coordinates are declared (state_space.exogenous)")
    return columns


def action_operator(transition: Transition, fdm_obs_path: str = "learned") -> np.ndarray:
    """``S_act``: the part of ``S_v`` that the horizon's exploration contributes."""
    inn = innovation(transition, fdm_obs_path)
    return transition.cov_from(inn.source_map(transition), _columns(transition, "exploration"))


def exogenous_operator(transition: Transition, fdm_obs_path: str = "learned") -> np.ndarray:
    """``S_exo``: the part of ``S_v`` that the horizon's exogenous process noise contributes."""
    inn = innovation(transition, fdm_obs_path)
    return transition.cov_from(inn.source_map(transition), _columns(transition, "exogenous"))


def exogenous_loading(transition: Transition, captured: np.ndarray, fdm_obs_path: str = "learned") -> float | None:
    """``tr(P S_exo) / tr(P S_v)`` for ``P`` the projector on ``range(captured)`` (frame space).

    ``None`` when the captured directions carry no variance.
    """
    captured = np.asarray(captured, dtype=np.float64)
    if captured.ndim != 2 or captured.shape[0] != transition.d_o:
        raise InputError(f"captured: expected a {transition.d_o} x p basis of frame directions, "
                         f"got shape {captured.shape}")
    q, _ = np.linalg.qr(captured) if captured.shape[1] else (captured, None)
    S_v = innovation(transition, fdm_obs_path).operator
    total = float(np.sum((q.T @ S_v) * q.T))
    if total <= PSD_RANK_RTOL * scale_of(np.diag(S_v)):
        return None
    return float(np.sum((q.T @ exogenous_operator(transition, fdm_obs_path)) * q.T)) / total


@dataclass(frozen=True)
class LoadingRange:
    """The exogenous loading over the optimal family of the plain LAM (no action head)."""

    value: float | None  # the canonical captured space (leading eigenvectors)
    min: float | None
    max: float | None
    identified: bool | None
    bounds: str  # "exact" | "undefined"

    def as_dict(self) -> dict:
        return {"value": self.value, "min": self.min, "max": self.max, "identified": self.identified,
                "bounds": self.bounds}


#: Loading values closer than this (a fraction) are one point of the range.
LOADING_ATOL = 1e-9


def exogenous_loading_range(transition: Transition, d_z: int, fdm_obs_path: str = "learned") -> LoadingRange:
    """The loading of every top-``d_z`` eigenspace of ``S_v``: exact ``[min, max]`` over eigenvalue ties.

    Inside a tie ``S_v`` is ``λ I``, so ``tr(P S_v)`` is the same for every choice and the
    numerator is linear in the tie's projector: its extremes are the fixed part plus the top /
    bottom ``tie_dim`` eigenvalues of ``Uᵀ S_exo U`` on the tied eigenspace ``U`` (Ky Fan).
    Valid for the LAM whose captured change is a top eigenspace of ``S_v`` (no action head;
    augmentation only where it keeps the clean member).
    """
    d_z = as_int(d_z, "d_z", minimum=1, maximum=transition.d_o)
    S_v = innovation(transition, fdm_obs_path).operator
    space = top_eigenspace_of(S_v, d_z)
    total = float(np.sum(space.eigenvalues[: space.rank]))
    if space.rank == 0 or total <= PSD_RANK_RTOL * scale_of(space.eigenvalues):
        return LoadingRange(None, None, None, None, "undefined")
    S_exo = exogenous_operator(transition, fdm_obs_path)
    fixed = float(np.trace(space.fixed.T @ S_exo @ space.fixed))
    value = float(np.trace(space.captured.T @ S_exo @ space.captured)) / total
    if not space.tied:
        return LoadingRange(value, value, value, True, "exact")
    tie_values = np.linalg.eigvalsh(space.tie.T @ S_exo @ space.tie)[::-1]
    low = (fixed + float(np.sum(tie_values[::-1][: space.tie_dim]))) / total
    high = (fixed + float(np.sum(tie_values[: space.tie_dim]))) / total
    return LoadingRange(value, low, high, high - low <= LOADING_ATOL, "exact")


def latent_consistency(transition: Transition, features: np.ndarray) -> float | None:
    """``tr E[Var(z | a)] / tr Var(z)`` for ``z = features · [obs; next_obs]`` (module docstring)."""
    W = np.atleast_2d(np.asarray(features, dtype=np.float64))
    width = transition.d_c + transition.d_o
    if W.shape[1] != width:
        raise InputError(f"features: expected {width} columns ([obs; next_obs]), got shape {W.shape}")
    X = transition.stacked("obs", "next_obs")
    z_map = W @ X
    cov_z = transition.cov(z_map)
    total = float(np.trace(cov_z))
    if total <= PSD_RANK_RTOL * scale_of(np.diag(transition.cov(X))) * max(1.0, float(np.sum(W * W))):
        return None
    cov_za = transition.cov(z_map, "action")
    explained = float(np.sum((cov_za @ pinv_psd(transition.cov("action"))) * cov_za))
    return max(total - explained, 0.0) / total


def action_first(transition: Transition, fdm_obs_path: str = "learned", d_z: int | None = None) -> Condition:
    """Whether the controllable directions come first in ``S_v`` (module docstring), with a margin.

    ``d_z = None``: first means they *are* the top ``r = rank S_act`` eigenspace; an integer
    ``d_z ≥ r``: that they lie in the top ``d_z``. ``holds`` is ``None`` when an eigenvalue tie at
    the boundary lets some optimal members keep them and others not.
    """
    inn = innovation(transition, fdm_obs_path)
    S_v = inn.operator
    S_act = action_operator(transition, fdm_obs_path)
    values, vectors = np.linalg.eigh((S_act + S_act.T) / 2)
    keep = values > PSD_RANK_RTOL * scale_of(np.diag(S_v))
    U_a = vectors[:, keep]
    r = U_a.shape[1]
    if r == 0:
        return Condition(False, None, "the actions leave no trace in the innovation (S_act = 0)")
    d = r if d_z is None else as_int(d_z, "d_z", minimum=1, maximum=transition.d_o)
    if d < r:
        return Condition(False, float(d - r), f"d_z={d} < {r} controllable directions in the innovation")
    U_rest = vectors[:, ~keep]
    rest = np.clip(np.linalg.eigvalsh(U_rest.T @ S_v @ U_rest)[::-1], 0.0, None)
    competitor = float(rest[d - r]) if d - r < len(rest) else 0.0
    weakest = float(np.min(np.linalg.eigvalsh(U_a.T @ S_v @ U_a)))
    margin = weakest - competitor
    space = top_eigenspace_of(S_v, d)

    def outside(basis: np.ndarray) -> float:
        return float(np.linalg.norm(U_a - basis @ (basis.T @ U_a), 2))

    reach = np.hstack([space.fixed, space.tie]) if space.tied else space.captured
    where = f"the top {d}" if d_z is not None else "the leading eigenspace"
    if outside(space.captured) <= CONTAINMENT_TOL and (not space.tied or outside(space.fixed) <= CONTAINMENT_TOL):
        return Condition(True, margin, f"the {r} controllable direction(s) span {where} of S_v "
                         f"(weakest {weakest:.4g} vs next {competitor:.4g})")
    if space.tied and outside(reach) <= CONTAINMENT_TOL:
        return Condition(None, margin, f"an eigenvalue tie at {competitor:.4g}: some optimal members keep the "
                         "controllable directions, others do not")
    return Condition(False, margin, f"the controllable directions are not in {where} of S_v "
                     f"(weakest {weakest:.4g} vs next {competitor:.4g})")


@dataclass(frozen=True)
class HorizonResult:
    """The smallest horizon at which actions come first (``None``: not up to ``max_horizon``)."""

    horizon: int | None
    margins: tuple[float | None, ...]  # the action-first margin at k = 1, 2, …

    def as_dict(self) -> dict:
        return {"horizon": self.horizon, "margins": list(self.margins)}


def action_first_horizon(system, fdm_obs_path: str = "learned", *, context: int = 1, d_z: int | None = None,
                         max_horizon: int = 32) -> HorizonResult:
    """``k*``: the smallest ``k ≤ max_horizon`` at which :func:`action_first` holds for ``system``.

    ``system`` is anything with ``transition(horizon, context)`` (a System or a StateSpaceSystem).
    """
    max_horizon = as_int(max_horizon, "max_horizon", minimum=1, maximum=MAX_HORIZON)
    margins = []
    for k in range(1, max_horizon + 1):
        condition = action_first(system.transition(k, context), fdm_obs_path, d_z)
        margins.append(condition.margin)
        if condition.holds:
            return HorizonResult(k, tuple(margins))
    return HorizonResult(None, tuple(margins))
