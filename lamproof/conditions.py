"""Capture conditions: when does a solved LAM carry the controllable change? (docs/theory.md §10)

Over ``k`` steps the exploration moves the observation by ``u = Σ_{j<k} F_clʲ G e_{k−1−j}``, the
*controllable change*, with covariance the action Gramian ``W_k^act`` (:mod:`lamproof.control`).
``u`` is independent of everything else in the innovation, so it always sits inside the
innovation operator ``S_v`` the LAM compresses; the question is whether the latent keeps it.

=================  =========================================================================
``controllable``   Kalman rank of ``(F_cl, GΣ_e^{1/2})`` is ``d_o`` (informational: a LAM needs
                   only the ``k``-step part). margin: rank − d_o.
``excitation``     the exploration reaches every direction the actions reach in ``k`` steps:
                   ``rank W_k^act = rank [G, F_cl G, …, F_cl^{k−1} G]``; a singular ``Σ_e``
                   (a deterministic policy component) hides the rest. margin: the smallest
                   nonzero eigenvalue of ``W_k^act``, or minus the rank deficit.
``capacity``       ``d_z ≥ rank W_k^act``. margin: ``d_z − rank``.
``dominance``      ``range W_k^act`` lies inside the captured top-``d_z`` eigenspace of ``S_v``.
                   margin ``m = λ_min(U_cᵀ S_v U_c) − λ_{d_z+1}(S_v)`` (``U_c`` an orthonormal
                   basis of ``range W_k^act``, ``λ_{d_o+1} = 0``): the weakest controllable
                   direction against the best direction left out. Containment implies
                   ``m ≥ eigengap > 0``; when ``range W_k^act`` is invariant under ``S_v`` (noise
                   aligned with or orthogonal to it, as in every family of the paper)
                   containment holds iff ``m > 0``. With an action head the operator is the
                   reduced-rank-regression one and the margin is its eigengap.
``action_captured``  the predicted change carries the whole controllable change:
                   ``M₂ u = u`` (``M₂ = BD``), i.e. capacity and dominance. margin: ``m``.
``identifiable``   the ``k`` explorations are determined by the change the LAM predicts from
                   them: ``M₂ [F_cl^{k−1}G, …, G](I ⊗ Σ_e^{1/2})`` has rank ``k · rank Σ_e``.
``actions_recoverable``  the action probe of ``ô' − o`` on the system's own data is 0:
                   identifiable, the exploration part of ``ô' − o`` shares no direction with
                   the rest of it (noise, observation drift), and the policy part ``K o_j`` of
                   the actions is a linear function of that rest (trivial for ``K = 0``).
=================  =========================================================================

Each condition is ``Condition(holds, margin, reason)`` with a one-line reason; ``holds`` is
``None`` where it is not decided (a numeric solution, an eigenvalue tie that some optimal members
resolve one way and some the other).

Thresholds: :func:`family_thresholds` solves, in SymPy, for the parameter values of the paper's
parametric families at which the captured directions change (noise level ``σ``, cleaning factor
``c``, action weight ``λ``, augmentation ``s`` with observation drift); :func:`cleaning_threshold`
and :func:`action_weight_threshold` find them numerically for an explicit system by bisection on
the solved eigen-structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from lamproof import control
from lamproof._validation import MAX_HORIZON, as_int
from lamproof.errors import IllConditioned, InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import NoClosedForm, Solution, solve
from lamproof.numeric.linalg import scale_of
from lamproof.numeric.objective import OBSERVED
from lamproof.numeric.tolerances import PSD_RANK_RTOL
from lamproof.systems import System, psd_sqrt

if TYPE_CHECKING:  # SymPy is imported only by the symbolic thresholds
    import sympy

__all__ = [
    "CONTAINMENT_TOL",
    "Condition",
    "Threshold",
    "capture_conditions",
    "system_conditions",
    "family_thresholds",
    "family_action_captured",
    "cleaning_threshold",
    "action_weight_threshold",
]

#: ``range W_k^act`` counts as inside the captured space when the sine of the largest principal
#: angle between them is below this. Eigenvectors of ``S_v`` carry an error of about
#: ``eps · ‖S_v‖ / gap``; gaps below ``TIE_RTOL = 1e-8`` relative are ties anyway, so computed
#: containment is off by at most ~1e-8, and an exact non-containment below 1e-6 changes a probe
#: score by less than 1e-12.
CONTAINMENT_TOL = 1e-6

#: Directions of a Kalman factor (``W = 𝒦𝒦ᵀ``) count when their eigenvalue in ``W`` exceeds this
#: fraction of the largest: the rank rule of every squared quantity (reason in its home).
_RTOL = PSD_RANK_RTOL


@dataclass(frozen=True)
class Condition:
    """A capture condition: whether it holds (``None``: undecided), by how much, and why."""

    holds: bool | None
    margin: float | None
    reason: str

    def as_dict(self) -> dict:
        return {"holds": self.holds, "margin": self.margin, "reason": self.reason}


@dataclass(frozen=True)
class Threshold:
    """Where a knob (``c``, ``λ``) changes whether the controllable change is captured.

    ``value`` is the threshold (``inf``: never crossed; ``None``: not found), ``current`` the
    knob's present value, ``holds`` whether ``action_captured`` holds there, ``margin`` how far
    the knob is from the threshold on the captured side (``value − current`` for ``c``,
    ``current − value`` for ``λ``; negative: not captured).
    """

    name: str
    value: float | None
    current: float
    holds: bool | None
    margin: float | None
    reason: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "current": self.current,
            "holds": self.holds,
            "margin": self.margin,
            "reason": self.reason,
        }


# -- linear algebra --------------------------------------------------------------------------------
def _range(factor: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of ``range(factor)`` and the eigenvalues of ``factor factorᵀ`` on it.

    Eigenvalues count above ``RANK_RTOL · scale`` (default: the largest one); pass the scale of
    the unprojected quantity when ``factor`` is a projection of it, so round-off stays zero.
    """
    if factor.size == 0 or not np.any(factor):
        return np.zeros((factor.shape[0], 0)), np.zeros(0)
    u, s, _ = np.linalg.svd(factor, full_matrices=False)
    values = s**2
    keep = values > _RTOL * (values[0] if scale is None else max(scale, values[0]))
    return u[:, keep], values[keep]


def _psd_rank(matrix: np.ndarray, scale: float | None = None) -> int:
    values = np.linalg.eigvalsh((matrix + matrix.T) / 2)
    if not values.size:
        return 0
    reference = scale_of(values) if scale is None else max(scale, scale_of(values))
    return int(np.sum(values > _RTOL * reference))


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


# -- system-level conditions -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Reach:
    """What the actions and the exploration reach in ``k`` steps."""

    k: int
    action_rank: int  # rank [G, F_cl G, …]
    basis: np.ndarray  # U_c: orthonormal basis of range W_k^act
    values: np.ndarray  # eigenvalues of W_k^act on it
    exploration_factor: np.ndarray  # [F_cl^{k−1}GΣ_e^{1/2}, …] or an eigen-factor of W_k^act
    thin: bool  # exploration_factor is the Kalman matrix itself
    exploration_rank: int  # rank Σ_e


def _observation(system) -> np.ndarray | None:
    """``H`` of a state-space system (``None`` for a System, whose state is its observation)."""
    return None if isinstance(system, System) else system.observation


def _reach(system, k: int) -> _Reach:
    """What the exploration moves in ``k`` steps, seen in the observation: ``H 𝒦_k`` with ``𝒦_k`` the
    Kalman factor of the closed loop ``(F_cl, GΣ_e^{1/2})`` in state space (``H = I`` for a System)."""
    F, G = system.closed_loop, system.action_matrix
    root = psd_sqrt(system.exploration_cov)
    B = G @ root
    factor = control.gramian_factor(F, B, k)
    action_factor = control.gramian_factor(F, G, k)
    H = _observation(system)
    if H is not None:
        factor, action_factor = H @ factor, H @ action_factor
    if not _finite(factor, action_factor):
        raise InputError(f"closed_loop: F_cl^j G overflows float64 within horizon {k}; rescale the system")
    basis, values = _range(factor)
    _, action_values = _range(action_factor)
    e_values = np.linalg.eigvalsh(system.exploration_cov)
    e_rank = int(np.sum(e_values > _RTOL * scale_of(e_values)))
    return _Reach(k, action_values.size, basis, values, factor, k * G.shape[1] <= G.shape[0], e_rank)


def _controllable(system) -> Condition:
    F = system.closed_loop
    n = F.shape[0]
    size = "d_o" if isinstance(system, System) else "n"  # a state-space system: of its state
    B = system.action_matrix @ psd_sqrt(system.exploration_cov)
    rank = control.reachable_dimension(F, B)
    if rank is None:
        return Condition(
            None, None, f"F_cl^j overflows float64 within {size}={n} steps (F_cl grows too fast)"
        )
    return controllable_condition(rank, n, size)


def controllable_condition(rank: int, n: int, size: str = "d_o") -> Condition:
    """The ``controllable`` condition from the Kalman rank of ``(F_cl, GΣ_e^½)`` in dimension ``n``."""
    verdict = "controllable" if rank == n else f"{n - rank} closed-loop direction(s) no exploration can move"
    return Condition(
        rank == n,
        float(rank - n),
        f"Kalman rank of (F_cl, GΣ_e^½) is {rank} of {size}={n}: {verdict} (informational)",
    )


def _excitation(reach: _Reach, d_a: int) -> Condition:
    r_c, r_g, k = reach.basis.shape[1], reach.action_rank, reach.k
    steps = "" if k == 1 else f" in {k} steps"
    if r_g == 0:
        return Condition(True, None, "G = 0: there is no action direction to excite")
    if r_c == r_g:
        return Condition(
            True,
            float(reach.values[-1]),
            f"exploration excites all {r_g} action direction(s){steps}; margin = smallest eigenvalue of W_k^act",
        )
    hidden = f"Σ_e has rank {reach.exploration_rank} of d_a={d_a}" if reach.exploration_rank < d_a else "Σ_e"
    return Condition(
        False,
        float(r_c - r_g),
        f"exploration excites {r_c} of {r_g} action direction(s){steps}: {hidden} "
        "(a deterministic policy component) hides the rest",
    )


def _capacity(reach: _Reach, d_z: int) -> Condition:
    r_c = reach.basis.shape[1]
    ok = d_z >= r_c
    return Condition(
        ok,
        float(d_z - r_c),
        f"d_z={d_z} {'≥' if ok else '<'} rank W_k^act={r_c} (controllable directions over k={reach.k})",
    )


def system_conditions(system: System, horizon: int | str = 1, d_z: int | None = None) -> dict[str, Condition]:
    """The LAM-free conditions of a System at ``horizon`` (an int ≥ 1 or ``"infinite"``).

    ``"infinite"`` uses the infinite-horizon Gramian, which exists only for a stable ``F_cl``
    (``ValueError`` naming ``closed_loop`` otherwise). ``d_z`` adds the capacity condition.
    """
    if not isinstance(system, System):
        raise InputError(f"system: expected a lamproof System, got {type(system).__name__}")
    out = {"controllable": _controllable(system)}
    if horizon == "infinite":
        W = control.infinite_action_gramian(system)  # ValueError naming closed_loop if unstable
        values, vectors = np.linalg.eigh(W)
        keep = values > _RTOL * scale_of(values)
        factor = vectors[:, keep] * np.sqrt(values[keep])
        basis, vals = _range(factor)
        G = system.action_matrix
        WG = control.infinite_gramian(system.closed_loop, G @ G.T, name="closed_loop")
        e_values = np.linalg.eigvalsh(system.exploration_cov)
        reach = _Reach(
            0, _psd_rank(WG), basis, vals, factor, False, int(np.sum(e_values > _RTOL * scale_of(e_values)))
        )
    else:
        if isinstance(horizon, str):
            raise InputError(f"horizon: expected a positive integer or 'infinite', got {horizon!r}")
        reach = _reach(system, as_int(horizon, "horizon", minimum=1, maximum=MAX_HORIZON))
    out["excitation"] = _excitation(reach, system.d_a)
    if d_z is not None:
        out["capacity"] = _capacity(reach, LAMSpec(d_z).check_for(system.d_o).d_z)
    return out


# -- LAM-level conditions ----------------------------------------------------------------------------
def _dominance_margin(S: np.ndarray, U: np.ndarray, d_z: int) -> float:
    """``λ_min(Uᵀ S U) − μ_{d_z − r + 1}``: ``μ`` the eigenvalues of ``S`` compressed to ``U^⊥``
    (``r = rank U``; ``μ = 0`` past the end; ``λ_{d_z+1}(S)`` when ``r > d_z``)."""
    S = (S + S.T) / 2
    r, n = U.shape[1], S.shape[0]
    weakest = float(np.linalg.eigvalsh(U.T @ S @ U)[0])
    if r > d_z:
        values = np.linalg.eigvalsh(S)[::-1]
        return weakest - (float(values[d_z]) if d_z < n else 0.0)
    Q = np.eye(n) - U @ U.T
    mu = np.linalg.eigvalsh(Q @ S @ Q)[::-1][: n - r]  # the compression's spectrum (r zeros dropped)
    index = d_z - r
    return weakest - (float(mu[index]) if index < mu.size else 0.0)


def _sine(U: np.ndarray, V: np.ndarray) -> float:
    """Sine of the largest principal angle of ``span U`` to ``span V`` (both orthonormal)."""
    if U.shape[1] == 0:
        return 0.0
    residual = U - V @ (V.T @ U) if V.shape[1] else U
    return float(np.linalg.norm(residual, 2))


def _dominance(solution: Solution, reach: _Reach) -> tuple[Condition, Condition]:
    """``(dominance, action_captured)``."""
    spec, d_z = solution.spec, solution.spec.d_z
    U = reach.basis
    r_c = U.shape[1]
    if solution.selection is None:
        why = "numeric solution (no closed form): the captured space is not decided exactly"
        return Condition(None, None, why), Condition(None, None, why)
    if r_c == 0:
        why = "no controllable change over k steps: nothing to capture"
        return Condition(True, None, why), Condition(True, None, why)
    sel = solution.selection
    head = spec.action_loss_weight > 0
    if head:
        captured = solution.captured
        margin = sel.eigengap
        unit = "reduced-rank-regression eigengap"
    else:
        captured = sel.captured
        margin = _dominance_margin(solution.innovation_operator, U, d_z)
        unit = "m = weakest controllable eigenvalue − best competitor"
    sine = _sine(U, captured)
    tied = sel.tied
    if sine <= CONTAINMENT_TOL and not tied:
        holds, why = (
            True,
            f"range W_k^act (rank {r_c}) lies in the captured top-{d_z} space; {unit} = {margin:.4g}",
        )
    elif r_c > d_z:
        holds, why = (
            False,
            f"capacity: rank W_k^act={r_c} > d_z={d_z}; sin θ = {sine:.3g} to the captured space",
        )
    elif tied and not head and _sine(U, np.hstack([sel.fixed, sel.tie])) <= CONTAINMENT_TOL:
        in_tie = int(np.sum(np.linalg.svd(sel.tie.T @ U, compute_uv=False) > CONTAINMENT_TOL))
        if in_tie == 0:
            holds, why = (
                True,
                f"range W_k^act lies above the eigenvalue tie at d_z={d_z}; {unit} = {margin:.4g}",
            )
        elif in_tie <= sel.tie_dim:
            holds, why = (
                None,
                f"eigenvalue tie at d_z={d_z} inside range W_k^act: some optimal members capture it, some not",
            )
        else:
            holds, why = (
                False,
                (
                    f"eigenvalue tie at d_z={d_z}: {in_tie} controllable directions share "
                    f"{sel.tie_dim} slot(s), no optimal member captures them all"
                ),
            )
    elif margin is not None and margin > 0 and not tied:  # a tie's gap is round-off, not a margin
        holds, why = (
            False,
            (
                f"range W_k^act is tilted out of the captured space (sin θ = {sine:.3g}): noise or drift "
                f"correlated with the controllable directions; {unit} = {margin:.4g}"
            ),
        )
    else:
        holds, why = (
            False,
            f"other directions outrank the controllable ones ({unit} = {margin:.4g}); sin θ = {sine:.3g}",
        )
    dominance = Condition(holds, None if margin is None else float(margin), why)
    if holds is True:
        captured_why = f"ô' − o carries the whole {reach.k}-step controllable change (M₂u = u)"
    elif holds is None:
        captured_why = why
    else:
        captured_why = f"ô' − o misses part of the controllable change: {why.split(';')[0]}"
    return dominance, Condition(holds, dominance.margin, captured_why)


def exploration_columns(transition) -> np.ndarray:
    """Indices of the stacked sources that carry the horizon's exploration ``e_t … e_{t+k−1}``."""
    columns = getattr(transition, "exploration_columns", None)
    if columns is None:  # a one-frame Transition: its exploration blocks
        columns = transition.source_columns(transition.blocks_of("exploration"))
    return columns


def _change_maps(solution: Solution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source maps of ``ô' − o`` (the canonical member), of the actions, and the exploration columns."""
    t = solution.transition
    f_map = solution.parameters.predicted_change_map @ t.stacked(*OBSERVED)
    a_map = t.maps["action"]
    columns = np.zeros(f_map.shape[1], dtype=bool)
    columns[exploration_columns(t)] = True
    return f_map, a_map, columns


def _recoverable(solution: Solution, reach: _Reach) -> tuple[Condition, Condition]:
    """``(identifiable, actions_recoverable)`` for the canonical member."""
    system, k = solution.system, reach.k
    if solution.selection is None:
        why = "numeric solution (no closed form): not decided"
        return Condition(None, None, why), Condition(None, None, why)
    if solution.unique is False:
        why = "eigenvalue tie: the predicted change differs between optimal members"
        return Condition(None, None, why), Condition(None, None, why)
    M2 = solution.parameters.next_obs_map
    inputs = k * reach.exploration_rank
    top = float(reach.values[0]) if reach.values.size else 0.0
    seen, seen_values = _range(M2 @ reach.exploration_factor, top)
    rank = seen_values.size
    if not reach.thin:  # k·d_a > d_o: the k explorations cannot all be read from a d_o-dimensional change
        rank = min(rank, inputs - 1)
    ok = rank == inputs
    identifiable = Condition(
        ok,
        float(seen_values[-1]) if ok and seen_values.size else float(rank - inputs),
        f"M₂·(k-step exploration map) has rank {rank} of k·rank Σ_e = {inputs}"
        + ("" if ok else ": some explorations leave no distinct trace in ô' − o"),
    )
    if not ok:
        return identifiable, Condition(
            False, float(rank - inputs), "not identifiable: " + identifiable.reason
        )
    # the rest of ô' − o: its o- and noise-driven part z, with covariance T_z Σ T_zᵀ
    f_map, a_map, expl = _change_maps(solution)
    t = solution.transition
    cov = t.source_cov
    T_z = f_map.copy()
    T_z[:, expl] = 0.0
    C_z = T_z @ cov @ T_z.T
    scale = max(top, float(np.trace(C_z)))
    r_z = _psd_rank(C_z, scale) if np.any(C_z) else 0
    joint = C_z + scale * (seen @ seen.T)
    overlap = r_z + seen.shape[1] - _psd_rank(joint, scale)
    separated = overlap == 0
    if not np.any(system.policy_gain):
        if separated:
            return identifiable, Condition(
                True,
                None,
                "exploration part of ô' − o is identifiable and shares no "
                "direction with its noise/observation part: action probe = 0",
            )
        return identifiable, Condition(
            False,
            None,
            f"{overlap} controllable direction(s) of ô' − o also carry noise or "
            "observation drift: action probe > 0",
        )
    # policy feedback: the actions' o- and noise-driven part must be read from ô' − o as well
    F_half, A_half = t.factor(f_map, mean=False), t.factor(a_map, mean=False)
    scale = max(float(np.sum(F_half**2)), float(np.sum(A_half**2)))
    r_f = _rank_rows(F_half, scale)
    extra = _rank_rows(np.vstack([F_half, A_half]), scale) - r_f
    if extra == 0:
        return identifiable, Condition(
            True, None, "actions (policy part included) are a linear function of ô' − o: action probe = 0"
        )
    return identifiable, Condition(
        False,
        None,
        f"{extra} action combination(s) (policy part K o_j or noise) are not "
        "linear in ô' − o: action probe > 0",
    )


def _rank_rows(matrix: np.ndarray, scale: float) -> int:
    if matrix.size == 0:
        return 0
    values = np.linalg.svd(matrix, compute_uv=False) ** 2
    return int(np.sum(values > _RTOL * max(scale, scale_of(values))))


def capture_conditions(solution: Solution) -> dict[str, Condition]:
    """Every capture condition of a solved LAM (docs/theory.md §10), each with a margin and a reason.

    For a state-space system the controllable change is ``H 𝒦_k e`` (the exploration's part of
    ``o_{t+k}``, the same whatever the context), so ``W_k^act`` is ``H W_k Hᵀ`` with ``W_k`` the
    closed loop's Gramian in state space; ``controllable`` is informational, about the state.
    """
    if not isinstance(solution, Solution):
        raise InputError(f"solution: expected a lamproof Solution, got {type(solution).__name__}")
    system, spec = solution.system, solution.spec
    reach = _reach(system, spec.horizon)
    out = {
        "controllable": _controllable(system),
        "excitation": _excitation(reach, system.d_a),
        "capacity": _capacity(reach, spec.d_z),
    }
    out["dominance"], out["action_captured"] = _dominance(solution, reach)
    out["identifiable"], out["actions_recoverable"] = _recoverable(solution, reach)
    return out


# -- thresholds: symbolic, for the paper's families --------------------------------------------------
@cache
def family_thresholds() -> dict[str, sympy.Expr]:
    """Where the captured directions change in the paper's families, solved by SymPy.

    Family (:mod:`lamproof.symbolic.families`): per-direction innovation eigenvalues
    ``(1 − χ)²`` (actions, unit exploration), ``c²σ²`` (structured noise), ``τ²`` everywhere.
    Augmentation family: ``o' = o + δ ΘΘᵀ o + Φ e`` (drift ``δ`` in directions ``Θ ⟂ Φ``);
    without augmentation ``A`` predicts the drift for free; with scale ``s`` leaving a drift
    direction to ``A`` costs ``min_α (δ − α)² + s²α² = δ²s²/(1 + s²)``.

    Returns ``{"sigma": σ*, "c": c*, "lambda": λ*, "s": s*}``: structured noise first iff
    ``σ > σ*`` (``σ² > 1`` at ``c = 1, χ = 0``); actions first iff ``c < c*``; under the action
    loss (``χ = 0``) actions first iff ``λ > λ*`` (``1 + λ > c²σ²``); drift first iff ``s > s*``
    (needs ``δ > 1``).
    """
    import sympy

    from lamproof.symbolic import families as fam

    sigma_star, _ = fam.dominance_threshold()
    c_pos, s_pos, chi_pos = sympy.symbols("c sigma chi", positive=True)
    gap = (fam.ACTION - fam.NOISE).subs({fam.c: c_pos, fam.sigma: s_pos, fam.chi: chi_pos})
    roots = [
        r
        for r in sympy.solve(sympy.Eq(gap, 0), c_pos)
        if r.subs({chi_pos: sympy.Rational(1, 2), s_pos: 1}) > 0
    ]
    c_star = sympy.simplify(
        roots[0].subs({s_pos: fam.sigma, chi_pos: fam.chi}).subs(sympy.Abs(fam.chi - 1), 1 - fam.chi)
    )
    block_values = fam.rrr_block().eigenvals()
    action_value = max(block_values, key=lambda v: v.subs(fam.lam, 1))  # 1 + λ
    (lam_star,) = sympy.solve(sympy.Eq(action_value, fam.c**2 * fam.sigma**2), fam.lam)
    delta, s, alpha = sympy.symbols("delta s alpha", positive=True)
    cost = (delta - alpha) ** 2 + s**2 * alpha**2
    (alpha_opt,) = sympy.solve(sympy.diff(cost, alpha), alpha)
    drift_value = sympy.simplify(cost.subs(alpha, alpha_opt))
    s_roots = [r for r in sympy.solve(sympy.Eq(drift_value, 1), s) if r.subs(delta, 2) > 0]  # δ > 1
    s_star = sympy.simplify(sympy.powsimp(s_roots[0], force=True))
    return {
        "sigma": sigma_star,
        "c": c_star,
        "lambda": lam_star,
        "s": s_star,
        "drift_value": drift_value,
        "delta": delta,
        "s_symbol": s,
    }


def family_action_captured(*, head: bool = False) -> sympy.Boolean:
    """``action_captured`` in the structured family: ``d_z ≥ d_a`` and the actions beat the noise
    (``(1 − χ)² > c²σ²``; with an action head and ``χ = 0``: ``1 + λ > c²σ²``), or the latent has
    room for both blocks (``d_z ≥ d_a + d_b``)."""
    import sympy

    from lamproof.symbolic import families as fam

    beats = (
        (1 + fam.lam > fam.c**2 * fam.sigma**2) if head else ((1 - fam.chi) ** 2 > fam.c**2 * fam.sigma**2)
    )
    return sympy.Or(sympy.And(fam.d_z >= fam.d_a, beats), fam.d_z >= fam.d_a + fam.d_b)


# -- thresholds: numeric, for an explicit system ------------------------------------------------------
#: Bisection stops when the bracket is below this relative width (of the threshold, or absolute near 0).
BISECTION_RTOL = 1e-9
_SEARCH_CEILING = 1e6


def _captured(system: System, spec: LAMSpec) -> bool | None:
    solution = solve(system, spec, allow_numeric=False)
    reach = _reach(system, spec.horizon)
    return _dominance(solution, reach)[1].holds


def _bisect(predicate, low: float, high: float) -> float:
    """The boundary in ``[low, high]`` where ``predicate`` (True at ``low``) turns False at ``high``.

    Close enough to the boundary the competing eigenvalues tie to within float64's resolution and
    the solver refuses (:class:`IllConditioned`): that point is the boundary, as well as float64
    can locate it.
    """
    while high - low > BISECTION_RTOL * max(1.0, abs(high)):
        middle = (low + high) / 2
        try:
            above = predicate(middle)
        except IllConditioned:
            return middle
        if above:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _check_problem(system, spec) -> None:
    if not isinstance(system, System):
        raise InputError(f"system: expected a lamproof System, got {type(system).__name__}")
    if not isinstance(spec, LAMSpec):
        raise InputError(f"spec: expected a lamproof LAMSpec, got {type(spec).__name__}")
    spec.check_for(system.d_o)


def cleaning_threshold(system: System, spec: LAMSpec) -> Threshold:
    """The largest cleaning factor ``c*`` (noise ``ε → c ε``) with the controllable change captured.

    Captured for ``c < c*``, not beyond (found by bisection on the solved eigen-structure;
    ``inf`` when noise never competes, ``0`` when even a little noise tilts the captured space,
    ``None`` when it is not captured with the noise removed). margin ``c* − 1``.
    """
    _check_problem(system, spec)

    def captured(c: float) -> bool:
        scaled = system.with_noise_scaled(c)  # validated once, above
        try:
            return bool(_captured(scaled, spec))
        except NoClosedForm:
            raise InputError("spec: this system and LAM have no closed form; thresholds need one") from None

    now = captured(1.0)
    if not np.any(system.noise_cov) and not np.any(system.noise_mean):
        return Threshold(
            "c",
            float("inf") if now else None,
            1.0,
            now,
            float("inf") if now else None,
            "no noise to clean" + ("" if now else ": not captured for another reason"),
        )
    if not captured(0.0):
        return Threshold(
            "c", None, 1.0, False, None, "not captured even without noise (c = 0): capacity or drift"
        )
    high = 1.0
    while captured(high):
        high *= 2.0
        if high > _SEARCH_CEILING:
            return Threshold(
                "c", float("inf"), 1.0, True, float("inf"), "noise never competes with the actions"
            )
    value = _bisect(captured, 0.0, high)
    return Threshold(
        "c",
        value,
        1.0,
        now,
        value - 1.0,
        f"captured iff c < c* = {value:.6g} (noise scaled by c); the data are at c = 1",
    )


def action_weight_threshold(system: System, spec: LAMSpec) -> Threshold:
    """The smallest action-loss weight ``λ*`` above which the controllable change is captured.

    Needs the closed form of the action head (no observation–action correlation). margin
    ``λ − λ*`` at the spec's weight.
    """
    _check_problem(system, spec)

    def captured(weight: float) -> bool:
        try:
            return bool(_captured(system, LAMSpec(**{**spec.to_dict(), "action_loss_weight": weight})))
        except NoClosedForm:
            raise InputError(
                "spec: an action head has no closed form for this system "
                "(E[a oᵀ] ≠ 0 or a fixed/tied variant)"
            ) from None

    weight = spec.action_loss_weight
    now = captured(max(weight, 1e-12)) if weight == 0 else captured(weight)
    if captured(1e-12):
        return Threshold("lambda", 0.0, weight, now, weight, "captured at any action weight")
    high = 1.0
    while not captured(high):
        high *= 2.0
        if high > _SEARCH_CEILING:
            return Threshold("lambda", None, weight, now, None, f"not captured for λ ≤ {_SEARCH_CEILING:g}")
    value = _bisect(lambda w: not captured(w), 1e-12, high)
    return Threshold(
        "lambda",
        value,
        weight,
        now,
        weight - value,
        f"captured iff λ > λ* = {value:.6g}; the spec has λ = {weight:g}",
    )
