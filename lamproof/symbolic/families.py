"""Parametric families of the paper's structured systems, with scalar symbols.

The family (docs/theory.md §1.1 with ``F = I``, ``o ~ (0, I)``): actions embedded by ``Φ`` (``d_a``
orthonormal columns), structured noise ``c σ Ψ b`` (``d_b`` orthonormal columns orthogonal to
``Φ``, cleaning factor ``c``), isotropic noise ``τ² I`` and the policy
``a = (1 − χ) e + χ P o``. Its innovation is ``S_r = (1 − χ)² ΦΦᵀ + c²σ² ΨΨᵀ + τ² I``; every
closed formula below is derived from that operator, with SymPy doing the algebra.
"""

from __future__ import annotations

import sympy
from sympy import Max, Min, Piecewise, Rational, symbols

from lamproof.errors import InputError

sigma, tau, chi, c, rho = symbols("sigma tau chi c rho", nonnegative=True)
lam = symbols("lambda", nonnegative=True)
d_o, d_a, d_b, d_z, k_a = symbols("d_o d_a d_b d_z k_a", integer=True, positive=True)
batch = symbols("n_B", integer=True, positive=True)

#: The three eigenvalue blocks of the structured innovation and their multiplicities.
ACTION = (1 - chi) ** 2 + tau**2
NOISE = c**2 * sigma**2 + tau**2
REST = tau**2


def block_spectrum(sizes=(2, 2, 1)) -> dict:
    """Eigenvalues of ``S_r`` computed by SymPy on a representative instance.

    In the orthonormal frame ``[Φ, Ψ, rest]`` the operator is block diagonal; the spectrum does
    not depend on the embedding, so a small instance with ``sizes = (d_a, d_b, rest)`` gives the
    eigenvalues, and the multiplicities scale with the block sizes.
    """
    for name, size in zip(("d_a", "d_b", "rest"), sizes, strict=True):
        if not isinstance(size, int) or size < 1:
            raise InputError(f"sizes: {name} must be a positive integer, got {size!r}")
    n_a, n_b, n_r = sizes
    frame_values = [(1 - chi) ** 2] * n_a + [c**2 * sigma**2] * n_b + [0] * n_r
    S_r = sympy.diag(*frame_values) + tau**2 * sympy.eye(n_a + n_b + n_r)
    return {sympy.factor(k): v for k, v in S_r.eigenvals().items()}


def captured_counts(first, second, m_first, m_second, dz=d_z):
    """How many directions of two eigenvalue blocks a top-``dz`` eigenspace takes (first wins)."""
    k_first = Min(dz, m_first)
    k_second = Min(Max(dz - m_first, 0), m_second)
    return k_first, k_second


def captured_action_dims(dz=d_z, cond=None):
    """``k_a``: action directions in the top-``d_z`` eigenspace of the structured innovation.

    Actions first iff ``(1 − χ)² > c² σ²`` (the τ² cancels); noise first otherwise.
    """
    actions_first = (1 - chi) ** 2 > c**2 * sigma**2 if cond is None else cond
    k_if_first, _ = captured_counts(ACTION, NOISE, d_a, d_b, dz)
    _, k_if_second = captured_counts(NOISE, ACTION, d_b, d_a, dz)
    return Piecewise((k_if_first, actions_first), (k_if_second, True))


def optimal_loss(dz=d_z, ka=None):
    """The eigenvalue tail ``Σ_{i > d_z} λ_i(S_r)`` of the structured family (``d_o`` dims).

    ``ka`` replaces the captured action count (e.g. by the symbol ``k_a`` for display).
    """
    total = d_a * ACTION + d_b * NOISE + (d_o - d_a - d_b) * REST
    ka = captured_action_dims(dz) if ka is None else ka
    kb = Min(dz - ka, d_b)
    rest = Max(dz - ka - kb, 0)
    return total - ka * ACTION - kb * NOISE - rest * REST


def dominance_threshold():
    """The structured-noise level ``σ*`` beyond which noise is captured before the actions.

    SymPy solves ``λ_action = λ_noise`` for ``σ > 0`` (with ``c > 0``, ``χ < 1``); the gap
    ``λ_action − λ_noise`` is decreasing in ``σ``, so noise comes first iff ``σ > σ*``.
    Returns ``(σ*, d(gap)/dσ)``.
    """
    s_pos, c_pos, chi_pos = symbols("sigma c chi", positive=True)
    gap = (ACTION - NOISE).subs({sigma: s_pos, c: c_pos, chi: chi_pos})
    roots = sympy.solve(sympy.Eq(gap, 0), s_pos)
    (root,) = [r for r in roots if sympy.ask(sympy.Q.positive(r.subs(chi_pos, Rational(1, 2))))] or roots
    root = root.subs({c_pos: c, chi_pos: chi})
    root = sympy.simplify(root.subs(sympy.Abs(chi - 1), 1 - chi))
    slope = sympy.diff(gap, s_pos).subs({s_pos: sigma, c_pos: c, chi_pos: chi})
    return root, slope


def isotropic_reorders() -> sympy.Expr:
    """``∂/∂τ (λ_action − λ_noise)``: zero, so isotropic noise never reorders the directions."""
    return sympy.simplify(sympy.diff(ACTION - NOISE, tau))


def rrr_block(weight=lam):
    """Per action direction, ``S_{yr} S_r⁻¹ S_{ry}`` restricted to ``(Φv, v)``: ``[[1, √λ], [√λ, λ]]``."""
    return sympy.Matrix([[1, sympy.sqrt(weight)], [sympy.sqrt(weight), weight]])


def effective_weight(labeled=rho, d_obs=d_o, d_act=d_a, n_batch=batch):
    """The paper's §7 weight on ``E‖a − Hz‖²`` relative to ``E‖ô' − o'‖²``."""
    return (d_obs / d_act) * (1 - (1 - labeled) ** n_batch)


__all__ = [
    "sigma",
    "tau",
    "chi",
    "c",
    "rho",
    "lam",
    "d_o",
    "d_a",
    "d_b",
    "d_z",
    "k_a",
    "batch",
    "ACTION",
    "NOISE",
    "REST",
    "block_spectrum",
    "captured_counts",
    "captured_action_dims",
    "optimal_loss",
    "dominance_threshold",
    "isotropic_reorders",
    "rrr_block",
    "effective_weight",
    "Rational",
]
