"""Timing of state-space windows at n = d_o = 32, T = 4, k = 2, and how fast a context reaches the
Kalman limit.

Issue 10 targets a state-space solve with all probes at this size in ≤ 50 ms; the solve is wired
in phase 2, so this script times its ingredients: building the window, its moments, the context
innovation, the exogenous quantities and a multi-step inverse model. It also prints the error of
the context innovation ``S_v(T)`` against the steady-state Kalman innovation for growing ``T``,
with the rate ``ρ(F_p)²`` predicted by D10. Run ``python benchmarks/bench_statespace.py`` (twice:
the machine is noisy); BLAS threads are limited to one.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from lamproof._blas import single_threaded_blas
from lamproof.context import innovation
from lamproof.exogenous import action_first, exogenous_loading_range, latent_consistency
from lamproof.inverse import inverse_model
from lamproof.statespace import StateSpaceSystem

REPEATS = 7


def timed(call, repeats: int = REPEATS) -> tuple[float, float]:
    """(median, best) wall time in ms over ``repeats`` runs after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def system_32(rng: np.random.Generator) -> StateSpaceSystem:
    """n = d_o = 32, d_a = 4, the last 8 coordinates exogenous, stable, noisy, observed through H."""
    n, d_a, n_x = 32, 4, 8
    F = np.zeros((n, n))
    for lo, hi in ((0, n - n_x), (n - n_x, n)):
        q, _ = np.linalg.qr(rng.standard_normal((hi - lo, hi - lo)))
        F[lo:hi, lo:hi] = q @ np.diag(rng.uniform(-0.8, 0.8, hi - lo)) @ q.T
    G = np.zeros((n, d_a))
    G[: n - n_x] = rng.standard_normal((n - n_x, d_a))
    W = np.zeros((n, n))
    W[: n - n_x, : n - n_x] = 0.1 * np.eye(n - n_x)
    W[n - n_x:, n - n_x:] = np.eye(n_x)
    H = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    return StateSpaceSystem(F, G, observation=H, process_noise_cov=W, observation_noise_cov=0.05 * np.eye(n),
                            exogenous=list(range(n - n_x, n)))


def main() -> None:
    rng = np.random.default_rng(0)
    system = system_32(rng)
    T, k, d_z = 4, 2, 4

    def window():
        return system.transition(k, T)

    def moments():
        t = window()
        t.second_moment(("obs", "next_obs"))
        return t

    def everything():
        t = moments()
        inn = innovation(t)
        exogenous_loading_range(t, d_z)
        action_first(t, d_z=d_z)
        latent_consistency(t, np.linalg.eigh(inn.operator)[1][:, -d_z:].T @ inn.map)
        inverse_model(t)

    rows = [
        ("window transition (T=4, k=2)", timed(window)),
        ("+ moments of [obs; next_obs]", timed(moments)),
        ("+ innovation, loading range, action-first, consistency, inverse model", timed(everything)),
        ("stationary system construction (Lyapunov)", timed(lambda: system_32(np.random.default_rng(0)))),
    ]
    print("n = d_o = 32, d_a = 4, 8 exogenous coordinates")
    for name, (median, best) in rows:
        print(f"  {name:<72s} median {median:7.2f} ms   best {best:7.2f} ms")

    print("\ncontext innovation S_v(T) against the steady-state Kalman innovation (k = 1)")
    limit = system.kalman_innovation()
    Q, R = system._filter_noise()
    F, H = system.dynamics, system.observation
    import scipy.linalg

    P = scipy.linalg.solve_discrete_are(F.T, H.T, Q, R)
    F_p = F - F @ P @ H.T @ np.linalg.inv(H @ P @ H.T + R) @ H
    rate = float(np.max(np.abs(np.linalg.eigvals(F_p)))) ** 2
    print(f"  predicted rate per frame ρ(F_p)² = {rate:.4f}")
    previous = None
    for T_ in (1, 2, 4, 8, 12, 16):
        error = float(np.linalg.norm(innovation(system.transition(1, T_)).operator - limit, 2))
        error /= float(np.linalg.norm(limit, 2))
        ratio = "" if previous is None else f"   per frame {(error / previous[1]) ** (1 / (T_ - previous[0])):.4f}"
        print(f"  T = {T_:2d}   relative error {error:.3e}{ratio}")
        previous = (T_, error)


if __name__ == "__main__":
    with single_threaded_blas():
        main()
