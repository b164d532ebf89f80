"""The exact optimum of the linear LAM, and a description of the whole optimal family.

The LAM sees ``x = [obs; o']``: its first input ``obs`` (the frame ``o_t``, or a stack of frames
ending with it; ``o_t = E · obs``) and the frame it predicts, ``o'``. Write ``v = o' − L_b obs``
for what the latent must explain: ``L_b = L``, the best linear prediction of ``o'`` from ``obs``,
when the FDM learns ``A``; ``L_b = E`` when its observation path is the identity. Because
``E[v obsᵀ] = 0`` for ``L_b = L``, the loss splits into a part that ``A`` zeroes and
``tr((M₂ − I) S_v (M₂ − I)ᵀ)``, so the optimum is ``M₂ = P``, the projector on a top-``d_z``
eigenspace of ``S_v`` (Eckart–Young), and the minimal loss is the eigenvalue tail.

Everything is computed on square-root factors (:meth:`lamproof.systems.Transition.factor`): the
innovation's factor is the projection ``V = X_{o'} (I − Π_{row X_obs})``, not a difference of
second moments, so a direction of tiny variance that the dynamics amplify (``Σ_o = diag(1,
1e-12)``, ``F = diag(1, 1e6)``) is regressed out, not cut. Ranks and ties are decided relative to
their own scale (:mod:`lamproof.numeric.tolerances`); what float64 cannot decide is refused.

An auxiliary action loss turns the problem into reduced-rank regression of ``[v; √λ a]`` on
``v`` (exact when ``E[a obsᵀ] = 0``); augmentation adds a penalty that is zero on the clean member
``C = −D E, A = E`` (exact when that member is optimal without it). Everything else falls back to
the population minimizer of :mod:`lamproof.numeric.population`, and the solution says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lamproof.errors import IllConditioned, InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.families import (
    DriftTieFamily,
    Family,
    PointFamily,
    SubspaceFamily,
    TieChoice,
    full_column_rank,
    transform_latent,
)
from lamproof.numeric.linalg import (
    Spectrum,
    TopEigenspace,
    canonical_tie,
    kernel_basis,
    orthonormal_basis,
    project_out,
    row_scales,
    row_space,
    settle_grey,
    top_eigenspace,
)
from lamproof.numeric.lowrank import LowRankSolution, LowRankSystem, solve_lowrank
from lamproof.numeric.objective import OBSERVED, LAMParameters, ObjectiveValue
from lamproof.numeric.tolerances import (
    ACTION_WEIGHT_RATIO_MAX,
    DECISION_RTOL,
    ROUNDOFF_RTOL,
)
from lamproof.statespace import StateSpaceSystem
from lamproof.systems import System, Transition


class NoClosedForm(Exception):
    """This system and spec have no closed-form optimum here; the message says why."""


@dataclass(frozen=True, eq=False)
class Solution:
    """An optimal linear LAM, how it was found, and what else is equally optimal.

    Contract (paper §3; docs/theory.md §2–§3): ``parameters`` is the canonical optimum
    (``M₂ = BD`` the projector on the top-``d_z`` eigenspace of the innovation ``S_v``,
    ``M₁ = (I − P)L``); ``optimal_loss`` is ``Σ_{i>d_z} λ_i(S_v)``; ``innovation`` holds ``S_v``'s
    eigen-structure; ``unique`` says whether the optimal prediction is unique (an eigenvalue tie
    makes it a family); ``latent_family``/``change_family`` describe every other optimal member
    (probes read ranges over them); ``notes`` say what the numbers do not.

    >>> sol = solve(System([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), LAMSpec(d_z=1))
    >>> sol.method, sol.innovation.eigenvalues.round(6).tolist(), sol.optimal_loss, sol.unique
    ('closed-form', [1.0, 1.0, 0.0], 1.0, False)
    """

    system: System | StateSpaceSystem
    spec: LAMSpec
    transition: Transition
    method: str  # "closed-form" | "numeric"
    parameters: LAMParameters  # the canonical member
    value: ObjectiveValue
    innovation: TopEigenspace  # eigen-structure of S_v, v = o' − L_b obs
    selection: TopEigenspace | None  # the operator whose top eigenspace is the latent
    latent_family: Family | None  # None: not known (numeric solution)
    change_family: Family | None
    sample_member: Callable[[np.random.Generator], LAMParameters] | None = field(repr=False, default=None)
    notes: tuple[str, ...] = ()
    innovation_factor: np.ndarray | None = field(repr=False, default=None)  # V with S_v = V Vᵀ

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
    def innovation_operator(self) -> np.ndarray:
        """``S_v = E[v vᵀ]``, the operator whose top eigenspace the latent captures (no action head)."""
        V = self.innovation_factor
        return V @ V.T

    def _repr_html_(self) -> str:  # Jupyter: the spectrum and the probe table (lamproof.display)
        from lamproof.display import solution_html

        return solution_html(self)

    def _repr_latex_(self) -> str:
        from lamproof.display import solution_latex

        return solution_latex(self)

    @property
    def captured(self) -> np.ndarray:
        """Orthonormal basis of the range of ``M₂ = B D``: the change directions the latent carries."""
        return captured_basis(self.parameters)


def captured_basis(params: LAMParameters) -> np.ndarray:
    """Orthonormal basis of the range of a member's ``M₂ = B D``: the change directions its latent carries.

    With ``Dᵀ = Q R`` (``Q`` orthonormal columns), ``range(B D) = range(B Rᵀ)``: d_o × d_z work.
    """
    _, R = np.linalg.qr(params.D.T)
    return orthonormal_basis(params.B @ R.T)


def solve(
    system: System | StateSpaceSystem | LowRankSystem,
    spec: LAMSpec,
    *,
    allow_numeric: bool = True,
    seed: int = 0,
    transition: Transition | None = None,
) -> Solution | LowRankSolution:
    """The optimal LAM: in closed form where one exists, else by the population minimizer.

    ``system`` is a :class:`~lamproof.systems.System` or a
    :class:`~lamproof.statespace.StateSpaceSystem`; the LAM reads its window
    ``system.transition(spec.horizon, spec.context)`` (or ``transition``, which must be a window
    of ``spec.horizon`` steps and ``spec.context`` frames). Raises
    :class:`~lamproof.errors.IllConditioned` when float64 cannot decide a rank or a tie the answer
    depends on, and :class:`~lamproof.errors.InputError` when the window's moments are not finite.

    Formula (paper §3, insight 1; docs/theory.md §2): ``ô' = L o + P r`` with ``P`` the projector on
    a top-``d_z`` eigenspace of the innovation's second moment and minimal loss
    ``Σ_{i>d_z} λ_i``; augmentation, an action head and horizons as in docs/theory.md §4, §8, §9.

    >>> from lamproof import paper_system
    >>> sol = solve(paper_system(8, 2), LAMSpec(d_z=1))  # §4.1: no noise, d_z < d_a
    >>> round(sol.optimal_loss, 12)  # one of two unit action directions lost
    1.0

    A :class:`~lamproof.numeric.lowrank.LowRankSystem` (the paper's form as factors, any ``d_o``) is
    solved through its low-rank structure (:func:`~lamproof.numeric.lowrank.solve_lowrank`) and
    gives a :class:`~lamproof.numeric.lowrank.LowRankSolution`, which :func:`~lamproof.probe` and
    :func:`~lamproof.all_probes` read the same way.
    """
    if isinstance(system, LowRankSystem):
        if transition is not None:
            raise InputError("transition: a low-rank system is solved on its own reduced window")
        return solve_lowrank(system, spec, allow_numeric=allow_numeric)
    if not isinstance(system, (System, StateSpaceSystem)):
        raise InputError(
            "system: expected a lamproof System, StateSpaceSystem or LowRankSystem, got "
            f"{type(system).__name__}"
        )
    if not isinstance(spec, LAMSpec):
        raise InputError("spec: expected a lamproof LAMSpec")
    spec.check_for(system.d_o)
    if transition is None:
        transition = system.transition(spec.horizon, spec.context)
    elif (transition.horizon, transition.context) != (spec.horizon, spec.context):
        raise InputError(
            f"transition: a window of horizon {transition.horizon} and context {transition.context} "
            f"cannot serve a LAM of horizon {spec.horizon} and context {spec.context}"
        )
    try:
        return _closed_form(system, spec, transition)
    except NoClosedForm as reason:
        if not allow_numeric:
            raise
        return _numeric(system, spec, transition, str(reason), seed)


# -- moments -----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Moments:
    """Factors of ``x = [obs; o']`` (second moments), the regression ``L`` and the innovation ``V``."""

    X: np.ndarray  # (d_c + d_o) × white, with the constant column
    d_c: int
    d_o: int
    E: np.ndarray  # o_t = E obs
    L: np.ndarray  # best linear prediction of o' from obs (d_o × d_c)
    scale: float  # size of the ingredients of V (Frobenius norm of o' 's factor)
    _paths: dict = field(default_factory=dict, repr=False)  # path(learned) → _Path, shared by every spec

    @property
    def X_c(self) -> np.ndarray:
        return self.X[: self.d_c]

    @property
    def X_p(self) -> np.ndarray:
        return self.X[self.d_c :]

    def innovation(self, L_b: np.ndarray) -> np.ndarray:
        return self.X_p - L_b @ self.X_c

    def path(self, learned: bool) -> _Path:
        """The innovation of one FDM path (learned ``A``: ``L_b = L``; identity: ``E``), its spectrum
        and tie orderings: computed once and shared by every spec on this transition (a ``d_z`` sweep)."""
        if learned not in self._paths:
            self._paths[learned] = _Path(self, self.L if learned else self.E)
        return self._paths[learned]

    @cached_property
    def drift_scale(self) -> float:
        """The size of what a drift ``(L − E) obs`` is a difference of (``L obs`` and ``E obs``)."""
        return self.scale + float(np.linalg.norm(self.E @ self.X_c))

    def significant(self, M: np.ndarray) -> np.ndarray:
        """``M`` with the output directions of ``M · obs`` that are round-off removed.

        A drift computed as a difference (``L − E``, or its part outside a subspace) carries
        round-off of ``eps`` times its ingredients in every direction; left as is, a probe would read
        those directions as (tiny but exact) signal. Their size is judged against
        :attr:`drift_scale` through the SVD of ``M X_obs``, so the cleaning does not depend on the basis.
        """
        if not np.any(M):
            return M
        F = M @ self.X_c
        if (
            float(np.linalg.norm(F)) <= ROUNDOFF_RTOL * self.drift_scale
        ):  # σ_max ≤ ‖F‖_F: every direction goes
            return np.zeros_like(M)
        u, s, _ = np.linalg.svd(F, full_matrices=False)
        keep = u[:, s > ROUNDOFF_RTOL * self.drift_scale]
        return keep @ (keep.T @ M)

    def orderings(self, L_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matrices on ``o'``-space that order a tied eigenspace (:func:`canonical_tie`): the drift's
        second moment, then ``o'``'s."""
        drift = (L_b - self.E) @ self.X_c
        return drift @ drift.T, self.X_p @ self.X_p.T

    def state(self, M: np.ndarray) -> str:
        """Whether the drift-like ``M · obs`` is ``"zero"``, ``"real"`` or ``"grey"`` in mean square,
        relative to what it is a difference of (``L obs`` and ``E obs``: the factors of ``o'`` and ``o_t``)."""
        size = float(np.linalg.norm(M @ self.X_c))
        reference = self.drift_scale
        if size <= ROUNDOFF_RTOL * reference:
            return "zero"
        return "real" if size >= DECISION_RTOL * reference else "grey"

    @cached_property
    def _drift_state(self) -> str:
        return self.state(self.L - self.E)

    def drift_vanishes(self) -> bool:
        """:meth:`vanishes` of the observation drift ``(L − E) obs``, decided once per transition."""
        return self._decided(self._drift_state, "observation drift (L − E) obs")

    def vanishes(self, M: np.ndarray, what: str) -> bool:
        """:meth:`state`, refusing (:class:`IllConditioned`, naming ``what``) where it is undecidable."""
        return self._decided(self.state(M), what)

    @staticmethod
    def _decided(state: str, what: str) -> bool:
        if state == "grey":
            raise IllConditioned(
                f"{what}: its size lies between round-off and signal; float64 cannot decide "
                "whether it vanishes"
            )
        return state == "zero"


class _Path:
    """What every spec with one FDM path shares: ``L_b``, the innovation factor ``V = X_{o'} − L_b X_obs``,
    the :class:`~lamproof.numeric.linalg.Spectrum` of ``S_v`` and the orderings of a tie."""

    def __init__(self, m: _Moments, L_b: np.ndarray):
        self.m, self.L_b = m, L_b
        self.V = m.innovation(L_b)
        self.spectrum = Spectrum(self.V)

    @cached_property
    def orderings(self) -> tuple[np.ndarray, np.ndarray]:
        return self.m.orderings(self.L_b)

    def action_regression(self, A_f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Pv, Â, to_ξ)`` of the action head's reduced-rank regression, which do not depend on its
        weight λ: an orthonormal basis ``Pv`` of ``row(V)``, the part ``Â = A_f Pv Pvᵀ`` of the action
        (factor ``A_f``, this transition's) that the innovation predicts, and ``to_ξ`` with
        ``ξ = to_ξ v`` on ``row(V)``. Computed once per transition (a sweep over d_z and λ)."""
        if not hasattr(self, "_action"):
            V, m = self.V, self.m
            space = row_space(V, row_scales(np.eye(m.d_o), V) + ROUNDOFF_RTOL * m.scale)
            Pv = space.basis  # orthonormal basis of row(V) in white coordinates
            u, s, vt = np.linalg.svd(V @ Pv, full_matrices=False)  # v = (V Pv) ξ on row(V)
            # ξ = to_xi v: no singular-value floor, every kept direction is real
            self._action = (Pv, (A_f @ Pv) @ Pv.T, (vt.T / s) @ u.T)
        return self._action


def _regression(X_c: np.ndarray, X_p: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``L`` with ``L X_c = X_p Π_basis``: the best linear prediction of ``o'`` from ``obs``.

    Solved through the row-scaled factor (``X_c = Dg · X̃``, ``X̃`` well conditioned on ``basis``),
    so that a direction of tiny but real variance is inverted, not cut by a singular-value floor.
    """
    d_c, d_o = X_c.shape[0], X_p.shape[0]
    if basis.shape[1] == 0:
        return np.zeros((d_o, d_c))
    scales = np.linalg.norm(X_c, axis=1)
    inverse = np.divide(1.0, scales, out=np.zeros_like(scales), where=scales > 0)
    u, s, vt = np.linalg.svd(inverse[:, None] * (X_c @ basis), full_matrices=False)
    return ((X_p @ basis) @ (vt.T / s) @ u.T) * inverse[None, :]


#: :func:`_regression_fast` is taken when every pivot of the row-normalized Gram matrix of ``X_obs``
#: exceeds this: every direction of ``obs`` is then real by a wide margin (relative singular values
#: above 1e-3, far above ``DECISION_RTOL``, so there is nothing to decide) and the triangular solves
#: lose at most ~1e-13 relative accuracy (the same rule as the probes' Cholesky path).
REGRESSION_FAST_PIVOT = 1e-6


def _regression_fast(X_c: np.ndarray, X_p: np.ndarray) -> np.ndarray | None:
    """:func:`_regression` through a Cholesky factor when ``obs``'s second moment is well conditioned.

    With ``X̃ = Dg⁻¹ X_c`` (rows normalized) and ``X̃ X̃ᵀ = R Rᵀ``, ``B = (R⁻¹ X̃)ᵀ`` is an orthonormal
    basis of the row space and ``L = X_p B R⁻¹ Dg⁻¹`` solves ``L X_c = X_p Π``: three products and
    two triangular solves instead of two SVDs. ``None`` when some pivot is small (rank or
    conditioning to decide: the SVD route does it).
    """
    import scipy.linalg

    scales = np.linalg.norm(X_c, axis=1)
    if X_c.shape[0] == 0 or np.any(scales <= 0):
        return None
    scaled = X_c / scales[:, None]
    try:
        R = np.linalg.cholesky(scaled @ scaled.T)
    except np.linalg.LinAlgError:
        return None
    if float(np.min(np.diag(R))) ** 2 < REGRESSION_FAST_PIVOT:
        return None
    basis_t = scipy.linalg.solve_triangular(R, scaled, lower=True)  # Bᵀ: orthonormal rows
    M = X_p @ basis_t.T
    return scipy.linalg.solve_triangular(R, M.T, lower=True, trans="T").T / scales[None, :]


def moments(transition: Transition) -> _Moments:
    """The factors, the regression ``L`` and the frame selector of a transition, cached on it.

    The one home of the innovation: :func:`lamproof.context.innovation` reads it too.
    """
    return transition.memo(("closed_form_moments",), lambda: _moments(transition))


def _moments(transition: Transition) -> _Moments:
    X = transition.factor(OBSERVED)
    if not np.all(np.isfinite(X)):
        raise InputError(
            "system: the window's second moments are not finite in float64 (the dynamics grow too "
            "fast over the window; shorten the horizon or the context, or rescale)"
        )
    E = transition.frame_selector
    d_o, d_c = E.shape
    X_c, X_p = X[:d_c], X[d_c:]
    L = _regression_fast(X_c, X_p)
    if L is None:
        space = row_space(X_c)
        settle_grey(
            space,
            lambda basis: project_out(X_p, basis),
            "obs: the second moment of the LAM's first input (regressing o' on it)",
        )
        L = _regression(X_c, X_p, space.basis)
    scale = float(np.linalg.norm(X_p)) or float(np.linalg.norm(X_c)) or 1.0
    m = _Moments(X, d_c, d_o, E, L, scale)
    # L = E + drift, with the round-off directions of the drift removed (exactly E when it has none)
    return _Moments(X, d_c, d_o, E, E + m.significant(L - E), scale)


# -- the closed form -----------------------------------------------------------------------------------
def _closed_form(system: System, spec: LAMSpec, transition: Transition) -> Solution:
    m = moments(transition)
    d_c, d_o, d_z, E, L = m.d_c, m.d_o, spec.d_z, m.E, m.L
    learned = spec.fdm_obs_path == "learned"
    path = m.path(learned)
    L_b, V = path.L_b, path.V
    innovation = top_eigenspace(
        V,
        d_z,
        scale=m.scale,
        what="innovation second moment S_v (its rank or tie at d_z)",
        spectrum=path.spectrum,
    )
    innovation = canonical_tie(innovation, *path.orderings) if innovation.tied else innovation
    drift_free = lambda: not learned or m.drift_vanishes()  # noqa: E731
    if spec.action_loss_weight > 0:
        return _with_action_head(system, spec, transition, m, V, innovation, drift_free)

    clean = spec.augmentation > 0 or not learned or spec.idm == "tied"
    if spec.augmentation > 0 and learned and not drift_free():
        uncaptured = project_out((L - E).T, innovation.captured).T  # (I − P)(L − E), P = U Uᵀ
        if innovation.tied or not m.vanishes(uncaptured, "uncaptured drift (I − P)(L − E) obs"):
            raise NoClosedForm(
                "augmentation with L ≠ E: the clean member is not optimal without augmentation, so "
                "the penalty trades off against reconstruction (docs/theory.md, augmentation)"
            )
    leak = learned and not clean

    def build(U: np.ndarray) -> LAMParameters:
        p = U.shape[1]
        B = np.zeros((d_o, d_z))
        B[:, :p] = U
        D = np.zeros((d_z, d_o))
        D[:p] = U.T
        if leak:  # free IDM, learned A: z = Uᵀ v; any obs may ride along (see the latent family)
            C, A = -D @ L, L.copy()
        else:  # the clean latent z = Uᵀ(o' − E obs)
            C = -D @ E
            # (I − P) L + P E with P = U Uᵀ, d_z rows first: no d_o³ product
            A = E.copy() if (not learned or spec.augmentation > 0) else L + U @ (U.T @ (E - L))
        return LAMParameters(A, B, C, D, E=E)

    params = build(innovation.captured)
    tail = float(np.sum(innovation.eigenvalues[innovation.rank :]))
    value = ObjectiveValue(tail, 0.0, 0.0, tail)  # Eckart–Young; the clean member pays no penalty
    v_map = np.hstack([-L_b, np.eye(d_o)])
    delta_map = np.hstack([-E, np.eye(d_o)])
    tie = _tie_choice(innovation, build)
    latent = _latent_family(
        innovation, build, params, L, v_map, delta_map, d_c, d_z, leak=leak, tied_idm=spec.idm == "tied"
    )
    change = _change_family(innovation, params, L_b - E, v_map, tie, m)
    notes = []
    if innovation.tied:
        notes.append(
            f"eigenvalue tie at d_z={d_z}: any {innovation.tie_dim} of {innovation.tie.shape[1]} tied "
            "directions may be captured"
        )
    if leak:
        notes.append(
            "observation leakage is free: z = D v + N obs is optimal for every N (docs/theory.md §3)"
        )
    if innovation.rank < d_z:
        notes.append(f"{d_z - innovation.rank} latent dimension(s) carry nothing the loss needs and are free")

    def sample(rng: np.random.Generator) -> LAMParameters:
        member = build(_random_tie_choice(innovation, rng))
        return _perturb(member, rng, p=innovation.rank, d_z=d_z, leak=leak, tied=spec.idm == "tied", E=E)

    return Solution(
        system,
        spec,
        transition,
        "closed-form",
        params,
        value,
        innovation,
        innovation,
        latent,
        change,
        sample,
        tuple(notes),
        V,
    )


def _tie_choice(space: TopEigenspace, build: Callable[[np.ndarray], LAMParameters]) -> TieChoice | None:
    if not space.tied:
        return None
    fixed, tie = space.fixed, space.tie
    return TieChoice(tie.shape[1], space.tie_dim, lambda Q: build(np.hstack([fixed, tie @ Q])))


def _random_tie_choice(space: TopEigenspace, rng: np.random.Generator) -> np.ndarray:
    """A captured basis with a uniformly random choice inside the tied eigenspace."""
    if not space.tied:
        return space.captured
    q, _ = np.linalg.qr(rng.standard_normal((space.tie.shape[1], space.tie_dim)))
    return np.hstack([space.fixed, space.tie @ q])


def _perturb(
    params: LAMParameters,
    rng,
    *,
    p: int,
    d_z: int,
    leak: bool,
    tied: bool,
    E: np.ndarray,
    head_kernel: np.ndarray | None = None,
) -> LAMParameters:
    """A random member near ``params``: leakage along the free directions and random spare rows."""
    d_c = params.C.shape[1]
    width = d_c + params.D.shape[1]
    rows = []
    if leak:
        scale = rng.choice([0.1, 1.0, 10.0])
        N_obs = rng.standard_normal((p, d_c)) * scale
        if head_kernel is not None:  # with an action head only the head's blind directions may leak
            N_obs = head_kernel @ (head_kernel.T @ N_obs)
        rows.append(np.hstack([N_obs, np.zeros((p, width - d_c))]))
    else:
        rows.append(np.zeros((p, width)))
    spare = d_z - p
    if spare:
        if tied:
            D_s = rng.standard_normal((spare, width - d_c))
            rows.append(np.hstack([-D_s @ E, D_s]))
        else:
            rows.append(rng.standard_normal((spare, width)))
    T = np.vstack([np.eye(p), np.zeros((spare, p))])
    return transform_latent(params, T, np.vstack(rows), d_z)


def _spare_rows(spare_space: np.ndarray, p: int, d_z: int, params: LAMParameters):
    """Members whose spare latent coordinates (those the FDM ignores) are ``Y @ spare_space``."""

    def member(Y: np.ndarray) -> LAMParameters:
        k = Y.shape[0]
        T = np.vstack([np.eye(p), np.zeros((k, p))])
        N = np.vstack([np.zeros((p, spare_space.shape[1])), Y @ spare_space])
        return transform_latent(params, T, N, d_z)

    return member


def _leak_member(params: LAMParameters, U: np.ndarray, L: np.ndarray, d_c: int, d_z: int):
    """Members of the leakage family with latent ``α Uᵀ o' + β obs`` (``Y = [α, β]``)."""
    p = U.shape[1]

    def member(Y: np.ndarray) -> LAMParameters:
        alpha, beta = full_column_rank(Y[:, :p], float(np.linalg.norm(Y))), Y[:, p:]
        width = params.D.shape[1]
        N = np.hstack([alpha @ U.T @ L + beta, np.zeros((Y.shape[0], width))])
        return transform_latent(params, alpha, N, d_z)

    return member


def _latent_family(
    innovation, build, params, L, v_map, delta_map, d_c, d_z, *, leak: bool, tied_idm: bool
) -> Family:
    p, spare = innovation.rank, d_z - innovation.rank
    obs_rows = np.hstack([np.eye(d_c), np.zeros((d_c, v_map.shape[0]))])
    next_rows = np.hstack([np.zeros((v_map.shape[0], d_c)), np.eye(v_map.shape[0])])
    spare_space = delta_map if tied_idm else np.eye(d_c + v_map.shape[0])

    def for_basis(U: np.ndarray, member: LAMParameters) -> Family:
        """The exact family once the captured basis ``U`` is chosen."""
        if leak:  # closure of {Uᵀ v + N obs}: any k-subspace of span(Uᵀ o', obs), p ≤ k ≤ d_z
            free = np.vstack([U.T @ next_rows, obs_rows])
            return SubspaceFamily(
                np.zeros((0, free.shape[1])), free, p, d_z, member, _leak_member(member, U, L, d_c, d_z)
            )
        fixed = U.T @ delta_map
        if spare == 0:
            return PointFamily(fixed, member)
        return SubspaceFamily(fixed, spare_space, 0, spare, member, _spare_rows(spare_space, p, d_z, member))

    if not innovation.tied:
        return for_basis(innovation.captured, params)
    tie = _tie_choice(innovation, build)
    fixed_u, tie_u, k_t = innovation.fixed, innovation.tie, innovation.tie_dim

    def split(Q: np.ndarray) -> Family:
        U = np.hstack([fixed_u, tie_u @ Q])
        return for_basis(U, build(U))

    if leak:  # every member lies in span(fixed, tie)ᵀ o' + obs: outer
        free = np.vstack([np.hstack([fixed_u, tie_u]).T @ next_rows, obs_rows])
        # in innovation coordinates (uncorrelated with obs) for the symmetry certificate
        parts = (np.vstack([fixed_u.T @ v_map, obs_rows]), np.zeros((0, free.shape[1])), tie_u.T @ v_map)
        return SubspaceFamily(
            np.zeros((0, free.shape[1])), free, p, d_z, params, exact=False, tie=tie, split=split, parts=parts
        )
    fixed = fixed_u.T @ delta_map
    tie_rows = tie_u.T @ delta_map
    if spare == 0:
        return SubspaceFamily(
            fixed,
            tie_rows,
            k_t,
            k_t,
            params,
            lambda Y: tie.build(orthonormal_basis(Y.T)),
            tie=tie,
            split=split,
            parts=(fixed, np.zeros((0, fixed.shape[1])), tie_rows),
        )
    return SubspaceFamily(
        fixed, spare_space, k_t, k_t + spare, params, exact=False, free_for_min=tie_rows, tie=tie, split=split
    )


def _change_family(innovation, params, drift, v_map, tie: TieChoice | None, m: _Moments) -> Family:
    """The predicted change ``ô' − o_t = (L_b − E) obs + P v`` over the family.

    With a tie, write the change in the coordinates of the fixed captured directions ``U_f``, the
    tied eigenspace ``W`` and the rest: the first and last do not depend on the choice ``Q``
    (rows ``φ``); the tie coordinates are ``n + Q Qᵀ w`` with ``n = Wᵀ (L_b − E) obs`` and
    ``w = Wᵀ v`` (:class:`DriftTieFamily`). Where ``n`` carries nothing beyond ``φ`` on a probe's
    distribution the members' features are ``φ`` plus ``Qᵀ w``, a subspace family; the probes
    decide that per distribution.
    """
    d_o, d_c = drift.shape
    if not innovation.tied:
        U = innovation.captured
        if not np.any(drift):  # identity path with E obs = o_t exactly: Uᵀ v carries the same information
            return PointFamily(U.T @ v_map, params)
        return PointFamily(_compressed(params.predicted_change_map, drift, U), params)
    W, U_f = innovation.tie, innovation.fixed
    outside = m.significant(drift - W @ (W.T @ drift))  # the drift beyond the tie (differences: cleaned)
    inside = m.significant(W @ (W.T @ drift))
    phi = np.hstack([outside, np.zeros((d_o, d_o))]) + U_f @ (U_f.T @ v_map)
    phi = _compressed(phi, outside, U_f)
    # Turn the tie basis so that the drift lives in its leading coordinates and is exactly zero in
    # the others (else those rows carry round-off that a scale-free probe would read as signal).
    u, s, _ = np.linalg.svd(W.T @ inside @ m.X_c, full_matrices=True)
    rank = int(np.sum(s > ROUNDOFF_RTOL * m.drift_scale))
    W_turned = W @ u
    n = W_turned.T @ np.hstack([inside, np.zeros((d_o, d_o))])
    n[rank:] = 0.0
    turned = TieChoice(tie.m, tie.k, lambda Q: tie.build(u @ Q), canonical=u.T[:, : tie.k])
    return DriftTieFamily(phi, n, W_turned.T @ v_map, turned, params)


def _compressed(rows: np.ndarray, drift: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Rows of a change map, re-expressed in an orthonormal basis of the space they move in.

    A predicted change lies in ``range(drift) + range(U)``; projecting its ``d_o`` rows onto an
    orthonormal basis of (a superset of) that space keeps the information and makes the probes'
    work small. Columns are normalized first, so a small but real drift is kept.
    """
    columns = np.hstack([drift, U])
    norms = np.linalg.norm(columns, axis=0)
    columns = columns[:, norms > 0] / norms[norms > 0]
    if columns.shape[1] == 0:
        return np.zeros((0, rows.shape[1]))
    u, s, _ = np.linalg.svd(columns, full_matrices=False)
    return u[:, s > ROUNDOFF_RTOL * s[0]].T @ rows


# -- the action head: reduced-rank regression ------------------------------------------------------------
def _with_action_head(system, spec, transition, m: _Moments, V, innovation, drift_free) -> Solution:
    """Reduced-rank regression of ``y = [v; √λ a]`` on the innovation ``v``."""
    d_c, d_o, d_z, E, L = m.d_c, m.d_o, spec.d_z, m.E, m.L
    if spec.fdm_obs_path != "learned" or spec.idm != "free":
        raise NoClosedForm("an action head with a fixed FDM path or a tied IDM has no closed form here")
    A_f = transition.factor("action")
    correlation = A_f @ m.X_c.T
    reference = float(np.linalg.norm(A_f)) * float(np.linalg.norm(m.X_c))
    if float(np.linalg.norm(correlation)) > ROUNDOFF_RTOL * max(reference, np.finfo(float).tiny):
        raise NoClosedForm(
            "the action is correlated with the observation (E[a obsᵀ] ≠ 0): the head can use the "
            "leaked observation, so the optimum is not reduced-rank regression on the innovation; with a "
            "learned FDM and a free IDM the infimum need not be attained (weights can grow without bound)"
        )
    if spec.augmentation > 0 and not drift_free():
        raise NoClosedForm("augmentation with L ≠ E and an action head has no closed form here")
    weight = np.sqrt(spec.action_loss_weight)
    Pv, A_hat, to_xi = m.path(True).action_regression(A_f)  # shared by every d_z and λ
    ratio = spec.action_loss_weight * float(np.sum(A_hat**2)) / max(float(np.sum(V**2)), np.finfo(float).tiny)
    if ratio > ACTION_WEIGHT_RATIO_MAX:
        raise IllConditioned(
            f"lam.action_loss_weight: λ = {spec.action_loss_weight:g} weighs the action term {ratio:.3g} times the "
            f"reconstruction term (resolvable up to {ACTION_WEIGHT_RATIO_MAX:g}); float64 cannot resolve the "
            "reconstruction part of the objective next to it"
        )
    Y = np.vstack([V, weight * A_hat])
    selection = top_eigenspace(
        Y,
        d_z,
        scale=max(m.scale, weight * float(np.linalg.norm(A_f))),
        what="reduced-rank regression operator (its rank or tie at d_z)",
    )
    if selection.tied:  # the orderings cost two d_o × d_o products: only where a tie needs them
        n_act = A_f.shape[0]
        selection = canonical_tie(
            selection,
            *(
                np.block([[M, np.zeros((d_o, n_act))], [np.zeros((n_act, d_o)), np.zeros((n_act, n_act))]])
                for M in m.path(True).orderings
            ),
            Y @ Y.T,
        )
    n_actions = A_f.shape[0]
    augmented = spec.augmentation > 0

    def build(U: np.ndarray) -> LAMParameters:
        """The member whose latent reads the selected directions ``U`` (columns in y-space)."""
        p = U.shape[1]
        D = np.zeros((d_z, d_o))
        # z = Uᵀ ŷ, ŷ = Y Π_V ξ as a map of v; the p rows first (no d_o² × n product)
        D[:p] = ((U.T @ Y) @ Pv) @ to_xi
        B = np.zeros((d_o, d_z))
        B[:, :p] = U[:d_o]
        H = np.zeros((n_actions, d_z))
        H[:, :p] = U[d_o:] / weight
        C = -D @ E if augmented else -D @ L
        A = E.copy() if augmented else L.copy()
        return LAMParameters(A, B, C, D, H, E)

    params = build(selection.captured)
    reconstruction = float(np.sum((V - params.B @ (params.D @ V)) ** 2))  # (I − B D) V, d_z rows first
    action_loss = float(np.sum((A_f - params.H @ (params.D @ V)) ** 2))
    value = ObjectiveValue(
        reconstruction, 0.0, action_loss, reconstruction + spec.action_loss_weight * action_loss
    )
    p = selection.rank
    tie = _tie_choice(selection, build)
    latent_rows = lambda member: np.hstack([member.C, member.D])[:p]  # noqa: E731
    obs_rows = np.hstack([np.eye(d_c), np.zeros((d_c, d_o))])

    def latent_for(U: np.ndarray, member: LAMParameters) -> Family:
        rows = latent_rows(member)
        H_p = member.H[:, :p]
        kern = kernel_basis(H_p) if not augmented else np.zeros((p, 0))
        leak_dims, spare = kern.shape[1], d_z - p
        seen = orthonormal_basis(H_p.T) if leak_dims else np.eye(p)
        fixed = seen.T @ rows
        if leak_dims == 0 and spare == 0:
            return PointFamily(fixed, member)
        if leak_dims == 0:
            space_rows = np.eye(d_c + d_o)
            return SubspaceFamily(
                fixed, space_rows, 0, spare, member, _spare_rows(space_rows, p, d_z, member)
            )
        free = np.vstack([kern.T @ rows, obs_rows])

        def leak_member(Yc: np.ndarray) -> LAMParameters:  # z' = [seenᵀ z; α kernᵀ z + β obs]
            alpha, beta = full_column_rank(Yc[:, :leak_dims], float(np.linalg.norm(Yc))), Yc[:, leak_dims:]
            T = np.vstack([seen.T, alpha @ kern.T])
            N = np.vstack(
                [np.zeros((seen.shape[1], d_c + d_o)), np.hstack([beta, np.zeros((beta.shape[0], d_o))])]
            )
            return transform_latent(member, T, N, d_z)

        return SubspaceFamily(
            fixed, free, leak_dims, leak_dims + spare, member, leak_member, exact=spare == 0
        )

    v_rows = np.hstack([-L, np.eye(d_o)])

    def to_rows(U: np.ndarray) -> np.ndarray:
        """The x-maps of the latent coordinates ``Uᵀ ŷ`` of the y-directions ``U`` (a tie's only)."""
        return (((U.T @ Y) @ Pv) @ to_xi) @ v_rows

    def change_for(member: LAMParameters) -> PointFamily:
        return PointFamily(_compressed(member.predicted_change_map, L - E, member.B), member)

    if not selection.tied:
        latent, change = latent_for(selection.captured, params), change_for(params)
    else:
        fixed_u, tie_u, k_t = selection.fixed, selection.tie, selection.tie_dim
        choose = lambda Y_: tie.build(orthonormal_basis(Y_.T))  # noqa: E731

        def split_latent(Q):
            U = np.hstack([fixed_u, tie_u @ Q])
            return latent_for(U, build(U))

        fixed_rows, tie_rows = to_rows(fixed_u), to_rows(tie_u)
        spare = d_z - p
        if augmented and spare == 0:  # z = (fixed, Qᵀ tie) rows exactly: a subspace family
            latent = SubspaceFamily(
                fixed_rows,
                tie_rows,
                k_t,
                k_t,
                params,
                choose,
                tie=tie,
                split=split_latent,
                parts=(fixed_rows, np.zeros((0, fixed_rows.shape[1])), tie_rows),
            )
        else:  # leakage in the head's blind directions or spare dimensions: outer
            extra = [np.eye(d_c + d_o)] if spare else ([obs_rows] if not augmented else [])
            every = np.vstack([fixed_rows, tie_rows, *extra])
            latent = SubspaceFamily(
                np.zeros((0, every.shape[1])), every, p, d_z, params, exact=False, tie=tie, split=split_latent
            )
        decoders = np.hstack([fixed_u, tie_u])[:d_o]
        injective = orthonormal_basis(decoders).shape[1] == decoders.shape[1]
        if injective and drift_free():  # ô' − o_t = B D v with B injective: it carries exactly D v
            change = SubspaceFamily(
                fixed_rows,
                tie_rows,
                k_t,
                k_t,
                params,
                choose,
                tie=tie,
                parts=(fixed_rows, np.zeros((0, fixed_rows.shape[1])), tie_rows),
            )
        else:
            change = SubspaceFamily(
                np.zeros((0, d_c + d_o)),
                np.eye(d_c + d_o),
                0,
                d_c + d_o,
                params,
                exact=False,
                tie=tie,
                split=lambda Q: change_for(build(np.hstack([fixed_u, tie_u @ Q]))),
            )
    notes = [f"reduced-rank regression of [v; √λ a] on v with λ = {spec.action_loss_weight:g}"]
    if selection.tied:
        notes.append("eigenvalue tie in the reduced-rank regression: the optimum is a family")

    def sample(rng: np.random.Generator) -> LAMParameters:
        member = build(_random_tie_choice(selection, rng))
        kern = kernel_basis(member.H[:, :p]) if not augmented else None
        return _perturb(
            member,
            rng,
            p=p,
            d_z=d_z,
            leak=not augmented and kern.shape[1] > 0,
            tied=False,
            E=E,
            head_kernel=kern,
        )

    return Solution(
        system,
        spec,
        transition,
        "closed-form",
        params,
        value,
        innovation,
        selection,
        latent,
        change,
        sample,
        tuple(notes),
        V,
    )


# -- the numeric fallback ------------------------------------------------------------------------------
def _numeric(system: System, spec: LAMSpec, transition: Transition, reason: str, seed: int) -> Solution:
    from lamproof.numeric.population import minimize_population

    result = minimize_population(transition, spec, seed=seed)
    m = moments(transition)
    V = m.innovation(m.L if spec.fdm_obs_path == "learned" else m.E)
    innovation = top_eigenspace(V, spec.d_z, scale=m.scale, what="innovation second moment S_v")
    notes = (
        f"no closed form: {reason}; optimum by the population minimizer "
        f"({len(result.totals)} starts, converged={result.converged})",
    )
    return Solution(
        system,
        spec,
        transition,
        "numeric",
        result.params,
        result.objective,
        innovation,
        None,
        None,
        None,
        None,
        notes,
        V,
    )
