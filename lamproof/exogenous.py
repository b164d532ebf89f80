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

from dataclasses import dataclass, field

import numpy as np

from lamproof._validation import as_int
from lamproof.conditions import CONTAINMENT_TOL, Condition, exploration_columns
from lamproof.context import innovation
from lamproof.errors import InputError
from lamproof.lam import MAX_HORIZON
from lamproof.numeric.linalg import pinv_psd, scale_of, top_eigenspace_of
from lamproof.numeric.probes import ProbeScore
from lamproof.numeric.tolerances import MATTERS_RTOL, PSD_RANK_RTOL
from lamproof.systems import Transition

__all__ = [
    "LoadingRange",
    "HorizonResult",
    "action_operator",
    "exogenous_operator",
    "exogenous_loading",
    "exogenous_loading_range",
    "latent_consistency",
    "action_first",
    "action_first_horizon",
]


def _columns(transition: Transition, name: str) -> np.ndarray:
    if name == "exploration":
        return exploration_columns(transition)
    columns = getattr(transition, f"{name}_columns", None)
    if columns is None or "exogenous" not in transition.variables:
        raise InputError("transition: no exogenous coordinates are declared (state_space.exogenous)")
    return columns


def _part(transition: Transition, fdm_obs_path: str, name: str) -> np.ndarray:
    """The part of ``S_v`` that the sources ``name`` contribute, cached on the transition."""
    columns = _columns(transition, name)
    return transition.memo(
        ("innovation_part", fdm_obs_path, name),
        lambda: transition.cov_from(innovation(transition, fdm_obs_path).source_map(transition), columns),
    )


def action_operator(transition: Transition, fdm_obs_path: str = "learned") -> np.ndarray:
    """``S_act``: the part of ``S_v`` that the horizon's exploration contributes."""
    return _part(transition, fdm_obs_path, "exploration")


def exogenous_operator(transition: Transition, fdm_obs_path: str = "learned") -> np.ndarray:
    """``S_exo``: the part of ``S_v`` that the horizon's exogenous process noise contributes."""
    return _part(transition, fdm_obs_path, "exogenous")


def exogenous_loading(
    transition: Transition, captured: np.ndarray, fdm_obs_path: str = "learned"
) -> float | None:
    """``tr(P S_exo) / tr(P S_v)`` for ``P`` the projector on ``range(captured)`` (frame space).

    ``None`` when the captured directions carry no variance.
    """
    captured = np.asarray(captured, dtype=np.float64)
    if captured.ndim != 2 or captured.shape[0] != transition.d_o:
        raise InputError(
            f"captured: expected a {transition.d_o} x p basis of frame directions, got shape {captured.shape}"
        )
    q, _ = np.linalg.qr(captured) if captured.shape[1] else (captured, None)
    S_v = innovation(transition, fdm_obs_path).operator
    total = float(np.sum((q.T @ S_v) * q.T))
    if total <= PSD_RANK_RTOL * scale_of(np.diag(S_v)):
        return None
    return float(np.sum((q.T @ exogenous_operator(transition, fdm_obs_path)) * q.T)) / total


@dataclass(frozen=True)
class FamilyRange:
    """A quantity over an optimal family: the canonical value, a proved range, witnessed extremes.

    As for probe scores (:class:`lamproof.numeric.probes.ProbeScore`): ``min``/``max`` contain the
    value of every member of the family's closure; ``attained_min``/``attained_max`` are values of
    concrete members (``witnesses``: ``{"min": LAMParameters, "max": LAMParameters}``), and
    ``approached`` lists the ends a member only comes arbitrarily close to. ``bounds`` is
    ``"exact"`` when the witnesses reach the proved bounds, ``"outer"`` when they do not,
    ``"unknown"`` for a numeric solution (no family) and ``"undefined"`` when the quantity is not
    (nothing captured, or a latent without variance).
    """

    value: float | None  # the canonical member
    min: float | None
    max: float | None
    identified: bool | None
    bounds: str  # "exact" | "outer" | "unknown" | "undefined"
    attained_min: float | None = None
    attained_max: float | None = None
    witnesses: dict | None = field(default=None, repr=False, compare=False)
    approached: tuple[str, ...] = ()

    as_dict = ProbeScore.as_dict  # the same keys as a probe score's, for the solve JSON

    @property
    def witness_scores(self) -> dict | None:
        """The witnesses' own values (:func:`lamproof.claims.assert_family` reads them, as for a probe)."""
        return None if self.witnesses is None else {"min": self.attained_min, "max": self.attained_max}


#: The exogenous loading over the optimal family (phase 1's name, kept).
LoadingRange = FamilyRange

#: Loading values closer than this (a fraction) are one point of the range.
LOADING_ATOL = 1e-9


def _tie_loading(space, S_exo: np.ndarray, total: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Ky Fan over a tie: ``(low, high, Q_low, Q_high)`` with ``Q`` the extremal tie choices.

    ``tr(P S_v) = total`` for every top-``d_z`` eigenspace, so the loading is the fixed part plus the
    bottom / top ``tie_dim`` eigenvalues of ``Wᵀ S_exo W`` on the tied eigenspace ``W``, over ``total``.
    """
    fixed = float(np.trace(space.fixed.T @ S_exo @ space.fixed))
    values, vectors = np.linalg.eigh(space.tie.T @ S_exo @ space.tie)
    k = space.tie_dim
    low = (fixed + float(np.sum(values[:k]))) / total
    high = (fixed + float(np.sum(values[len(values) - k :]))) / total
    return low, high, vectors[:, :k], vectors[:, len(values) - k :]


def exogenous_loading_range(transition: Transition, d_z: int, fdm_obs_path: str = "learned") -> LoadingRange:
    """The loading of every top-``d_z`` eigenspace of ``S_v``: exact ``[min, max]`` over eigenvalue ties.

    Inside a tie ``S_v`` is ``λ I``, so ``tr(P S_v)`` is the same for every choice and the
    numerator is linear in the tie's projector: its extremes are the fixed part plus the top /
    bottom ``tie_dim`` eigenvalues of ``Uᵀ S_exo U`` on the tied eigenspace ``U`` (Ky Fan).
    Valid for the LAM whose captured change is a top eigenspace of ``S_v`` (no action head;
    augmentation only where it keeps the clean member). :func:`loading_over_family` gives the
    same range for a solved LAM, with witnessing members.
    """
    d_z = as_int(d_z, "d_z", minimum=1, maximum=transition.d_o)
    S_v = innovation(transition, fdm_obs_path).operator
    space = top_eigenspace_of(S_v, d_z)
    total = float(np.sum(space.eigenvalues[: space.rank]))
    if space.rank == 0 or total <= PSD_RANK_RTOL * scale_of(space.eigenvalues):
        return LoadingRange(None, None, None, None, "undefined")
    S_exo = exogenous_operator(transition, fdm_obs_path)
    value = float(np.trace(space.captured.T @ S_exo @ space.captured)) / total
    if not space.tied:
        return LoadingRange(value, value, value, True, "exact")
    low, high, _, _ = _tie_loading(space, S_exo, total)
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
    if outside(space.captured) <= CONTAINMENT_TOL and (
        not space.tied or outside(space.fixed) <= CONTAINMENT_TOL
    ):
        return Condition(
            True,
            margin,
            f"the {r} controllable direction(s) span {where} of S_v "
            f"(weakest {weakest:.4g} vs next {competitor:.4g})",
        )
    if space.tied and outside(reach) <= CONTAINMENT_TOL:
        return Condition(
            None,
            margin,
            f"an eigenvalue tie at {competitor:.4g}: some optimal members keep the "
            "controllable directions, others do not",
        )
    return Condition(
        False,
        margin,
        f"the controllable directions are not in {where} of S_v "
        f"(weakest {weakest:.4g} vs next {competitor:.4g})",
    )


@dataclass(frozen=True)
class HorizonResult:
    """The smallest horizon at which actions come first (``None``: not up to ``max_horizon``)."""

    horizon: int | None
    margins: tuple[float | None, ...]  # the action-first margin at k = 1, 2, …

    def as_dict(self) -> dict:
        return {"horizon": self.horizon, "margins": list(self.margins)}


def action_first_horizon(
    system, fdm_obs_path: str = "learned", *, context: int = 1, d_z: int | None = None, max_horizon: int = 32
) -> HorizonResult:
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


# -- over a solved LAM's optimal family ----------------------------------------------------------------
#: Dinkelbach's iteration for a ratio of traces stops after this many steps (it converges in a few:
#: each step solves the linearized problem exactly, and the extreme is one of finitely many
#: eigenvector choices).
DINKELBACH_STEPS = 50

#: A member that approaches an end of the consistency range re-weights its latent coordinates by
#: 1 and this: its value lies within ~``APPROACH_WEIGHT² · d_z`` of the end (far inside
#: ``WITNESS_ATOL``), with weights a float64 product handles exactly enough.
APPROACH_WEIGHT = 1e-5


def _point(value: float, member) -> FamilyRange:
    return FamilyRange(value, value, value, True, "exact", value, value, {"min": member, "max": member})


def _summarize(
    value: float, low: float, high: float, seen: list, what: str, approached: tuple[str, ...] = ()
) -> FamilyRange:
    """A :class:`FamilyRange` from proved ``[low, high]`` and witnessed ``(value, member, approached)``."""
    from lamproof.numeric.tolerances import IDENTIFIED_ATOL, WITNESS_ATOL

    lo_seen = min(seen, key=lambda item: item[0])
    hi_seen = max(seen, key=lambda item: item[0])
    if lo_seen[0] < low - WITNESS_ATOL or hi_seen[0] > high + WITNESS_ATOL:
        raise RuntimeError(
            f"internal error: a member of the optimal family has {what} {lo_seen[0]:.12g}.."
            f"{hi_seen[0]:.12g}, outside the proved interval [{low:.12g}, {high:.12g}]"
        )
    low, high = min(low, lo_seen[0]), max(high, hi_seen[0])
    exact = abs(lo_seen[0] - low) <= WITNESS_ATOL and abs(hi_seen[0] - high) <= WITNESS_ATOL
    if high - low <= IDENTIFIED_ATOL:
        identified = True
    elif hi_seen[0] - lo_seen[0] > IDENTIFIED_ATOL:
        identified = False
    else:
        identified = None
    ends = tuple(end for end, item in (("min", lo_seen), ("max", hi_seen)) if item[2])
    return FamilyRange(
        value,
        low,
        high,
        identified,
        "exact" if exact else "outer",
        lo_seen[0],
        hi_seen[0],
        {"min": lo_seen[1], "max": hi_seen[1]},
        ends,
    )


def _tie_of(solution):
    """The tie choice of a solution's latent family, in the coordinates of its selection's tied
    eigenspace (``None`` without a tie)."""
    return getattr(solution.latent_family, "tie", None)


def _ratio_extremes(N: np.ndarray, Dm: np.ndarray, F0: np.ndarray, R: np.ndarray, k: int):
    """``min`` and ``max`` of ``tr(P N)/tr(P Dm)`` over ``P = F0F0ᵀ + R Y YᵀRᵀ`` (``Y``: any ``m × k``
    orthonormal; ``F0 ⟂ R`` orthonormal), each with its maximizing ``Y``, by Dinkelbach's iteration.

    For a fixed ``t`` the linearized ``min_P tr(P (N − t Dm))`` is a Ky Fan problem (the bottom ``k``
    eigenvalues of ``Rᵀ(N − t Dm)R``); iterating ``t ← ratio(P_t)`` decreases ``t`` until the
    linearized minimum is 0, which proves ``tr(P N) ≥ t tr(P Dm)`` for every ``P`` and is attained
    by ``P_t``. The maximum is the same with the top ``k``. ``None`` when a denominator vanishes.
    """
    a0, b0 = float(np.trace(F0.T @ N @ F0)), float(np.trace(F0.T @ Dm @ F0))
    Nr, Dr = R.T @ N @ R, R.T @ Dm @ R
    m = R.shape[1]

    def ratio(Y):
        den = b0 + float(np.sum((Dr @ Y) * Y))
        return None if den <= 0 else (a0 + float(np.sum((Nr @ Y) * Y))) / den

    out = []
    for lowest in (True, False):
        Y = np.eye(m)[:, :k]
        t = ratio(Y)
        if t is None:
            return None
        for _ in range(DINKELBACH_STEPS):
            _, vectors = np.linalg.eigh(Nr - t * Dr)
            candidate = vectors[:, :k] if lowest else vectors[:, m - k :]
            t_new = ratio(candidate)
            if t_new is None:
                return None
            if (t_new >= t) if lowest else (t_new <= t):
                break
            Y, t = candidate, t_new
        out.append((t, Y))
    return out


def loading_over_family(solution) -> FamilyRange:
    """The exogenous loading ``tr(P S_exo)/tr(P S_v)`` over a solved LAM's optimal family.

    ``P`` projects on the captured change ``range(B D)``, which varies only inside an eigenvalue
    tie (re-mixing the latent, leakage and spare latent dimensions leave it). Without an action head
    the range is the exact Ky Fan range of :func:`exogenous_loading_range` on the solution's own
    eigenspace; with one, ``tr(P S_v)`` varies inside the tie too and Dinkelbach's iteration
    (:func:`_ratio_extremes`) gives the exact ratio range. Each end is witnessed by the member
    built for the extremal tie choice, scored afresh from its parameters
    (:func:`exogenous_loading`). Needs exogenous coordinates (``InputError`` otherwise).
    """
    from lamproof.numeric.closed_form import captured_basis
    from lamproof.numeric.linalg import orthonormal_basis

    t = solution.transition
    path = solution.spec.fdm_obs_path
    _columns(t, "exogenous")

    def of(member) -> float | None:
        return exogenous_loading(t, captured_basis(member), path)

    canonical = solution.parameters
    value = of(canonical)
    if value is None:
        return FamilyRange(None, None, None, None, "undefined")
    selection = solution.selection
    if selection is None:  # a numeric solution: no description of the family
        return FamilyRange(
            value, None, None, None, "unknown", value, value, {"min": canonical, "max": canonical}
        )
    tie = _tie_of(solution)
    if not selection.tied or tie is None:
        return _point(value, canonical)
    S_exo = exogenous_operator(t, path)
    if solution.spec.action_loss_weight == 0:
        total = float(np.sum(selection.eigenvalues[: selection.rank]))
        low, high, Q_low, Q_high = _tie_loading(selection, S_exo, total)
        low, high = max(low, 0.0), min(high, 1.0)  # S_exo ⪯ S_v: a loading lies in [0, 1]
        choices = (Q_low, Q_high)
    else:  # the captured change is span(fixed_o) ⊕ a tie_dim-subspace of span(tie_o) (o-parts of y-directions)
        d_o = t.d_o
        F0 = orthonormal_basis(selection.fixed[:d_o])
        tie_o = selection.tie[:d_o] - F0 @ (F0.T @ selection.tie[:d_o])
        R = orthonormal_basis(tie_o)
        found = None
        if F0.shape[1] == selection.fixed.shape[1] and R.shape[1] == selection.tie.shape[1]:
            found = _ratio_extremes(S_exo, innovation(t, path).operator, F0, R, selection.tie_dim)
        if found is None:  # not a clean ⊕: S_exo ⪯ S_v still bounds every member's loading by [0, 1]
            seen = [(value, canonical, False)]
            seen += [(v, m, False) for m in (tie.build(tie.canonical_choice()),) if (v := of(m)) is not None]
            return _summarize(value, 0.0, 1.0, seen, "exogenous loading")
        (low, Y_low), (high, Y_high) = found
        low, high = max(low, 0.0), min(high, 1.0)  # S_exo ⪯ S_v: a loading lies in [0, 1]
        lift = np.linalg.pinv(tie_o)
        choices = tuple(orthonormal_basis(lift @ (R @ Y)) for Y in (Y_low, Y_high))
    seen = [(value, canonical, False)]
    for Q in choices:
        member = tie.build(Q)
        score = of(member)
        if score is not None:
            seen.append((score, member, False))
    return _summarize(value, low, high, seen, "exogenous loading")


def _white_action_basis(transition: Transition) -> np.ndarray:
    """Orthonormal basis (white source coordinates) of the row space of the actions' covariance factor."""
    from lamproof.numeric.linalg import row_space

    def compute():
        space = row_space(transition.factor("action", mean=False))
        return np.hstack([space.basis, space.grey])

    return transition.memo(("white_action_basis",), compute)


def _consistency_coordinates(transition: Transition) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Xc, Qc)``: the covariance factor ``X = U S Vᵀ`` of ``[obs; next_obs]`` (thin SVD), the same in
    the coordinates of its row space, ``Xc = U S``, and the actions' white basis seen there, ``Qc = Vᵀ Qa``.

    A latent ``z = W x`` has white coordinates ``W X = (W Xc) Vᵀ`` exactly, so ``‖W X Qa‖ = ‖W Xc Qc‖`` and
    ``‖W X‖ = ‖W Xc‖``: the consistency and its principal angles are computed in ``d_c + d_o`` coordinates
    instead of the window's (many more) white source coordinates. Cached on the transition.
    """
    from lamproof.numeric.objective import OBSERVED

    def compute():
        X = transition.factor(OBSERVED, mean=False)
        u, sv, vt = np.linalg.svd(X, full_matrices=False)
        return X, u * sv, vt @ _white_action_basis(transition)

    return transition.memo(("consistency_coordinates",), compute)


def _consistency(features: np.ndarray, X: np.ndarray, Qa: np.ndarray) -> float | None:
    """:func:`latent_consistency` on factors: ``1 − ‖W X Π_a‖²/‖W X‖²`` (``X`` the covariance factor of
    ``[obs; next_obs]``, ``Qa`` an orthonormal basis of the actions' white coordinates)."""
    Z = features @ X
    total = float(np.sum(Z**2))
    if total <= PSD_RANK_RTOL * float(np.sum(X**2)) * max(1.0, float(np.sum(features**2))):
        return None
    return min(max(1.0 - float(np.sum((Z @ Qa) ** 2)) / total, 0.0), 1.0)


def _pencil(rows: np.ndarray, X: np.ndarray, Qa: np.ndarray):
    """For latent coordinates ``z = rows · x``: ``(V, K, μ)`` with ``Vᵀ Var(z) V = I``, ``Vᵀ M V = diag(μ)``
    (``M`` the part of ``Var(z)`` the actions explain; ``μ`` ascending) and ``K`` spanning the
    combinations without variance."""
    Z = rows @ X
    values, U = np.linalg.eigh(Z @ Z.T)
    keep = values > PSD_RANK_RTOL * scale_of(values)
    W = U[:, keep] / np.sqrt(values[keep])
    explained = (W.T @ Z) @ Qa
    mu, G = np.linalg.eigh(explained @ explained.T)
    return W @ G, U[:, ~keep], np.clip(mu, 0.0, 1.0)


def _remixed(member, X: np.ndarray, Qa: np.ndarray, highest: bool, pencil=None):
    """A member equal to ``member`` but for re-weighted latent coordinates, whose consistency is (within
    ``APPROACH_WEIGHT²``) the least (``highest``: the explained share largest) or the greatest its latent
    allows, and whether that end is only approached (``member`` itself where no re-weighting is needed)."""
    from lamproof.numeric.families import transform_latent

    V, K, mu = _pencil(member.latent_map, X, Qa) if pencil is None else pencil
    if mu.size == 0 or mu[-1] - mu[0] <= 1e-12:
        return member, False
    d_z = member.latent_map.shape[0]
    weights = np.full(mu.size, APPROACH_WEIGHT)
    weights[mu.size - 1 if highest else 0] = 1.0
    T = np.vstack([weights[:, None] * V.T, K.T])
    return transform_latent(member, T, np.zeros((d_z, member.latent_map.shape[1])), d_z), True


def _union_rows(family) -> np.ndarray:
    """Rows spanning every member's latent features (maps of ``x``)."""
    from lamproof.numeric.families import PointFamily

    if isinstance(family, PointFamily):
        return family.features
    if family.k_max == 0:
        return family.fixed
    return np.vstack([family.fixed, family.free])


def _completed(c: np.ndarray, count: int) -> np.ndarray:
    """Orthonormal rows: ``c`` normalized, then unit coordinates (in order) orthogonal to it, ``count`` in all."""
    basis = [c / np.linalg.norm(c)]
    for e in np.eye(c.size):
        if len(basis) >= count:
            break
        r = e - sum(float(e @ q) * q for q in basis)
        if np.linalg.norm(r) > 0.5:
            basis.append(r / np.linalg.norm(r))
    return np.vstack(basis)


def _coefficients(rows: np.ndarray, row: np.ndarray) -> np.ndarray | None:
    """``c`` with ``c · rows = row`` (``None`` when ``row`` is not in their span)."""
    c, *_ = np.linalg.lstsq(rows.T, row, rcond=None)
    # the row and its projection on the span are the same answer when they agree to MATTERS_RTOL
    if float(np.linalg.norm(rows.T @ c - row)) > MATTERS_RTOL * max(float(np.linalg.norm(row)), 1e-300):
        return None
    return c


def _member_with(family, row: np.ndarray, coefficients: np.ndarray | None = None):
    """A member whose latent features contain ``row`` (a map of ``x`` in the span of the family's
    union), or ``None`` when this family cannot build one.

    A family with a free part builds it directly (``row``'s coefficients over ``[fixed; free]``, given
    or solved for, its free ones first, completed to ``k_min`` rows). A union over tie choices picks
    the choice that holds ``row``'s tie coordinates (from the family's ``parts``) and builds inside
    that choice's exact sub-family.
    """
    from lamproof.numeric.families import PointFamily

    if isinstance(family, PointFamily) or family.k_max == 0:
        return family.canonical
    if family.member is not None:
        if coefficients is None:
            coefficients = _coefficients(np.vstack([family.fixed, family.free]), row)
        if coefficients is not None:
            c = coefficients[family.fixed.shape[0] :]
            if not np.any(c):
                return family.canonical
            return family.member(_completed(c, family.k_min)[: family.k_max])
    split, tie = getattr(family, "split", None), getattr(family, "tie", None)
    if split is None or tie is None:
        return None
    Q = tie.canonical_choice()
    parts = getattr(family, "parts", None)
    if parts is not None:
        coefficients = _coefficients(np.vstack(parts), row)
        c = None if coefficients is None else coefficients[coefficients.size - parts[2].shape[0] :]
        if c is not None and np.any(c):
            Q = _completed(c, tie.k).T
    sub = split(Q)
    return None if sub is family else _member_with(sub, row)


def consistency_over_family(solution) -> FamilyRange:
    """``tr E[Var(z | a)] / tr Var(z)`` over a solved LAM's optimal family.

    The ratio is not invariant under re-mixing the latent (``z → T z``, ``B → B T⁻¹`` is optimal for
    every invertible ``T``): over the re-mixings of one latent it sweeps the interval
    ``[1 − μ_max, 1 − μ_min]`` of the generalized eigenvalues ``μ`` of (explained covariance,
    covariance) of ``z``, its ends approached as ``T`` turns singular. Over the family, every
    member's features lie in the span of the family's union (leakage ``z + N obs``, spare latent
    dimensions, tie choices), so its values lie in ``[1 − cos²θ_min, 1 − cos²θ_max]``: the
    principal angles ``θ`` between that span and the actions' span in white source coordinates
    (proved). The ends are witnessed by members built to contain the extremal direction, re-mixed
    towards it (:data:`APPROACH_WEIGHT`), each scored afresh from its own latent map (:func:`_consistency`,
    the factor form of :func:`latent_consistency`).
    ``bounds`` is ``"outer"`` where no member was built that reaches an end.
    """
    from lamproof.numeric.families import PointFamily
    from lamproof.numeric.linalg import row_scales
    from lamproof.numeric.tolerances import ROUNDOFF_RTOL

    t = solution.transition
    canonical = solution.parameters
    X_white, X, Qa = _consistency_coordinates(t)  # X, Qa: in the row space of the white factor (exact)
    value = _consistency(canonical.latent_map, X, Qa)
    if value is None:
        return FamilyRange(None, None, None, None, "undefined")
    family = solution.latent_family
    if family is None:
        return FamilyRange(
            value, None, None, None, "unknown", value, value, {"min": canonical, "max": canonical}
        )
    rows = _union_rows(family)
    scales = row_scales(rows, X_white)  # rows scaled by their ingredients, as linalg.row_space does
    live = np.flatnonzero(scales > 0)
    us, sv, vt = np.linalg.svd((rows[live] @ X) / scales[live, None], full_matrices=False)
    keep = sv > ROUNDOFF_RTOL  # the undecidable ("grey") directions too: a larger span only widens the bounds
    Vu = vt[keep].T
    r = Vu.shape[1]
    if r == 0:
        return FamilyRange(None, None, None, None, "undefined")
    to_rows = (vt[keep].T / sv[keep]) @ us[
        :, keep
    ].T  # a white direction in span(Vu) → its coefficients on rows[live]
    u, s, _ = np.linalg.svd(Vu.T @ Qa, full_matrices=True) if Qa.shape[1] else (np.eye(r), np.zeros(0), None)
    cosines = np.zeros(r)
    cosines[: s.size] = np.clip(s, 0.0, 1.0)
    low, high = 1.0 - float(cosines[0] ** 2), 1.0 - float(cosines[-1] ** 2)
    # each candidate's latent sweeps [1 − μ_max, 1 − μ_min] under re-mixing: candidates are the canonical
    # member and, for an end it does not reach, a member built to hold the union's extremal direction
    pencils = [(canonical, _pencil(canonical.latent_map, X, Qa))]
    own = pencils[0][1][2]
    if not isinstance(family, PointFamily):
        for j, end in (
            (0, 1.0 - low),
            (r - 1, 1.0 - high),
        ):  # directions most and least explained by the actions
            if own.size and abs((own[-1] if j == 0 else own[0]) - end) <= 1e-12:
                continue
            coefficients = np.zeros(rows.shape[0])
            coefficients[live] = ((Vu @ u[:, j]) @ to_rows) / scales[live]
            member = _member_with(
                family, coefficients @ rows, coefficients if family.member is not None else None
            )
            if member is not None and member is not canonical:
                pencils.append((member, _pencil(member.latent_map, X, Qa)))
    pencils = [(member, pencil) for member, pencil in pencils if pencil[2].size]
    seen = [(value, canonical, False)]
    for highest in (True, False):
        if not pencils:
            break
        member, pencil = (
            max(pencils, key=lambda item: item[1][2][-1])
            if highest
            else min(pencils, key=lambda item: item[1][2][0])
        )
        witness, approached = _remixed(member, X, Qa, highest, pencil)
        score = _consistency(witness.latent_map, X, Qa)
        if score is not None:
            seen.append((score, witness, approached))
    return _summarize(value, low, high, seen, "latent consistency")
