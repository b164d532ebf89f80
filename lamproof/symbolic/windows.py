"""Exact (rational or symbolic) window moments of a state-space system, for zero-tolerance checks.

An independent route to :class:`lamproof.statespace.WindowTransition`: the same system is iterated
in SymPy, every variable kept as a map of the sources ``s_0, v_j, e_j, w_j`` (zero means), and
covariances are formed as ``Σ_b M_b Σ_b N_bᵀ``. Meant for small systems (``n ≤ 4``, ``T + k ≤ 5``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

__all__ = ["ExactWindow", "exact_window", "exact_stationary_cov", "exact_innovation", "riccati_step"]


@dataclass(frozen=True)
class ExactWindow:
    """Source maps of a window: ``frames[j]``, ``states[j]``, ``actions[j]`` as dicts ``{source: map}``."""

    frames: list[dict]
    states: list[dict]
    actions: list[dict]
    covs: dict
    context: int
    horizon: int

    def cov(self, left: dict, right: dict) -> sympy.Matrix:
        rows = next(iter(left.values())).rows if left else 0
        cols = next(iter(right.values())).rows if right else 0
        out = sympy.zeros(rows, cols)
        for source in left.keys() & right.keys():
            out += left[source] * self.covs[source] * right[source].T
        return out

    def stack_cov(self, left: list[dict], right: list[dict]) -> sympy.Matrix:
        return sympy.Matrix(sympy.BlockMatrix([[self.cov(a, b) for b in right] for a in left]))

    @property
    def obs(self) -> list[dict]:
        return self.frames[: self.context]

    @property
    def next_obs(self) -> dict:
        return self.frames[self.context - 1 + self.horizon]


def _plus(*maps: dict) -> dict:
    out: dict = {}
    for m in maps:
        for source, M in m.items():
            out[source] = out[source] + M if source in out else M
    return out


def _times(matrix, m: dict) -> dict:
    return {source: matrix * M for source, M in m.items()}


def exact_window(F, G, H, K, Sw, Sv, Se, P0, context: int, horizon: int) -> ExactWindow:
    """The window of ``context`` frames and ``horizon`` steps, started at ``s_0 ~ (0, P0)``."""
    n, d_o, d_a = F.rows, H.rows, G.cols
    covs = {"s0": P0}
    state = {"s0": sympy.eye(n)}
    frames, states, actions = [], [], []
    total = context + horizon
    for j in range(total):
        covs[("v", j)] = Sv
        frame = _plus(_times(H, state), {("v", j): sympy.eye(d_o)})
        frames.append(frame)
        states.append(state)
        if j == total - 1:
            break
        covs[("e", j)] = Se
        covs[("w", j)] = Sw
        action = _plus(_times(K, frame), {("e", j): sympy.eye(d_a)})
        actions.append(action)
        state = _plus(_times(F, state), _times(G, action), {("w", j): sympy.eye(n)})
    return ExactWindow(frames, states, actions, covs, context, horizon)


def exact_stationary_cov(F, Q) -> sympy.Matrix:
    """The solution of ``P = F P Fᵀ + Q`` as a linear system (exact for rational ``F``, ``Q``)."""
    n = F.rows
    symbols = {(i, j): sympy.Symbol(f"p_{i}_{j}") for i in range(n) for j in range(i, n)}
    P = sympy.Matrix(n, n, lambda i, j: symbols[(min(i, j), max(i, j))])
    solution = sympy.solve(list(P - F * P * F.T - Q), list(symbols.values()), dict=True)
    if not solution:
        raise ValueError("dynamics: no stationary covariance (the closed loop is not stable)")
    return P.subs(solution[0])


def exact_innovation(window: ExactWindow) -> sympy.Matrix:
    """``S_v = S_{o'o'} − S_{o'c} S_cc⁻¹ S_{co'}`` of the window, exactly (``S_cc`` invertible).

    Entries are left unsimplified; compare with ``sympy.cancel`` of a difference.
    """
    S_cc = window.stack_cov(window.obs, window.obs)
    S_pc = window.stack_cov([window.next_obs], window.obs)
    S_pp = window.cov(window.next_obs, window.next_obs)
    return S_pp - S_pc * S_cc.inv() * S_pc.T


def riccati_step(P, F, H, Q, R):
    """One step of the filter Riccati recursion ``F P Fᵀ + Q − F P Hᵀ (H P Hᵀ + R)⁻¹ H P Fᵀ``."""
    S = H * P * H.T + R
    return F * P * F.T + Q - F * P * H.T * S.inv() * H * P * F.T
