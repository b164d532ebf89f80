"""Exact systems: rational orthogonal embeddings and rational arithmetic (docs/theory.md §17).

The Cayley transform ``Q = (I − K)(I + K)⁻¹`` of a rational skew-symmetric ``K`` is a rational
orthogonal matrix, so embeddings ``Φ``, ``Ψ``, ``P`` taken from its columns are orthonormal
*exactly*, and the innovation of a system built from them has exactly the eigenvalues it was
designed to have. :class:`ExactSystem` mirrors :class:`lamproof.systems.System` (one step) in
SymPy rationals; the optimum, its loss, its gradients and probe scores are then computed with
zero tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy
from sympy import Matrix, Rational, eye, zeros

from lamproof.control import exact_matrix
from lamproof.errors import InputError
from lamproof.systems import System


def _as_exact_matrix(value, name: str) -> Matrix:
    """``value`` (a vector becomes a column, as ``Matrix`` makes it) in Rationals, by the one
    converter :func:`lamproof.control.exact_matrix`: a float is taken at its exact binary value."""
    return exact_matrix(value if isinstance(value, sympy.MatrixBase) else Matrix(value), name)


def cayley(skew) -> Matrix:
    """The rational orthogonal matrix ``(I − K)(I + K)⁻¹`` of a rational skew-symmetric ``K``."""
    K = _as_exact_matrix(skew, "skew")
    if K.rows != K.cols:
        raise InputError(f"skew: expected a square matrix, got shape {K.shape}")
    if K.T != -K:
        raise InputError("skew: matrix is not skew-symmetric (Kᵀ ≠ −K)")
    identity = eye(K.rows)
    return (identity - K) * (identity + K).inv()


def random_skew(n: int, rng: np.random.Generator, scale: int = 3) -> Matrix:
    """A skew-symmetric matrix with small random rational entries ``p/2``, ``|p| ≤ scale``."""
    K = zeros(n, n)
    for i in range(n):
        for j in range(i + 1, n):
            value = Rational(int(rng.integers(-scale, scale + 1)), 2)
            K[i, j], K[j, i] = value, -value
    return K


def rational_orthogonal(n: int, rng: np.random.Generator) -> Matrix:
    """A random ``n × n`` rational orthogonal matrix (Cayley transform of a random skew matrix)."""
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n: expected a positive integer, got {n!r}")
    return cayley(random_skew(n, rng))


def to_float(matrix: Matrix) -> np.ndarray:
    return (
        np.array(matrix.tolist(), dtype=np.float64) if matrix.rows and matrix.cols else np.zeros(matrix.shape)
    )


@dataclass(frozen=True, eq=False)
class ExactSystem:
    """``a = K o + e``, ``o' = F o + G a + ε`` with rational moments; sources ``x = [o; e; ε]``."""

    G: Matrix
    F: Matrix
    K: Matrix
    Sigma_o: Matrix
    Sigma_e: Matrix
    Sigma_n: Matrix
    mu_o: Matrix
    mu_n: Matrix

    @classmethod
    def build(cls, G, *, F=None, K=None, Sigma_o=None, Sigma_e=None, Sigma_n=None, mu_o=None, mu_n=None):
        G = _as_exact_matrix(G, "G")
        n, m = G.shape

        def square(value, name, size, default):
            M = default if value is None else _as_exact_matrix(value, name)
            if M.shape != (size, size):
                raise InputError(f"{name}: expected shape ({size}, {size}), got {M.shape}")
            return M

        F = square(F, "F", n, eye(n))
        K = zeros(m, n) if K is None else _as_exact_matrix(K, "K")
        if K.shape != (m, n):
            raise InputError(f"K: expected shape ({m}, {n}), got {K.shape}")
        Sigma_o = square(Sigma_o, "Sigma_o", n, eye(n))
        Sigma_e = square(Sigma_e, "Sigma_e", m, eye(m))
        Sigma_n = square(Sigma_n, "Sigma_n", n, zeros(n, n))
        for name, S in (("Sigma_o", Sigma_o), ("Sigma_e", Sigma_e), ("Sigma_n", Sigma_n)):
            if S.T != S:
                raise InputError(f"{name}: covariance is not symmetric")
        mu_o = zeros(n, 1) if mu_o is None else _as_exact_matrix(mu_o, "mu_o")
        mu_n = zeros(n, 1) if mu_n is None else _as_exact_matrix(mu_n, "mu_n")
        for name, mu in (("mu_o", mu_o), ("mu_n", mu_n)):
            if mu.shape != (n, 1):
                raise InputError(f"{name}: expected a column of length {n}, got shape {mu.shape}")
        return cls(G, F, K, Sigma_o, Sigma_e, Sigma_n, mu_o, mu_n)

    @property
    def d_o(self) -> int:
        return self.G.rows

    @property
    def d_a(self) -> int:
        return self.G.cols

    @property
    def maps(self) -> dict[str, Matrix]:
        n, m = self.d_o, self.d_a
        obs = Matrix.hstack(eye(n), zeros(n, m), zeros(n, n))
        expl = Matrix.hstack(zeros(m, n), eye(m), zeros(m, n))
        noise = Matrix.hstack(zeros(n, n), zeros(n, m), eye(n))
        action = self.K * obs + expl
        return {
            "obs": obs,
            "action": action,
            "exploration": expl,
            "noise": noise,
            "next_obs": self.F * obs + self.G * action + noise,
        }

    @property
    def source_mean(self) -> Matrix:
        return Matrix.vstack(self.mu_o, zeros(self.d_a, 1), self.mu_n)

    @property
    def source_cov(self) -> Matrix:
        return sympy.diag(self.Sigma_o, self.Sigma_e, self.Sigma_n)

    def observed(self) -> Matrix:
        maps = self.maps
        return Matrix.vstack(maps["obs"], maps["next_obs"])

    def cov(self, left: Matrix, right: Matrix | None = None) -> Matrix:
        right = left if right is None else right
        return left * self.source_cov * right.T

    def second_moment(self, left: Matrix, right: Matrix | None = None) -> Matrix:
        right = left if right is None else right
        return self.cov(left, right) + (left * self.source_mean) * (right * self.source_mean).T

    def to_system(self) -> System:
        """The same system in float64, for the numeric solvers."""
        return System(
            to_float(self.G),
            obs_mean=to_float(self.mu_o).ravel(),
            obs_cov=to_float(self.Sigma_o),
            dynamics=to_float(self.F),
            policy_gain=to_float(self.K),
            exploration_cov=to_float(self.Sigma_e),
            noise_mean=to_float(self.mu_n).ravel(),
            noise_cov=to_float(self.Sigma_n),
        )


def exact_moments(system: ExactSystem) -> dict[str, Matrix]:
    """``S_oo``, ``S_op`` (``E[o o'ᵀ]``), ``S_pp`` in rationals."""
    maps = system.maps
    return {
        "S_oo": system.second_moment(maps["obs"]),
        "S_op": system.second_moment(maps["obs"], maps["next_obs"]),
        "S_pp": system.second_moment(maps["next_obs"]),
    }


def exact_innovation(system: ExactSystem, fdm_obs_path: str = "learned") -> tuple[Matrix, Matrix]:
    """``(L_b, S_v)``: ``L = S_{o'o} S_oo⁻¹`` (``I`` for a fixed FDM path) and the second moment
    of ``v = o' − L_b o``, exactly."""
    M = exact_moments(system)
    if fdm_obs_path == "learned":
        L = M["S_op"].T * M["S_oo"].inv()
    else:
        L = eye(system.d_o)
    S_v = M["S_pp"] - L * M["S_op"] - M["S_op"].T * L.T + L * M["S_oo"] * L.T
    return L, S_v


def exact_spectrum(S: Matrix) -> list:
    """Eigenvalues of a symmetric rational matrix, descending, with multiplicity (exact)."""
    if S.rows != S.cols:
        raise InputError(f"S: expected a square matrix, got shape {S.shape}")
    values = []
    for value, mult in S.eigenvals().items():
        values.extend([sympy.nsimplify(value)] * mult)
    return sorted(values, key=lambda v: -float(v))


def exact_top_space(S: Matrix, d: int) -> Matrix:
    """A rational basis (not normalized) of the top-``d`` eigenspace of ``S``, nonzero eigenvalues only.

    Raises ``ValueError`` when the ``d``-th and ``(d+1)``-th eigenvalues are tied: the top space
    is then not unique and the caller must pick a member itself.
    """
    spectrum = exact_spectrum(S)
    if not isinstance(d, int) or not 1 <= d <= S.rows:
        raise InputError(f"d: must be an integer in [1, {S.rows}], got {d!r}")
    if d < len(spectrum) and spectrum[d - 1] == spectrum[d] and spectrum[d - 1] != 0:
        raise InputError(f"d: eigenvalue tie at {d} ({spectrum[d - 1]}): the top space is not unique")
    columns = []
    for value in sorted(set(v for v in spectrum[:d] if v != 0), key=lambda v: -float(v)):
        columns.extend((S - value * eye(S.rows)).nullspace())
    return Matrix.hstack(*columns) if columns else zeros(S.rows, 0)


def projector(V: Matrix) -> Matrix:
    """The orthogonal projector ``V (VᵀV)⁻¹ Vᵀ`` on the columns of ``V`` (rational)."""
    if V.cols == 0:
        return zeros(V.rows, V.rows)
    return V * (V.T * V).inv() * V.T


def exact_canonical(system: ExactSystem, V: Matrix, d_z: int, fdm_obs_path: str = "learned") -> dict:
    """The canonical optimum with captured space ``span V``: ``B = V``, ``D = (VᵀV)⁻¹Vᵀ``,
    ``C = −D L_b``, ``A = L_b``; unused latent dimensions are zero."""
    n = system.d_o
    L, _ = exact_innovation(system, fdm_obs_path)
    p = V.cols
    if p > d_z:
        raise InputError(f"V: has {p} columns, more than d_z = {d_z}")
    B = Matrix.hstack(V, zeros(n, d_z - p)) if p else zeros(n, d_z)
    D = Matrix.vstack((V.T * V).inv() * V.T, zeros(d_z - p, n)) if p else zeros(d_z, n)
    return {"A": L, "B": B, "C": -D * L, "D": D}


def exact_probe_error(features: Matrix, target: str, fit: ExactSystem, score: ExactSystem | None = None):
    """Fraction of unexplained variance of ``target`` by the best affine probe of
    ``features · [o; o']`` fitted on ``fit``, scored on ``score`` — in rationals."""
    score = fit if score is None else score
    name = {"action": "action", "observation": "obs", "noise": "noise"}[target]
    f_fit = features * fit.observed()
    # independent rows of the features (their covariance must be invertible)
    cov_full = fit.cov(f_fit)
    keep = []
    for i in range(f_fit.rows):
        trial = keep + [i]
        sub = cov_full.extract(trial, trial)
        if sub.rank() == len(trial):
            keep = trial
    t_fit = fit.maps[name]
    if keep:
        F_fit = f_fit.extract(keep, list(range(f_fit.cols)))
        coef = fit.cov(t_fit, F_fit) * fit.cov(F_fit).inv()
        intercept = t_fit * fit.source_mean - coef * (F_fit * fit.source_mean)
        F_score = (features * score.observed()).extract(keep, list(range(f_fit.cols)))
        error_map = score.maps[name] - coef * F_score
    else:
        intercept = t_fit * fit.source_mean
        error_map = score.maps[name]
    total = score.cov(score.maps[name]).trace()
    if total == 0:
        return None
    residual_mean = error_map * score.source_mean - intercept
    error = score.cov(error_map).trace() + (residual_mean.T * residual_mean)[0, 0]
    return sympy.nsimplify(error / total)


def exact_objective_value(expr, values: dict, dims: dict):
    """Evaluate a symbolic objective or gradient with rational matrices substituted, exactly.

    ``values`` maps matrix symbols to SymPy matrices (shape-checked, ``ValueError`` naming the
    symbol), ``dims`` the dimension symbols to integers.
    """
    concrete = {k: sympy.Integer(v) for k, v in dims.items()}
    env = {}
    for symbol, value in values.items():
        want = tuple(int(d.xreplace(concrete)) for d in symbol.shape)
        if tuple(value.shape) != want:
            raise InputError(f"{symbol}: expected shape {want}, got {tuple(value.shape)}")
        env[symbol] = Matrix(value)
    result = _explicit(expr, env, concrete)
    if isinstance(result, sympy.MatrixBase):
        return result.applyfunc(sympy.nsimplify)
    return sympy.nsimplify(result)


def _explicit(expr, env: dict, dims: dict):
    """Evaluate a matrix-expression tree with explicit SymPy matrices (exact, no ``doit`` guesswork)."""
    from sympy.matrices.expressions import (
        Identity,
        Inverse,
        MatAdd,
        MatMul,
        MatrixSymbol,
        Trace,
        Transpose,
        ZeroMatrix,
    )

    if isinstance(expr, MatrixSymbol):
        if expr not in env:
            raise InputError(f"values: no matrix given for {expr}")
        return env[expr]
    if isinstance(expr, Identity):
        return eye(int(expr.rows.xreplace(dims)))
    if isinstance(expr, ZeroMatrix):
        return zeros(int(expr.rows.xreplace(dims)), int(expr.cols.xreplace(dims)))
    if isinstance(expr, Transpose):
        return _explicit(expr.arg, env, dims).T
    if isinstance(expr, Inverse):
        return _explicit(expr.arg, env, dims).inv()
    if isinstance(expr, Trace):
        return _explicit(expr.arg, env, dims).trace()
    if isinstance(expr, MatAdd):
        parts = [_explicit(a, env, dims) for a in expr.args]
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out
    if isinstance(expr, (MatMul, sympy.Mul)):
        out = sympy.Integer(1)
        for a in expr.args:
            out = out * _explicit(a, env, dims)
        return out
    if isinstance(expr, sympy.Add):
        return sum((_explicit(a, env, dims) for a in expr.args), sympy.Integer(0))
    if isinstance(expr, sympy.Pow):
        return _explicit(expr.base, env, dims) ** _explicit(expr.exp, env, dims)
    if isinstance(expr, sympy.Expr):
        return expr.xreplace(dims)
    raise InputError(f"expr: cannot evaluate {type(expr).__name__}")
