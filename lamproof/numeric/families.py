"""The optimal family of a solved LAM: which features its members' representations carry, and members.

A probe reads a representation (the latent ``z`` or the predicted change ``ô' − o_t``) through
its *features*: the rows of the map from ``x = [obs; o']`` to the representation. When the
optimum is not unique (eigenvalue ties, free observation leakage, spare latent dimensions) each
member has its own features. A family says which, in one of three shapes:

- :class:`PointFamily`: one set of features (the optimum is unique for this representation);
- :class:`SubspaceFamily`: every member carries the ``fixed`` rows plus a ``k``-dimensional
  subspace of ``span(free)``; ``exact`` says whether every such subspace belongs to the closure of
  the family (then the probe range over the family is a Ky Fan problem, solved exactly), or the
  family is only contained in this description;
- :class:`DriftTieFamily`: the predicted change ``(L_b − E) obs + P_U v`` with ``U`` free inside a
  tied eigenspace that the drift ``(L_b − E) obs`` also reaches, which is not a subspace family
  (a probe score can jump where the captured direction aligns with the drift).

Each family can build concrete members (:class:`~lamproof.numeric.objective.LAMParameters`), so a
range is witnessed by parameters a user can re-check. :func:`transform_latent` is the one move
from a member to another: re-mix the latent and add observation terms the FDM cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lamproof.numeric.objective import LAMParameters


def transform_latent(params: LAMParameters, T: np.ndarray, N: np.ndarray, d_z: int) -> LAMParameters:
    """The member with latent ``z' = T z_act + N x``, the FDM and head re-mixed to predict the same.

    ``z_act`` are the first ``T.shape[1]`` latent coordinates of ``params`` (those the FDM and the
    head read), ``T`` has full column rank (a left inverse ``T⁺``), and ``N`` is a map of
    ``x = [obs; o']`` whose image the new decoder ``B T⁺`` and head ``H T⁺`` either cancel through
    ``A`` (its ``obs`` part, only with a learned ``A``) or ignore. Then ``B' = B T⁺``,
    ``H' = H T⁺``, ``[C', D'] = T [C, D] + N``, ``A' = A − B' N_obs``, and the prediction and
    the action estimate are those of ``params``: same objective. Rows beyond ``T``'s are padded
    with zeros up to ``d_z``.
    """
    p = T.shape[1]
    d_c = params.C.shape[1]
    T_pinv = np.linalg.pinv(T)
    B = params.B[:, :p] @ T_pinv
    W = T @ np.hstack([params.C[:p], params.D[:p]]) + N
    rows = W.shape[0]
    pad = d_z - rows
    C = np.vstack([W[:, :d_c], np.zeros((pad, d_c))])
    D = np.vstack([W[:, d_c:], np.zeros((pad, W.shape[1] - d_c))])
    B = np.hstack([B, np.zeros((B.shape[0], pad))])
    A = params.A - B[:, :rows] @ N[:, :d_c]
    H = None
    if params.H is not None:
        H = np.hstack([params.H[:, :p] @ T_pinv, np.zeros((params.H.shape[0], pad))])
    return LAMParameters(A, B, C, D, H, params.E)


#: How far a member is built from a limit it approaches (relative): far enough from round-off that
#: its features are decidable (far above ``DECISION_RTOL``), close enough to show the way.
APPROACH = 1e-6


def full_column_rank(alpha: np.ndarray, reference: float, relative: float = APPROACH) -> np.ndarray:
    """``alpha`` (``k × p``, ``k ≥ p``) nudged to full column rank along its missing directions.

    Leakage members approach the end of their range only in the limit (``‖N‖ → ∞`` relative to
    the innovation part): the extreme subspace can have a rank-deficient ``α`` and is reached by
    members ``α + ε J`` as ``ε → 0``. A direction of ``α`` counts as missing when it is below
    ``relative`` times ``reference`` (the size of the whole coefficient row ``[α, β]``), and is
    nudged to that size.
    """
    k, p = alpha.shape
    u, s, vt = np.linalg.svd(alpha, full_matrices=True)
    size = relative * (reference if reference > 0 else 1.0)
    rank = int(np.sum(s > size)) if s.size else 0
    if rank == p:
        return alpha
    missing = p - rank
    return (
        u[:, :rank] @ (s[:rank, None] * vt[:rank])
        + size * u[:, rank : rank + missing] @ vt[rank : rank + missing]
    )


@dataclass(frozen=True, eq=False)
class TieChoice:
    """A tied eigenspace inside which an optimal member may choose: ``k`` of its ``m`` directions.

    ``build(Q)`` is the member whose captured space is ``fixed`` plus ``tie @ Q`` (``Q``: ``m × k``
    orthonormal). ``drift`` (rows, tie coordinates of what the FDM's observation path adds to the
    predicted change) and ``innovation`` (rows, tie coordinates of the innovation) describe the
    change family; ``phi`` its rows that do not depend on the choice.
    """

    m: int
    k: int
    build: Callable[[np.ndarray], LAMParameters]
    canonical: np.ndarray | None = None  # the canonical member's choice (default: the first k)

    def canonical_choice(self) -> np.ndarray:
        return np.eye(self.m)[:, : self.k] if self.canonical is None else self.canonical


@dataclass(frozen=True, eq=False)
class PointFamily:
    """One set of features: the representation is the same for every optimal member."""

    features: np.ndarray
    canonical: LAMParameters

    @property
    def union(self) -> np.ndarray:
        return self.features


@dataclass(frozen=True, eq=False)
class SubspaceFamily:
    """``fixed`` rows plus a ``k``-dimensional subspace of ``span(free)``, ``k_min ≤ k ≤ k_max``.

    ``member(Y)`` builds the member whose features span ``fixed`` and the rows of ``Y @ free``
    (``Y``: ``k × len(free)``), or one arbitrarily close to it when that subspace is only in the
    family's closure. ``exact=False``: the family is contained in this description, not equal to
    it (then ``tie`` and ``split`` give the exact sub-families the family is a union of, one per
    tie choice). ``free_for_min``: the free rows to use for the smallest ``k`` (an outer family
    whose low end comes from the tie alone).
    """

    fixed: np.ndarray
    free: np.ndarray
    k_min: int
    k_max: int
    canonical: LAMParameters
    member: Callable[[np.ndarray], LAMParameters] | None = None
    exact: bool = True
    free_for_min: np.ndarray | None = None
    tie: TieChoice | None = None
    split: Callable[[np.ndarray], PointFamily | SubspaceFamily] | None = None
    #: For a tie family of the predicted change: the choice-independent rows, the drift and the
    #: innovation in tie coordinates (what the invariance certificate reads).
    parts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None)

    @property
    def union(self) -> np.ndarray:
        rows = [self.fixed, self.free]
        if self.free_for_min is not None:
            rows.append(self.free_for_min)
        return np.vstack(rows)


@dataclass(frozen=True, eq=False)
class DriftTieFamily:
    """The predicted change with a tie the drift reaches: features ``φ`` and ``n + Q Qᵀ w``.

    ``φ`` (rows) is what every member carries; ``n`` and ``w`` (``m`` rows each, tie coordinates)
    are the drift ``(L_b − E) obs`` and the innovation; the member choosing ``Q`` (``m × k``
    orthonormal) carries ``n + Q Qᵀ w``: its ``Qᵀ(n + w)`` and its ``Q⊥ᵀ n``.
    """

    phi: np.ndarray
    drift: np.ndarray
    innovation: np.ndarray
    tie: TieChoice
    canonical: LAMParameters

    @property
    def union(self) -> np.ndarray:
        return np.vstack([self.phi, self.drift, self.innovation])

    def features(self, Q: np.ndarray) -> np.ndarray:
        return np.vstack([self.phi, self.drift + Q @ (Q.T @ self.innovation)])


Family = PointFamily | SubspaceFamily | DriftTieFamily
