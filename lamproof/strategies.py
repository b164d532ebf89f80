"""Hypothesis strategies for lamproof: dimensions, matrices, systems and LAM specs.

Composable like :mod:`hypothesis.extra.numpy`: every size argument is an ``int`` or a strategy
of ints, bad arguments raise :class:`hypothesis.errors.InvalidArgument` when the strategy is
built (or, for arguments that are themselves strategies, when the drawn value is bad).

Matrices are built from small integers and simple floats drawn by Hypothesis, so shrinking moves
towards small dimensions and simple matrices (zeros, the identity, small integers) and a
counterexample reads well::

    from hypothesis import given
    from lamproof import solve
    from lamproof.strategies import systems, lam_specs


    @given(systems(d_o=4, noise="isotropic").flatmap(lambda s: lam_specs(s.d_o).map(lambda spec: (s, spec))))
    def test_loss_is_nonnegative(problem):
        system, spec = problem
        assert solve(system, spec).optimal_loss >= 0

Shrink targets: orthonormal and rational-orthogonal matrices shrink to ``[I; 0]`` (the Cayley
transform of a zero skew-symmetric matrix), covariances to the identity, gains to zero,
dynamics to the identity, noise scales to the smallest allowed value, dimensions to the smallest.

The noise families a system can be drawn with (paper §4.2, §4.3, §6):

>>> NOISE_KINDS
('none', 'isotropic', 'structured', 'uniform')
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lamproof.lam import FDM_OBS_PATHS, IDM_KINDS, LAMSpec
from lamproof.systems import System

__all__ = [
    "NOISE_KINDS",
    "Noise",
    "Policy",
    "dimensions",
    "integer_matrices",
    "psd_matrices",
    "orthonormal_matrices",
    "rational_orthogonal_matrices",
    "cayley",
    "policies",
    "noises",
    "systems",
    "lam_specs",
    "problems",
    "state_space_systems",
    "kalman_form_systems",
]

#: Noise families a system can be drawn with.
NOISE_KINDS = ("none", "isotropic", "structured", "uniform")

#: Largest dimension :func:`dimensions` draws by default: small systems solve in about a millisecond.
DEFAULT_MAX_DIM = 6

#: Entries of the skew-symmetric generator of a rational orthogonal matrix are integers in
#: ``[-SKEW_BOUND, SKEW_BOUND]``; the Cayley transform of such a matrix is exactly orthogonal.
SKEW_BOUND = 2


# -- plumbing ------------------------------------------------------------------------------------
@st.composite
def _drawing(draw, build):
    """Run ``build(draw)``. Decorating with ``st.composite`` inspects source code, so it is done
    once here rather than on every call of a public strategy (which runs inside other draws)."""
    return build(draw)


@cache
def _int_list(low: int, high: int, size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(low, high), min_size=size, max_size=size)


@cache
def _float_list(low: float, high: float, size: int) -> st.SearchStrategy[list[float]]:
    return st.lists(_floats(low, high), min_size=size, max_size=size)


# -- argument checking ---------------------------------------------------------------------------
def _is_strategy(value) -> bool:
    return isinstance(value, st.SearchStrategy)


def _check_int(value, name: str, minimum: int = 0, maximum: int | None = None) -> None:
    if _is_strategy(value):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{name}={value!r} must be an integer or a strategy of integers")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise InvalidArgument(f"{name}={value!r} must be >= {minimum}{upper}")


def _check_real(
    value, name: str, minimum: float | None = None, maximum: float | None = None, *, strict_min: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise InvalidArgument(f"{name}={value!r} must be a finite number")
    if minimum is not None and (value < minimum or (strict_min and value == minimum)):
        raise InvalidArgument(f"{name}={value!r} must be {'>' if strict_min else '>='} {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidArgument(f"{name}={value!r} must be <= {maximum}")


def _check_flag(value, name: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be True, False or None (drawn)")


def _ints(value) -> st.SearchStrategy[int]:
    return value if _is_strategy(value) else st.just(int(value))


def _draw_int(draw, value, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Draw ``value`` (an int or a strategy) and check the result."""
    drawn = draw(value) if _is_strategy(value) else value
    try:
        _check_int(drawn, name, minimum, maximum)
    except InvalidArgument as error:
        raise InvalidArgument(f"{error} (drawn from a strategy)") from None
    return int(drawn)


def _flag(draw, value) -> bool:
    return draw(st.booleans()) if value is None else value


def _range(value, name: str, minimum: float, *, strict_min: bool = False) -> tuple[float, float]:
    """A ``(low, high)`` pair from a number or a pair."""
    if isinstance(value, tuple) and len(value) == 2:
        low, high = value
    else:
        low = high = value
    _check_real(low, f"{name}[0]", minimum, strict_min=strict_min)
    _check_real(high, f"{name}[1]", minimum, strict_min=strict_min)
    if low > high:
        raise InvalidArgument(f"{name}={value!r}: the lower end exceeds the upper end")
    return float(low), float(high)


def _sigma_strategy(sigma) -> st.SearchStrategy[float]:
    """``sigma`` as a strategy: a strategy as given, a number or a ``(low, high)`` range as floats."""
    if _is_strategy(sigma):
        return sigma
    low, high = _range(sigma, "sigma", 0.0)
    return _floats(low, high)


@cache
def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Floats in ``[low, high]`` that shrink to the simplest value (an integer when there is one)."""
    if low == high:
        return st.just(low)
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# -- building blocks -----------------------------------------------------------------------------
def dimensions(min_value: int = 1, max_value: int = DEFAULT_MAX_DIM) -> st.SearchStrategy[int]:
    """A dimension in ``[min_value, max_value]``; shrinks to ``min_value``.

    >>> from hypothesis import find
    >>> find(dimensions(), lambda n: n >= 3)  # shrinks to the smallest dimension that fails
    3
    """
    _check_int(min_value, "min_value", 0)
    _check_int(max_value, "max_value", 0)
    if _is_strategy(min_value) or _is_strategy(max_value):
        raise InvalidArgument("dimensions(): min_value and max_value must be integers, not strategies")
    if min_value > max_value:
        raise InvalidArgument(f"dimensions(): min_value={min_value} exceeds max_value={max_value}")
    return st.integers(min_value, max_value)


def integer_matrices(
    rows, cols, *, min_value: int = -2, max_value: int = 2, scale: float = 1.0
) -> st.SearchStrategy[np.ndarray]:
    """Float matrices ``scale * N`` with ``N`` integer in ``[min_value, max_value]``; shrinks to zero.

    >>> from hypothesis import find
    >>> find(integer_matrices(2, 2), lambda m: True)  # the simplest matrix: zero
    array([[0., 0.],
           [0., 0.]])
    """
    _check_int(rows, "rows")
    _check_int(cols, "cols")
    for name, value in (("min_value", min_value), ("max_value", max_value)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidArgument(f"{name}={value!r} must be an integer")
    if min_value > max_value:
        raise InvalidArgument(f"integer_matrices(): min_value={min_value} exceeds max_value={max_value}")
    _check_real(scale, "scale")

    def build(draw):
        r, c = _draw_int(draw, rows, "rows"), _draw_int(draw, cols, "cols")
        return _draw_int_matrix(draw, r, c, min_value, max_value, scale)

    return _drawing(build)


def _draw_int_matrix(draw, r: int, c: int, low: int, high: int, scale: float) -> np.ndarray:
    return np.array(draw(_int_list(low, high, r * c)), dtype=np.float64).reshape(r, c) * scale


def cayley(skew) -> np.ndarray:
    """``(I − S)(I + S)⁻¹`` of a skew-symmetric ``S``: an orthogonal matrix without eigenvalue −1.

    ``S`` may be a NumPy array (float result, orthogonal to round-off) or a SymPy matrix (exact).

    >>> import sympy
    >>> cayley(sympy.Matrix([[0, 1], [-1, 0]]))  # exact for a SymPy matrix
    Matrix([
    [0, -1],
    [1,  0]])
    """
    if type(skew).__module__.startswith("sympy"):
        import sympy

        eye = sympy.eye(skew.shape[0])
        return (eye - skew) * (eye + skew).inv()
    skew = np.asarray(skew, dtype=np.float64)
    eye = np.eye(skew.shape[0])
    # (I − S)(I + S)⁻¹ = ((I + S)⁻ᵀ (I − S)ᵀ)ᵀ = (solve(I − S, I + S))ᵀ since Sᵀ = −S
    return np.linalg.solve(eye - skew, eye + skew).T


def _draw_skew(draw, n: int) -> np.ndarray:
    S = np.zeros((n, n), dtype=np.int64)
    S[np.triu_indices(n, 1)] = draw(_int_list(-SKEW_BOUND, SKEW_BOUND, n * (n - 1) // 2))
    return S - S.T


def rational_orthogonal_matrices(n, *, exact: bool = False):
    """Orthogonal ``n x n`` matrices with rational entries: Cayley transforms of integer skew matrices.

    ``exact=True`` gives SymPy matrices of Rationals (zero-tolerance checks, docs/theory.md §17);
    otherwise float64 arrays (the same rationals, rounded). Shrinks to the identity.

    >>> from hypothesis import find
    >>> Q = find(rational_orthogonal_matrices(2, exact=True), lambda q: q[0, 1] != 0)
    >>> Q.T * Q == Q.eye(2)  # exactly orthogonal, in rationals
    True
    """
    _check_int(n, "n", 1)
    if not isinstance(exact, bool):
        raise InvalidArgument(f"exact={exact!r} must be a bool")

    def build(draw):
        size = _draw_int(draw, n, "n", 1)
        S = _draw_skew(draw, size)
        if exact:
            import sympy

            return cayley(sympy.Matrix(S.tolist()))
        return cayley(S)

    return _drawing(build)


@cache
def _signed_permutations(n: int) -> st.SearchStrategy[np.ndarray]:
    """Signed permutation matrices; shrink to the identity."""
    return st.tuples(st.permutations(list(range(n))), st.lists(st.booleans(), min_size=n, max_size=n)).map(
        lambda args: np.eye(n)[:, list(args[0])] * np.where(args[1], -1.0, 1.0)
    )


def _orthogonal(draw, n: int) -> np.ndarray:
    """A rational orthogonal matrix times a signed permutation (covers eigenvalue −1 too)."""
    return cayley(_draw_skew(draw, n)) @ draw(_signed_permutations(n))


def orthonormal_matrices(rows, cols) -> st.SearchStrategy[np.ndarray]:
    """``rows x cols`` matrices with orthonormal columns (``cols <= rows``); shrink to ``[I; 0]``.

    The paper's action embedding ``Φ`` (paper §4; docs/theory.md §1.4).

    >>> from hypothesis import find
    >>> find(orthonormal_matrices(3, 2), lambda m: True)
    array([[1., 0.],
           [0., 1.],
           [0., 0.]])
    """
    _check_int(rows, "rows", 1)
    _check_int(cols, "cols", 0)
    if not _is_strategy(rows) and not _is_strategy(cols) and cols > rows:
        raise InvalidArgument(f"orthonormal_matrices(): cols={cols} exceeds rows={rows}")

    def build(draw):
        r = _draw_int(draw, rows, "rows", 1)
        c = _draw_int(draw, cols, "cols", 0, r)
        return _orthogonal(draw, r)[:, :c]

    return _drawing(build)


def psd_matrices(
    n, *, rank=None, condition: float = 10.0, scale: float = 1.0
) -> st.SearchStrategy[np.ndarray]:
    """Symmetric PSD ``n x n`` matrices ``Q diag(λ) Qᵀ``, ``Q`` rational orthogonal.

    ``rank`` (int, strategy, or ``None`` for any rank ``1..n``) nonzero eigenvalues, each in
    ``[scale, scale * condition]``, so ``condition`` bounds the ratio of the largest to the
    smallest nonzero eigenvalue. Shrinks to ``scale * I`` (or ``scale`` times a coordinate projector).

    Covariances of the random systems (docs/theory.md §1.1).

    >>> from hypothesis import find
    >>> find(psd_matrices(2, rank=2), lambda m: True)
    array([[1., 0.],
           [0., 1.]])
    """
    _check_int(n, "n", 1)
    if rank is not None:
        _check_int(rank, "rank", 0)
        if not _is_strategy(rank) and not _is_strategy(n) and rank > n:
            raise InvalidArgument(f"psd_matrices(): rank={rank} exceeds n={n}")
    _check_real(condition, "condition", 1.0)
    _check_real(scale, "scale", 0.0, strict_min=True)

    def build(draw):
        size = _draw_int(draw, n, "n", 1)
        r = None if rank is None else _draw_int(draw, rank, "rank", 0, size)
        return _draw_psd(draw, size, r, float(condition), float(scale))

    return _drawing(build)


def _draw_psd(draw, size: int, rank: int | None, condition: float, scale: float) -> np.ndarray:
    # Draw all n eigenvalues and the rank deficiency separately, so that every rank takes
    # the same number of draws and shrinking reaches full rank (the identity), not rank 1.
    values = draw(_float_list(1.0, condition, size))
    r = size - draw(st.integers(0, size - 1)) if rank is None else rank
    eigenvalues = np.sort(values)[::-1]
    eigenvalues[r:] = 0.0
    Q = _orthogonal(draw, size)
    M = (Q * (scale * eigenvalues)) @ Q.T
    return (M + M.T) / 2


# -- policies and noise --------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """``a = K o + e`` with ``e ~ (0, Σ_e)``: the ``policy_gain`` and ``exploration_cov`` of a System.

    Drawn by :func:`policies` (paper §5: ``K = χP``, ``Σ_e = (1 − χ)² I``).

    >>> Policy(np.zeros((1, 2)), np.eye(1), 0.0).gain.shape
    (1, 2)
    """

    gain: np.ndarray
    exploration_cov: np.ndarray
    chi: float | None = None  # the paper's χ when drawn in the paper's form

    def as_kwargs(self) -> dict:
        return {"policy_gain": self.gain, "exploration_cov": self.exploration_cov}


def policies(d_a, d_o, *, kind: str = "paper", chi=(0.0, 0.75)) -> st.SearchStrategy[Policy]:
    """Policies ``a = K o + e``.

    ``kind="paper"``: ``K = χ P`` with ``P`` orthonormal rows, ``Σ_e = (1 − χ)² I`` (paper §5),
    ``χ`` in the range ``chi`` (a number or a pair; shrinks to its lower end).
    ``kind="general"``: ``K`` half-integers in ``[-1, 1]``, ``Σ_e`` any PSD matrix (shrinks to
    ``K = 0``, ``Σ_e = I``).

    >>> from hypothesis import find
    >>> p = find(policies(2, 4, chi=0.5), lambda p: True)  # paper §5 at χ = 0.5
    >>> p.exploration_cov.diagonal().tolist()  # (1 − χ)² I
    [0.25, 0.25]
    """
    _check_int(d_a, "d_a", 1)
    _check_int(d_o, "d_o", 1)
    if kind not in ("paper", "general"):
        raise InvalidArgument(f"kind={kind!r} must be 'paper' or 'general'")
    low, high = _range(chi, "chi", 0.0)
    if high > 1.0:
        raise InvalidArgument(f"chi={chi!r} must lie in [0, 1]")

    def build(draw):
        c = draw(_floats(low, high)) if kind == "paper" else None  # scalars first: see _draw_policy
        o = _draw_int(draw, d_o, "d_o", 1)
        a = _draw_int(draw, d_a, "d_a", 1, o if kind == "paper" else None)
        return _draw_policy(draw, a, o, c)

    return _drawing(build)


def _draw_policy(draw, a: int, o: int, chi: float | None) -> Policy:
    """The matrices of a policy; ``chi`` (paper form) or ``None`` (general form) is drawn before the
    dimensions, so that shrinking a dimension does not reinterpret it (scalars keep their value)."""
    if chi is not None:
        P = _orthogonal(draw, o)[:, :a].T
        return Policy(chi * P, (1.0 - chi) ** 2 * np.eye(a), chi)
    K = _draw_int_matrix(draw, a, o, -2, 2, 0.5)
    return Policy(K, _draw_psd(draw, a, None, 4.0, 1.0))


@dataclass(frozen=True)
class Noise:
    """The noise fields of a System, and how they were drawn.

    Drawn by :func:`noises` (paper §4.2, §4.3, §6); ``cov`` and ``mean`` are the System's
    ``noise_cov`` and ``noise_mean``.

    >>> from hypothesis import find
    >>> find(noises(3, kind="isotropic", sigma=0.5), lambda n: True).cov.diagonal().tolist()
    [0.25, 0.25, 0.25]
    """

    kind: str
    mean: np.ndarray
    cov: np.ndarray
    distribution: str = "gaussian"
    sigma: float = 0.0
    directions: np.ndarray | None = None  # Ψ of structured noise (orthonormal columns)

    def as_kwargs(self) -> dict:
        return {"noise_mean": self.mean, "noise_cov": self.cov, "noise_distribution": self.distribution}


def noises(
    d_o,
    *,
    kind: str = "isotropic",
    sigma=(0.25, 2.0),
    noise_dim=None,
    directions=None,
    means: bool | None = False,
) -> st.SearchStrategy[Noise]:
    """Noise ``ε`` of one family (:data:`NOISE_KINDS`).

    ``"none"``: ``ε = 0``. ``"isotropic"``: ``σ² I``. ``"structured"``: ``σ² Ψ Ψᵀ`` with ``Ψ``
    orthonormal (``noise_dim`` columns, drawn when ``None``; or the given ``directions``).
    ``"uniform"``: i.i.d. uniform on ``[0, σ)`` per coordinate (mean ``σ/2``, variance ``σ²/12``;
    paper §6). ``sigma`` is a number, a ``(low, high)`` range (shrinks to the simplest value in
    it, an integer when there is one) or a strategy of floats.
    ``means=True`` adds a nonzero-able mean (half-integers in ``[-1, 1]``); ``None`` draws whether to.

    >>> from hypothesis import find
    >>> n = find(noises(2, kind="uniform", sigma=1.0), lambda n: True)  # paper §6
    >>> n.mean.tolist(), n.cov.diagonal().round(6).tolist()  # σ/2 and σ²/12
    ([0.5, 0.5], [0.083333, 0.083333])
    """
    _check_int(d_o, "d_o", 1)
    if kind not in NOISE_KINDS:
        raise InvalidArgument(f"kind={kind!r} must be one of {', '.join(NOISE_KINDS)}")
    sigmas = _sigma_strategy(sigma)
    if noise_dim is not None:
        _check_int(noise_dim, "noise_dim", 1)
    _check_flag(means, "means")

    def build(draw):
        with_mean = _flag(draw, means)
        sig = _draw_sigma(draw, sigmas) if kind != "none" else 0.0
        o = _draw_int(draw, d_o, "d_o", 1)
        psi = None
        if kind == "structured":
            if directions is not None:
                psi = np.asarray(directions, dtype=np.float64)
            else:
                b = (
                    _draw_int(draw, noise_dim, "noise_dim", 1, o)
                    if noise_dim is not None
                    else draw(st.integers(1, o))
                )
                psi = _orthogonal(draw, o)[:, :b]
        return _make_noise(draw, o, kind, sig, psi, with_mean)

    return _drawing(build)


def _draw_sigma(draw, sigmas) -> float:
    value = draw(sigmas)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise InvalidArgument(f"sigma: drew {value!r} from a strategy; must be a finite number >= 0")
    return float(value)


def _make_noise(draw, o: int, kind: str, sigma: float, psi, with_mean: bool) -> Noise:
    mean = _draw_int_matrix(draw, 1, o, -2, 2, 0.5)[0] if with_mean else np.zeros(o)
    if kind == "none":
        return Noise("none", mean, np.zeros((o, o)))
    if kind == "isotropic":
        return Noise("isotropic", mean, sigma**2 * np.eye(o), sigma=sigma)
    if kind == "uniform":
        return Noise("uniform", mean + sigma / 2, sigma**2 / 12 * np.eye(o), "uniform", sigma=sigma)
    return Noise("structured", mean, sigma**2 * psi @ psi.T, sigma=sigma, directions=psi)


# -- whole systems and specs -----------------------------------------------------------------------
ACTION_KINDS = ("orthonormal", "integer")
OBS_COV_KINDS = ("identity", "psd")


def systems(
    d_o=None,
    d_a=None,
    *,
    feedback: bool | None = False,
    dynamics: bool | None = False,
    means: bool | None = False,
    noise="none",
    sigma=(0.25, 2.0),
    noise_dim=None,
    action: str = "orthonormal",
    obs_cov: str = "identity",
    exploration: str = "identity",
    chi=(0.0, 0.75),
    policy: str = "paper",
) -> st.SearchStrategy[System]:
    """Whole :class:`lamproof.System` s.

    ``d_o`` (default ``dimensions(1, 6)``), ``d_a`` (default ``1..d_o``): ints or strategies.
    ``action``: ``"orthonormal"`` (``G`` with orthonormal columns, as the paper) or ``"integer"``
    (entries in ``{-2, …, 2}``, possibly rank deficient). ``noise``: a kind of :data:`NOISE_KINDS`,
    a list of kinds (drawn; shrinks to the first) or ``"any"``. Structured noise directions are
    orthogonal to the action's columns whenever ``action="orthonormal"`` leaves room
    (``noise_dim <= d_o − d_a``), as in the paper. ``feedback``: a policy ``a = K o + e`` (see
    :func:`policies`, ``policy`` and ``chi``); ``dynamics``: ``F = I + N/2`` with ``N`` integer in
    ``[-1, 1]``; ``means``: nonzero observation and noise means; each flag ``True``, ``False``
    or ``None`` (drawn, shrinking to ``False``). ``obs_cov``: ``"identity"`` or ``"psd"``;
    ``exploration``: ``"identity"`` or ``"psd"`` (used without feedback or with ``policy="paper"``).

    The random systems of every property test and claim (docs/theory.md §1.1, §19); they shrink to
    small dimensions and simple matrices, so a counterexample is readable.

    >>> from hypothesis import find
    >>> s = find(systems(noise="isotropic"), lambda s: s.d_o >= 2)  # the smallest such system
    >>> s.d_o, s.d_a, s.action_matrix.tolist()
    (2, 1, [[1.0], [0.0]])
    """
    d_o = dimensions() if d_o is None else d_o
    _check_int(d_o, "d_o", 1)
    if d_a is not None:
        _check_int(d_a, "d_a", 1)
        if not _is_strategy(d_a) and not _is_strategy(d_o) and action == "orthonormal" and d_a > d_o:
            raise InvalidArgument(f"systems(): d_a={d_a} exceeds d_o={d_o} with orthonormal actions")
    for name, value in (("feedback", feedback), ("dynamics", dynamics), ("means", means)):
        _check_flag(value, name)
    kinds = list(NOISE_KINDS) if noise == "any" else ([noise] if isinstance(noise, str) else list(noise))
    if not kinds or any(k not in NOISE_KINDS for k in kinds):
        raise InvalidArgument(
            f"noise={noise!r} must be one of {', '.join(NOISE_KINDS)}, a list of them, or 'any'"
        )
    _sigma_strategy(sigma)
    if noise_dim is not None:
        _check_int(noise_dim, "noise_dim", 1)
    if action not in ACTION_KINDS:
        raise InvalidArgument(f"action={action!r} must be one of {', '.join(ACTION_KINDS)}")
    if obs_cov not in OBS_COV_KINDS:
        raise InvalidArgument(f"obs_cov={obs_cov!r} must be one of {', '.join(OBS_COV_KINDS)}")
    if exploration not in OBS_COV_KINDS:
        raise InvalidArgument(f"exploration={exploration!r} must be one of {', '.join(OBS_COV_KINDS)}")
    if policy not in ("paper", "general"):
        raise InvalidArgument(f"policy={policy!r} must be 'paper' or 'general'")
    _range(chi, "chi", 0.0)

    sigmas = _sigma_strategy(sigma)
    chis = _floats(*_range(chi, "chi", 0.0))

    def build(draw):
        # Scalars and flags first, then dimensions, then matrices: shrinking a dimension then
        # reinterprets only matrix entries (which shrink to simple values anyway), never the
        # noise scale or χ that a counterexample may depend on.
        kind = draw(st.sampled_from(kinds))
        sig = _draw_sigma(draw, sigmas) if kind != "none" else 0.0
        with_means, with_dynamics, with_feedback = (
            _flag(draw, means),
            _flag(draw, dynamics),
            _flag(draw, feedback),
        )
        c = draw(chis) if with_feedback and policy == "paper" else None
        o = _draw_int(draw, d_o, "d_o", 1)
        a_max = o if action == "orthonormal" else None
        a = draw(st.integers(1, o)) if d_a is None else _draw_int(draw, d_a, "d_a", 1, a_max)
        psi = None
        if kind == "structured":
            room = o - a if action == "orthonormal" else 0
            if noise_dim is not None:
                b = _draw_int(draw, noise_dim, "noise_dim", 1, o)
            else:
                b = draw(st.integers(1, room)) if room >= 1 else draw(st.integers(1, o))
        if action == "orthonormal":
            Q = _orthogonal(draw, o)
            G = Q[:, :a]
        else:
            Q = None
            G = _draw_int_matrix(draw, o, a, -2, 2, 1.0)
        if kind == "structured":
            psi = Q[:, a : a + b] if Q is not None and b <= o - a else _orthogonal(draw, o)[:, :b]
        kwargs: dict = _make_noise(draw, o, kind, sig, psi, with_means).as_kwargs()
        if obs_cov == "psd":
            kwargs["obs_cov"] = _draw_psd(draw, o, None, 4.0, 1.0)
        if with_means:
            kwargs["obs_mean"] = _draw_int_matrix(draw, 1, o, -2, 2, 0.5)[0]
        if with_dynamics:
            kwargs["dynamics"] = np.eye(o) + _draw_int_matrix(draw, o, o, -1, 1, 0.5)
        if with_feedback:
            kwargs.update(_draw_policy(draw, a, o, c if a <= o else None).as_kwargs())
        elif exploration == "psd":
            kwargs["exploration_cov"] = _draw_psd(draw, a, None, 4.0, 1.0)
        return System(G, **kwargs)

    return _drawing(build)


def lam_specs(
    d_o,
    *,
    d_z=None,
    fdm_obs_path="learned",
    idm="free",
    augmentation=0.0,
    action_loss_weight=0.0,
    horizon=1,
    context=1,
) -> st.SearchStrategy[LAMSpec]:
    """:class:`lamproof.LAMSpec` s for observations of size ``d_o`` (an int or a strategy).

    ``d_z``: ``None`` (any of ``1..d_o``, shrinking to 1), an int or a strategy. Every other
    field is a fixed value or a strategy; ``fdm_obs_path`` and ``idm`` also accept ``"any"``;
    ``augmentation`` and ``action_loss_weight`` accept a ``(low, high)`` range; ``horizon`` and
    ``context`` (frames the LAM reads) are ints or strategies.

    >>> from hypothesis import find
    >>> find(lam_specs(4, idm="any"), lambda spec: spec.d_z >= 2)
    LAMSpec(d_z=2, fdm_obs_path='learned', idm='free', augmentation=0.0, action_loss_weight=0.0, horizon=1, context=1)
    """
    _check_int(d_o, "d_o", 1)
    if d_z is not None:
        _check_int(d_z, "d_z", 1)
        if not _is_strategy(d_z) and not _is_strategy(d_o) and d_z > d_o:
            raise InvalidArgument(f"lam_specs(): d_z={d_z} exceeds d_o={d_o}")

    def choice(value, name, options):
        if _is_strategy(value):
            return value
        if value == "any":
            return st.sampled_from(options)
        if value not in options:
            raise InvalidArgument(f"{name}={value!r} must be one of {', '.join(options)} or 'any'")
        return st.just(value)

    def real(value, name):
        if _is_strategy(value):
            return value
        low, high = _range(value, name, 0.0)
        return _floats(low, high)

    paths = choice(fdm_obs_path, "fdm_obs_path", FDM_OBS_PATHS)
    idms = choice(idm, "idm", IDM_KINDS)
    augs = real(augmentation, "augmentation")
    weights = real(action_loss_weight, "action_loss_weight")
    _check_int(horizon, "horizon", 1)
    horizons = _ints(horizon)
    _check_int(context, "context", 1)
    contexts = _ints(context)

    def build(draw):
        o = _draw_int(draw, d_o, "d_o", 1)
        z = draw(st.integers(1, o)) if d_z is None else _draw_int(draw, d_z, "d_z", 1, o)
        try:
            return LAMSpec(
                z,
                draw(paths),
                draw(idms),
                draw(augs),
                draw(weights),
                _draw_int(draw, horizons, "horizon", 1),
                context=_draw_int(draw, contexts, "context", 1),
            )
        except ValueError as error:
            raise InvalidArgument(f"lam_specs(): {error}") from None

    return _drawing(build)


def problems(systems_strategy=None, specs=None) -> st.SearchStrategy[tuple[System, LAMSpec]]:
    """``(system, spec)`` pairs: ``specs`` is a strategy, or a function ``system -> strategy``
    (default ``lambda s: lam_specs(s.d_o)``). Systems may be state-space systems.

    What :func:`lamproof.claims.check` draws: a system, then a spec for it.

    >>> from hypothesis import find
    >>> system, spec = find(problems(), lambda p: True)
    >>> system.d_o, spec.d_z
    (1, 1)
    """
    systems_strategy = systems() if systems_strategy is None else systems_strategy
    if not _is_strategy(systems_strategy):
        raise InvalidArgument(f"systems={systems_strategy!r} must be a strategy of Systems")
    if specs is None:
        specs = lambda system: lam_specs(system.d_o)  # noqa: E731
    if not (_is_strategy(specs) or callable(specs)):
        raise InvalidArgument(f"specs={specs!r} must be a strategy or a function of the system")

    def build(draw):
        from lamproof.statespace import StateSpaceSystem

        system = draw(systems_strategy)
        if not isinstance(system, (System, StateSpaceSystem)):
            raise InvalidArgument(
                f"the systems strategy drew {system!r}, not a lamproof System or StateSpaceSystem"
            )
        spec = draw(specs if _is_strategy(specs) else specs(system))
        if not isinstance(spec, LAMSpec):
            raise InvalidArgument(f"the specs strategy drew {spec!r}, not a LAMSpec")
        if spec.d_z > system.d_o:
            raise InvalidArgument(f"the specs strategy drew d_z={spec.d_z} > d_o={system.d_o}")
        return system, spec

    return _drawing(build)


# -- state-space systems ---------------------------------------------------------------------------
#: Diagonal entries of the triangular factor of a drawn stable block: quarters in ``[-3/4, 3/4]``,
#: so every drawn dynamics block has spectral radius at most 3/4 (the stationary covariance exists
#: and windows forget their start at a visible rate).
STABLE_DIAGONAL = (-3, 3)
#: How a drawn state-space system starts: its stationary distribution or an explicit PSD one.
INITIAL_KINDS = ("stationary", "explicit")


def _draw_stable(draw, size: int, *, invertible: bool = False, nilpotent: bool = False) -> np.ndarray:
    """``Q T Qᵀ`` with ``T`` upper triangular (diagonal: quarters in ``[-3/4, 3/4]``, nonzero when
    ``invertible``, zero when ``nilpotent``; above it half-integers in ``[-1, 1]``), ``Q`` rational
    orthogonal: spectral radius ≤ 3/4. Shrinks to ``T`` = 0 (or ``I/4`` when invertible)."""
    if size == 0:
        return np.zeros((0, 0))
    T = np.zeros((size, size))
    if not nilpotent:
        low, high = STABLE_DIAGONAL
        values = draw(_int_list(low, high, size))
        if invertible:
            values = [v if v != 0 else 1 for v in values]
        T[np.diag_indices(size)] = np.array(values, dtype=np.float64) / 4
    upper = np.triu_indices(size, 1)
    T[upper] = np.array(draw(_int_list(-2, 2, len(upper[0]))), dtype=np.float64) / 2
    Q = cayley(_draw_skew(draw, size))
    return Q @ T @ Q.T


def _draw_initial(draw, n: int, kind: str, with_mean: bool):
    if kind == "stationary":
        return "stationary"
    cov = _draw_psd(draw, n, None, 4.0, 1.0)
    mean = _draw_int_matrix(draw, 1, n, -2, 2, 0.5)[0] if with_mean else np.zeros(n)
    return {"mean": mean, "cov": cov}


def _stabilized_gain(F: np.ndarray, G: np.ndarray, H: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Halve a drawn policy gain until the closed loop ``F + G K H`` is stable (``F`` is): a
    deterministic repair, so shrinking ``K`` towards 0 stays meaningful."""
    for _ in range(60):
        if np.max(np.abs(np.linalg.eigvals(F + G @ K @ H))) < 0.95:
            return K
        K = K / 2
    return np.zeros_like(K)


def state_space_systems(
    n=None,
    d_a=None,
    d_o=None,
    *,
    exogenous=None,
    observation: str = "identity",
    observation_noise: bool | None = False,
    process_noise: bool | None = True,
    feedback: bool | None = False,
    coupling: bool | None = False,
    initial: str | None = "stationary",
    means: bool | None = False,
):
    """:class:`lamproof.statespace.StateSpaceSystem` s with stable dynamics and exogenous coordinates.

    The state is ``[s_n; x]``: ``n`` (default ``dimensions(1, 4)``) coordinates, the last
    ``exogenous`` of them (int or strategy; default ``0 … n−1``) exogenous. ``F`` is block
    triangular with stable diagonal blocks (spectral radius ≤ 3/4; :func:`_draw_stable`); the
    exogenous block drives the rest only with ``coupling``. ``G`` has orthonormal columns on the
    endogenous rows (``d_a ≤ n − n_x``, default drawn). ``observation``: ``"identity"``
    (``d_o = n``) or ``"generic"`` (half-integer ``H``, ``d_o`` default ``1 … n + 1``).
    ``process_noise``: block-diagonal PSD ``Σ_w`` (the exogenous block uncorrelated with the
    rest); ``observation_noise``: PSD ``Σ_v``; ``feedback``: a half-integer ``K`` halved until
    ``F + GKH`` is stable; ``initial``: ``"stationary"``, ``"explicit"`` or ``None`` (drawn);
    ``means``: nonzero ``μ_w`` and initial mean. Flags ``None`` are drawn (shrinking to
    ``False``). Shrinks to ``n = 1``, ``F = 0``, ``G = 1``, ``H = I``, identity covariances.

    Hidden and exogenous state (docs/theory.md §11–§12).

    >>> from hypothesis import find
    >>> s = find(state_space_systems(n=2, exogenous=1), lambda s: True)
    >>> s.n, s.exogenous
    (2, (1,))
    """
    n = dimensions(1, 4) if n is None else n
    _check_int(n, "n", 1)
    if d_a is not None:
        _check_int(d_a, "d_a", 1)
    if d_o is not None:
        _check_int(d_o, "d_o", 1)
    if exogenous is not None:
        _check_int(exogenous, "exogenous", 0)
    if observation not in ("identity", "generic"):
        raise InvalidArgument(f"observation={observation!r} must be 'identity' or 'generic'")
    if (
        observation == "identity"
        and d_o is not None
        and not _is_strategy(d_o)
        and not _is_strategy(n)
        and d_o != n
    ):
        raise InvalidArgument(f"d_o={d_o} must equal n={n} with observation='identity'")
    for name, value in (
        ("observation_noise", observation_noise),
        ("process_noise", process_noise),
        ("feedback", feedback),
        ("coupling", coupling),
        ("means", means),
    ):
        _check_flag(value, name)
    if initial is not None and initial not in INITIAL_KINDS:
        raise InvalidArgument(f"initial={initial!r} must be one of {', '.join(INITIAL_KINDS)} or None")

    def build(draw):
        from lamproof.statespace import StateSpaceSystem

        flags = {
            name: _flag(draw, value)
            for name, value in (
                ("observation_noise", observation_noise),
                ("process_noise", process_noise),
                ("feedback", feedback),
                ("coupling", coupling),
                ("means", means),
            )
        }
        kind = draw(st.sampled_from(INITIAL_KINDS)) if initial is None else initial
        size = _draw_int(draw, n, "n", 1)
        n_x = (
            draw(st.integers(0, size - 1))
            if exogenous is None
            else _draw_int(draw, exogenous, "exogenous", 0, size - 1)
        )
        n_n = size - n_x
        a = draw(st.integers(1, n_n)) if d_a is None else _draw_int(draw, d_a, "d_a", 1, n_n)
        F = np.zeros((size, size))
        F[:n_n, :n_n] = _draw_stable(draw, n_n)
        F[n_n:, n_n:] = _draw_stable(draw, n_x)
        if flags["coupling"] and n_x:
            F[:n_n, n_n:] = _draw_int_matrix(draw, n_n, n_x, -2, 2, 0.5)
        G = np.zeros((size, a))
        G[:n_n] = _orthogonal(draw, n_n)[:, :a]
        if observation == "identity":
            if d_o is not None:
                _draw_int(draw, d_o, "d_o", size, size)
            H = np.eye(size)
        else:
            o = draw(st.integers(1, size + 1)) if d_o is None else _draw_int(draw, d_o, "d_o", 1)
            H = np.eye(o, size) + _draw_int_matrix(draw, o, size, -2, 2, 0.5)
        kwargs: dict = {"observation": H, "exogenous": list(range(n_n, size))}
        if flags["process_noise"]:
            cov = np.zeros((size, size))
            cov[:n_n, :n_n] = _draw_psd(draw, n_n, None, 4.0, 1.0)
            if n_x:
                cov[n_n:, n_n:] = _draw_psd(draw, n_x, None, 4.0, 1.0)
            kwargs["process_noise_cov"] = cov
        if flags["observation_noise"]:
            kwargs["observation_noise_cov"] = _draw_psd(draw, H.shape[0], None, 4.0, 0.5)
        if flags["means"]:
            kwargs["process_noise_mean"] = _draw_int_matrix(draw, 1, size, -2, 2, 0.5)[0]
        if flags["feedback"]:
            K = _draw_int_matrix(draw, a, H.shape[0], -2, 2, 0.5)
            kwargs["policy_gain"] = _stabilized_gain(F, G, H, K)
        kwargs["initial"] = _draw_initial(draw, size, kind, flags["means"])
        return StateSpaceSystem(F, G, **kwargs)

    return _drawing(build)


def kalman_form_systems(
    n_controllable=None,
    n_coupled=None,
    n_exogenous=None,
    d_a=None,
    *,
    singular: bool | None = None,
    process_noise: bool = True,
):
    """Fully observed systems in controllability form ``s = [c; u; x]`` (for inverse-model claims).

    ``F = [[F_cc, F_cu, 0], [0, F_uu, 0], [0, 0, F_xx]]``, ``G = [G_c; 0; 0]``, ``H = I``, ``K = 0``,
    block-diagonal positive definite ``Σ_w`` (``process_noise=False``: none), stationary start.
    ``(F_cc, G_c)`` is controllable, and every coupled coordinate drives ``c`` eventually
    (``(F_uu, F_cu)`` observable), so ``u`` is exactly "what couples into the controllable part";
    ``x`` is exogenous and drives nothing. ``singular``: ``True`` makes ``F_cc`` nilpotent (Levine
    et al.'s case, shrinking to ``F_cc = 0``), ``False`` invertible, ``None`` draws. Dimensions
    default to ``1 … 3``, ``0 … 2``, ``0 … 2`` and ``d_a`` to ``1 … n_c``.

    The systems of the inverse-model results (docs/theory.md §13).

    >>> from hypothesis import find
    >>> s = find(kalman_form_systems(), lambda s: True)
    >>> s.n >= 1 and s.observation.tolist() == np.eye(s.n).tolist()
    True
    """
    for name, value in (
        ("n_controllable", n_controllable),
        ("n_coupled", n_coupled),
        ("n_exogenous", n_exogenous),
        ("d_a", d_a),
    ):
        if value is not None:
            _check_int(value, name, 1 if name in ("n_controllable", "d_a") else 0)
    _check_flag(singular, "singular")
    if not isinstance(process_noise, bool):
        raise InvalidArgument(f"process_noise={process_noise!r} must be a bool")

    def build(draw):
        from lamproof import control
        from lamproof.statespace import StateSpaceSystem

        nil = _flag(draw, singular)
        c = (
            draw(st.integers(1, 3))
            if n_controllable is None
            else _draw_int(draw, n_controllable, "n_controllable", 1)
        )
        u = draw(st.integers(0, 2)) if n_coupled is None else _draw_int(draw, n_coupled, "n_coupled", 0)
        x = draw(st.integers(0, 2)) if n_exogenous is None else _draw_int(draw, n_exogenous, "n_exogenous", 0)
        a = draw(st.integers(1, c)) if d_a is None else _draw_int(draw, d_a, "d_a", 1)
        size = c + u + x
        F = np.zeros((size, size))
        F[:c, :c] = _draw_stable(draw, c, invertible=not nil, nilpotent=nil)
        F[c : c + u, c : c + u] = _draw_stable(draw, u)
        F[c + u :, c + u :] = _draw_stable(draw, x)
        F[:c, c : c + u] = _draw_int_matrix(draw, c, u, -2, 2, 0.5)
        G = np.zeros((size, a))
        G[:c] = _draw_int_matrix(draw, c, a, -2, 2, 1.0) + np.eye(c, a)
        if control.kalman_rank(F[:c, :c], G[:c]) < c:
            reject()
        if u and control.kalman_rank(F[c : c + u, c : c + u].T, F[:c, c : c + u].T) < u:
            reject()
        kwargs: dict = {"exogenous": list(range(c + u, size))}
        if process_noise:
            cov = np.zeros((size, size))
            for lo, hi in ((0, c), (c, c + u), (c + u, size)):
                if hi > lo:  # full rank: a coordinate without variance carries nothing to read
                    cov[lo:hi, lo:hi] = _draw_psd(draw, hi - lo, hi - lo, 4.0, 1.0)
            kwargs["process_noise_cov"] = cov
        return StateSpaceSystem(F, G, **kwargs)

    return _drawing(build)
