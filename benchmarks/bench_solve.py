"""Time the closed-form solve with all probes (issue: ≤ 5 ms at d_o = 128, ≤ 1 s at d_o = 1024).

Run: python benchmarks/bench_solve.py   (single-threaded BLAS, as the CLI uses)
The system is the paper's §4.2 (isotropic noise σ = 0.5, d_a = 8) at d_z = 8; the study
itself costs the authors 94 s per configuration (10 000 Adam steps plus probes).
"""

from __future__ import annotations

import statistics
import time

from lamproof import LAMSpec, all_probes, paper_system, solve


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from lamproof._blas import single_threaded_blas

    with single_threaded_blas():  # as the CLI runs it
        _table()


def _table() -> None:
    print(f"{'d_o':>5} {'d_z':>4} {'variant':>22} {'median':>10}")
    for d_o, repeats in [(128, 50), (1024, 5)]:
        for dz, variant, kwargs in [
            (8, "learned/free", {}),
            (4, "learned/free (tie)", {}),
            (8, "identity FDM", {"fdm_obs_path": "identity"}),
            (8, "augmented s=0.1", {"augmentation": 0.1}),
        ]:
            system = paper_system(d_o, 8, noise="isotropic", sigma=0.5, seed=0)
            spec = LAMSpec(dz, **kwargs)
            all_probes(solve(system, spec))  # warm-up
            seconds = median_time(lambda system=system, spec=spec: all_probes(solve(system, spec)), repeats)
            print(f"{d_o:>5} {dz:>4} {variant:>22} {seconds * 1e3:>8.1f} ms")


if __name__ == "__main__":
    main()
