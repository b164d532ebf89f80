"""Linear algebra on square-root factors, with every rank and tie decision made relative to its scale.

A factor ``X`` (rows: variables, columns: white source coordinates, see
:meth:`lamproof.systems.Transition.factor`) stands for the moment ``X Xᵀ``. Regression becomes
projection (the residual of ``Y`` on ``X`` is ``Y (I − Π_row X)``), and an explained variance is
the squared norm of a projection. Decisions follow :mod:`lamproof.numeric.tolerances`: round-off,
real, or undecidable; an undecidable decision that changes the answer raises
:class:`lamproof.errors.IllConditioned`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg

from lamproof.errors import IllConditioned
from lamproof.numeric.tolerances import DECISION_RTOL, MATTERS_RTOL, PSD_RANK_RTOL, ROUNDOFF_RTOL


def scale_of(values: np.ndarray) -> float:
    """The largest absolute value (at least the smallest positive float, so it can divide)."""
    return float(max(np.max(np.abs(values), initial=0.0), np.finfo(float).tiny))


def pinv_psd(matrix: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of a PSD matrix, dropping eigenvalues below ``PSD_RANK_RTOL · λ_max``."""
    if matrix.shape[0] == 0:
        return matrix.copy()
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = values > PSD_RANK_RTOL * scale_of(values)
    return (vectors[:, keep] / values[keep]) @ vectors[:, keep].T


# -- row spaces of factors -------------------------------------------------------------------------
def row_scales(weights: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Per row of ``weights @ factor``, the size of the terms it sums: ``‖ |w_i| · |X| ‖``.

    A row that cancels to round-off is small against this scale however large the factor, and a
    row that selects a tiny but exact variable is not (its terms are tiny too).
    """
    return np.linalg.norm(np.abs(weights) @ np.abs(factor), axis=1)


@dataclass(frozen=True)
class RowSpace:
    """Orthonormal bases (columns, in factor coordinates) of a factor's row space.

    ``basis`` spans the directions that are certainly there; ``grey`` those float64 cannot tell
    from round-off (relative singular value between ``ROUNDOFF_RTOL`` and ``DECISION_RTOL``).
    """

    basis: np.ndarray
    grey: np.ndarray
    values: np.ndarray  # the relative singular values of the kept directions

    @property
    def rank(self) -> int:
        return self.basis.shape[1]


def row_space(factor: np.ndarray, scales: np.ndarray | None = None) -> RowSpace:
    """The row space of ``factor``, each row first divided by its scale (default: its norm).

    Dividing by the scale of each row's ingredients (:func:`row_scales`) makes the decision
    independent of the rows' units; singular values of the scaled factor are then compared with
    the tolerances directly.
    """
    n = factor.shape[1]
    if factor.shape[0] == 0:
        return RowSpace(np.zeros((n, 0)), np.zeros((n, 0)), np.zeros(0))
    scales = np.linalg.norm(factor, axis=1) if scales is None else np.asarray(scales, dtype=float)
    live = scales > 0
    if not np.any(live):
        return RowSpace(np.zeros((n, 0)), np.zeros((n, 0)), np.zeros(0))
    scaled = factor[live] / scales[live, None]
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    clear = s > DECISION_RTOL
    grey = (s > ROUNDOFF_RTOL) & ~clear
    return RowSpace(vt[clear].T, vt[grey].T, s[clear])


def project_out(factor: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``factor (I − B Bᵀ)``: the part of each row orthogonal to the orthonormal columns ``B``."""
    if basis.shape[1] == 0:
        return factor.copy()
    return factor - (factor @ basis) @ basis.T


def settle_grey(space: RowSpace, answer, what: str):
    """``answer(basis)`` with the undecidable directions of ``space`` dropped, after checking that
    keeping them gives the same answer (else :class:`IllConditioned` naming ``what``).

    ``answer`` returns an array; "the same" is within ``MATTERS_RTOL`` of its largest entry.
    """
    without = answer(space.basis)
    if space.grey.shape[1] == 0:
        return without
    with_grey = answer(np.hstack([space.basis, space.grey]))
    reference = max(scale_of(np.asarray(without)), scale_of(np.asarray(with_grey)))
    if np.max(np.abs(np.asarray(with_grey) - np.asarray(without)), initial=0.0) > MATTERS_RTOL * reference:
        raise IllConditioned(
            f"{what}: {space.grey.shape[1]} direction(s) lie between round-off and signal "
            f"(relative size {ROUNDOFF_RTOL:g}–{DECISION_RTOL:g}) and change the answer; float64 cannot decide"
        )
    return without


def orthonormal_basis(matrix: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space (relative singular values above ``DECISION_RTOL``)."""
    if matrix.size == 0:
        return np.zeros((matrix.shape[0], 0))
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    keep = s > DECISION_RTOL * scale_of(s) if s.size else np.zeros(0, dtype=bool)
    return u[:, keep]


def kernel_basis(matrix: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the null space of ``matrix`` (columns; the same rank rule)."""
    size = matrix.shape[1]
    if size == 0:
        return np.zeros((0, 0))
    _, s, vt = np.linalg.svd(matrix, full_matrices=True)
    rank = int(np.sum(s > DECISION_RTOL * scale_of(s))) if s.size else 0
    return vt[rank:].T


# -- spectra ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopEigenspace:
    """The top-``d`` eigenspace of a PSD operator, with its ties and its zero tail made explicit.

    ``vectors[:, :rank]`` is the canonical captured basis. When ``λ_d`` is tied with ``λ_{d+1}``
    the captured space is not unique: it is ``fixed`` (the directions strictly above the tie)
    plus any ``tie_dim``-dimensional subspace of ``tie`` (the whole tied eigenspace).
    """

    eigenvalues: np.ndarray  # all, descending
    vectors: np.ndarray  # the leading ones, as columns (at least through the tie)
    d: int
    rank: int  # number of captured directions with nonzero eigenvalue (≤ d)
    tie_start: int  # index of the first tied eigenvalue (== rank when there is no tie)
    tie_stop: int  # one past the last tied eigenvalue

    @property
    def tied(self) -> bool:
        return self.tie_stop > self.rank

    @property
    def fixed(self) -> np.ndarray:
        return self.vectors[:, : self.tie_start]

    @property
    def tie(self) -> np.ndarray:
        return self.vectors[:, self.tie_start : self.tie_stop]

    @property
    def tie_dim(self) -> int:
        return self.rank - self.tie_start

    @property
    def captured(self) -> np.ndarray:
        return self.vectors[:, : self.rank]

    @property
    def eigengap(self) -> float | None:
        if self.d >= len(self.eigenvalues):
            return None
        return float(self.eigenvalues[self.d - 1] - self.eigenvalues[self.d])


class _Grey(Exception):
    """A decision of :func:`_structure` fell between round-off and signal."""


def _classify(value: float, scale: float) -> bool:
    """``False`` for round-off, ``True`` for real; :class:`_Grey` in between."""
    if value <= ROUNDOFF_RTOL * scale:
        return False
    if value >= DECISION_RTOL * scale:
        return True
    raise _Grey


def _structure(levels: np.ndarray, d: int, scale: float) -> tuple[int, int, int]:
    """``(rank, tie_start, tie_stop)`` from descending ``levels`` (singular values or eigenvalues)."""
    n = len(levels)
    top = min(d, n)
    positive = [i for i in range(min(top + 1, n)) if _classify(levels[i], scale)]
    rank = sum(1 for i in positive if i < top)
    if rank < top or d >= n:
        return rank, rank, rank
    level = levels[d - 1]
    tie_start = tie_stop = rank
    if not _classify(level - levels[d], scale):  # λ_d ties with λ_{d+1}
        tied = [i for i in range(n) if not _classify(abs(levels[i] - level), scale)]
        tie_start, tie_stop = tied[0], tied[-1] + 1
    return rank, tie_start, tie_stop


class Spectrum:
    """The eigendecomposition of ``S = V Vᵀ`` from its factor ``V``, for several ``d``.

    A sweep over ``d`` (the latent sizes of a study) reads every top-``d`` eigenspace from one
    decomposition: :func:`top_eigenspace` with ``spectrum=`` takes the eigenvalues (the same
    ``eigvalsh`` as without it, so every rank and tie decision is the same) and, from the second
    request on, the leading eigenvectors from one full ``eigh`` instead of a subset ``eigh`` per
    ``d`` (the first request, often the only one, takes the cheaper subset). A tie's leading
    vectors always come from the subset ``eigh`` (:meth:`leading`), kept per count.
    """

    def __init__(self, factor: np.ndarray):
        self.factor = factor
        self.requests = 0  # top_eigenspace calls served so far
        self._leading: dict[int, np.ndarray] = {}  # leading(count)

    @cached_property
    def gram(self) -> np.ndarray:
        return self.factor @ self.factor.T

    @cached_property
    def values(self) -> np.ndarray:
        """Eigenvalues of ``S``, descending."""
        return np.linalg.eigvalsh(self.gram)[::-1].copy() if self.factor.shape[0] else np.zeros(0)

    @cached_property
    def vectors(self) -> np.ndarray:
        """All eigenvectors of ``S`` (columns), in the order of :attr:`values`."""
        return np.linalg.eigh(self.gram)[1][:, ::-1]

    def leading(self, count: int) -> np.ndarray:
        """The top-``count`` eigenvectors (descending) from a subset ``eigh``, kept per ``count``:
        configurations with the same data and latent size (another probe protocol, augmentation or
        action weight) share them, a tie's basis included."""
        if count not in self._leading:
            rows = self.factor.shape[0]
            # evx: LAPACK's default "evr" can return fewer vectors than asked for inside a cluster of
            # equal eigenvalues (seen at isotropic noise); check the count all the same.
            _, vectors = scipy.linalg.eigh(self.gram, subset_by_index=[rows - count, rows - 1], driver="evx")
            if vectors.shape[1] != count:
                vectors = np.linalg.eigh(self.gram)[1][:, rows - count :]
            self._leading[count] = vectors[:, ::-1]
        return self._leading[count].copy()  # callers own their array

    @cached_property
    def singular(self) -> tuple[np.ndarray, np.ndarray]:
        """``(U, σ)``: left singular vectors of ``V`` and its singular values padded with zeros to ``S``'s size
        (the accurate route where the Gram matrix's eigenvalues cannot decide)."""
        u, s, _ = np.linalg.svd(self.factor, full_matrices=True)
        singular = np.zeros(self.factor.shape[0])
        singular[: s.size] = s
        return u, singular


def top_eigenspace(
    factor: np.ndarray,
    d: int,
    *,
    scale: float | None = None,
    what: str = "spectrum",
    spectrum: Spectrum | None = None,
) -> TopEigenspace:
    """The top-``d`` eigenspace of ``S = V Vᵀ`` from its factor ``V`` (rows: the operator's space).

    ``scale`` is the size of ``V``'s ingredients (default ``‖V‖₂``): ``V``'s entries carry a
    round-off of ``eps`` times it. The fast path decides ranks and ties on the eigenvalues of the
    Gram matrix (absolute error ``eps·‖V‖²``); where a decision is undecidable there, the singular
    values of ``V`` itself (absolute error ``eps·scale``) decide; where they cannot either,
    :class:`IllConditioned` names ``what``. ``spectrum``: the :class:`Spectrum` of ``factor``,
    shared by calls with other ``d``.
    """
    rows = factor.shape[0]
    spectrum = Spectrum(factor) if spectrum is None else spectrum
    shared = spectrum.requests > 0  # a sweep: one full eigh serves the rest
    spectrum.requests += 1
    values = spectrum.values.copy()
    norm = float(np.sqrt(max(values[0], 0.0))) if rows else 0.0
    ingredients = max(norm, scale or 0.0, np.finfo(float).tiny)
    try:
        rank, tie_start, tie_stop = _structure(np.clip(values, 0.0, None), d, norm * ingredients)
        accurate = None
    except _Grey:
        u, singular = spectrum.singular
        try:
            rank, tie_start, tie_stop = _structure(singular, d, ingredients)
        except _Grey:
            raise IllConditioned(
                f"{what}: eigenvalue {min(d, rows)} (or its gap to the next) lies between round-off and "
                "signal; float64 cannot decide the rank or the tie the answer depends on"
            ) from None
        values, accurate = singular**2, u
    needed = max(tie_stop, rank) + 1
    count = min(rows, needed)
    if accurate is not None:
        vectors = accurate[:, :count]
    elif count == 0:
        vectors = np.zeros((rows, 0))
    elif shared and tie_stop <= rank:
        # no tie: the leading vectors are determined (up to sign) and one decomposition serves every d;
        # a tie's basis is whatever LAPACK returns before canonical_tie orders it, so that path below
        # stays the same call whether or not the spectrum is shared
        vectors = spectrum.vectors[:, :count]
    else:
        vectors = spectrum.leading(count)
    return TopEigenspace(np.clip(values, 0.0, None), vectors, d, rank, tie_start, tie_stop)


def canonical_tie(space: TopEigenspace, *orderings: np.ndarray) -> TopEigenspace:
    """``space`` with its tied eigenvectors rotated into a basis that does not depend on coordinates.

    ``eigh`` returns an arbitrary basis of a tied eigenspace ``W``, so "the first ``k`` tied
    directions" would change with the observation basis or the units. Each ordering ``M`` (a PSD
    matrix on the same space, given in the same coordinates) sorts ``W`` by the eigenvectors of
    ``Wᵀ M W``, the first that separates the ``k``-th tied direction from the next decides. The
    choice then turns with the coordinates, so the canonical member is the same member in every
    description of the problem.
    """
    if not space.tied:
        return space
    W = space.tie
    k = space.tie_dim
    for M in orderings:
        values, vectors = np.linalg.eigh(W.T @ M @ W)
        values, vectors = values[::-1], vectors[:, ::-1]
        scale = max(float(np.max(np.abs(values), initial=0.0)), np.finfo(float).tiny)
        if k < len(values) and values[k - 1] - values[k] > DECISION_RTOL * scale:
            W = W @ vectors
            break
    vectors = space.vectors.copy()
    vectors[:, space.tie_start : space.tie_stop] = W
    return TopEigenspace(space.eigenvalues, vectors, space.d, space.rank, space.tie_start, space.tie_stop)


def top_eigenspace_of(matrix: np.ndarray, d: int, *, what: str = "spectrum") -> TopEigenspace:
    """:func:`top_eigenspace` of a PSD matrix given as such (its symmetric square root as factor)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return top_eigenspace(root, d, what=what)
