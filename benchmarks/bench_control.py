"""Timing of lamproof.control: numeric at d_o = 128 (d_a = 8), exact (SymPy) for d_o <= 6.

Targets (issue 4): Kalman matrix + Gramian at d_o = 128 <= 50 ms; exact StateSpace checks for
d_o <= 6 <= 2 s. Run ``python benchmarks/bench_control.py``; BLAS threads are whatever the
environment sets (``OPENBLAS_NUM_THREADS``): on a small, busy machine one thread is faster.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import sympy

from lamproof import control
from lamproof.systems import paper_system

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


def cayley(n: int, rng: np.random.Generator) -> sympy.Matrix:
    """A rational orthogonal matrix ``(I − S)(I + S)⁻¹`` (docs/theory.md §17)."""
    S = sympy.zeros(n, n)
    for i in range(n):
        for j in range(i + 1, n):
            value = sympy.Rational(int(rng.integers(-3, 4)), 2)
            S[i, j], S[j, i] = value, -value
    return (sympy.eye(n) - S) * (sympy.eye(n) + S).inv()


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []

    # Numeric, d_o = 128, d_a = 8: the paper's system with policy feedback (F_cl = I + χ G P).
    system = paper_system(128, 8, noise="isotropic", sigma=0.5, chi=0.5, seed=0)
    F_cl, B = control.control_pair(system)
    Q = B @ B.T
    n = system.d_o
    stable = rng.standard_normal((n, n))
    stable *= 0.95 / control.spectral_radius(stable)
    target = 50.0
    numeric = [
        ("kalman_matrix (128 steps)", lambda: control.kalman_matrix(F_cl, B), None),
        ("gramian W_128", lambda: control.gramian(F_cl, Q, n), None),
        (
            "kalman_matrix + gramian",
            lambda: (control.kalman_matrix(F_cl, B), control.gramian(F_cl, Q, n)),
            target,
        ),
        (
            "action_gramian + noise_gramian (k=128)",
            lambda: (control.action_gramian(system, n), control.noise_gramian(system, n)),
            target,
        ),
        ("kalman_rank", lambda: control.kalman_rank(F_cl, B), None),
        ("controllable_subspace", lambda: control.controllable_subspace(F_cl, B), None),
        ("infinite_gramian (stable F)", lambda: control.infinite_gramian(stable, Q), None),
        ("pbh_test (128 SVDs)", lambda: control.pbh_test(F_cl, B), None),
    ]
    for name, call, limit in numeric:
        median, best = timed(call, repeats=3 if name.startswith("pbh") else REPEATS)
        rows.append((f"d_o=128 d_a=8  {name}", median, best, limit))

    # Exact: Cayley-orthogonal F (scaled 4/5) and an integer B with d_a = 2, d_o = 2 … 6.
    for d_o in range(2, 7):
        F = sympy.Rational(4, 5) * cayley(d_o, rng)
        Bx = sympy.Matrix(rng.integers(-1, 2, (d_o, 2)).tolist())

        def exact_checks(F=F, Bx=Bx, d_o=d_o):
            control.exact_kalman_matrix(F, Bx)
            control.exact_kalman_rank(F, Bx)
            control.exact_is_controllable(F, Bx)
            control.exact_gramian(F, Bx * Bx.T, d_o)

        median, best = timed(exact_checks, repeats=3)
        rows.append((f"exact d_o={d_o} d_a=2  Kalman+rank+is_controllable+W_n", median, best, 2000.0))

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"lamproof.control timings (OPENBLAS_NUM_THREADS={threads}, {os.cpu_count()} CPUs)")
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median ms':>10}  {'best ms':>9}  {'target ms':>9}  ok")
    for name, median, best, limit in rows:
        verdict = "" if limit is None else ("yes" if median <= limit else "NO")
        shown = "" if limit is None else f"{limit:.0f}"
        print(f"{name:<{width}}  {median:>10.2f}  {best:>9.2f}  {shown:>9}  {verdict}")


if __name__ == "__main__":
    main()
