"""Input validation, done once at the public boundary.

Every public constructor converts its arguments with these helpers; inner code trusts them.
Each helper raises :class:`~lamproof.errors.InputError` whose message starts with the field's
name, so that the CLI can print it as one line. Entries must be plain real numbers (no booleans,
strings, complex numbers or nesting deeper than the array); the bounds below keep every later
computation inside float64.
"""

from __future__ import annotations

import numbers

import numpy as np

from lamproof.errors import InputError

#: A covariance is accepted as symmetric when ``|S - S.T| <= SYMMETRY_RTOL * max(1, |S|_max)``.
#: Matrices typed by hand (JSON, TOML) are symmetric to the last digit; products computed in
#: float64 are symmetric to ~1e-15 relative, so 1e-9 separates round-off from a real asymmetry.
SYMMETRY_RTOL = 1e-9

#: A covariance is accepted as positive semi-definite when its smallest eigenvalue is at least
#: ``-PSD_RTOL * max(1, largest |eigenvalue|)``: round-off of an exactly singular PSD matrix
#: gives eigenvalues of order 1e-16 times its norm; anything below -1e-9 relative is indefinite.
PSD_RTOL = 1e-9

#: Largest magnitude accepted for an entry of a system's matrices and vectors and for the
#: augmentation scale. float64 ends at 1.8e308, and the solver multiplies inputs together: a
#: one-step second moment such as ``(F + GK) Σ_o (F + GK)ᵀ`` is a product of up to six entries,
#: and solving squares and inverts moments again. 1e15 keeps the moments themselves finite (they
#: are bounded again below, :data:`MAX_MOMENT`); it is 1e4 times the largest entry that a change
#: of units by c ∈ [1e-10, 1e10] of the strategies' systems reaches (covariances ≈ 10·c).
MAX_MAGNITUDE = 1e15

#: Largest magnitude accepted for a bound on the second moments ``E[x xᵀ]`` of a transition's
#: variables (observation, next observation, actions), and for the maps ``F_cl^j G`` that build
#: them over the horizon. Solving forms products of a few moments and their squares (whitening,
#: regressions, norms): (1e60)^5 = 1e300 still fits below 1.8e308.
MAX_MOMENT = 1e60

#: Largest action-loss weight λ. λ enters the closed form as √λ on the actions; 1e100 leaves
#: λ·E‖a‖² finite for every accepted system while covering weights far beyond the regime where
#: the action term dominates (the limit λ → ∞ is a constrained problem, not a larger number).
MAX_ACTION_WEIGHT = 1e100

#: Largest dimension (``d_o``, ``d_a``). Solving takes about 27 s and 1.4 GB at d_o = 2048 (one
#: thread), and grows as d³ in time and d² in memory: beyond it a file of a few hundred kB (one
#: long column) could exhaust the machine instead of being answered.
MAX_DIM = 2048

#: Largest prediction horizon ``k``. The k-step transition has ``d_o + k (d_a + d_o)`` sources
#: and ``k d_a`` action coordinates, and solving grows faster than k² (d_o = 32, d_a = 4: 0.3 s at
#: k = 100, 8 s at k = 400); the paper's horizon is 1.
MAX_HORIZON = 100

#: Largest number of sources ``d_o + k (d_a + d_o)`` of a k-step transition (dense maps of the
#: sources are ``O(sources²)`` floats). Three times :data:`MAX_DIM` admits every one-step system.
MAX_SOURCES = 3 * MAX_DIM


def show(value, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters, for error messages (a 400-digit integer or a
    large nested list must not become the message)."""
    text = repr(value)
    if len(text) <= width:
        return text
    digits = f" ({len(text)} digits)" if isinstance(value, numbers.Integral) else ""
    return text[:width] + "…" + digits


def _check_entries(value, name: str, ndim: int) -> None:
    """Refuse what ``np.array(value, float64)`` would convert silently or unhelpfully.

    Booleans, strings, complex numbers and integers beyond float64; nesting deeper than ``ndim``;
    rows of different lengths. Walks the nesting iteratively (a file may nest thousands deep).
    """
    kind = {1: "vector", 2: "matrix"}.get(ndim, f"{ndim}-d array")
    stack = [(value, 0, ())]
    while stack:
        item, depth, where = stack.pop()
        at = f" at {list(where)}" if where else ""
        if isinstance(item, np.ndarray):
            if item.dtype.kind in "iuf":
                continue  # the shape is checked after conversion
            if item.dtype != object:
                raise InputError(f"{name}: expected real numbers, got an array of {item.dtype}{at}")
            item = item.tolist()
        if isinstance(item, (list, tuple)):
            if depth >= ndim:
                raise InputError(f"{name}: nested deeper than a {kind}{at}")
            if all(type(x) in (int, float) for x in item):  # a row of plain numbers: the common case
                if any(type(x) is int and abs(x) > _FLOAT64_MAX for x in item):
                    stack.extend((x, depth + 1, where + (i,)) for i, x in enumerate(item) if type(x) is int)
                continue
            nested = [
                isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.ndim > 0) for x in item
            ]
            if any(nested) and not all(nested):
                raise InputError(f"{name}: mixes numbers and lists{at}")
            if all(nested) and len({len(x) for x in item}) > 1:
                raise InputError(f"{name}: ragged {kind}: rows of different lengths{at}")
            stack.extend((x, depth + 1, where + (i,)) for i, x in reversed(list(enumerate(item))))
        elif isinstance(item, (bool, np.bool_)):
            raise InputError(f"{name}: expected numbers, got the boolean {item!r}{at}")
        elif isinstance(item, numbers.Integral):
            if abs(int(item)) > _FLOAT64_MAX:
                raise InputError(f"{name}: the integer {show(item)}{at} is too large for float64")
        elif not isinstance(item, numbers.Real):
            what = (
                "a complex number"
                if isinstance(item, numbers.Complex)
                else f"{type(item).__name__} {show(item)}"
            )
            raise InputError(f"{name}: expected real numbers, got {what}{at}")


_FLOAT64_MAX = float(np.finfo(np.float64).max)


def as_array(value, name: str, ndim: int) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` dimensions (entries checked as above)."""
    if isinstance(value, str):
        raise InputError(
            f"{name}: expected a {'matrix' if ndim == 2 else 'vector'}, got the string {show(value)}"
        )
    if isinstance(value, dict):
        raise InputError(f"{name}: expected a {'matrix' if ndim == 2 else 'vector'}, got a table")
    _check_entries(value, name, ndim)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        raise InputError(f"{name}: not a numeric array ({error})") from None
    if array.ndim != ndim:
        kind = {1: "a vector", 2: "a matrix"}[ndim]
        raise InputError(f"{name}: expected {kind}, got an array of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or infinite entries")
    return array


def as_matrix(value, name: str, shape: tuple[int | None, int | None]) -> np.ndarray:
    """A finite float64 matrix whose shape matches ``shape`` (``None`` matches any size)."""
    array = as_array(value, name, 2)
    for want, got in zip(shape, array.shape, strict=True):
        if want is not None and want != got:
            raise InputError(f"{name}: expected shape {_shape_text(shape)}, got {array.shape}")
    return array


def as_vector(value, name: str, size: int) -> np.ndarray:
    array = as_array(value, name, 1)
    if array.shape != (size,):
        raise InputError(f"{name}: expected a vector of length {size}, got shape {array.shape}")
    return array


def as_covariance(value, name: str, size: int) -> np.ndarray:
    """A symmetric positive semi-definite ``size x size`` matrix (tolerances above)."""
    cov = as_matrix(value, name, (size, size))
    scale = max(1.0, float(np.max(np.abs(cov), initial=0.0)))
    unit = cov / scale  # entries in [-1, 1]: differences and sums cannot overflow
    if np.max(np.abs(unit - unit.T), initial=0.0) > SYMMETRY_RTOL:
        raise InputError(f"{name}: covariance is not symmetric")
    cov = (unit + unit.T) / 2 * scale
    eigenvalues = np.linalg.eigvalsh(cov) if size else np.zeros(0)
    if size and eigenvalues[0] < -PSD_RTOL * max(1.0, float(np.max(np.abs(eigenvalues)))):
        raise InputError(
            f"{name}: covariance is not positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g})"
        )
    return cov


def as_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite real number in ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"{name}: expected a number, got {show(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise InputError(f"{name}: {show(value)} is too large for float64") from None
    if not np.isfinite(number):
        raise InputError(f"{name}: must be finite, got {show(value)}")
    if minimum is not None and number < minimum:
        raise InputError(f"{name}: must be >= {minimum:g}, got {show(value)}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name}: must be <= {maximum:g}, got {show(value)}")
    return number


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (floats with integral value are refused: a typo guard)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected an integer, got {show(value)}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise InputError(f"{name}: must be >= {minimum}, got {show(number)}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name}: must be <= {maximum}, got {show(number)}")
    return number


def as_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name}: must be one of {', '.join(repr(c) for c in choices)}, got {show(value)}")
    return value


def check_magnitude(array: np.ndarray, name: str, bound: float = MAX_MAGNITUDE) -> np.ndarray:
    """Refuse an array with an entry beyond ``bound`` (default :data:`MAX_MAGNITUDE`) in magnitude."""
    if array.size:
        index = np.unravel_index(np.argmax(np.abs(array)), array.shape)
        if abs(array[index]) > bound:
            at = f" at {[int(i) for i in index]}" if array.ndim else ""
            raise InputError(
                f"{name}: entry {array[index]:.3g}{at} exceeds the largest magnitude accepted, "
                f"{bound:g} (float64 could not carry it through the solver; change units)"
            )
    return array


def _shape_text(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
