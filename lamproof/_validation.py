"""Input validation, done once at the public boundary.

Every public constructor converts its arguments with these helpers; inner code trusts them.
Each helper raises ``ValueError`` whose message starts with the field's name, so that the CLI
can print it as one line.
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


def as_array(value, name: str, ndim: int) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` dimensions."""
    if isinstance(value, str):
        raise InputError(f"{name}: expected a {'matrix' if ndim == 2 else 'vector'}, got the string {value!r}")
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
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
    for axis, (want, got) in enumerate(zip(shape, array.shape)):
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
    if np.max(np.abs(cov - cov.T), initial=0.0) > SYMMETRY_RTOL * scale:
        raise InputError(f"{name}: covariance is not symmetric")
    cov = (cov + cov.T) / 2
    eigenvalues = np.linalg.eigvalsh(cov) if size else np.zeros(0)
    if size and eigenvalues[0] < -PSD_RTOL * max(1.0, float(np.max(np.abs(eigenvalues)))):
        raise InputError(
            f"{name}: covariance is not positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g})"
        )
    return cov


def as_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite real number in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise InputError(f"{name}: must be finite, got {value!r}")
    if minimum is not None and number < minimum:
        raise InputError(f"{name}: must be >= {minimum:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name}: must be <= {maximum:g}, got {value!r}")
    return number


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (floats with integral value are refused: a typo guard)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected an integer, got {value!r}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise InputError(f"{name}: must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name}: must be <= {maximum}, got {number}")
    return number


def as_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name}: must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def _shape_text(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
