"""Time the closed-form solve with all probes against one dense ``eigh`` of the same size (issue 13:
≤ 2× one ``eigh`` at d_o = 128 and 1024, for every variant).

Run: python benchmarks/bench_solve.py            (single-threaded BLAS, as the CLI uses)
     python benchmarks/bench_solve.py --sizes 128 (d_o = 128 only)

The system is the paper's §4.2 (isotropic noise σ = 0.5, d_a = 8); the study itself costs the
authors 94 s per configuration (10 000 Adam steps plus probes). Each row is a fresh system (no
cache shared with another row), the median of ``repeats`` runs of ``all_probes(solve(...))`` on
one system (the transition's moments are cached after the first run, as in a d_z sweep; the
first, cold run is printed too). The reference is ``numpy.linalg.eigh`` of a random symmetric
d_o × d_o matrix in the same process, timed the same way. Both CPU time (``time.process_time``:
what this process got on a shared machine) and wall time are printed; the ratio uses CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lamproof import LAMSpec, all_probes, paper_system, solve
from lamproof.numeric.probes import forget_probe_errors

VARIANTS = [
    (8, "learned/free", {}),
    (4, "learned/free (tie)", {}),
    (8, "identity FDM", {"fdm_obs_path": "identity"}),
    (8, "augmented s=0.1", {"augmentation": 0.1}),
    (8, "action head λ=1", {"action_loss_weight": 1.0}),
]


def median_times(function, repeats: int) -> tuple[float, float]:
    """Median CPU and wall seconds of ``function()``."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        function()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def _fresh(function, *args):
    """``function(*args)`` with the probes' memory of scored features emptied first: a repeat then
    costs what a new configuration of a sweep does (its features are new), not a look-up."""
    forget_probe_errors()
    return function(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 1024])
    args = parser.parse_args()
    from lamproof._blas import single_threaded_blas

    with single_threaded_blas():  # as the CLI runs it
        _table(args.sizes)


def _table(sizes: list[int]) -> None:
    print(
        f"{'d_o':>5} {'d_z':>4} {'variant':>20} {'cold cpu':>10} {'cpu':>10} {'wall':>10} {'eigh cpu':>10} "
        f"{'ratio':>7}"
    )
    for d_o in sizes:
        repeats = 30 if d_o <= 256 else 3
        A = np.random.default_rng(0).standard_normal((d_o, d_o))
        A = A + A.T
        np.linalg.eigh(A)  # warm-up
        eigh_cpu, _ = median_times(lambda A=A: np.linalg.eigh(A), repeats)
        for dz, variant, kwargs in VARIANTS:
            system = paper_system(d_o, 8, noise="isotropic", sigma=0.5, seed=0)
            spec = LAMSpec(dz, **kwargs)
            c0 = time.process_time()
            all_probes(solve(system, spec))  # cold: builds and caches the transition's moments
            cold = time.process_time() - c0
            transition = system.transition(spec.horizon)
            solve(system, spec, transition=transition)  # warm the shared transition's caches
            cpu, wall = median_times(
                lambda system=system, spec=spec, t=transition: _fresh(
                    all_probes, solve(system, spec, transition=t)
                ),
                repeats,
            )
            print(
                f"{d_o:>5} {dz:>4} {variant:>20} {cold * 1e3:>8.1f}ms {cpu * 1e3:>8.1f}ms {wall * 1e3:>8.1f}ms "
                f"{eigh_cpu * 1e3:>8.1f}ms {cpu / eigh_cpu:>6.1f}x"
            )


if __name__ == "__main__":
    main()
