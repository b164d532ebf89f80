"""The exact optimum of the linear LAM (math.md R1–R4), and a description of the whole optimal family.

Write ``v = o' − L_b o`` for what the latent must explain: ``L_b = L = S_{o'o} S_oo⁺`` (the best
linear prediction of ``o'`` from ``o``) when the FDM learns ``A``, ``L_b = I`` when ``A = I``.
Because ``E[v oᵀ] = 0`` for ``L_b = L``, the loss splits into a part that ``A`` zeroes and
``tr((M₂ − I) S_v (M₂ − I)ᵀ)``, so the optimum is ``M₂ = P``, the projector on a top-``d_z``
eigenspace of ``S_v`` (Eckart–Young), and the minimal loss is the eigenvalue tail.
With ``A = I`` the same argument runs with ``v = Δ = o' − o``.

An auxiliary action loss turns the problem into reduced-rank regression of ``[r; √λ a]`` on
``r`` (exact when ``E[a oᵀ] = 0``); augmentation adds a penalty that is zero on the clean member
``C = −D, A = I`` (exact when that member is optimal without it). Everything else falls back to
the population minimizer of :mod:`lamproof.numeric.population`, and the solution says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.linalg import (
    RANK_RTOL,
    TopEigenspace,
    orthonormal_basis,
    pinv_psd,
    scale_of,
    top_eigenspace,
)
from lamproof.numeric.objective import OBSERVED, LAMParameters, ObjectiveValue
from lamproof.systems import System, Transition

#: A mean-square residual such as ``E‖(L − I) o‖²`` counts as zero below ``CONDITION_RTOL`` times
#: the scale of the moments. The conditions that select a closed form hold exactly (round-off
#: ~1e-30 relative) or fail by a visible amount; 1e-12 only treats effects below 1e-6 in
#: root-mean-square as absent.
CONDITION_RTOL = 1e-12


class NoClosedForm(Exception):
    """This system and spec have no closed-form optimum here; the message says why."""


@dataclass(frozen=True)
class FeatureFamily:
    """A representation's features over the optimal family, as maps of ``[o; o']``.

    Every member's features span ``fixed`` plus a subspace of dimension ``k`` in
    ``[k_min, k_max]`` of the span of ``free`` (of ``free_for_min`` for the smallest ``k``).
    ``bounds`` says what a range computed from this description is: ``"exact"`` (the infimum
    and supremum over the closure of the family), ``"outer"`` (contains the family's range),
    or ``"sampled"`` (no such description: the range is that of sampled members).
    """

    fixed: np.ndarray
    free: np.ndarray | None = None
    k_min: int = 0
    k_max: int = 0
    free_for_min: np.ndarray | None = None
    bounds: str = "exact"
    #: For ``"sampled"`` families of the predicted change: an orthonormal basis that contains
    #: every member's change, so members' features can be compressed to ``basisᵀ · map``.
    column_space: np.ndarray | None = None

    @property
    def determined(self) -> bool:
        return self.free is None and self.bounds == "exact"


@dataclass(frozen=True, eq=False)
class Solution:
    """An optimal linear LAM, how it was found, and what else is equally optimal."""

    system: System
    spec: LAMSpec
    transition: Transition
    method: str  # "closed-form" | "numeric"
    parameters: LAMParameters  # the canonical member
    value: ObjectiveValue
    innovation: TopEigenspace  # eigen-structure of S_v, v = o' − L_b o
    selection: TopEigenspace | None  # the operator whose top eigenspace is the latent
    latent_family: FeatureFamily | None  # None: not known (numeric solution)
    change_family: FeatureFamily | None
    sample_member: Callable[[np.random.Generator], LAMParameters] | None = field(repr=False, default=None)
    notes: tuple[str, ...] = ()

    @property
    def optimal_loss(self) -> float:
        return self.value.reconstruction

    @property
    def objective(self) -> float:
        return self.value.total

    @property
    def eigengap(self) -> float | None:
        return None if self.selection is None else self.selection.eigengap

    @property
    def unique(self) -> bool | None:
        """Whether the optimal prediction ``ô'`` is unique (``None``: not decided)."""
        if self.selection is None:
            return None
        return not self.selection.tied

    @property
    def captured(self) -> np.ndarray:
        """Orthonormal basis of the range of ``M₂ = B D``: the change directions the latent carries.

        With ``Dᵀ = Q R`` (``Q`` orthonormal columns), ``range(B D) = range(B Rᵀ)``: d_o × d_z work.
        """
        _, R = np.linalg.qr(self.parameters.D.T)
        return orthonormal_basis(self.parameters.B @ R.T)


def solve(system: System, spec: LAMSpec, *, allow_numeric: bool = True, seed: int = 0) -> Solution:
    """The optimal LAM: in closed form where one exists, else by the population minimizer."""
    if not isinstance(system, System):
        raise InputError("system: expected a lamproof System")
    if not isinstance(spec, LAMSpec):
        raise InputError("spec: expected a lamproof LAMSpec")
    spec.check_for(system.d_o)
    transition = system.transition(spec.horizon)
    try:
        return _closed_form(system, spec, transition)
    except NoClosedForm as reason:
        if not allow_numeric:
            raise
        return _numeric(system, spec, transition, str(reason), seed)


# -- the closed form -----------------------------------------------------------------------------
def _moments(transition: Transition):
    """``S = E[x xᵀ]`` for ``x = [o; o']``, its ``o`` block, and ``L = S_{o'o} S_oo⁺``."""
    d_o = transition.system.d_o
    S = transition.second_moment(OBSERVED)
    S_oo, S_po = S[:d_o, :d_o], S[d_o:, :d_o]
    return S, S_oo, S_po @ pinv_psd(S_oo)


def _innovation_moment(S: np.ndarray, L_b: np.ndarray | None) -> np.ndarray:
    """``E[v vᵀ]`` for ``v = o' − L_b o`` from the blocks of ``S`` (``L_b = None`` means ``I``).

    For ``L_b = L`` the cross terms collapse (``L S_oo = S_{o'o}``): ``S_{o'o'} − L S_{oo'}``.
    """
    d_o = S.shape[0] // 2
    S_oo, S_op, S_po, S_pp = S[:d_o, :d_o], S[:d_o, d_o:], S[d_o:, :d_o], S[d_o:, d_o:]
    if L_b is None:
        return S_pp - S_op - S_po + S_oo
    return S_pp - L_b @ S_op


def _vanishes(matrix: np.ndarray, S_oo: np.ndarray, scale: float) -> bool:
    """Whether ``matrix · o`` is zero in mean square: ``tr(M S_oo Mᵀ) ≤ CONDITION_RTOL · scale``."""
    return float(np.sum((matrix @ S_oo) * matrix)) <= CONDITION_RTOL * max(scale, 1e-300)


def _closed_form(system: System, spec: LAMSpec, transition: Transition) -> Solution:
    d_o, d_z = system.d_o, spec.d_z
    S, S_oo, L = _moments(transition)
    eye = np.eye(d_o)
    scale = scale_of(np.diag(S))
    learned = spec.fdm_obs_path == "learned"
    L_b = L if learned else eye
    v_map = np.hstack([-L_b, eye])  # v = o' − L_b o, as a map of [o; o']
    S_v = _innovation_moment(S, L if learned else None)
    delta_map = np.hstack([-eye, eye])  # Δ = o' − o
    innovation = top_eigenspace(S_v, d_z)
    L_is_identity = not learned or _vanishes(L - eye, S_oo, scale)
    if spec.action_loss_weight > 0:
        return _with_action_head(system, spec, transition, S, S_oo, L, L_is_identity, scale)

    clean = spec.augmentation > 0 or not learned or spec.idm == "tied"
    if spec.augmentation > 0 and learned and not L_is_identity:
        P = innovation.captured @ innovation.captured.T
        if innovation.tied or not _vanishes((eye - P) @ (L - eye), S_oo, scale):
            raise NoClosedForm(
                "augmentation with L ≠ I: the clean member is not optimal without augmentation, so "
                "the penalty trades off against reconstruction (math.md R3)"
            )

    def build(U: np.ndarray, rng: np.random.Generator | None = None) -> LAMParameters:
        p = U.shape[1]
        B = np.zeros((d_o, d_z))
        B[:, :p] = U
        D = np.zeros((d_z, d_o))
        D[:p] = U.T
        P = U @ U.T
        if learned and not clean:  # free IDM, learned A: z = Uᵀ r, A = L; any o may ride along
            C, A = -D @ L, L.copy()
        else:  # the clean latent z = Uᵀ(o' − o)
            C = -D.copy()
            A = eye.copy() if (not learned or spec.augmentation > 0) else (eye - P) @ L + P
        if rng is not None:
            _perturb_free_parts(C, D, A, B, p, rng, leak=learned and not clean, tied=spec.idm == "tied")
        return LAMParameters(A, B, C, D)

    params = build(innovation.captured)
    tail = float(np.sum(np.clip(innovation.eigenvalues[innovation.rank:], 0.0, None)))
    value = ObjectiveValue(tail, 0.0, 0.0, tail)  # Eckart–Young; the clean member pays no penalty
    latent_family = _latent_family(innovation, v_map, delta_map, d_o, d_z, leak=learned and not clean,
                                   spare_space=delta_map if spec.idm == "tied" else np.eye(2 * d_o))
    change_family = _change_family(params, innovation, v_map, separable=L_is_identity)
    notes = []
    if innovation.tied:
        notes.append(
            f"eigenvalue tie at d_z={d_z}: any {innovation.tie_dim} of {innovation.tie.shape[1]} tied "
            "directions may be captured"
        )
    if learned and not clean:
        notes.append("observation leakage is free: z = D r + N o is optimal for every N (math.md R2)")
    if innovation.rank < d_z:
        notes.append(f"{d_z - innovation.rank} latent dimension(s) carry nothing the loss needs and are free")
    return Solution(system, spec, transition, "closed-form", params, value, innovation, innovation,
                    latent_family, change_family, lambda rng: build(_random_tie_choice(innovation, rng), rng),
                    tuple(notes))


def _random_tie_choice(space: TopEigenspace, rng: np.random.Generator) -> np.ndarray:
    """A captured basis with a uniformly random choice inside the tied eigenspace."""
    if not space.tied:
        return space.captured
    tie = space.tie
    q, _ = np.linalg.qr(rng.standard_normal((tie.shape[1], space.tie_dim)))
    return np.hstack([space.fixed, tie @ q])


def _perturb_free_parts(C, D, A, B, p, rng, *, leak: bool, tied: bool) -> None:
    """Move a member along the free directions of the family, in place (for sampled ranges)."""
    d_z, d_o = D.shape
    if leak:  # z gains N o; A cancels it: A ← A − B N
        N = rng.standard_normal((d_z, d_o)) * rng.choice([0.1, 1.0, 10.0])
        C += N
        A -= B @ N
    spare = slice(p, d_z)  # latent dimensions that B ignores
    D[spare] = rng.standard_normal((d_z - p, d_o))
    C[spare] = -D[spare] if tied else rng.standard_normal((d_z - p, d_o))


def _latent_family(innovation, v_map, delta_map, d_o, d_z, *, leak: bool, spare_space) -> FeatureFamily:
    p, spare = innovation.rank, d_z - innovation.rank
    obs_rows = np.hstack([np.eye(d_o), np.zeros((d_o, d_o))])
    if leak:  # closure of {D r + N o}: any subspace of span(Uᵀ r, o) = span(Uᵀ o', o), dims p … d_z
        basis = np.hstack([innovation.fixed, innovation.tie]) if innovation.tied else innovation.captured
        free = np.vstack([np.hstack([np.zeros((basis.shape[1], d_o)), basis.T]), obs_rows])
        return FeatureFamily(np.zeros((0, 2 * d_o)), free, p, d_z, bounds="outer" if innovation.tied else "exact")
    if not innovation.tied:
        fixed = innovation.captured.T @ delta_map
        if spare == 0:
            return FeatureFamily(fixed)
        return FeatureFamily(fixed, spare_space, 0, spare)
    fixed = innovation.fixed.T @ delta_map
    tie_rows = innovation.tie.T @ delta_map
    k_t = innovation.tie_dim
    if spare == 0:
        return FeatureFamily(fixed, tie_rows, k_t, k_t)
    return FeatureFamily(fixed, spare_space, k_t, k_t + spare, free_for_min=tie_rows, bounds="outer")


def _change_family(params, innovation, v_map, *, separable: bool) -> FeatureFamily:
    """The predicted change ``ô' − o = (L_b − I) o + P v`` over the family.

    When ``L_b = I`` it is ``U Uᵀ v``, which carries exactly the information of ``Uᵀ v``
    (``U`` is injective), so the features are described by ``d_z`` rows instead of ``d_o``.
    """
    if not innovation.tied:
        return FeatureFamily(innovation.captured.T @ v_map if separable else params.predicted_change_map)
    # Every member's change lies in range(L_b − I) + span(fixed, tie): a small basis for sampling.
    d_o = v_map.shape[0]
    L_b = -v_map[:, :d_o]
    parts = [innovation.fixed, innovation.tie] if separable else [L_b - np.eye(d_o), innovation.fixed, innovation.tie]
    basis = orthonormal_basis(np.hstack(parts))
    if separable:  # P moves only inside the tie
        k_t = innovation.tie_dim
        return FeatureFamily(innovation.fixed.T @ v_map, innovation.tie.T @ v_map, k_t, k_t, column_space=basis)
    return FeatureFamily(params.predicted_change_map, bounds="sampled", column_space=basis)


def _with_action_head(system, spec, transition, S, S_oo, L, L_is_identity, scale) -> Solution:
    """Reduced-rank regression of ``y = [r; √λ a]`` on the innovation ``r`` (math.md R4)."""
    d_o, d_z = system.d_o, spec.d_z
    if spec.fdm_obs_path != "learned" or spec.idm != "free":
        raise NoClosedForm("an action head with a fixed FDM path or a tied IDM has no closed form here")
    S_ao = transition.second_moment("action", "obs")
    if float(np.max(np.abs(S_ao), initial=0.0)) > CONDITION_RTOL * scale:
        raise NoClosedForm(
            "the action is correlated with the observation (E[a oᵀ] ≠ 0): the head can use the "
            "leaked observation, so the optimum is not reduced-rank regression on the innovation; with a "
            "learned FDM and a free IDM the infimum need not be attained (weights can grow without bound)"
        )
    if spec.augmentation > 0 and not L_is_identity:
        raise NoClosedForm("augmentation with L ≠ I and an action head has no closed form here")
    eye = np.eye(d_o)
    r_map = np.hstack([-L, eye])  # r = o' − L o, as a map of x = [o; o']
    S_r = _innovation_moment(S, L)
    S_ar = transition.second_moment("action", OBSERVED) @ r_map.T
    innovation = top_eigenspace(S_r, d_z)
    weight = np.sqrt(spec.action_loss_weight)
    S_yr = np.vstack([S_r, weight * S_ar])
    regression = S_yr @ pinv_psd(S_r)  # ŷ = regression · r
    selection = top_eigenspace(regression @ S_yr.T, d_z)
    n_actions = S_ar.shape[0]
    augmented = spec.augmentation > 0

    def build(V: np.ndarray, rng: np.random.Generator | None = None) -> LAMParameters:
        p = V.shape[1]
        D = np.zeros((d_z, d_o))
        D[:p] = V.T @ regression
        B = np.zeros((d_o, d_z))
        B[:, :p] = V[:d_o]
        H = np.zeros((n_actions, d_z))
        H[:, :p] = V[d_o:] / weight
        C = -D if augmented else -D @ L
        A = eye.copy() if augmented else L.copy()
        if rng is not None:
            _perturb_free_parts(C, D, A, B, p, rng, leak=False, tied=False)
            if not augmented:  # leakage N o is free where H does not look: z ← z + Π_ker(H) N o
                kernel = _kernel_basis(H[:, :p], p)
                N = np.zeros((d_z, d_o))
                N[:p] = kernel @ kernel.T @ rng.standard_normal((p, d_o)) * rng.choice([0.1, 1.0, 10.0])
                C += N
                A -= B @ N
        return LAMParameters(A, B, C, D, H)

    params = build(selection.captured)
    total_y = float(np.trace(S_r) + spec.action_loss_weight * np.trace(transition.second_moment("action")))
    total = total_y - float(np.sum(selection.eigenvalues[: selection.rank]))  # reduced-rank regression
    residual = np.eye(d_o) - params.next_obs_map
    reconstruction = float(np.sum((residual @ S_r) * residual))
    value = ObjectiveValue(reconstruction, 0.0, (total - reconstruction) / spec.action_loss_weight, total)
    if selection.tied:
        latent_family = FeatureFamily(params.latent_map, bounds="sampled")
        change_family = FeatureFamily(params.predicted_change_map, bounds="sampled")
    else:
        p = selection.rank
        latent_rows = params.latent_map[:p]
        kernel = _kernel_basis(params.H[:, :p], p)
        leak_dims = 0 if augmented else kernel.shape[1]
        spare = d_z - p
        seen = orthonormal_basis(params.H[:, :p].T) if leak_dims else np.eye(p)
        fixed = seen.T @ latent_rows
        if leak_dims == 0 and spare == 0:
            latent_family = FeatureFamily(fixed)
        elif leak_dims == 0:
            latent_family = FeatureFamily(fixed, np.eye(2 * d_o), 0, spare)
        else:
            obs_rows = np.hstack([eye, np.zeros((d_o, d_o))])
            free = np.vstack([kernel.T @ latent_rows, obs_rows])
            latent_family = FeatureFamily(fixed, free, leak_dims, leak_dims + spare,
                                          bounds="outer" if spare else "exact")
        change_family = FeatureFamily(params.predicted_change_map)
    notes = [f"reduced-rank regression of [r; √λ a] on r with λ = {spec.action_loss_weight:g}"]
    if selection.tied:
        notes.append("eigenvalue tie in the reduced-rank regression: the optimum is a family")
    return Solution(system, spec, transition, "closed-form", params, value, innovation, selection,
                    latent_family, change_family, lambda rng: build(_random_tie_choice(selection, rng), rng),
                    tuple(notes))


def _kernel_basis(matrix: np.ndarray, size: int) -> np.ndarray:
    """Orthonormal basis of the null space of ``matrix`` (columns in ``R^size``)."""
    if size == 0:
        return np.zeros((0, 0))
    _, s, vt = np.linalg.svd(matrix, full_matrices=True)
    rank = int(np.sum(s**2 > RANK_RTOL * scale_of(s**2))) if s.size else 0
    return vt[rank:].T


# -- the numeric fallback ------------------------------------------------------------------------
def _numeric(system: System, spec: LAMSpec, transition: Transition, reason: str, seed: int) -> Solution:
    from lamproof.numeric.population import minimize_population

    result = minimize_population(transition, spec, seed=seed)
    S, S_oo, L = _moments(transition)
    innovation = top_eigenspace(_innovation_moment(S, L if spec.fdm_obs_path == "learned" else None), spec.d_z)
    notes = (f"no closed form: {reason}; optimum by the population minimizer "
             f"({len(result.totals)} starts, converged={result.converged})",)
    return Solution(system, spec, transition, "numeric", result.params, result.objective, innovation, None,
                    None, None, None, notes)
