"""Compiled kernels (Numba) for the hot spots of the two training loops.

NumPy evaluates ``a·x + b·y`` in several passes over memory, each with a temporary; for the
population dynamics and the batched trainer, whose parameters are 10⁴–10⁵ numbers updated 10⁴
times, those passes cost more than the arithmetic.

- :func:`adam_step`, :func:`add_scaled_plus_constant` and the batched trainer's element-wise
  passes (``trainer_*``, :func:`add_then_scale`, :func:`shifted_pair`, :func:`head_residual`) do
  the *same* floating-point operations, in the same order, as the NumPy code they replace (no
  fast-math), in one pass: results are bitwise those of that code (the trainer's tests compare
  checkpoints bit for bit).
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
#: For kernels that compute products: sums in the kernel's own order (``reassoc``) and fused
#: multiply-adds (``contract``), like any BLAS; equal to NumPy's to rounding, not bitwise.
_fused = njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"}, inline="always")


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


@_fused
def _row_dots(x, rows, out):  # pragma: no cover - compiled
    """``out[k] = x · rows[k]`` for every row of ``rows``."""
    for k in range(rows.shape[0]):
        row = rows[k]
        acc = 0.0
        for j in range(x.size):
            acc += x[j] * row[j]
        out[k] = acc


@_fused
def structured_right(K, Ut, Vt, X, zs, out):  # pragma: no cover - compiled
    """``out[i, :zs[i]] = X[i, :zs[i]] (K ⊗ I_d + U Vᵀ)`` for a stack ``X`` of shape ``(n, m, 2d)``;
    rows past ``zs[i]`` (padding) are set to zero. ``K`` is 2 × 2, ``Uᵀ`` and ``Vᵀ`` are ``r × 2d``.

    Row ``[x₁, x₂] ↦ [k₁₁x₁ + k₂₁x₂, k₁₂x₁ + k₂₂x₂] + Σ_k (x·u_k) v_k``: contiguous dot products
    and updates (BLAS is slow on products this thin: 6 GFLOP/s for ``64 × 256 × 8``).
    """
    n, m, width = X.shape
    d = width // 2
    r = Ut.shape[0]
    k11, k12, k21, k22 = K[0, 0], K[0, 1], K[1, 0], K[1, 1]
    xu = np.empty(r)
    for i in range(n):
        for l in range(m):
            o = out[i, l]
            if l >= zs[i]:
                o[:] = 0.0
                continue
            x = X[i, l]
            _row_dots(x, Ut, xu)
            for j in range(d):
                x1 = x[j]
                x2 = x[d + j]
                o[j] = k11 * x1 + k21 * x2
                o[d + j] = k12 * x1 + k22 * x2
            for k in range(r):
                c = xu[k]
                v = Vt[k]
                for j in range(width):
                    o[j] += c * v[j]


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


@_fused
def latent_products(
    B, W, Y, zs, g, augment, c2, H, cP, cQ, left, gB, Z, UUt, Q, U
):  # pragma: no cover - compiled
    """The population gradient's products on the latent side (``z × z`` and ``z × 2d``), per member.

    For member ``i`` with latent size ``z = zs[i]`` (rows and columns past it are padding), with
    ``B`` (``d × z``), ``W = [W₁, W₂]`` and ``Y = W S`` (``z × 2d``):

    - ``Z = Y Wᵀ`` (symmetric: the upper triangle, mirrored);
    - ``left[:, d:] = −g Bᵀ``, then ``left += (g BᵀB + cP·HᵀH) W`` (``left[:, :d]`` holds its first
      term already; rows past ``z`` are set to zero);
    - with ``augment``: ``U = W₁ + W₂``, ``UUt = U Uᵀ`` and ``Q = c2·BᵀB + cQ·HᵀH``;
    - ``gB += B (g Z + c2·UUt)``.

    ``H`` is the action head (``n × d_act × z``), or ``(0, 0, 0)`` without one. ``Z``, ``UUt``, ``Q`` and ``U``
    are outputs (zero past ``z``), for the head's terms and :func:`add_to_halves`.
    """
    n, d, _ = B.shape
    head = H.shape[0] > 0
    for i in range(n):
        z = zs[i]
        Bi, Wi, Yi, Li, Gi, Zi = B[i], W[i], Y[i], left[i], gB[i], Z[i]
        if head:
            HtH = np.zeros((z, z))
            for r in range(H.shape[1]):
                Hr = H[i, r]
                for a in range(z):
                    for b in range(z):
                        HtH[a, b] += Hr[a] * Hr[b]
        Zi[:, :] = 0.0
        Li[z:, :] = 0.0
        BtB = np.zeros((z, z))
        for j in range(d):
            Bj = Bi[j]
            for a in range(z):
                b_ja = Bj[a]
                Li[a, d + j] = -g * b_ja
                for b in range(a, z):
                    BtB[a, b] += b_ja * Bj[b]
        for a in range(z):
            Ya = Yi[a]
            for b in range(a, z):
                Wb = Wi[b]
                acc = 0.0
                for k in range(2 * d):
                    acc += Ya[k] * Wb[k]
                Zi[a, b] = acc
                Zi[b, a] = acc
                BtB[b, a] = BtB[a, b]
        M = g * Zi[:z, :z]  # the factor of B in ∂/∂B
        P = g * BtB
        if head:
            P += cP[i] * HtH
        if augment:
            Ui, UUi, Qi = U[i], UUt[i], Q[i]
            Ui[:, :] = 0.0
            UUi[:, :] = 0.0
            Qi[:, :] = 0.0
            for a in range(z):
                for k in range(d):
                    Ui[a, k] = Wi[a, k] + Wi[a, d + k]
            for a in range(z):
                for b in range(a, z):
                    acc = 0.0
                    for k in range(d):
                        acc += Ui[a, k] * Ui[b, k]
                    UUi[a, b] = acc
                    UUi[b, a] = acc
            M += c2[i] * UUi[:z, :z]
            Qi[:z, :z] = c2[i] * BtB
            if head:
                Qi[:z, :z] += cQ[i] * HtH
        for a in range(z):
            La = Li[a]
            for b in range(z):
                c = P[a, b]
                Wb = Wi[b]
                for k in range(2 * d):
                    La[k] += c * Wb[k]
        for j in range(d):
            Bj, Gj = Bi[j], Gi[j]
            for a in range(z):
                acc = 0.0
                for b in range(z):
                    acc += Bj[b] * M[b, a]
                Gj[a] += acc


@_fused
def head_products(H, W, Z, UUt, S_ax, zs, c, cs2, augment, gH, gW):  # pragma: no cover - compiled
    """The action head's terms, per member (``z = zs[i]``; padding columns of ``gH`` set to zero):

    - ``gH = c (H Z − (W S_xa)ᵀ)`` (``+ c s² H UUt`` with ``augment``), ``S_xa = S_axᵀ``;
    - ``gW −= c Hᵀ S_ax`` (``gW`` holds the rest of ∂/∂W already).
    """
    n, k, _ = H.shape
    width = W.shape[2]
    WS = np.empty(k)
    for i in range(n):
        z = zs[i]
        Hi, Wi, Gi = H[i], W[i], gH[i]
        Gi[:, :] = 0.0
        for a in range(z):
            _row_dots(Wi[a], S_ax, WS)
            for r in range(k):
                acc = 0.0
                for b in range(z):
                    acc += Hi[r, b] * Z[i, b, a]
                if augment:
                    extra = 0.0
                    for b in range(z):
                        extra += Hi[r, b] * UUt[i, b, a]
                    Gi[r, a] = c[i] * (acc - WS[r]) + cs2[i] * extra
                else:
                    Gi[r, a] = c[i] * (acc - WS[r])
            out = gW[i, a]
            for r in range(k):
                h = c[i] * Hi[r, a]
                Sr = S_ax[r]
                for j in range(width):
                    out[j] -= h * Sr[j]


@_fused
def add_to_halves(Q, U, zs, gW):  # pragma: no cover - compiled
    """``gW[i, :z, :d] += Q[i] U[i]`` and ``gW[i, :z, d:] += Q[i] U[i]`` (``z = zs[i]``): the
    augmentation's term, which reaches ``C`` and ``D`` alike through ``U = C + D``."""
    n, _, d = U.shape
    row = np.empty(d)
    for i in range(n):
        z = zs[i]
        for a in range(z):
            row[:] = 0.0
            for b in range(z):
                c = Q[i, a, b]
                Ub = U[i, b]
                for k in range(d):
                    row[k] += c * Ub[k]
            out = gW[i, a]
            for k in range(d):
                out[k] += row[k]
                out[d + k] += row[k]


# -- the batched trainer's learned FDM path (lamproof.numeric.trainer._Stack.gradient) -----------
# Element-wise passes only, the products stay NumPy's (BLAS): each kernel does the operations of
# the NumPy lines it replaces, in their order, so the trained weights are bitwise unchanged.


@_jit
def trainer_second_moments(zyt, syy, c, suu):  # pragma: no cover - compiled
    """``zyt ← c·zyt`` and the FDM input's second moments ``suu = c·uᵀu``, ``u = [y, z]``, in place.

    For each member ``i``: ``zyt[i]`` holds ``[zᵀy, zᵀt]`` (``w × (d_c + d_o)``) and the block
    ``suu[i, d_c:, d_c:]`` holds ``zᵀz``, both unscaled; ``syy = c·yᵀy`` is shared. Fills
    ``suu[i] = [[syy, (c zᵀy)ᵀ], [c zᵀy, c zᵀz]]``.
    """
    G, w, width = zyt.shape
    d_c = syy.shape[0]
    for i in range(G):
        Z, S = zyt[i], suu[i]
        for l in range(w):
            for k in range(width):
                Z[l, k] *= c
        for j in range(d_c):
            for k in range(d_c):
                S[j, k] = syy[j, k]
            for l in range(w):
                S[j, d_c + l] = Z[l, j]
        for l in range(w):
            for k in range(d_c):
                S[d_c + l, k] = Z[l, k]
            for k in range(w):
                S[d_c + l, d_c + k] *= c


@_jit
def trainer_subtract_cross(gF, sty, zyt):  # pragma: no cover - compiled
    """``gF[i] −= c·tᵀu = [sty, (c zᵀt)ᵀ]``: the FDM gradient's data term, in place.

    ``gF`` is ``(G, d_o, d_c + w)``, ``sty = c·tᵀy`` shared, ``zyt[i] = [c zᵀy, c zᵀt]``.
    """
    G, d_o, cols = gF.shape
    d_c = sty.shape[1]
    w = cols - d_c
    for i in range(G):
        g, Z = gF[i], zyt[i]
        for r in range(d_o):
            for k in range(d_c):
                g[r, k] -= sty[r, k]
            for l in range(w):
                g[r, d_c + l] -= Z[l, d_c + r]


@_jit
def trainer_backprop_weights(fb, B, w_yt):  # pragma: no cover - compiled
    """``w_yt[i] = [fb[i, :d_c]; −B[i]]``: ``[y, t] w_yt = y AᵀB − t B`` is the FDM error's pull-back
    onto ``z`` without its ``z BᵀB`` term (``fb = FᵀB``)."""
    G, cols, w = fb.shape
    d_o = B.shape[1]
    d_c = cols - w
    for i in range(G):
        for k in range(d_c):
            for l in range(w):
                w_yt[i, k, l] = fb[i, k, l]
        for r in range(d_o):
            for l in range(w):
                w_yt[i, d_c + r, l] = -B[i, r, l]


@_jit
def add_then_scale(out, other, c):  # pragma: no cover - compiled
    """``out ← (out + other)·c`` element-wise, in place, for stacks of shape ``(G, rows, cols)``."""
    G, rows, cols = out.shape
    for i in range(G):
        for r in range(rows):
            for k in range(cols):
                out[i, r, k] = (out[i, r, k] + other[i, r, k]) * c


@_jit
def shifted_pair(left, right, kappa, s, out):  # pragma: no cover - compiled
    """``out = [left + tile(s·κ), right + s·κ]``: an augmented input pair in one pass.

    ``left`` is ``(n, T·d)`` (``T`` frames, each shifted by the same ``s·κ``), ``right`` and ``κ``
    are ``(n, d)``, ``out`` is ``(n, (T + 1)·d)``.
    """
    n, d = kappa.shape
    width = left.shape[1]
    for r in range(n):
        for j in range(width):
            out[r, j] = left[r, j] + s * kappa[r, j % d]
        for j in range(d):
            out[r, width + j] = right[r, j] + s * kappa[r, j]


@_jit
def head_residual(r, action, uniform, rho, coef, masked):  # pragma: no cover - compiled
    """The action head's scaled residual in place: ``r ← ((r − a)·ℓ)·coef`` per member ``i``.

    ``r`` is ``(G, n, k)`` holding ``z Hᵀ``, ``action`` ``(n, k)``. Unmasked: ``ℓ = 1`` and
    ``coef[i]`` as given. Masked (§7): ``ℓ_q = [uniform_q < rho_i]`` and
    ``coef = 2/(count·k)`` over the ``count`` labeled samples (``0`` when there are none).
    """
    G, n, k = r.shape
    for i in range(G):
        c = coef[i]
        if masked:
            count = 0
            for q in range(n):
                if uniform[q] < rho[i]:
                    count += 1
            c = 2.0 / float(count * k) if count > 0 else 0.0
        for q in range(n):
            keep = 1.0
            if masked and not uniform[q] < rho[i]:
                keep = 0.0
            for j in range(k):
                v = r[i, q, j] - action[q, j]
                if masked:
                    v = v * keep
                r[i, q, j] = v * c
