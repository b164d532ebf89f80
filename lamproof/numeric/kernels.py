"""Compiled kernels (Numba) for the hot spots of the two training loops.

NumPy evaluates ``a·x + b·y`` in several passes over memory, each with a temporary; for the
population dynamics and the batched trainer, whose parameters are 10⁴–10⁵ numbers updated 10⁴
times, those passes cost more than the arithmetic.

- :func:`adam_step` and :func:`add_scaled_plus_constant` do the *same* floating-point operations,
  in the same order, as the NumPy code they replace (no fast-math), in one pass: results are
  bitwise those of that code (the trainer's tests compare checkpoints bit for bit).
- :func:`structured_right` and :func:`learned_path_products` compute matrix products (the second
  replaces three BLAS calls that read the same matrix, with sums in its own order): equal to
  NumPy's to rounding, like any two BLAS.

``error_model="numpy"`` lets LLVM vectorize divisions and square roots (the default ``"python"``
model checks every division for zero). ``cache=True`` keeps the machine code in ``__pycache__``,
so only the first run on a machine compiles (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(cache=True, error_model="numpy", nogil=True)


def adam_step(theta, grad, m, v, t: int, lr: float, betas: tuple[float, float], eps: float) -> None:
    """Step ``t`` (from 1) of PyTorch's Adam (``torch.optim.Adam``, single-tensor path), in place on
    flat float64 arrays of one size: ``m ← m + (1−β₁)(g − m)`` (``lerp``), ``v ← β₂v + ((1−β₂)g)g``,
    ``θ ← θ − step_size·m/(√v/√(1−β₂ᵗ) + eps)`` with ``step_size = lr/(1−β₁ᵗ)``, the step size folded
    into the denominator. Used by the stochastic trainer and by the population dynamics alike."""
    beta1, beta2 = betas
    step_size = lr / (1.0 - beta1**t)
    bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
    _adam_update(theta, grad, m, v, beta1, beta2, 1.0 / (bias_correction2_sqrt * step_size), eps / step_size)


@_jit
def _adam_update(theta, grad, m, v, beta1, beta2, bias_scale, eps_scaled):  # pragma: no cover - compiled
    """:func:`adam_step`'s loop: ``θ ← θ − m / (√v·bias_scale + eps_scaled)`` after the moment updates."""
    a1 = 1.0 - beta1
    a2 = 1.0 - beta2
    for i in range(theta.size):
        g = grad[i]
        mi = m[i] + (g - m[i]) * a1
        vi = v[i] * beta2 + (g * a2) * g
        m[i] = mi
        v[i] = vi
        theta[i] -= mi / (np.sqrt(vi) * bias_scale + eps_scaled)


@_jit
def structured_right(K, U, Vt, X, out):  # pragma: no cover - compiled
    """``out = X (K ⊗ I_d + U Vᵀ)`` for ``X`` of shape ``(rows, 2d)``, ``K`` 2 × 2, ``U``, ``Vᵀ`` of
    rank ``r``: the low-rank part by two BLAS products, the rest in one pass.

    Row ``[x₁, x₂] ↦ [k₁₁x₁ + k₂₁x₂, k₁₂x₁ + k₂₂x₂] + (x U) Vᵀ``.
    """
    rows, width = X.shape
    d = width // 2
    k11, k12, k21, k22 = K[0, 0], K[0, 1], K[1, 0], K[1, 1]
    low = np.dot(np.dot(X, U), Vt) if U.shape[1] > 0 else np.zeros((rows, width))
    for r in range(rows):
        x, o, lr = X[r], out[r], low[r]
        for j in range(d):
            x1 = x[j]
            x2 = x[d + j]
            o[j] = k11 * x1 + k21 * x2 + lr[j]
            o[d + j] = k12 * x1 + k22 * x2 + lr[d + j]


@_jit
def add_scaled_plus_constant(G, A, coef, M, diag):  # pragma: no cover - compiled
    """``G[i] += coef[i]·A[i] + M + diag[i]·I`` for stacks ``G``, ``A`` of shape ``(n, d, d)``, in one
    pass; ``M`` is ``d × d`` or, when it is zero, ``0 × 0``."""
    n, d, _ = A.shape
    dense = M.shape[0] > 0
    for i in range(n):
        c = coef[i]
        for j in range(d):
            if dense:
                for k in range(d):
                    G[i, j, k] += c * A[i, j, k] + M[j, k]
            else:
                for k in range(d):
                    G[i, j, k] += c * A[i, j, k]
            G[i, j, j] += diag[i]


#: :func:`learned_path_products` beats three BLAS calls up to this latent size (measured at
#: d_o = 32…512, one thread: 1.3–3× faster for d_z ≤ 8, level at 16, 25 % slower at 32).
FUSED_MAX_LATENT = 16


_fused = njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"}, inline="always")


@_fused
def _start_row(j, Aj, Gj, c, M, dense, diag):  # pragma: no cover - compiled
    """Row ``j`` of ``gA`` before the products: ``c·A_j + M_j + diag·e_j`` (just before its row pair
    adds to it, while the row is in cache)."""
    for k in range(Aj.size):
        Gj[k] = c * Aj[k]
    if dense:
        Mj = M[j]
        for k in range(Aj.size):
            Gj[k] += Mj[k]
    Gj[j] += diag


@_fused
def _row_pair(j, Aj, Ak, gj, gk, Bj, Bk, Y, left, aj, ak, z, g):  # pragma: no cover - compiled
    """Rows ``j``, ``j + 1`` of :func:`learned_path_products`, latent units two at a time."""
    d = Aj.size
    l = 0
    while l + 1 < z:
        Y0, Y1, o0, o1 = Y[l], Y[l + 1], left[l], left[l + 1]
        c00, c01, c10, c11 = g * Bj[l], g * Bj[l + 1], g * Bk[l], g * Bk[l + 1]
        a00 = 0.0
        a01 = 0.0
        a10 = 0.0
        a11 = 0.0
        for k in range(d):
            x, y, u, w = Aj[k], Ak[k], Y0[k], Y1[k]
            gj[k] += c00 * u + c01 * w
            gk[k] += c10 * u + c11 * w
            o0[k] += c00 * x + c10 * y
            o1[k] += c01 * x + c11 * y
            a00 += x * u
            a01 += x * w
            a10 += y * u
            a11 += y * w
        aj[l] = g * (a00 - Y0[d + j])
        aj[l + 1] = g * (a01 - Y1[d + j])
        ak[l] = g * (a10 - Y0[d + j + 1])
        ak[l + 1] = g * (a11 - Y1[d + j + 1])
        l += 2
    if l < z:  # an odd last unit
        Yl, out = Y[l], left[l]
        c0, c1 = g * Bj[l], g * Bk[l]
        a0 = 0.0
        a1 = 0.0
        for k in range(d):
            x, y, u = Aj[k], Ak[k], Yl[k]
            gj[k] += c0 * u
            gk[k] += c1 * u
            out[k] += c0 * x + c1 * y
            a0 += x * u
            a1 += y * u
        aj[l] = g * (a0 - Yl[d + j])
        ak[l] = g * (a1 - Yl[d + j + 1])


@_fused
def _single_row(j, Aj, gj, Bj, Y, left, aj, z, g):  # pragma: no cover - compiled
    """An odd last row ``j`` of :func:`learned_path_products`."""
    d = Aj.size
    for l in range(z):
        Yl, out = Y[l], left[l]
        c = g * Bj[l]
        acc = 0.0
        for k in range(d):
            gj[k] += c * Yl[k]
            out[k] += c * Aj[k]
            acc += Aj[k] * Yl[k]
        aj[l] = g * (acc - Yl[d + j])


@_fused
def learned_path_products(A, B, Y, zs, g, coef, M, diag, gA, left, gB):  # pragma: no cover - compiled
    """The learned FDM path's gradient terms that involve ``A``, with one pass over each ``A``.

    With ``Y = W S = [Y₁, Y₂]`` (``n × z × 2d``), for every member ``i`` (latent size ``zs[i]``;
    units past it are padding and stay zero):

    - ``gA[i] = g B[i] Y₁[i] + coef[i]·A[i] + M + diag[i]·I`` (``M`` is ``d × d`` or ``0 × 0``);
    - ``left[i, :, :d] = g B[i]ᵀ A[i]`` (the rest of ``left`` is not touched);
    - ``gB[i] = g (A[i] Y₁[i]ᵀ − Y₂[i]ᵀ)``.

    Rows of ``A`` are taken two at a time and latent units two at a time, so that each loaded
    element of ``A`` and ``Y`` serves four multiply-adds. The sums run in another order than
    BLAS's (``reassoc``): equal to rounding, not bitwise.
    """
    n, d, _ = A.shape
    dense = M.shape[0] > 0
    for i in range(n):
        z = zs[i]
        c = coef[i]
        Ai, Bi, Yi, Li, Gi, Pi = A[i], B[i], Y[i], left[i], gA[i], gB[i]
        Li[:, :d] = 0.0
        Pi[:, z:] = 0.0
        for j in range(0, d - 1, 2):
            _start_row(j, Ai[j], Gi[j], c, M, dense, diag[i])
            _start_row(j + 1, Ai[j + 1], Gi[j + 1], c, M, dense, diag[i])
            _row_pair(j, Ai[j], Ai[j + 1], Gi[j], Gi[j + 1], Bi[j], Bi[j + 1], Yi, Li, Pi[j], Pi[j + 1], z, g)
        if d % 2:
            _start_row(d - 1, Ai[d - 1], Gi[d - 1], c, M, dense, diag[i])
            _single_row(d - 1, Ai[d - 1], Gi[d - 1], Bi[d - 1], Yi, Li, Pi[d - 1], z, g)
