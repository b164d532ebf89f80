"""Linear probes: how much of a target a representation carries, over the whole optimal family.

A probe score is the fraction of variance left unexplained by the best affine probe,
``E‖t − t̂‖² / tr Cov(t)``, with the probe fitted on one transition and scored on another (the same
one by default). With square-root factors (``Cov(f) = F Fᵀ``, ``Cov(t) = T Tᵀ``, shared white
columns) the explained variance on the fitted data is ``‖T Π_{row F}‖²``: a projection.

Over an optimal *family* (:mod:`lamproof.numeric.families`) a score is an interval, and lamproof
separates what is proved from what is witnessed (:class:`ProbeScore`):

- ``min``/``max`` are *proved*: every member of the family's closure scores inside them. They come
  from Ky Fan's theorem where the family is "fixed features plus any ``k``-subspace of
  ``span(free)``" (exact: sums of top or bottom squared singular values of the residualized
  cross-factor), from the same theorem applied to bounding sub- and super-families for the
  drift-tie family of the predicted change, from a symmetry certificate where the tie choice
  provably cannot change the score, and, for probes fitted on one distribution and scored on
  another, from the best probe on the scoring data (below) and a Cauchy–Schwarz bound (above).
- ``attained_min``/``attained_max`` are *witnessed*: scores of concrete members
  (:class:`~lamproof.numeric.objective.LAMParameters`, in ``witnesses``), found from the
  extremal directions of the bounds and the tie choices aligned with the drift (where a score
  jumps), each scored afresh. The search is deterministic and defined by the problem, not its
  coordinates. A witness never widens or proves anything: it only shows a member is there.
- ``bounds`` is ``"exact"`` when the witnesses reach the proved bounds (within
  ``WITNESS_ATOL``), ``"outer"`` otherwise; ``identified`` is ``True`` when the proved interval is
  a point, ``False`` when two witnessed members differ, ``None`` when neither is shown.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.linalg

from lamproof.errors import IllConditioned, InputError
from lamproof.numeric.closed_form import Solution
from lamproof.numeric.families import DriftTieFamily, PointFamily, SubspaceFamily
from lamproof.numeric.linalg import orthonormal_basis, project_out
from lamproof.numeric.lowrank import LowRankSolution
from lamproof.numeric.objective import OBSERVED, LAMParameters
from lamproof.numeric.tolerances import (
    DECISION_RTOL,
    IDENTIFIED_ATOL,
    MATTERS_RTOL,
    NUMERIC_FEATURE_RTOL,
    ROUNDOFF_RTOL,
    WITNESS_ATOL,
)
from lamproof.systems import Transition

#: Probe targets and the transition variable each reads. The observation is the current frame
#: ``o_t`` (also with a context window), the noise the process noise of the horizon's steps, and
#: ``exogenous`` the window's exogenous innovation ``x_{t+k} − E[x_{t+k} | x_t]``, a target only
#: where the system declares exogenous coordinates (:func:`targets_for`).
TARGETS = {"action": "action", "observation": "current_obs", "noise": "noise", "exogenous": "exogenous"}
REPRESENTATIONS = ("predicted_change", "latent")


def targets_for(*transitions: Transition) -> tuple[str, ...]:
    """The probe targets that every given transition has (``exogenous`` only with exogenous coordinates)."""
    return tuple(t for t, variable in TARGETS.items() if all(variable in tr.variables for tr in transitions))


@dataclass(frozen=True)
class ProbeScore:
    """A probe score over the optimal family (``None`` where undefined or not decided).

    ``min``/``max``: a proved interval containing every member's score (``max`` ``None``: no
    finite bound is proved). ``attained_min``/``attained_max``: the extremes of concrete members,
    which ``witnesses`` holds as ``{"min": LAMParameters, "max": LAMParameters}``.
    """

    value: float | None  # the canonical member's score
    min: float | None
    max: float | None
    identified: bool | None
    bounds: str  # "exact" | "outer" | "unknown" | "undefined"
    attained_min: float | None = None
    attained_max: float | None = None
    witnesses: dict | None = field(default=None, repr=False, compare=False)
    #: Ends ("min", "max") witnessed by a limit of members rather than a member (observation
    #: leakage growing without bound): ``witnesses`` then holds a member close to that limit.
    approached: tuple[str, ...] = ()
    #: The scores of the members in ``witnesses`` themselves (equal to the attained ends, except at
    #: an approached end, where the member only comes close).
    witness_scores: dict | None = field(default=None, repr=False, compare=False)

    def _repr_html_(self) -> str:  # Jupyter (lamproof.display)
        from lamproof.display import score_html

        return score_html(self)

    def _repr_latex_(self) -> str:
        from lamproof.display import score_latex

        return score_latex(self)

    def as_dict(self) -> dict:
        return {
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "identified": self.identified,
            "bounds": self.bounds,
            "attained": [self.attained_min, self.attained_max],
            "approached": list(self.approached),
        }


_UNDEFINED = ProbeScore(None, None, None, None, "undefined")


@dataclass(frozen=True, eq=False)
class _Limit:
    """A feature subspace in the closure of the family (``features``), and a member near it."""

    features: np.ndarray
    member: LAMParameters


# -- moments of a distribution ------------------------------------------------------------------------
class _Dist:
    """Covariance factors and means of ``x = [obs; o']`` and of the targets, for one transition."""

    def __init__(self, transition: Transition):
        self.transition = transition
        self.X = transition.factor(OBSERVED, mean=False)
        self.mean_x = transition.mean(OBSERVED)
        self._targets: dict = {}
        self._stacks: dict = {}
        self._memo: OrderedDict = OrderedDict()  # probe_errors fitted here: see recall()
        self._memo_bytes = 0

    def recall(self, key: tuple, features: np.ndarray, weights: np.ndarray) -> dict | None:
        """The probe errors :func:`probe_errors` returned for exactly these ``features`` and
        ``weights`` (compared entry by entry) under ``key`` (scoring data, targets, ``rtol``), or ``None``."""
        for known_features, known_weights, result in self._memo.get(key, ()):
            if np.array_equal(known_features, features) and np.array_equal(known_weights, weights):
                return dict(result)
        return None

    def remember(self, key: tuple, features: np.ndarray, weights: np.ndarray, result: dict) -> None:
        size = features.nbytes + weights.nbytes
        if size > MEMO_BYTES // 4:
            return
        self._memo.setdefault(key, []).append((features.copy(), weights.copy(), dict(result)))
        self._memo_bytes += size
        while self._memo_bytes > MEMO_BYTES:
            _, entries = self._memo.popitem(last=False)
            self._memo_bytes -= sum(f.nbytes + w.nbytes for f, w, _ in entries)

    def stacked(self, names: tuple) -> np.ndarray:
        """The factors of the targets ``names`` one above the other (kept: one object per tuple)."""
        if names not in self._stacks:
            self._stacks[names] = np.vstack([self.target(name)[0] for name in names])
        return self._stacks[names]

    def target(self, name: str) -> tuple[np.ndarray, np.ndarray, float]:
        """``(T, mean, total)``: covariance factor, mean and ``tr Cov`` of a probe target."""
        if name not in self._targets:
            variable = TARGETS[name]
            T = self.transition.factor(variable, mean=False)
            self._targets[name] = (T, self.transition.mean(variable), float(np.sum(T**2)))
        return self._targets[name]


#: Bytes of feature maps (and their ingredients) a distribution keeps to answer repeated
#: :func:`probe_errors` calls. The same features are scored many times over: a family's canonical
#: member again among its witnesses, one member as the witness of several ends, configurations of
#: a sweep whose features coincide. At d_o = 128 hundreds of maps fit; a d_o = 1024 change map
#: (32 MB with its ingredients) is not kept.
MEMO_BYTES = 16 * 2**20


_DISTS: weakref.WeakKeyDictionary[Transition, _Dist] = weakref.WeakKeyDictionary()


def forget_probe_errors() -> None:
    """Empty :func:`probe_errors`' memory of scored features (benchmarks timing repeated runs of
    one problem call it, so that a repeat costs what the first run did)."""
    for dist in list(_DISTS.values()):
        dist._memo.clear()
        dist._memo_bytes = 0


class _Factor:
    """A factor ``X`` (a covariance factor of the features' input or of a target) in the forms its
    products use, each made on first use: ``|X|``, and, when ``X`` is sparse (a paper system's
    factor is: identity blocks, ``G``, ``σ I``; 2% nonzero at d_o = 128, 0.3% at d_o = 1024),
    compressed-row copies of ``X``, ``Xᵀ`` and ``|X|ᵀ``, with which a product costs its nonzero
    terms instead of a dense d_o-sized multiplication. A sparse product sums the same nonzero
    terms as the dense one (the dense one adds exact zeros besides), in another order: the result
    differs in the last bits only."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.sparse = np.count_nonzero(X) <= SPARSE_DENSITY * X.size

    @cached_property
    def abs(self) -> np.ndarray:
        return np.abs(self.X)

    def _csr(self, M: np.ndarray):
        import scipy.sparse  # only for sparse factors: not on every command's import path

        return scipy.sparse.csr_array(M)

    @cached_property
    def csr(self):
        return self._csr(self.X)

    @cached_property
    def csr_t(self):
        return self._csr(np.ascontiguousarray(self.X.T))

    @cached_property
    def abs_csr_t(self):
        return self._csr(np.ascontiguousarray(self.abs.T))


#: A factor with at most this fraction of nonzero entries is multiplied as a sparse matrix
#: (:class:`_Factor`); a dense product of a d_o-row map then costs ~1/density times more.
SPARSE_DENSITY = 0.05

#: The forms of the last few factors probed (a factor is probed with many feature maps in a row).
_FACTORS: dict[int, _Factor] = {}


def _factor(X: np.ndarray) -> _Factor:
    entry = _FACTORS.get(id(X))
    if entry is None or entry.X is not X:
        if len(_FACTORS) >= 16:
            _FACTORS.pop(next(iter(_FACTORS)))
        entry = _FACTORS[id(X)] = _Factor(X)
    return entry


def _row_scales(weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """:func:`lamproof.numeric.linalg.row_scales` with ``|X|`` computed once per factor."""
    return np.linalg.norm(_times(np.abs(weights), X, absolute=True), axis=1)


#: From this many rows with at most one nonzero entry on, :func:`_times` reads them off a dense
#: ``X`` instead of multiplying (the observation rows of a leakage family, the coordinate rows of
#: spare latent dimensions: d_o of them, a d_o × 2d_o × n product otherwise).
SELECTOR_ROWS = 16


def _times(rows: np.ndarray, X: np.ndarray, absolute: bool = False) -> np.ndarray:
    """``rows @ X`` (``rows @ |X|`` with ``absolute``; ``rows`` then nonnegative).

    The rows that have at most one nonzero entry ``c`` (at ``j``) are read off as ``c · X[j]`` (a sum
    with one nonzero term is that term, rounded once, in any order), the others multiplied: a
    sparse ``X`` (:class:`_Factor`) as such, a dense one densely."""
    factor = _factor(X)
    if rows.shape[0] < SELECTOR_ROWS:
        return _product(rows, factor, absolute)
    nonzero = rows != 0
    single = np.count_nonzero(nonzero, axis=1) <= 1
    if int(np.count_nonzero(single)) < SELECTOR_ROWS:
        return _product(rows, factor, absolute)
    out = np.empty((rows.shape[0], X.shape[1]))
    dense = ~single
    if np.any(dense):
        out[dense] = _product(rows[dense], factor, absolute)
    where = np.argmax(nonzero[single], axis=1)
    out[single] = rows[single, where][:, None] * (factor.abs if absolute else factor.X)[where]
    return out


def _product(rows: np.ndarray, factor: _Factor, absolute: bool) -> np.ndarray:
    """``rows @ X`` (or ``|X|``) for a factor: sparse ones as such."""
    if factor.sparse:
        right = factor.abs_csr_t if absolute else factor.csr_t
        return np.ascontiguousarray((right @ rows.T).T)
    return rows @ (factor.abs if absolute else factor.X)


def _times_t(F: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``F @ Tᵀ`` for a target factor ``T`` (sparse ones as such: :class:`_Factor`)."""
    factor = _factor(T)
    if factor.sparse:
        return np.ascontiguousarray((factor.csr @ F.T).T)
    return F @ T.T


def _dist(transition: Transition) -> _Dist:
    if transition not in _DISTS:
        _DISTS[transition] = _Dist(transition)
    return _DISTS[transition]


class _Rows:
    """The products of one feature map ``rows`` with a factor ``X``, each formed once on first use and
    shared by the routes that read them (the Cholesky fast path and, when it declines, the SVD
    path): ``F = rows @ X``, the row scales of ``weights`` (default ``rows``) against ``X``, the
    row-scaled ``F / scales`` and its Gram matrix. The same operations on the same arrays as each
    route would do alone, so the numbers do not change."""

    def __init__(self, rows: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None):
        self.rows, self.X, self.weights = rows, X, rows if weights is None else weights

    @cached_property
    def F(self) -> np.ndarray:
        return _times(self.rows, self.X)

    @cached_property
    def scales(self) -> np.ndarray:
        return _row_scales(self.weights, self.X)

    @cached_property
    def scaled(self) -> np.ndarray:
        """``F / scales`` (rows) when every scale is positive (the callers check)."""
        return self.F / self.scales[:, None]

    @cached_property
    def gram(self) -> np.ndarray:
        return self.scaled @ self.scaled.T


def _space(
    rows: np.ndarray,
    X: np.ndarray,
    include_grey: bool,
    rtol: float | None = None,
    weights: np.ndarray | None = None,
    shared: _Rows | None = None,
) -> tuple[np.ndarray, bool]:
    """Orthonormal basis of the row space of ``rows @ X`` (row-scaled; see ``linalg.row_space``).

    ``rtol`` given: directions below it are dropped and nothing is undecidable (numeric features).
    ``shared``: the products of ``rows`` with ``X`` already formed (:class:`_Rows`).
    """
    n = X.shape[1]
    if rows.shape[0] == 0:
        return np.zeros((n, 0)), False
    shared = _Rows(rows, X, weights) if shared is None else shared
    F, scales = shared.F, shared.scales
    live = scales > 0
    if not np.any(live):
        return np.zeros((n, 0)), False
    every = bool(np.all(live))
    scaled = shared.scaled if every else F[live] / scales[live, None]
    if rtol is None and scaled.shape[0] >= SPACE_GRAM_ROWS:
        basis = _low_rank_space(scaled, shared.gram if every else None)
        if basis is not None:
            return basis, False
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    if rtol is not None:
        return vt[s > rtol * s[0]].T, False
    grey = (s > ROUNDOFF_RTOL) & (s < DECISION_RTOL)
    keep = s >= DECISION_RTOL
    if include_grey:
        keep = keep | grey
    return vt[keep].T, bool(np.any(grey))


#: From this many feature rows on, :func:`_space` first tries :func:`_low_rank_space`: a map of
#: d_o rows whose row space is a few directions plus round-off (the predicted change ``ô' − o_t``
#: of a member: rank ≤ d_z, every other row M₁ − I cancelling to round-off) is decided without a
#: d_o × n SVD. Smaller maps keep the SVD (and their numbers bit for bit).
SPACE_GRAM_ROWS = 64

#: Relative singular value above which :func:`_low_rank_space` takes a direction from the Gram
#: matrix's eigenvectors (its eigenvalue, 1e-12 of the largest, is then far above the Gram
#: matrix's round-off of ~1e-16); everything weaker must turn out to be round-off, or the SVD decides.
STRONG_RTOL = 1e-6


def _low_rank_space(scaled: np.ndarray, gram: np.ndarray | None = None) -> np.ndarray | None:
    """Orthonormal basis of the row space of the row-scaled features ``F`` when ``F`` is a few strong
    directions plus round-off, else ``None`` (the SVD decides).

    The strong left directions come from the Gram matrix ``F Fᵀ``, sharpened by one subspace
    iteration (``Q = orth(F Fᵀ U)``: the error shrinks by ``(σ_{r+1}/σ_r)²``). The rest is decided,
    not estimated: every other singular value of ``F`` is at most ``‖F − Q Qᵀ F‖_F`` (Eckart–Young),
    which must be below ``ROUNDOFF_RTOL``, and every kept one (the singular values of ``Qᵀ F``)
    at least ``DECISION_RTOL`` — the same thresholds the SVD route applies. ``gram``: ``F Fᵀ``
    when already formed.
    """
    m = scaled.shape[0]
    gram = scaled @ scaled.T if gram is None else gram
    basis = _sketched_space(scaled, gram) if m >= SKETCH_ROWS else None
    if basis is not None:
        return basis
    values = np.linalg.eigvalsh(gram)
    if values[-1] <= 0:
        return None
    r = int(np.sum(values > STRONG_RTOL**2 * values[-1]))
    if r == 0 or 2 * r > m:  # not low rank: the SVD costs about as much
        return None
    _, U = scipy.linalg.eigh(gram, subset_by_index=[m - r, m - 1], driver="evx")
    if U.shape[1] != r:
        return None
    Q, _ = np.linalg.qr(scaled @ (scaled.T @ U))
    C = Q.T @ scaled
    if float(np.linalg.norm(scaled - Q @ C)) > ROUNDOFF_RTOL:
        return None
    _, s, vt = np.linalg.svd(C, full_matrices=False)
    if float(np.min(s)) < DECISION_RTOL:
        return None
    return vt.T


#: From this many feature rows on, :func:`_low_rank_space` first tries :func:`_sketched_space`
#: (below it the ``m × m`` eigendecompositions cost less than the sketch's products).
SKETCH_ROWS = 256

#: Columns of the sketch :func:`_sketched_space` starts from: more than the rank of a predicted
#: change (d_z plus the drift's rank), few enough that the sketch costs a sliver of one
#: eigendecomposition of the Gram matrix.
SKETCH_COLUMNS = 48


def _sketched_space(scaled: np.ndarray, gram: np.ndarray) -> np.ndarray | None:
    """:func:`_low_rank_space` without eigendecomposing the ``m × m`` Gram matrix, or ``None``.

    The strong left directions are found by two subspace iterations ``Q = orth(G orth(G Ω))`` from a
    fixed Gaussian sketch ``Ω`` (``SKETCH_COLUMNS`` columns, seed 0: the same numbers on every run),
    those of ``Qᵀ F`` above ``STRONG_RTOL`` of the largest kept. How they were found does not
    matter: the decision is the certificate of :func:`_low_rank_space` (Eckart–Young: everything
    outside them is below ``ROUNDOFF_RTOL``; every kept one at least ``DECISION_RTOL``). When the
    sketch misses a direction the certificate fails and the Gram matrix's eigenvalues decide."""
    m = scaled.shape[0]
    k = min(SKETCH_COLUMNS, m // 2)
    if k == 0:
        return None
    omega = np.random.default_rng(0).standard_normal((m, k))
    Q, _ = np.linalg.qr(gram @ omega)
    Q, _ = np.linalg.qr(gram @ Q)
    u, s, vt = np.linalg.svd(Q.T @ scaled, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        return None
    keep = s > STRONG_RTOL * s[0]
    r = int(np.sum(keep))
    if r >= k:  # the sketch may be too narrow to hold them all: the eigenvalues decide
        return None
    Qk = Q @ u[:, :r]
    if float(np.linalg.norm(scaled - Qk @ (s[:r, None] * vt[:r]))) > ROUNDOFF_RTOL:
        return None
    if float(s[r - 1]) < DECISION_RTOL:
        return None
    return vt[:r].T


def _settled(compute, what: str):
    """``compute(include_grey)``; when an undecidable direction was met, recompute with it and
    refuse (:class:`IllConditioned`) if the answers differ."""
    flag = {"grey": False}

    def run(include_grey: bool):
        return compute(include_grey, flag)

    first = run(False)
    if not flag["grey"]:
        return first
    second = run(True)
    a, b = np.asarray(_numbers(first), dtype=float), np.asarray(_numbers(second), dtype=float)
    if a.shape != b.shape or np.max(np.abs(a - b), initial=0.0) > MATTERS_RTOL * max(
        1.0, np.max(np.abs(a), initial=0)
    ):
        raise IllConditioned(
            f"{what}: a feature direction lies between round-off and signal and changes the score; "
            "float64 cannot decide"
        )
    return first


def _numbers(result) -> list:
    if isinstance(result, dict):
        out = []
        for value in result.values():
            out += _numbers(value)
        return out
    if isinstance(result, (tuple, list)):
        out = []
        for value in result:
            out += _numbers(value)
        return out
    if result is None or isinstance(result, np.ndarray):
        return []
    return [float(result)]


# -- probe errors of one set of features ----------------------------------------------------------------
def probe_errors(
    features: np.ndarray,
    fit: Transition,
    score: Transition | None = None,
    targets=None,
    *,
    rtol: float | None = None,
    ingredients: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Fraction of unexplained variance of each target by the best affine probe of ``features @ x``.

    The probe is fitted on ``fit`` and scored on ``score`` (default: ``fit``); ``None`` for a
    target without variance on ``score``. Exact by default: a feature direction counts however
    weak, as long as float64 can tell it from round-off (else :class:`IllConditioned`). For
    parameters found numerically pass ``rtol`` (:data:`~lamproof.numeric.tolerances.NUMERIC_FEATURE_RTOL`):
    directions weaker than ``rtol`` times the strongest are then dropped as optimizer noise.
    ``ingredients``: nonnegative, the size of the terms each entry of ``features`` was computed from
    (default ``|features|``), so that a row that cancels to round-off counts as zero. ``targets``
    default to :func:`targets_for` the two transitions.
    """
    targets = targets_for(fit, fit if score is None else score) if targets is None else tuple(targets)
    for target in targets:
        _check(target, "latent", fit, score)
    features = np.atleast_2d(np.asarray(features, dtype=np.float64))
    weights = np.abs(features) if ingredients is None else np.atleast_2d(ingredients)
    f, s = _dist(fit), _dist(fit if score is None else score)
    # the same features on the same data give the same numbers: answered from memory when seen
    key = (
        None if s is f else weakref.ref(s.transition),
        targets,
        rtol,
        features.shape,
        weights.shape,
        float(np.sum(features)),
        float(np.sum(weights)),
    )
    known = f.recall(key, features, weights)
    if known is not None:
        return known
    shared = _Rows(features, f.X, weights)  # F and its scales, formed once for both routes

    def compute(include_grey, flag):
        out = {}
        if s is f:
            fast = _cholesky(features, f.X, weights, shared) if not include_grey and rtol is None else None
            if fast is not None:
                Lc, scales, F = fast
                factors = [f.target(name) for name in targets]
                if not factors:
                    return out
                # one triangular solve for every target: their factors side by side
                y = scipy.linalg.solve_triangular(
                    Lc, _times_t(F, f.stacked(targets)), lower=True, check_finite=False
                )
                start = 0
                for name, (T, _, total) in zip(targets, factors, strict=True):
                    explained = float(np.sum(y[:, start : start + T.shape[0]] ** 2))
                    start += T.shape[0]
                    out[name] = None if total == 0 else _clip(1.0 - explained / total)
                return out
            basis, grey = _space(features, f.X, include_grey, rtol, weights, shared)
            flag["grey"] |= grey
            for name in targets:
                T, _, total = f.target(name)
                out[name] = None if total == 0 else _clip(1.0 - float(np.sum((T @ basis) ** 2)) / total)
            return out
        beta_map, grey = _probe_map(features, f, include_grey, rtol, weights, shared)
        flag["grey"] |= grey
        F2 = features @ s.X
        shift = features @ (s.mean_x - f.mean_x)
        for name in targets:
            T2, mean2, total = s.target(name)
            if total == 0:
                out[name] = None
                continue
            T1, mean1, _ = f.target(name)
            beta = T1 @ beta_map  # probe coefficients on the features
            residual = T2 - beta @ F2
            offset = (mean2 - mean1) - beta @ shift
            out[name] = max(float(np.sum(residual**2) + offset @ offset), 0.0) / total
        return out

    result = _settled(compute, "probe features")
    f.remember(key, features, weights, result)
    return result


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _probe_map(
    features: np.ndarray,
    dist: _Dist,
    include_grey: bool,
    rtol: float | None,
    weights: np.ndarray,
    shared: _Rows | None = None,
) -> tuple[np.ndarray, bool]:
    """``M`` with ``T M`` the least-squares probe coefficients of any target factor ``T``:
    ``β F = T Π_{row F}`` for ``F = features @ X``, solved through the row-scaled factor."""
    shared = _Rows(features, dist.X, weights) if shared is None else shared
    F, scales = shared.F, shared.scales
    inverse = np.divide(1.0, scales, out=np.zeros_like(scales), where=scales > 0)
    u, s, vt = np.linalg.svd(inverse[:, None] * F, full_matrices=False)
    if rtol is not None:
        keep, grey = s > rtol * (s[0] if s.size else 0.0), np.zeros(s.shape, dtype=bool)
    else:
        grey = (s > ROUNDOFF_RTOL) & (s < DECISION_RTOL)
        keep = (s >= DECISION_RTOL) | (grey if include_grey else False)
    return (vt[keep].T / s[keep]) @ u[:, keep].T * inverse[None, :], bool(np.any(grey))


def probe_error(
    features: np.ndarray,
    target: str,
    fit: Transition,
    score: Transition | None = None,
    *,
    rtol: float | None = None,
) -> float | None:
    """:func:`probe_errors` for one target."""
    return probe_errors(features, fit, score, targets=(target,), rtol=rtol)[target]


def sample_probe_error(
    features: np.ndarray,
    target: str,
    fit: Transition,
    score: Transition | None = None,
    *,
    samples: int = 20000,
    rng: np.random.Generator,
) -> float | None:
    """:func:`probe_error` from samples: least-squares affine probe on draws of ``fit``, scored on fresh draws."""
    score = fit if score is None else score
    _check(target, "latent", fit, score)
    name = TARGETS[target]
    train = fit.sample(samples, rng)
    test = score.sample(samples, rng)
    design = np.hstack([np.hstack([train["obs"], train["next_obs"]]) @ features.T, np.ones((samples, 1))])
    coef, *_ = np.linalg.lstsq(design, train[name], rcond=None)
    test_design = np.hstack([np.hstack([test["obs"], test["next_obs"]]) @ features.T, np.ones((samples, 1))])
    residual = test[name] - test_design @ coef
    total = float(np.sum(np.var(test[name], axis=0)))
    if total <= 1e-12 * max(1.0, float(np.sum(np.var(test[name] + 1.0, axis=0)))):
        return None
    return float(np.mean(np.sum(residual**2, axis=1))) / total


# -- proved bounds: Ky Fan ---------------------------------------------------------------------------------
@dataclass
class _KyFan:
    """Explained variance over ``fixed + (k-subspace of span(free))`` for one target."""

    best: float  # the largest EV (k = k_max)
    worst: float  # the smallest EV (k = k_min)
    best_rows: np.ndarray  # coefficient rows over ``free`` attaining ``best``
    worst_rows: np.ndarray  # ... attaining ``worst``


#: The Cholesky fast path is taken when every pivot of the row-scaled Gram matrix exceeds this:
#: then every direction is real by a wide margin (relative singular values above 1e-3, far above
#: ``DECISION_RTOL``) and the normal equations lose at most ~1e-10 relative accuracy.
FAST_PIVOT = 1e-6


def _cholesky(
    rows: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None, shared: _Rows | None = None
):
    """``(Lc, scales, F)`` with ``Lc Lcᵀ`` the Gram matrix of the row-scaled ``F = rows @ X``, or
    ``None`` when it is not well inside the positive-definite cone (then the SVD path decides).
    ``shared``: the products of ``rows`` with ``X`` already formed (:class:`_Rows`); a failed
    attempt leaves its Gram matrix there for the SVD path."""
    if rows.shape[0] == 0:
        return None
    shared = _Rows(rows, X, weights) if shared is None else shared
    scales = shared.scales
    if np.any(scales <= 0):
        return None
    F = shared.scaled
    try:
        Lc = np.linalg.cholesky(shared.gram)
    except np.linalg.LinAlgError:
        return None
    if float(np.min(np.diag(Lc))) ** 2 < FAST_PIVOT:
        return None
    return Lc, scales, F


def _kyfan_fast(dist: _Dist, fixed, free, k_min: int, k_max: int, names):
    """:func:`_kyfan` through the Cholesky factor of the joint Gram matrix of ``[fixed; free]``.

    With ``L`` lower triangular and ``L Lᵀ`` the Gram matrix, ``L⁻¹ [F0; F1] Tᵀ = [y0; y1]``: ``‖y0‖²``
    is what ``fixed`` explains and ``y1`` the whitened cross-covariance of ``free`` residualized on
    it, whose squared singular values are the Ky Fan gains. ``None`` when not well conditioned.
    """
    rows = np.vstack([fixed, free])
    found = _cholesky(rows, dist.X)
    if found is None:
        return None
    Lc, scales, F = found
    k0, k1 = fixed.shape[0], free.shape[0]
    L11 = Lc[k0:, k0:]
    out = {}
    for name in names:
        T, _, total = dist.target(name)
        y = scipy.linalg.solve_triangular(
            Lc, _times_t(F, T), lower=True, check_finite=False
        )  # finite: Cholesky passed
        ev0 = float(np.sum(y[:k0] ** 2))
        gained, top, bottom = _extreme_gains(y[k0:], k_min, k_max)

        def to_rows(U):
            return (
                scipy.linalg.solve_triangular(L11, U, lower=True, trans="T", check_finite=False).T
                / scales[k0:][None, :]
            )

        best = ev0 + gained[0]
        worst = ev0 + gained[1]
        out[name] = _KyFan(best, worst, to_rows(top), to_rows(bottom) if k_min else np.zeros((0, k1)))
    return out


#: From this many free rows and target dimensions on, :func:`_extreme_gains` reads the extreme gains from two subset
#: eigendecompositions of ``y yᵀ`` instead of a full SVD of ``y`` (d_o ≳ 256: the full SVD of a
#: d_o × d_t matrix costs ~10 dense eigendecompositions). The gains then carry an absolute error of
#: ~``k₁·eps·‖y‖²`` instead of ``eps·‖y‖·g``: below 1e-12 of the target's variance either way, far
#: inside ``WITNESS_ATOL``. Smaller problems keep the SVD (and their numbers bit for bit).
KYFAN_GRAM_ROWS = 256


def _extreme_gains(
    y: np.ndarray, k_min: int, k_max: int
) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    """``((Σ top-k_max g², Σ bottom-k_min g²), U_top, U_bottom)`` for the singular values ``g`` of
    ``y`` padded with zeros to its row count, and their left singular vectors (descending)."""
    k1 = y.shape[0]
    if min(y.shape) >= KYFAN_GRAM_ROWS and 0 < k_max <= k1 and k_min <= k1:
        G = y @ y.T
        vals, top = scipy.linalg.eigh(G, subset_by_index=[k1 - k_max, k1 - 1], driver="evx")
        padding = _padding_vectors(y, k_min)
        low_vals, bottom = (
            (np.zeros(k_min), padding)
            if padding is not None
            else scipy.linalg.eigh(G, subset_by_index=[0, k_min - 1], driver="evx")
            if k_min
            else (np.zeros(0), np.zeros((k1, 0)))
        )
        if top.shape[1] == k_max and bottom.shape[1] == k_min:  # evx inside a cluster: check the count
            sums = (float(np.sum(np.clip(vals, 0.0, None))), float(np.sum(np.clip(low_vals, 0.0, None))))
            return sums, top[:, ::-1], bottom[:, ::-1]
    u, g, _ = np.linalg.svd(y, full_matrices=True)
    gains = np.zeros(k1)
    gains[: g.size] = g**2
    return (
        (float(np.sum(gains[:k_max])), float(np.sum(gains[::-1][:k_min]))),
        u[:, :k_max],
        u[:, k1 - k_min :],
    )


#: How far from ``yᵀ`` the vectors of :func:`_padding_vectors` may be mapped (relative to ``‖y‖``):
#: their gains are then below 1e-24 of the largest, far inside ``WITNESS_ATOL``.
PADDING_RTOL = 1e-12


def _padding_vectors(y: np.ndarray, k: int) -> np.ndarray | None:
    """``k`` orthonormal vectors ``Z`` with ``yᵀ Z = 0`` when ``y`` has at least ``k`` more rows than
    columns (the gains of the zero padding of :func:`_extreme_gains`, exactly zero), else ``None``.

    With ``y = [y₁; y₂; …]`` (``y₁`` square), ``Z = orth([−y₁⁻ᵀ y₂ᵀ; I; 0])``: one LU solve instead
    of an eigendecomposition of ``y yᵀ``. Checked, not trusted: ``None`` (the eigendecomposition
    decides) when ``‖yᵀ Z‖`` exceeds ``PADDING_RTOL·‖y‖`` (``y₁`` near singular)."""
    k1, d = y.shape
    if k == 0 or k1 - d < k:
        return None
    try:  # LAPACK's gesv; an ill-conditioned y₁ is not refused here: the check below decides
        with np.errstate(all="ignore"):
            top = np.linalg.solve(y[:d].T, -y[d : d + k].T)
    except np.linalg.LinAlgError:  # exactly singular
        return None
    Z, _ = np.linalg.qr(np.vstack([top, np.eye(k), np.zeros((k1 - d - k, k))]))
    if not np.all(np.isfinite(Z)) or float(np.linalg.norm(y.T @ Z)) > PADDING_RTOL * float(np.linalg.norm(y)):
        return None
    return Z


def _kyfan(
    dist: _Dist, fixed, free, k_min: int, k_max: int, names, include_grey: bool, flag
) -> dict[str, _KyFan]:
    if not include_grey:
        fast = _kyfan_fast(dist, fixed, free, k_min, k_max, names)
        if fast is not None:
            return fast
    X = dist.X
    B0, grey0 = _space(fixed, X, include_grey)
    F1 = _times(free, X)
    scales = _row_scales(free, X)
    inverse = np.divide(1.0, scales, out=np.zeros_like(scales), where=scales > 0)
    R = project_out(F1, B0) * inverse[:, None]
    u, s, vt = np.linalg.svd(R, full_matrices=True)
    grey = (s > ROUNDOFF_RTOL) & (s < DECISION_RTOL)
    keep = (s >= DECISION_RTOL) | (grey if include_grey else np.zeros_like(grey))
    flag["grey"] |= grey0 or bool(np.any(grey))
    r = int(np.sum(keep))
    order = np.flatnonzero(keep)
    BR = vt[order].T
    U_r = u[:, order] / s[order]
    null = np.delete(u, order, axis=1)  # coefficient directions whose residual vanishes
    n_free = free.shape[0]
    out = {}
    for name in names:
        T, _, total = dist.target(name)
        ev0 = float(np.sum((T @ B0) ** 2))
        G = project_out(T, B0) @ BR
        if r:
            _, gs, gvt = np.linalg.svd(G, full_matrices=True)
            gains = np.zeros(r)
            gains[: gs.size] = gs**2
        else:
            gains, gvt = np.zeros(0), np.zeros((0, 0))

        def rows(directions: np.ndarray, extra: int) -> np.ndarray:
            """Coefficient rows over ``free``: residual directions, then ``extra`` null ones."""
            coeff = (U_r @ directions.T).T if directions.shape[0] else np.zeros((0, n_free))
            parts = [coeff, null[:, :extra].T]
            return np.vstack(parts) * inverse[None, :] if n_free else np.zeros((0, 0))

        top = min(k_max, r)
        best = ev0 + float(np.sum(gains[:top]))
        low = max(0, k_min - null.shape[1])
        worst = ev0 + (float(np.sum(gains[::-1][:low])) if low else 0.0)
        best_rows = rows(gvt[:top], k_max - top)
        worst_rows = rows(gvt[r - low :] if low else np.zeros((0, r)), k_min - low)
        out[name] = _KyFan(best, worst, best_rows, worst_rows)
    return out


def _to_fvu(ev: float, total: float) -> float:
    return _clip(1.0 - ev / total)


# -- proved bounds per family ------------------------------------------------------------------------------
@dataclass
class _Bounds:
    """Proved bounds per target (``lo``, ``hi`` in FVU; ``hi=None``: none) and candidate members."""

    lo: dict
    hi: dict
    candidates: list  # LAMParameters to witness with


def _separable(family: DriftTieFamily, dist: _Dist) -> bool:
    """Whether the drift's tie coordinates carry nothing beyond ``φ`` on this distribution."""
    X = dist.X
    basis, _ = _space(family.phi, X, True)
    residual = project_out(_times(family.drift, X), basis)
    reference = float(np.linalg.norm(_row_scales(family.drift, X))) + np.finfo(float).tiny
    size = float(np.linalg.norm(residual))
    if size <= ROUNDOFF_RTOL * reference:
        return True
    if size >= DECISION_RTOL * reference:
        return False
    raise IllConditioned(
        "predicted change: whether the drift (L_b − E) obs adds information inside the tied "
        "eigenspace lies between round-off and signal; float64 cannot decide"
    )


def _choice(rows: np.ndarray, m: int, k: int) -> np.ndarray:
    """An ``m × k`` orthonormal tie choice spanned by coefficient rows (padded if short)."""
    Q = orthonormal_basis(rows.T) if rows.size else np.zeros((m, 0))
    if Q.shape[1] < k:
        Q = np.hstack([Q, orthonormal_basis(project_out(np.eye(m), Q).T @ np.eye(m))[:, : k - Q.shape[1]]])
    return Q[:, :k]


def _complement(rows: np.ndarray, m: int, k: int) -> np.ndarray:
    """A tie choice orthogonal to the span of ``rows``."""
    Q_perp = orthonormal_basis(rows.T) if rows.size else np.zeros((m, 0))
    return _choice(project_out(np.eye(m), Q_perp).T, m, k)


def _tie_candidates(tie, dist: _Dist, names=(), parts=None) -> list[np.ndarray]:
    """Tie choices worth trying as witnesses: the canonical one and, for a drift-tie family
    (``parts = (φ, n, w)``), for each target the Ky Fan extremal choices inside the drift's null
    space and inside its range (a score can jump where the choice aligns with the drift). Every
    one is defined by the problem, not by its coordinates, so the witnesses and the attained
    extremes do not change with them."""
    k = tie.k
    choices = [tie.canonical_choice()]
    if parts is None or not names:
        return choices
    phi, n, w = parts
    if n.shape[0] == 0:  # no drift: the whole tie is one space
        spaces = [np.eye(tie.m)]
    else:
        Fn = _times(n, dist.X)
        cov = Fn @ Fn.T
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        zero = values <= ROUNDOFF_RTOL * max(float(values[-1]), np.finfo(float).tiny)
        spaces = [vectors[:, zero], vectors[:, ~zero]]
    flag = {"grey": False}
    for S in spaces:
        if S.shape[1] < k:
            continue
        restricted = S.T @ w  # tie coordinates inside S
        for fixed in (np.vstack([phi, n]), phi):
            ky = _kyfan(dist, fixed, restricted, k, k, names, True, flag)
            for name in names:
                choices += [
                    S @ _choice(ky[name].best_rows, S.shape[1], k),
                    S @ _choice(ky[name].worst_rows, S.shape[1], k),
                ]
    return choices


def _candidates(family, dists, names, include_grey, flag, known: dict | None = None) -> list:
    """Members to witness with: the canonical one, Ky Fan extremal members on each distribution,
    tie choices (canonical, aligned with the drift, random) and the extremes of the exact
    sub-families a union over tie choices is made of. ``known``: Ky Fan results already computed
    for ``family`` on a distribution (keyed by it)."""
    out = [family.canonical]
    tie = getattr(family, "tie", None)
    known = {} if known is None else known
    if isinstance(family, SubspaceFamily) and family.member is not None and family.free.shape[0]:
        for d in dists:
            ky = known.get(d) or _kyfan(
                d, family.fixed, family.free, family.k_min, family.k_max, names, include_grey, flag
            )
            out += [_limit(family, ky[n].best_rows) for n in names]
            if family.free_for_min is None:
                out += [_limit(family, ky[n].worst_rows) for n in names]
    if tie is not None:
        parts = (
            (family.phi, family.drift, family.innovation)
            if isinstance(family, DriftTieFamily)
            else family.parts
        )
        choices = _tie_candidates(tie, dists[0], names, parts)
        split = getattr(family, "split", None)
        for Q in choices:
            if split is None:
                out.append(tie.build(Q))
                continue
            sub = split(Q)
            out.append(sub.canonical)
            if isinstance(sub, SubspaceFamily) and sub.member is not None:
                for d in dists:
                    ky = _kyfan(d, sub.fixed, sub.free, sub.k_min, sub.k_max, names, include_grey, flag)
                    out += [_limit(sub, ky[n].best_rows) for n in names] + [
                        _limit(sub, ky[n].worst_rows) for n in names
                    ]
    return out


def _limit(family: SubspaceFamily, rows: np.ndarray) -> _Limit:
    """The Ky Fan extreme ``fixed + rows @ free`` (in the family's closure) and the member built for it."""
    return _Limit(np.vstack([family.fixed, rows @ family.free]), family.member(rows))


def _same_bounds(family, dist: _Dist, names, include_grey, flag) -> _Bounds:
    """Proved bounds when the probe is fitted and scored on the same distribution."""
    lo, hi = {}, {}
    totals = {n: dist.target(n)[2] for n in names}
    if isinstance(family, DriftTieFamily) and _separable(family, dist):
        family = SubspaceFamily(
            family.phi,
            family.innovation,
            family.tie.k,
            family.tie.k,
            family.canonical,
            lambda Y, t=family.tie: t.build(_choice(Y, t.m, t.k)),
            tie=family.tie,
        )
    if isinstance(family, SubspaceFamily):
        ky = _kyfan(dist, family.fixed, family.free, family.k_min, family.k_max, names, include_grey, flag)
        low = ky
        if family.free_for_min is not None:
            low = _kyfan(
                dist, family.fixed, family.free_for_min, family.k_min, family.k_min, names, include_grey, flag
            )
        for n in names:
            lo[n], hi[n] = _to_fvu(ky[n].best, totals[n]), _to_fvu(low[n].worst, totals[n])
        return _Bounds(lo, hi, _candidates(family, (dist,), names, include_grey, flag, {dist: ky}))
    # the drift-tie family: bounding sub- and super-families (see the module docstring)
    tie, phi, n_rows, w_rows = family.tie, family.phi, family.drift, family.innovation
    upper = _kyfan(dist, np.vstack([phi, n_rows]), w_rows, tie.k, tie.k, names, include_grey, flag)
    kept_drift = _kyfan(dist, phi, n_rows, tie.m - tie.k, tie.m - tie.k, names, include_grey, flag)
    mixed = _kyfan(dist, phi, n_rows + w_rows, tie.k, tie.k, names, include_grey, flag)
    choices = []
    for n in names:
        lo[n] = _to_fvu(upper[n].best, totals[n])
        hi[n] = _to_fvu(max(kept_drift[n].worst, mixed[n].worst), totals[n])
        choices += [
            _choice(upper[n].best_rows, tie.m, tie.k),
            _choice(mixed[n].worst_rows, tie.m, tie.k),
            _complement(kept_drift[n].worst_rows, tie.m, tie.k),
        ]
    candidates = _candidates(family, (dist,), names, include_grey, flag) + [tie.build(Q) for Q in choices]
    return _Bounds(lo, hi, candidates)


def _transfer_bounds(family, fit: _Dist, score: _Dist, names, include_grey, flag) -> _Bounds:
    """Proved bounds for a probe fitted on ``fit`` and scored on ``score``.

    Every member's features lie in ``span(union)``. Below: no probe of them does better on the
    scoring data than the best probe of the whole union there. Above: with ``β`` the fitted probe,
    ``‖t − βf − b‖ ≤ ‖t − E t‖ + ‖β(f − E f)‖ + ‖offset‖`` on the scoring data, where
    ``‖β(f − E f)‖² ≤ ρ·tr Cov_fit(t)`` (``ρ``: the largest ratio of scoring to fitting variance
    over the union's directions) and the offset is bounded by the mean shift's Mahalanobis size.
    """
    union = family.union
    best = probe_errors(union, score.transition, targets=names) if union.shape[0] else {n: 1.0 for n in names}
    rho, kappa = _variance_ratio(union, fit, score, include_grey, flag)
    lo, hi = {}, {}
    for n in names:
        _, mean2, total2 = score.target(n)
        _, mean1, total1 = fit.target(n)
        lo[n] = best[n]
        if not np.isfinite(rho) or not np.isfinite(kappa):
            hi[n] = None
            continue
        spread = (np.sqrt(total2) + np.sqrt(rho * total1)) ** 2
        offset = (float(np.linalg.norm(mean2 - mean1)) + np.sqrt(total1) * kappa) ** 2
        hi[n] = (spread + offset) / total2
    return _Bounds(lo, hi, _candidates(family, (fit, score), names, include_grey, flag))


def _variance_ratio(union, fit: _Dist, score: _Dist, include_grey, flag) -> tuple[float, float]:
    """``ρ = sup Var_score/Var_fit`` and the mean shift's Mahalanobis size, over ``span(union)``."""
    F1, F2 = _times(union, fit.X), _times(union, score.X)
    scales = _row_scales(union, fit.X) + _row_scales(union, score.X)
    inverse = np.divide(1.0, scales, out=np.zeros_like(scales), where=scales > 0)
    u, s, vt = np.linalg.svd(inverse[:, None] * F1, full_matrices=True)
    grey = (s > ROUNDOFF_RTOL) & (s < DECISION_RTOL)
    flag["grey"] |= bool(np.any(grey))
    keep = (s >= DECISION_RTOL) | (grey if include_grey else False)
    seen = u[:, np.flatnonzero(keep)]
    blind = np.delete(u, np.flatnonzero(keep), axis=1)  # combinations with no variance when fitting
    G2 = inverse[:, None] * F2
    shift = inverse * (union @ (score.mean_x - fit.mean_x))
    if blind.shape[1] and (
        float(np.linalg.norm(blind.T @ G2)) > DECISION_RTOL * max(float(np.linalg.norm(G2)), 1e-300)
        or float(np.linalg.norm(blind.T @ shift)) > DECISION_RTOL * max(float(np.linalg.norm(shift)), 1e-300)
    ):
        return np.inf, np.inf
    whiten = seen / s[keep]  # coefficients y = whiten · c have unit fitting variance
    ratio = float(np.linalg.norm(whiten.T @ G2, 2) ** 2) if whiten.size else 0.0
    kappa = float(np.linalg.norm(whiten.T @ shift)) if whiten.size else 0.0
    return ratio, kappa


# -- the invariance certificate ---------------------------------------------------------------------------
def _invariant_parts(parts, dist: _Dist, cache: dict):
    """The target-independent moments :func:`_invariant` checks, once per distribution."""
    if dist not in cache:
        phi, n, w = parts
        m = w.shape[0]
        X = dist.X
        Fp, Fn, Fw = _times(phi, X), _times(n, X), _times(w, X)  # sparse factors as such
        sizes = (float(np.sum(Fp**2)), float(np.sum(Fn**2)), float(np.sum(Fw**2)))
        blocks = [Fw @ Fw.T] + ([Fn @ Fn.T, Fn @ Fw.T] if n.shape[0] else [])
        shared = (
            n @ dist.mean_x,
            w @ dist.mean_x,
            Fp @ Fw.T,
            Fp @ Fn.T if n.shape[0] else None,
            [M - np.trace(M) / m * np.eye(m) for M in blocks],
        )
        cache[dist] = (Fp, Fn, Fw, sizes, shared)
    return cache[dist]


def _invariant(parts, name: str, dists, cache: dict | None = None) -> bool:
    """Whether no tie choice can change the score of target ``name`` (a symmetry certificate).

    ``parts = (φ, n, w)``: rows every member shares, and the drift and innovation in tie
    coordinates. If on every distribution involved the means of ``n, w`` vanish, ``φ`` is
    uncorrelated with them, ``Cov(n), Cov(w), Cov(n, w)`` are multiples of the identity, and the
    target either ignores the tie or turns with it (its cross-covariances with ``n, w`` are
    multiples of one isometry ``J`` whose span is uncorrelated with ``φ`` and with the rest of the
    target), then rotating the tie coordinates and ``Jᵀ t`` together preserves every second
    moment the probe uses, so member ``Q`` and member ``R Q`` score alike, for every rotation ``R``.
    ``cache``: the target-independent moments of ``parts`` per distribution (:func:`_invariant_parts`).
    """
    cache = {} if cache is None else cache
    phi, n, w = parts
    m = w.shape[0]
    isometry = None
    for dist in dists:
        Fp, Fn, Fw, sizes, shared = _invariant_parts(parts, dist, cache)
        T, mean_t, total = dist.target(name)
        scale = max(*sizes, total, np.finfo(float).tiny)

        def small(M, scale=scale):
            return float(np.sum(np.asarray(M) ** 2)) <= (MATTERS_RTOL**2) * scale * max(1.0, scale)

        n_mean, w_mean, phi_w, phi_n, blocks = shared
        if n.shape[0] and not small(n_mean):
            return False
        if not small(w_mean) or not small(phi_w) or (n.shape[0] and not small(phi_n)):
            return False
        if any(not small(M) for M in blocks):
            return False
        crosses = [_times_t(Fw, T).T] + ([_times_t(Fn, T).T] if n.shape[0] else [])
        if all(small(C) for C in crosses):
            continue
        if isometry is None:
            big = max(crosses, key=lambda C: float(np.sum(C**2)))
            u, sv, vt = np.linalg.svd(big, full_matrices=False)
            if (
                sv.size < m or sv[-1] <= DECISION_RTOL * sv[0]
            ):  # not certainly of rank m: no certificate (safe side)
                return False
            isometry = u @ vt  # d_t × m, Jᵀ J = I
        J = isometry
        for C in crosses:
            if not small(C - J * (np.sum(C * J) / m)):
                return False
        # Cov(t) J, Jᵀ Cov(t) J and (I − J Jᵀ) Cov(t) J through Jᵀ T: never the d_t × d_t Cov(t)
        JT = _times(J.T, T)
        cov_J = _times_t(JT, T).T
        inner = J.T @ cov_J
        if not small(cov_J - J @ inner) or not small(inner - np.trace(inner) / m * np.eye(m)):
            return False
        if not small(JT @ Fp.T) or not small(J.T @ mean_t):
            return False
    return True


# -- scores over a family ------------------------------------------------------------------------------------
def _features(params: LAMParameters, representation: str) -> tuple[np.ndarray, np.ndarray]:
    """A member's feature map and the size of the terms each entry was computed from."""
    if representation == "latent":
        return params.latent_map, np.abs(params.latent_map)
    return params.predicted_change_map, params.predicted_change_ingredients


def _check(target: str, representation: str, *transitions: Transition | None) -> None:
    if target not in TARGETS:
        raise InputError(f"target: must be one of {', '.join(TARGETS)}, got {target!r}")
    if representation not in REPRESENTATIONS:
        raise InputError(
            f"representation: must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}"
        )
    for transition in transitions:
        if transition is not None and TARGETS[target] not in transition.variables:
            raise InputError(
                f"target: {target!r} needs exogenous coordinates (state_space.exogenous), and "
                f"{transition!r} has none"
            )


def probe_family(
    solution: Solution,
    representation: str,
    *,
    fit: Transition | None = None,
    score: Transition | None = None,
    targets=None,
) -> dict[str, ProbeScore]:
    """Probe scores of several targets read from one representation, over the optimal family.

    ``targets`` default to those every distribution involved has (:func:`targets_for`). A
    :class:`~lamproof.numeric.lowrank.LowRankSolution` takes its ``fit``/``score`` data as
    :class:`~lamproof.numeric.lowrank.LowRankSystem` objects.
    """
    if isinstance(solution, LowRankSolution):
        return solution.probe_family(
            representation,
            fit=fit,
            score=score,
            targets=("action", "observation", "noise") if targets is None else targets,
        )
    fit = solution.transition if fit is None else fit
    score = fit if score is None else score
    targets = targets_for(fit, score) if targets is None else tuple(targets)
    for target in targets:
        _check(target, representation, fit, score)
    family = solution.latent_family if representation == "latent" else solution.change_family
    features, weights = _features(solution.parameters, representation)
    values = probe_errors(
        features,
        fit,
        score,
        targets,
        rtol=NUMERIC_FEATURE_RTOL if family is None else None,
        ingredients=weights,
    )
    defined = [t for t in targets if values[t] is not None]
    out = {t: _UNDEFINED for t in targets if values[t] is None}
    if family is None:  # a numeric solution: no description of the family
        out.update(
            {
                t: ProbeScore(
                    values[t],
                    None,
                    None,
                    None,
                    "unknown",
                    values[t],
                    values[t],
                    {"min": solution.parameters, "max": solution.parameters},
                    (),
                    {"min": values[t], "max": values[t]},
                )
                for t in defined
            }
        )
        return out
    if isinstance(family, PointFamily):
        out.update({t: _point(values[t], family.canonical) for t in defined})
        return out
    f, s = _dist(fit), _dist(score)
    dists = (f,) if s is f else (f, s)
    parts = (
        family.parts
        if isinstance(family, SubspaceFamily)
        else ((family.phi, family.drift, family.innovation) if isinstance(family, DriftTieFamily) else None)
    )
    cache: dict = {}  # the family's moments on each distribution, shared by the targets
    invariant = [t for t in defined if parts is not None and _invariant(parts, t, dists, cache)]
    rest = [t for t in defined if t not in invariant]
    if invariant:  # every tie choice scores alike: the family's range is that of one choice
        split = getattr(family, "split", None)
        sub = family.split(family.tie.canonical_choice()) if split is not None else None
        if sub is None or isinstance(sub, PointFamily):
            out.update({t: _point(values[t], family.canonical) for t in invariant})
        else:
            out.update(_ranges(sub, representation, fit, score, f, s, invariant, values, solution.parameters))
    if rest:
        out.update(_ranges(family, representation, fit, score, f, s, rest, values, solution.parameters))
    return {t: out[t] for t in targets}


def _ranges(family, representation, fit, score, f: _Dist, s: _Dist, names, values, canonical) -> dict:
    """Proved bounds and witnessed extremes of ``names`` over a non-point family."""

    def compute(include_grey, flag):
        if s is f:
            return _same_bounds(family, f, names, include_grey, flag)
        return _transfer_bounds(family, f, s, names, include_grey, flag)

    bounds = _settled(compute, f"{representation} probe ranges")
    rest = names
    out = {}
    seen = {t: [(values[t], canonical)] for t in rest}
    for candidate in bounds.candidates:
        if isinstance(candidate, _Limit):  # the limit is scored on its own features: the closure's extreme
            features, weights = candidate.features, np.abs(candidate.features)
        else:
            features, weights = _features(candidate, representation)
        scores = probe_errors(features, fit, score, rest, ingredients=weights)
        for t in rest:
            if scores[t] is not None:
                seen[t].append((scores[t], candidate))
    for t in rest:
        low, high = min(seen[t], key=lambda x: x[0]), max(seen[t], key=lambda x: x[0])
        lo, hi = bounds.lo[t], bounds.hi[t]
        if low[0] < lo - WITNESS_ATOL or (hi is not None and high[0] > hi + WITNESS_ATOL):
            raise RuntimeError(
                f"internal error: a member of the optimal family scores {low[0]:.12g}..{high[0]:.12g} "
                f"outside the proved interval [{lo:.12g}, {hi}] for {representation}/{t}"
            )
        lo, hi = min(lo, low[0]), None if hi is None else max(hi, high[0])
        identified, exact = decide(lo, hi, low[0], high[0])
        witnesses, scores_of, approached = {}, {}, []
        for end, (value, witness) in (("min", low), ("max", high)):
            if isinstance(witness, _Limit):  # score the member built near the limit
                features, weights = _features(witness.member, representation)
                own = probe_errors(features, fit, score, (t,), ingredients=weights)[t]
                witness = witness.member
                if own is None or abs(own - value) > WITNESS_ATOL:
                    approached.append(end)
                value = own
            witnesses[end], scores_of[end] = witness, value
        out[t] = ProbeScore(
            values[t],
            lo,
            hi,
            identified,
            "exact" if exact else "outer",
            low[0],
            high[0],
            witnesses,
            tuple(approached),
            scores_of,
        )
    return out


def decide(lo: float, hi: float | None, low: float, high: float) -> tuple[bool | None, bool]:
    """``(identified, exact)`` of a proved interval ``[lo, hi]`` and witnessed ends ``low``, ``high``:
    identified when the interval is a point, not when two witnesses differ, exact when the
    witnesses reach the bounds (``IDENTIFIED_ATOL``, ``WITNESS_ATOL``)."""
    exact = hi is not None and abs(low - lo) <= WITNESS_ATOL and abs(high - hi) <= WITNESS_ATOL
    if hi is not None and hi - lo <= IDENTIFIED_ATOL:
        return True, exact
    return (False if high - low > IDENTIFIED_ATOL else None), exact


def _point(value: float, member: LAMParameters) -> ProbeScore:
    return ProbeScore(
        value,
        value,
        value,
        True,
        "exact",
        value,
        value,
        {"min": member, "max": member},
        (),
        {"min": value, "max": value},
    )


def probe_member(
    params: LAMParameters, target: str, representation: str, fit: Transition, score: Transition | None = None
) -> float | None:
    """The exact probe score of one member (e.g. a witness of a :class:`ProbeScore`): re-check it here.

    Unlike ``probe_error(params.predicted_change_map, …)`` it knows what each entry of the map was
    computed from (``M₁ − I`` cancels to round-off in directions the member does not move), so it
    reads the member as exact arithmetic would.
    """
    _check(target, representation)
    features, weights = _features(params, representation)
    return probe_errors(features, fit, score, (target,), ingredients=weights)[target]


def probe(
    solution: Solution,
    target: str,
    representation: str,
    *,
    fit: Transition | None = None,
    score: Transition | None = None,
) -> ProbeScore:
    """The probe score of ``target`` read from ``representation`` over the solution's optimal family.

    Formula: ``E‖t − t̂‖² / tr Cov(t)`` for the best affine probe ``t̂`` of ``target`` from
    ``representation``, fitted on ``fit`` and scored on ``score`` (the solution's transition by
    default), as a :class:`ProbeScore`: the canonical member's ``value``, a proved ``[min, max]``
    over the optimal family and witnessed members (paper §4 probes; docs/theory.md §1.3).

    >>> from lamproof import LAMSpec, paper_system, solve
    >>> sol = solve(paper_system(8, 2), LAMSpec(d_z=1))
    >>> round(probe(sol, "action", "predicted_change").value, 12)  # (d_a − d_z)/d_a, paper §4.1
    0.5
    >>> score = probe(sol, "observation", "latent")  # leakage is free (paper insight 3)
    >>> round(score.min, 12), score.max, score.bounds
    (0.875, 1.0, 'exact')
    """
    _check(target, representation)
    return probe_family(solution, representation, fit=fit, score=score, targets=(target,))[target]


def all_probes(solution: Solution, *, fit: Transition | None = None, score: Transition | None = None) -> dict:
    """Every probe of the solve JSON: ``{representation: {target: ProbeScore}}``.

    Contract: ``{"predicted_change" | "latent": {"action" | "observation" | "noise": ProbeScore}}``,
    the ``probes`` of ``lamproof solve`` (paper §4; docs/cli.md).

    >>> from lamproof import LAMSpec, paper_system, solve
    >>> sorted(all_probes(solve(paper_system(4, 1), LAMSpec(d_z=1)))["latent"])
    ['action', 'noise', 'observation']
    """
    return {rep: probe_family(solution, rep, fit=fit, score=score) for rep in REPRESENTATIONS}
