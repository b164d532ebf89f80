"""Compiled kernels (Numba) for the hot spots of the two training loops.

NumPy evaluates ``a·x + b·y`` in several passes over memory, each with a temporary; for the
population dynamics and the batched trainer, whose parameters are 10⁴–10⁵ numbers updated 10⁴
times, those passes cost more than the arithmetic.

- :func:`adam_update` and the element-wise kernels do the *same* floating-point operations, in the
  same order, as the NumPy code they replace (no fast-math), in one pass: results are bitwise
  those of that code (the trainer's tests compare checkpoints bit for bit).
- :func:`learned_path_products` replaces three BLAS products that read the same matrix; its sums
  run in their own order, so it equals them to rounding, like any other BLAS.

``error_model="numpy"`` lets LLVM vectorize divisions and square roots (the default ``"python"``
model checks every division for zero). ``cache=True`` keeps the machine code in ``__pycache__``,
so only the first run on a machine compiles (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(cache=True, error_model="numpy", nogil=True)


@_jit
def adam_update(theta, grad, m, v, beta1, beta2, bias_scale, eps_scaled):  # pragma: no cover - compiled
    """PyTorch's Adam update (``torch.optim.Adam``, single-tensor path) in one pass, in place.

    ``m ← m + (1−β₁)(g − m)`` (``lerp``), ``v ← β₂v + ((1−β₂)g)g``, and
    ``θ ← θ − m / (√v·bias_scale + eps_scaled)`` with ``bias_scale = 1/(√(1−β₂ᵗ)·step_size)``,
    ``eps_scaled = eps/step_size`` and ``step_size = lr/(1−β₁ᵗ)``: PyTorch's
    ``step_size·m/(√v/√(1−β₂ᵗ) + eps)`` with the step size folded into the denominator. All
    arrays are flat float64 of one size.
    """
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
def kron_identity_right(K, X, out):  # pragma: no cover - compiled
    """``out = X (K ⊗ I_d)`` for ``X`` of shape ``(rows, 2d)`` and ``K`` 2 × 2, in one pass.

    Row ``[x₁, x₂] ↦ [k₁₁x₁ + k₂₁x₂, k₁₂x₁ + k₂₂x₂]``.
    """
    rows, width = X.shape
    d = width // 2
    k11, k12, k21, k22 = K[0, 0], K[0, 1], K[1, 0], K[1, 1]
    for r in range(rows):
        for j in range(d):
            x1 = X[r, j]
            x2 = X[r, d + j]
            out[r, j] = k11 * x1 + k21 * x2
            out[r, d + j] = k12 * x1 + k22 * x2


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
def _row_pair(Aj, Ak, gj, gk, Bj, Bk, gY1, left, aj, ak, z, g):  # pragma: no cover - compiled
    """Rows ``j``, ``k`` of ``A``: ``g· += B Y₁`` terms, ``left += g·Bᵀ[:, (j, k)] A[(j, k)]`` and
    ``aj = A_j Y₁ᵀ``, ``ak = A_k Y₁ᵀ``, latent units two at a time."""
    d = Aj.size
    l = 0
    while l + 1 < z:
        b00, b01, b10, b11 = Bj[l], Bj[l + 1], Bk[l], Bk[l + 1]
        Y0, Y1, o0, o1 = gY1[l], gY1[l + 1], left[l], left[l + 1]
        c00, c01, c10, c11 = g * b00, g * b01, g * b10, g * b11
        a00 = 0.0
        a01 = 0.0
        a10 = 0.0
        a11 = 0.0
        for k in range(d):
            x, y, u, w = Aj[k], Ak[k], Y0[k], Y1[k]
            gj[k] += b00 * u + b01 * w
            gk[k] += b10 * u + b11 * w
            o0[k] += c00 * x + c10 * y
            o1[k] += c01 * x + c11 * y
            a00 += x * u
            a01 += x * w
            a10 += y * u
            a11 += y * w
        aj[l], aj[l + 1], ak[l], ak[l + 1] = a00, a01, a10, a11
        l += 2
    if l < z:  # an odd last unit
        b0, b1, Yl, out = Bj[l], Bk[l], gY1[l], left[l]
        c0, c1 = g * b0, g * b1
        a0 = 0.0
        a1 = 0.0
        for k in range(d):
            x, y, u = Aj[k], Ak[k], Yl[k]
            gj[k] += b0 * u
            gk[k] += b1 * u
            out[k] += c0 * x + c1 * y
            a0 += x * u
            a1 += y * u
        aj[l], ak[l] = a0, a1


@_fused
def _single_row(Aj, gj, Bj, gY1, left, aj, z, g):  # pragma: no cover - compiled
    """An odd last row of ``A``: the same three contributions as :func:`_row_pair`."""
    for l in range(z):
        b, Yl, out = Bj[l], gY1[l], left[l]
        gb = g * b
        acc = 0.0
        for k in range(Aj.size):
            gj[k] += b * Yl[k]
            out[k] += gb * Aj[k]
            acc += Aj[k] * Yl[k]
        aj[l] = acc


@_fused
def learned_path_products(A, B, gY1, zs, g, coef, M, diag, gA, left, AY1t):  # pragma: no cover - compiled
    """The three products of the learned FDM path's gradient with one pass over each ``A``.

    For every member ``i`` (latent size ``zs[i]``; units past it are padding and stay zero):

    - ``gA[i] = B[i] gY1[i] + coef[i]·A[i] + M + diag[i]·I`` (``M`` is ``d × d`` or ``0 × 0``);
    - ``left[i, :, :d] = g·B[i]ᵀ A[i]`` (the rest of ``left`` is not touched);
    - ``AY1t[i] = A[i] gY1[i]ᵀ``.

    Rows of ``A`` are taken two at a time and latent units two at a time, so that each loaded
    element of ``A`` and ``gY1`` serves four multiply-adds. The sums run in another order than
    BLAS's (``reassoc``): equal to rounding, not bitwise.
    """
    n, d, _ = A.shape
    dense = M.shape[0] > 0
    for i in range(n):
        z = zs[i]
        c = coef[i]
        Ai, Bi, Yi, Li, Gi, Pi = A[i], B[i], gY1[i], left[i], gA[i], AY1t[i]
        Li[:, :d] = 0.0
        Pi[:, z:] = 0.0
        for j in range(d):
            Gj, Aj = Gi[j], Ai[j]
            for k in range(d):
                Gj[k] = c * Aj[k]
            if dense:
                Mj = M[j]
                for k in range(d):
                    Gj[k] += Mj[k]
            Gj[j] += diag[i]
        for j in range(0, d - 1, 2):
            _row_pair(Ai[j], Ai[j + 1], Gi[j], Gi[j + 1], Bi[j], Bi[j + 1], Yi, Li, Pi[j], Pi[j + 1], z, g)
        if d % 2:
            _single_row(Ai[d - 1], Gi[d - 1], Bi[d - 1], Yi, Li, Pi[d - 1], z, g)
