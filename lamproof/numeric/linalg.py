"""Small linear-algebra pieces with their tolerances named once.

The tolerances are relative to the largest eigenvalue of the matrix at hand, so they do not
depend on the units of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

#: An eigenvalue of a PSD matrix counts as zero below ``RANK_RTOL * λ_max``: round-off in the
#: moments of a float64 system is ~1e-15 relative, so 1e-10 leaves five orders of margin while
#: keeping genuinely small directions (1e-6 relative and above) as nonzero.
RANK_RTOL = 1e-10

#: Two eigenvalues are tied when they differ by less than ``TIE_RTOL * λ_max``. Ties in the
#: paper's systems are exact (isotropic blocks), so round-off (~1e-14) is all that separates
#: them; 1e-8 is well above it and well below any gap that a user would call a gap.
TIE_RTOL = 1e-8


def eigh_descending(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and orthonormal eigenvectors of a symmetric matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return values[::-1].copy(), vectors[:, ::-1].copy()


def scale_of(values: np.ndarray) -> float:
    return float(max(np.max(np.abs(values), initial=0.0), np.finfo(float).tiny))


def pinv_psd(matrix: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of a PSD matrix, dropping eigenvalues below ``RANK_RTOL``.

    A well-conditioned matrix is inverted through its Cholesky factor (several times faster
    than the eigen-decomposition at large sizes); anything near-singular takes the eigen route.
    """
    if matrix.shape[0] == 0:
        return matrix.copy()
    try:
        factor = np.linalg.cholesky(matrix)
        if np.min(np.diag(factor)) ** 2 > 1e3 * RANK_RTOL * scale_of(np.diag(matrix)):
            inverse_factor = scipy.linalg.solve_triangular(factor, np.eye(matrix.shape[0]), lower=True)
            return inverse_factor.T @ inverse_factor
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = values > RANK_RTOL * scale_of(values)
    return (vectors[:, keep] / values[keep]) @ vectors[:, keep].T


def whitener(matrix: np.ndarray) -> np.ndarray:
    """``W`` with ``Wᵀ M W = I`` on the range of the PSD matrix ``M`` (columns: ``rank M``).

    Cholesky when ``M`` is well inside the PD cone (fast), else the eigen-decomposition.
    """
    n = matrix.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    diag = np.diag(matrix)
    try:
        factor = np.linalg.cholesky(matrix)
        if np.min(np.diag(factor)) ** 2 > 1e3 * RANK_RTOL * scale_of(diag):
            return scipy.linalg.solve_triangular(factor, np.eye(n), lower=True).T  # Wᵀ M W = I
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = values > RANK_RTOL * scale_of(values)
    return vectors[:, keep] / np.sqrt(values[keep])


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


def top_eigenspace(matrix: np.ndarray, d: int) -> TopEigenspace:
    """All eigenvalues, and eigenvectors for the captured directions, the tie and a little beyond.

    Eigenvalues come from ``eigvalsh``; only the leading block of eigenvectors is computed
    (``scipy.linalg.eigh`` with ``subset_by_index``), which is what makes large ``d_o`` cheap.
    """
    matrix = (matrix + matrix.T) / 2
    n = matrix.shape[0]
    values = np.linalg.eigvalsh(matrix)[::-1].copy()
    scale = scale_of(values)
    level = values[min(d, n) - 1]
    needed = int(np.sum(values >= level - TIE_RTOL * scale))  # the captured block and its tie
    count = min(n, needed + 1)
    # driver "evx": LAPACK's default "evr" can return fewer vectors than asked for inside a
    # cluster of equal eigenvalues (seen at isotropic noise); check the count all the same.
    _, vectors = scipy.linalg.eigh(matrix, subset_by_index=[n - count, n - 1], driver="evx")
    if vectors.shape[1] != count:
        vectors = np.linalg.eigh(matrix)[1][:, n - count:]
    vectors = vectors[:, ::-1]
    positive = int(np.sum(values > RANK_RTOL * scale))
    rank = min(d, positive)
    tie_start = tie_stop = rank
    if rank == d and d < len(values) and values[d - 1] - values[d] <= TIE_RTOL * scale:
        level = values[d - 1]
        tied = np.flatnonzero(np.abs(values - level) <= TIE_RTOL * scale)
        tie_start, tie_stop = int(tied[0]), int(tied[-1]) + 1
    return TopEigenspace(values, vectors, d, rank, tie_start, tie_stop)


def orthonormal_basis(matrix: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space (SVD, ``RANK_RTOL`` on singular values squared)."""
    if matrix.size == 0:
        return np.zeros((matrix.shape[0], 0))
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    keep = s**2 > RANK_RTOL * scale_of(s**2)
    return u[:, keep]
