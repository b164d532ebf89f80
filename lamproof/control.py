"""Controllability of a linear pair ``(F, B)``: Kalman matrix, PBH test, Gramians (docs/theory.md §10).

The pair the toolkit cares about is ``(F_cl, G Σ_e^{1/2})`` with ``F_cl = F + G K``: what the
exploration ``e`` can steer through the closed loop. Its ``k``-step controllability Gramian plus
the noise Gramian is the ``k``-step innovation a ``k``-step LAM compresses; the Kalman rank says
how many directions the actions can reach at all. Apart from the small System-level helpers at
the end, this module knows nothing of latent action models: it is plain linear control theory,

- numerically (NumPy/SciPy), with every rank tolerance named and explained below, and
- exactly (SymPy rationals, through ``sympy.physics.control.StateSpace``) for small systems,
  so a numeric verdict can be checked against one with zero tolerance.

Argument names in error messages: ``dynamics`` (``F``), ``input_matrix`` (``B``),
``input_cov`` (``Q``), ``steps``, ``tol``, ``horizon`` and, at System level, ``closed_loop``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from lamproof._validation import as_covariance, as_int, as_matrix, as_real
from lamproof.errors import InputError
from lamproof.numeric.tolerances import FACTOR_RANK_RTOL, PSD_RANK_RTOL
from lamproof.systems import System, psd_sqrt

if TYPE_CHECKING:  # SymPy is imported only where the exact routes run
    import sympy
    from sympy.physics.control import StateSpace

__all__ = [
    "EIGENVALUE_CLUSTER_RTOL",
    "EIGENVALUE_CONDITION_CAP",
    "GRAMIAN_RANK_RTOL",
    "STABILITY_MARGIN",
    "PBHResult",
    "kalman_matrix",
    "kalman_rank",
    "controllable_subspace",
    "pbh_test",
    "gramian",
    "gramian_rank",
    "gramian_factor",
    "reachable_dimension",
    "STAIRCASE_RTOL",
    "infinite_gramian",
    "spectral_radius",
    "control_pair",
    "action_gramian",
    "noise_gramian",
    "infinite_action_gramian",
    "infinite_noise_gramian",
    "exact_matrix",
    "exact_kalman_matrix",
    "exact_kalman_rank",
    "exact_controllable_subspace",
    "exact_is_controllable",
    "exact_gramian",
]

# -- tolerances --------------------------------------------------------------------------------
#: Default relative rank tolerance (``tol=None``) of :func:`kalman_rank` and :func:`pbh_test`:
#: a singular value counts as zero when below ``max(rows, cols) * eps * σ_max``. The SVD returns
#: every singular value with an absolute error of a few ``eps * σ_max``, so anything smaller is
#: indistinguishable from an exact zero (NumPy's ``matrix_rank`` and MATLAB's ``rank`` convention).
#: The Kalman matrix is ranked as it is, not with its blocks rescaled: rescaling ``F^j B`` to unit
#: norm keeps the range in exact arithmetic but blows the round-off in the uncontrollable
#: directions up to the size of the signal once a fast-decaying mode has died out, and then
#: reports too high a rank (seen on block-triangular systems with a known uncontrollable part).

#: A Gramian ``W = K Kᵀ`` squares the singular values of the Kalman factor ``K``, so it holds only
#: half the digits. An eigenvalue counts as zero below ``GRAMIAN_RANK_RTOL * λ_max``: the rank rule
#: of every squared quantity, :data:`lamproof.numeric.tolerances.PSD_RANK_RTOL` (its reason there).
GRAMIAN_RANK_RTOL = PSD_RANK_RTOL

#: A new direction of the reachable space counts when its component orthogonal to the directions
#: found so far exceeds ``STAIRCASE_RTOL`` times the norm of its image: the Gramian's rule stated
#: for singular values, :data:`lamproof.numeric.tolerances.FACTOR_RANK_RTOL`.
STAIRCASE_RTOL = FACTOR_RANK_RTOL

#: Computed eigenvalues within ``EIGENVALUE_CLUSTER_RTOL * max(1, ‖F‖)`` of each other are treated
#: as one eigenvalue by :func:`pbh_test`. A defective eigenvalue (Jordan block of size m) is
#: returned split into m values about ``eps^(1/m) * ‖F‖`` apart (1.5e-8 for m = 2, 6e-6 for
#: m = 3), and at a split value ``[λI − F, B]`` looks full rank. The mean of a cluster is accurate
#: to about ``eps * ‖F‖`` again, so PBH tests the rank at the cluster mean as well.
EIGENVALUE_CLUSTER_RTOL = 1e-5

#: Cap on the eigenvalue condition number ``κ(λ) = 1/|yᴴx|`` (unit left/right eigenvectors) that
#: scales PBH's default tolerance. A defective eigenvalue has ``κ = ∞`` and is computed only to
#: about ``sqrt(eps)``; ``1/sqrt(eps) ≈ 7e7`` is the matching cap (a tolerance near 1e-8 relative).
EIGENVALUE_CONDITION_CAP = 1.0 / np.sqrt(np.finfo(np.float64).eps)

#: ``F`` counts as unstable, and has no infinite-horizon Gramian, when its spectral radius is at
#: least ``1 − STABILITY_MARGIN``. Eigenvalues are computed with an error of about ``eps * ‖F‖``
#: (more for non-normal ``F``), so a radius within 1e-10 of 1 cannot be told from marginal
#: stability, where ``Σ F^j Q F^jᵀ`` diverges (e.g. the paper's ``F = I``).
STABILITY_MARGIN = 1e-10

_EPS = np.finfo(np.float64).eps


# -- validation --------------------------------------------------------------------------------
def _square(value, name: str = "dynamics") -> np.ndarray:
    F = as_matrix(value, name, (None, None))
    if F.shape[0] != F.shape[1]:
        raise InputError(f"{name}: must be square, got shape {F.shape}")
    if F.shape[0] < 1:
        raise InputError(f"{name}: must have at least one row, got shape {F.shape}")
    return F


def _pair(F, B) -> tuple[np.ndarray, np.ndarray]:
    F = _square(F)
    n = F.shape[0]
    B = as_matrix(B, "input_matrix", (None, None))
    if B.shape[0] != n:
        raise InputError(f"input_matrix: must have {n} rows like dynamics, got shape {B.shape}")
    if B.shape[1] < 1:
        raise InputError(f"input_matrix: must have at least one column, got shape {B.shape}")
    return F, B


def _steps(steps, default: int, name: str = "steps") -> int:
    return default if steps is None else as_int(steps, name, minimum=1)


def _tolerance(tol) -> float | None:
    return None if tol is None else as_real(tol, "tol", minimum=0.0)


def _rank(singular_values: np.ndarray, shape: tuple[int, int], tol: float | None) -> int:
    """Number of singular values above ``tol * σ_max`` (``tol=None``: ``max(shape) * eps``)."""
    if singular_values.size == 0 or singular_values[0] == 0.0:
        return 0
    rtol = max(shape) * _EPS if tol is None else tol
    return int(np.sum(singular_values > rtol * singular_values[0]))


# -- Kalman ------------------------------------------------------------------------------------
def _krylov_blocks(F: np.ndarray, B: np.ndarray, steps: int) -> list[np.ndarray]:
    blocks = [B]
    for _ in range(steps - 1):
        blocks.append(F @ blocks[-1])
    return blocks


def kalman_matrix(dynamics, input_matrix, steps: int | None = None) -> np.ndarray:
    """``[B, F B, …, F^{steps−1} B]`` (default ``steps = n``): its range is what ``steps`` inputs reach."""
    F, B = _pair(dynamics, input_matrix)
    k = _steps(steps, F.shape[0])
    return np.hstack(_krylov_blocks(F, B, k))


def _finite_kalman(F: np.ndarray, B: np.ndarray, steps: int) -> np.ndarray:
    matrix = np.hstack(_krylov_blocks(F, B, steps))
    if not np.all(np.isfinite(matrix)):
        raise InputError(f"dynamics: F^j B overflows float64 within {steps} steps; rescale the system")
    return matrix


def kalman_rank(dynamics, input_matrix, *, steps: int | None = None, tol: float | None = None) -> int:
    """Numeric rank of the Kalman matrix: ``n`` iff ``(F, B)`` is controllable (``steps = n``).

    ``tol`` is relative to the largest singular value; ``None`` uses ``max(shape) * eps``
    (see the module's tolerance notes).
    """
    F, B = _pair(dynamics, input_matrix)
    matrix = _finite_kalman(F, B, _steps(steps, F.shape[0]))
    return _rank(np.linalg.svd(matrix, compute_uv=False), matrix.shape, _tolerance(tol))


def controllable_subspace(
    dynamics, input_matrix, *, steps: int | None = None, tol: float | None = None
) -> np.ndarray:
    """Orthonormal basis (``n x rank`` columns) of the range of the Kalman matrix."""
    F, B = _pair(dynamics, input_matrix)
    matrix = _finite_kalman(F, B, _steps(steps, F.shape[0]))
    U, s, _ = np.linalg.svd(matrix, full_matrices=False)
    return U[:, : _rank(s, matrix.shape, _tolerance(tol))]


# -- PBH ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PBHResult:
    """Popov–Belevitch–Hautus: ``(F, B)`` is controllable iff ``rank [λI − F, B] = n`` for all λ.

    ``eigenvalues[i]`` is tested with rank ``ranks[i]``; ``uncontrollable`` lists the eigenvalues
    where the rank drops (the modes no input can move).
    """

    eigenvalues: np.ndarray
    ranks: np.ndarray
    size: int

    @property
    def controllable(self) -> bool:
        return bool(np.all(self.ranks == self.size))

    @property
    def uncontrollable(self) -> np.ndarray:
        return self.eigenvalues[self.ranks < self.size]


def _clusters(eigenvalues: np.ndarray, radius: float) -> list[np.ndarray]:
    """Indices of eigenvalues grouped by single linkage at distance ``radius``."""
    n = eigenvalues.size
    labels = np.arange(n)
    for i in range(n):
        for j in range(i + 1, n):
            if abs(eigenvalues[i] - eigenvalues[j]) <= radius and labels[i] != labels[j]:
                labels[labels == labels[j]] = labels[i]
    return [np.flatnonzero(labels == label) for label in np.unique(labels)]


def pbh_test(dynamics, input_matrix, *, tol: float | None = None) -> PBHResult:
    """Rank of ``[λI − F, B]`` at every eigenvalue λ of ``F`` and the PBH verdict.

    Numerically PBH is the fragile route: a computed eigenvalue is off by about
    ``eps * ‖F‖ * κ(λ)`` (``κ`` its condition number), and so is the smallest singular value of
    ``[λI − F, B]`` at an uncontrollable mode. The default tolerance at λ is therefore
    ``max(shape) * eps * κ(λ)`` relative (``κ`` capped at :data:`EIGENVALUE_CONDITION_CAP`);
    clusters of eigenvalues (:data:`EIGENVALUE_CLUSTER_RTOL`, split Jordan blocks) are also
    tested at their mean and the smaller rank counts. An explicit ``tol`` (relative to the largest
    singular value) is used as given. Prefer :func:`kalman_rank` for a count; PBH says *which*
    modes are uncontrollable.
    """
    F, B = _pair(dynamics, input_matrix)
    tol = _tolerance(tol)
    n = F.shape[0]
    eigenvalues, left, right = scipy.linalg.eig(F, left=True, right=True)
    overlap = np.abs(np.sum(left.conj() * right, axis=0))  # columns have unit norm: |yᴴx| = 1/κ
    condition = np.minimum(
        1.0 / np.maximum(overlap, 1.0 / EIGENVALUE_CONDITION_CAP), EIGENVALUE_CONDITION_CAP
    )
    radius = EIGENVALUE_CLUSTER_RTOL * max(1.0, float(np.linalg.norm(F, 2)))
    shape = (n, n + B.shape[1])

    def rank_at(lam: complex, kappa: float) -> int:
        stacked = np.hstack([lam * np.eye(n) - F, B.astype(complex)])
        rtol = max(shape) * _EPS * kappa if tol is None else tol
        return _rank(np.linalg.svd(stacked, compute_uv=False), shape, rtol)

    ranks = np.array(
        [rank_at(lam, kappa) for lam, kappa in zip(eigenvalues, condition, strict=True)], dtype=int
    )
    for members in _clusters(eigenvalues, radius):
        if members.size > 1:
            at_mean = rank_at(eigenvalues[members].mean(), float(condition[members].max()))
            ranks[members] = np.minimum(ranks[members], at_mean)
    return PBHResult(eigenvalues=eigenvalues, ranks=ranks, size=n)


# -- Gramians ----------------------------------------------------------------------------------
def _gramian(F: np.ndarray, Q: np.ndarray, steps: int) -> np.ndarray:
    """``Σ_{j<steps} F^j Q F^jᵀ`` by doubling: ``W_{a+b} = W_a + F^a W_b F^aᵀ`` (O(log steps) products)."""
    n = F.shape[0]
    total, total_power = np.zeros((n, n)), np.eye(n)  # W_r and F^r for r = bits consumed so far
    block, block_power = Q.copy(), F.copy()  # W_p and F^p for p = 2^i
    remaining = steps
    while remaining:
        if remaining & 1:
            total = total + total_power @ block @ total_power.T
            total_power = total_power @ block_power
        remaining >>= 1
        if remaining:
            block = block + block_power @ block @ block_power.T
            block_power = block_power @ block_power
    return (total + total.T) / 2


def gramian(dynamics, input_cov, steps: int) -> np.ndarray:
    """Finite-horizon Gramian ``W_k = Σ_{j<k} F^j Q (F^j)ᵀ`` for a PSD input covariance ``Q``.

    With ``Q = B Bᵀ`` it is ``K Kᵀ`` for the Kalman matrix ``K`` of ``k`` steps: the covariance
    of the state ``k`` steps after a zero start driven by white inputs of covariance ``Q``.
    """
    F = _square(dynamics)
    Q = as_covariance(input_cov, "input_cov", F.shape[0])
    k = as_int(steps, "steps", minimum=1)
    return _gramian(F, Q, k)


def gramian_factor(dynamics: np.ndarray, input_matrix: np.ndarray, steps: int) -> np.ndarray:
    """A thin factor ``𝒦`` with ``𝒦𝒦ᵀ = W_k = Σ_{j<k} Fʲ B Bᵀ Fʲᵀ`` (``k = steps``).

    The Kalman matrix ``[B, F B, …]`` while it has at most ``n`` columns, else the eigen-factor of
    the Gramian (by doubling), with eigenvalues below :data:`GRAMIAN_RANK_RTOL` dropped, so it
    never exceeds ``n`` columns. Inner routine: ``F`` (``n × n``) and ``B`` (``n × m``) are trusted.

    >>> B = np.array([[1.0], [0.0]])
    >>> gramian_factor(np.eye(2), B, 2)  # thin: the Kalman matrix [B, F B]
    array([[1., 1.],
           [0., 0.]])
    >>> f = gramian_factor(np.eye(2), B, 3)  # 3 columns > n: the eigen-factor of W = diag(3, 0)
    >>> f.shape, bool(np.allclose(f @ f.T, [[3, 0], [0, 0]]))
    ((2, 1), True)
    """
    n, m = input_matrix.shape
    if steps * m <= n:
        return np.hstack(_krylov_blocks(dynamics, input_matrix, steps))
    W = _gramian(dynamics, input_matrix @ input_matrix.T, steps)
    values, vectors = np.linalg.eigh(W)
    keep = values > GRAMIAN_RANK_RTOL * max(float(values[-1]), 0.0)
    return vectors[:, keep] * np.sqrt(values[keep])


def reachable_dimension(dynamics: np.ndarray, input_matrix: np.ndarray) -> int | None:
    """Dimension of the controllable subspace of ``(F, B)`` by a doubling staircase.

    ``R_{2j} = R_j + F^j R_j``; it stops as soon as the space stops growing (then it is
    ``F``-invariant), so an uncontrollable pair costs one or two steps, where the Kalman matrix
    would need ``n`` products. ``None`` on overflow. Inner routine: arrays are trusted.

    >>> reachable_dimension(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]))
    2
    """
    n = dynamics.shape[0]
    V = _orthonormal_range(input_matrix)
    power = dynamics.copy()
    while 0 < V.shape[1] < n:
        image = power @ V
        if not np.all(np.isfinite(image)):
            return None
        new = image - V @ (V.T @ image)
        new = new - V @ (V.T @ new)
        u, s, _ = np.linalg.svd(new, full_matrices=False)
        reference = max(float(np.linalg.norm(image, 2)), np.finfo(float).tiny)
        grow = u[:, s > STAIRCASE_RTOL * reference]
        if grow.shape[1] == 0:
            break
        V = np.hstack([V, grow])
        power = power @ power
    return V.shape[1]


def _orthonormal_range(factor: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``range(factor)``: singular values above ``STAIRCASE_RTOL`` of the largest."""
    if factor.size == 0 or not np.any(factor):
        return np.zeros((factor.shape[0], 0))
    u, s, _ = np.linalg.svd(factor, full_matrices=False)
    return u[:, s > STAIRCASE_RTOL * s[0]]


def gramian_rank(gramian_matrix, *, tol: float | None = None) -> int:
    """Rank of a PSD Gramian: eigenvalues above ``tol * λ_max`` (default :data:`GRAMIAN_RANK_RTOL`)."""
    W = as_covariance(gramian_matrix, "gramian", _square(gramian_matrix, "gramian").shape[0])
    tol = GRAMIAN_RANK_RTOL if tol is None else _tolerance(tol)
    eigenvalues = np.linalg.eigvalsh(W)
    if eigenvalues.size == 0 or eigenvalues[-1] <= 0.0:
        return 0
    return int(np.sum(eigenvalues > tol * eigenvalues[-1]))


def spectral_radius(dynamics) -> float:
    """``max |λ(F)|``: ``F`` is (Schur) stable iff it is below 1."""
    return float(np.max(np.abs(np.linalg.eigvals(_square(dynamics)))))


def _stable(F: np.ndarray, name: str) -> None:
    radius = float(np.max(np.abs(np.linalg.eigvals(F))))
    if radius >= 1.0 - STABILITY_MARGIN:
        raise InputError(
            f"{name}: spectral radius {radius:.6g} >= 1, unstable: no infinite-horizon Gramian "
            f"(Σ_j F^j Q F^jᵀ diverges); use a finite horizon"
        )


def infinite_gramian(dynamics, input_cov, *, name: str = "dynamics") -> np.ndarray:
    """``W_∞ = Σ_{j≥0} F^j Q F^jᵀ``, the solution of ``W = F W Fᵀ + Q`` (SciPy's discrete Lyapunov).

    Exists only for a stable ``F`` (spectral radius < 1); otherwise ``ValueError`` naming ``name``.
    """
    F = _square(dynamics, name)
    Q = as_covariance(input_cov, "input_cov", F.shape[0])
    _stable(F, name)
    W = scipy.linalg.solve_discrete_lyapunov(F, Q)
    return (W + W.T) / 2


# -- the System's pair -------------------------------------------------------------------------
def _system(system) -> System:
    if not isinstance(system, System):
        raise InputError(f"system: expected a lamproof System, got {type(system).__name__}")
    return system


def control_pair(system: System) -> tuple[np.ndarray, np.ndarray]:
    """``(F_cl, G Σ_e^{1/2})``: the closed loop and what exploration drives it through.

    ``G Σ_e^{1/2}`` has the range of ``G Σ_e Gᵀ`` (use the latter for exact arithmetic).
    """
    system = _system(system)
    return system.closed_loop, system.action_matrix @ psd_sqrt(system.exploration_cov)


def action_gramian(system: System, k: int) -> np.ndarray:
    """``Σ_{j<k} F_cl^j G Σ_e Gᵀ (F_cl^j)ᵀ``: the spread of ``o_k`` the explored actions cause."""
    system = _system(system)
    k = as_int(k, "horizon", minimum=1)
    G = system.action_matrix
    return _gramian(system.closed_loop, G @ system.exploration_cov @ G.T, k)


def noise_gramian(system: System, k: int) -> np.ndarray:
    """``Σ_{j<k} F_cl^j Σ_ε (F_cl^j)ᵀ``: the spread of ``o_k`` the noise causes.

    With zero means, ``action_gramian + noise_gramian`` is the ``k``-step innovation second
    moment ``S_r`` (the covariance of ``o_k`` minus its best linear prediction from ``o_0``).
    """
    system = _system(system)
    k = as_int(k, "horizon", minimum=1)
    return _gramian(system.closed_loop, system.noise_cov, k)


def infinite_action_gramian(system: System) -> np.ndarray:
    """``lim_k`` :func:`action_gramian`; ``ValueError`` naming ``closed_loop`` if ``F_cl`` is unstable."""
    system = _system(system)
    G = system.action_matrix
    return infinite_gramian(system.closed_loop, G @ system.exploration_cov @ G.T, name="closed_loop")


def infinite_noise_gramian(system: System) -> np.ndarray:
    """``lim_k`` :func:`noise_gramian`; ``ValueError`` naming ``closed_loop`` if ``F_cl`` is unstable."""
    system = _system(system)
    return infinite_gramian(system.closed_loop, system.noise_cov, name="closed_loop")


# -- exact (SymPy) -----------------------------------------------------------------------------
def _exact_entry(value, name: str) -> sympy.Rational:
    import sympy

    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected numbers, got a boolean")
    if isinstance(value, (numbers.Integral, Fraction)):
        return sympy.Rational(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise InputError(f"{name}: contains NaN or infinite entries")
        return sympy.Rational(float(value))  # the float's exact binary value, no rounding
    try:
        entry = sympy.sympify(value, strict=True)
    except (sympy.SympifyError, TypeError):
        raise InputError(f"{name}: entry {value!r} is not a number") from None
    if isinstance(entry, sympy.Float):
        if not entry.is_finite:
            raise InputError(f"{name}: contains NaN or infinite entries")
        return sympy.Rational(entry)
    if entry is sympy.nan or entry.has(sympy.oo, sympy.zoo, -sympy.oo, sympy.nan):
        raise InputError(f"{name}: contains NaN or infinite entries")
    if not entry.is_Rational:
        raise InputError(f"{name}: entry {entry} is not rational (exact routines need rationals)")
    return entry


def exact_matrix(value, name: str, shape: tuple[int | None, int | None] = (None, None)) -> sympy.Matrix:
    """``value`` as a SymPy matrix of Rationals; floats are taken at their exact binary value."""
    import sympy

    if isinstance(value, str):
        raise InputError(f"{name}: expected a matrix, got the string {value!r}")
    if isinstance(value, sympy.MatrixBase):
        rows = value.tolist()
    else:
        array = np.asarray(value, dtype=object)
        if array.ndim != 2:
            raise InputError(f"{name}: expected a matrix, got an array of shape {array.shape}")
        rows = array.tolist()
    matrix = (
        sympy.Matrix([[_exact_entry(v, name) for v in row] for row in rows]) if rows else sympy.zeros(0, 0)
    )
    for want, got in zip(shape, matrix.shape, strict=True):
        if want is not None and want != got:
            raise InputError(
                f"{name}: expected shape {tuple('any' if s is None else s for s in shape)}, "
                f"got {matrix.shape}"
            )
    return matrix


def _exact_square(value, name: str = "dynamics") -> sympy.Matrix:
    F = exact_matrix(value, name)
    if F.rows != F.cols or F.rows < 1:
        raise InputError(f"{name}: must be square with at least one row, got shape {F.shape}")
    return F


def _exact_pair(F, B) -> StateSpace:
    from sympy.physics.control import StateSpace

    F = _exact_square(F)
    B = exact_matrix(B, "input_matrix")
    if B.rows != F.rows:
        raise InputError(f"input_matrix: must have {F.rows} rows like dynamics, got shape {B.shape}")
    if B.cols < 1:
        raise InputError(f"input_matrix: must have at least one column, got shape {B.shape}")
    return StateSpace(F, B)


def exact_kalman_matrix(dynamics, input_matrix, steps: int | None = None) -> sympy.Matrix:
    """Exact ``[B, F B, …, F^{steps−1} B]``; ``steps = n`` is ``StateSpace.controllability_matrix``."""
    import sympy

    ss = _exact_pair(dynamics, input_matrix)
    F, B = ss.state_matrix, ss.input_matrix
    k = _steps(steps, F.rows)
    if k == F.rows:
        return sympy.Matrix(ss.controllability_matrix())
    blocks = [B]
    for _ in range(k - 1):
        blocks.append(F * blocks[-1])
    return sympy.Matrix.hstack(*blocks)


def exact_kalman_rank(dynamics, input_matrix, steps: int | None = None) -> int:
    """Exact rank of the Kalman matrix (rational arithmetic: no tolerance)."""
    return int(exact_kalman_matrix(dynamics, input_matrix, steps).rank())


def exact_is_controllable(dynamics, input_matrix) -> bool:
    """``StateSpace(F, B).is_controllable()``: exact Kalman rank ``== n``."""
    return bool(_exact_pair(dynamics, input_matrix).is_controllable())


def exact_controllable_subspace(dynamics, input_matrix) -> sympy.Matrix:
    """Exact basis (columns, not orthonormalized) of the controllable subspace, via ``StateSpace``."""
    import sympy

    ss = _exact_pair(dynamics, input_matrix)
    columns = ss.controllable_subspace()
    return sympy.Matrix.hstack(*columns) if columns else sympy.zeros(ss.num_states, 0)


def exact_gramian(dynamics, input_cov, steps: int) -> sympy.Matrix:
    """Exact ``Σ_{j<k} F^j Q (F^j)ᵀ`` with rational ``F`` and symmetric PSD rational ``Q``."""
    import sympy

    F = _exact_square(dynamics)
    Q = exact_matrix(input_cov, "input_cov", (F.rows, F.rows))
    if Q != Q.T:
        raise InputError("input_cov: covariance is not symmetric")
    if not Q.is_positive_semidefinite:
        raise InputError("input_cov: covariance is not positive semi-definite")
    k = as_int(steps, "steps", minimum=1)
    total, term = sympy.zeros(F.rows, F.rows), Q
    for j in range(k):
        total += term
        if j + 1 < k:
            term = F * term * F.T
    return total
