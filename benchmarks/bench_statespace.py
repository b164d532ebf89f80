"""Timing of state-space solves at n = d_o = 32, T = 4, k = 2, of the exo study, and how fast a context
reaches the Kalman limit.

Issue 10 targets a state-space solve with all probes at this size in ≤ 50 ms and the exo study in ≤ 5 s.
This script times the ingredients (the window, its moments), ``solve()`` on a fresh window, all probes
(the exogenous target included), the exogenous loading and the latent consistency over the optimal
family, the capture conditions, the whole ``lamproof solve`` JSON, and ``lamproof reproduce exo``
(its sweep as the runner reports it, and the whole command). It also prints the error of the context
innovation ``S_v(T)`` against the steady-state Kalman innovation for growing ``T``, with the rate
``ρ(F_p)²`` predicted by D10. Run ``python benchmarks/bench_statespace.py`` (twice: the machine is
noisy; wall and CPU time are both printed); BLAS threads are limited to one.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from lamproof import LAMSpec, all_probes, solve
from lamproof._blas import single_threaded_blas
from lamproof.api import solution_to_dict
from lamproof.conditions import capture_conditions
from lamproof.context import innovation
from lamproof.exogenous import consistency_over_family, loading_over_family
from lamproof.statespace import StateSpaceSystem

REPEATS = 7


def timed(call, repeats: int = REPEATS) -> tuple[float, float, float]:
    """(median wall, best wall, best CPU) in ms over ``repeats`` runs after one warm-up."""
    call()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - start) * 1e3)
        cpus.append((time.process_time() - cpu) * 1e3)
    return statistics.median(walls), min(walls), min(cpus)


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
    W[n - n_x :, n - n_x :] = np.eye(n_x)
    H = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    return StateSpaceSystem(
        F,
        G,
        observation=H,
        process_noise_cov=W,
        observation_noise_cov=0.05 * np.eye(n),
        exogenous=list(range(n - n_x, n)),
    )


def reproduce_exo() -> None:
    """``lamproof reproduce exo`` in a child process: the sweep's own time (as the runner reports it) and
    the whole command's wall and CPU time (workers included), without and with the figure."""
    for extra in (["--no-plot"], []):
        with tempfile.TemporaryDirectory() as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "lamproof.cli", "reproduce", "exo", "--out", out, *extra],
                capture_output=True,
                text=True,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        sweep = next(
            (line for line in done.stdout.splitlines() if line.startswith("exo")), done.stderr.strip()
        )
        print(
            f"  reproduce exo {' '.join(extra) or '(with the figure)':<18s} command: wall {wall:5.2f} s, CPU {cpu:5.2f} s"
            f"   runner: {' '.join(sweep.split())}"
        )


def main() -> None:
    rng = np.random.default_rng(0)
    system = system_32(rng)
    T, k, d_z = 4, 2, 4
    spec = LAMSpec(d_z, horizon=k, context=T)

    def window():
        return system.transition(k, T)

    def moments():
        t = window()
        t.second_moment(("obs", "next_obs"))
        return t

    solved = solve(system, spec)
    rows = [
        ("window transition (T=4, k=2)", timed(window)),
        ("+ moments of [obs; next_obs]", timed(moments)),
        ("solve() on a fresh window (A learned, d_z = 4)", timed(lambda: solve(system, spec))),
        (
            "solve() + all probes (4 targets x 2 representations, ranges)",
            timed(lambda: all_probes(solve(system, spec))),
        ),
        ("exogenous loading over the family (solved)", timed(lambda: loading_over_family(solved))),
        ("latent consistency over the family (solved)", timed(lambda: consistency_over_family(solved))),
        ("capture conditions (solved)", timed(lambda: capture_conditions(solved))),
        (
            "the whole lamproof solve JSON (solve + everything above)",
            timed(lambda: solution_to_dict(solve(system, spec))),
        ),
        (
            "the same with A = I (identity FDM path)",
            timed(lambda: solution_to_dict(solve(system, LAMSpec(d_z, "identity", horizon=k, context=T)))),
        ),
        ("stationary system construction (Lyapunov)", timed(lambda: system_32(np.random.default_rng(0)))),
    ]
    print(f"n = d_o = 32, d_a = 4, 8 exogenous coordinates (load average {os.getloadavg()[0]:.1f})")
    for name, (median, best, cpu) in rows:
        print(f"  {name:<64s} median {median:7.2f} ms   best {best:7.2f} ms   best CPU {cpu:7.2f} ms")
    print("\nthe exo study (486 configurations, 2 workers)")
    reproduce_exo()

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
        ratio = (
            ""
            if previous is None
            else f"   per frame {(error / previous[1]) ** (1 / (T_ - previous[0])):.4f}"
        )
        print(f"  T = {T_:2d}   relative error {error:.3e}{ratio}")
        previous = (T_, error)


if __name__ == "__main__":
    with single_threaded_blas():
        main()
