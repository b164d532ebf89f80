"""Time and peak memory at scale (issue 13, part 4).

Run: python benchmarks/bench_scale.py            (single-threaded BLAS, as the CLI uses)
     python benchmarks/bench_scale.py --no-dense  (only the low-rank cases: seconds, not minutes)

Two targets:

- a paper-form system at ``d_o = 100 000`` (``LowRankSystem.paper``), solved through its low-rank
  structure with every probe (proved ranges) and the capture conditions: ≤ 1 s;
- a dense ``d_o = 4096`` system (``paper_system``, the §4.2 setup), ``solve`` plus ``all_probes``:
  ≤ 30 s and ≤ 2 GB. The input boundary refuses ``d_o > MAX_DIM`` (see ``lamproof/_validation.py``),
  so this case lifts that bound inside its own process to measure what the solver costs.

Each case runs in a fresh process, so ``peak RSS`` (``ru_maxrss``) is that case's own high-water
mark, interpreter and libraries included (``baseline``: the same process before the solve).
``traced peak`` is the largest memory NumPy and Python held during one solve (``tracemalloc``).
Times are medians of repeated runs (one run for the dense case); ``solve`` excludes drawing the
system (``build``: the paper's QR of a Gaussian ``d_o × (d_a + …)`` matrix).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

LOW_RANK_CASES = {
    "§4.2 isotropic σ=0.5, d_a=8, d_z=8": ({"noise": "isotropic", "sigma": 0.5}, {"d_z": 8}),
    "§4.2 tie: d_z=16 > d_a=8": ({"noise": "isotropic", "sigma": 0.5}, {"d_z": 16}),
    "§4.3 structured σ=2, 8 dims, d_z=12": (
        {"noise": "structured", "sigma": 2.0, "noise_dim": 8},
        {"d_z": 12},
    ),
    "§5 policy χ=0.5, identity FDM": ({"chi": 0.5}, {"d_z": 8, "fdm_obs_path": "identity"}),
    "§7 action head λ=1.5": (
        {"noise": "structured", "sigma": 2.0, "noise_dim": 8},
        {"d_z": 8, "action_loss_weight": 1.5},
    ),
}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _run_low_rank(name: str, d_o: int, repeats: int) -> dict:
    import tracemalloc

    from lamproof import LAMSpec, LowRankSystem, solve

    system_kw, spec_kw = LOW_RANK_CASES[name]
    spec = LAMSpec(**spec_kw)

    def once():
        start = time.perf_counter()
        system = LowRankSystem.paper(d_o, 8, **system_kw)
        built, cpu = time.perf_counter(), time.process_time()
        solution = solve(system, spec)
        solution.all_probes()
        solution.conditions()
        return solution, built - start, time.perf_counter() - built, time.process_time() - cpu

    baseline = _peak_rss_mb()
    runs = [once() for _ in range(repeats)]
    rss = _peak_rss_mb()
    tracemalloc.start()
    once()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    solution = runs[0][0]
    return {
        "build": statistics.median(r[1] for r in runs),
        "seconds": statistics.median(r[2] for r in runs),
        "cpu": statistics.median(r[3] for r in runs),
        "peak_rss_mb": rss,
        "baseline_mb": baseline,
        "traced_mb": traced,
        "reduced_dim": solution.basis.shape[1] + solution.extra,
    }


def _run_dense(d_o: int) -> dict:
    import lamproof.systems as systems

    systems.MAX_DIM, systems.MAX_SOURCES = d_o, 3 * d_o  # lift the input bound for this process only
    from lamproof import LAMSpec, all_probes, paper_system, solve

    system = paper_system(d_o, 8, noise="isotropic", sigma=0.5, seed=0)
    baseline = _peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    all_probes(solve(system, LAMSpec(8)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "peak_rss_mb": _peak_rss_mb(), "baseline_mb": baseline}


def _child(args) -> None:
    from lamproof._blas import single_threaded_blas

    with single_threaded_blas():  # as the CLI runs it
        if args.case == "dense":
            out = _run_dense(args.d_o)
        else:
            out = _run_low_rank(args.case, args.d_o, args.repeats)
    print(json.dumps(out))


def _spawn(case: str, d_o: int, repeats: int = 1) -> dict:
    command = [sys.executable, __file__, "--child", case, "--d-o", str(d_o), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", dest="case")
    parser.add_argument("--d-o", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--dense-d-o", type=int, default=4096)
    args = parser.parse_args()
    if args.case:
        _child(args)
        return
    print("solve: solve + all probes + conditions, wall (CPU); build: drawing the system (the paper's QR)")
    print(f"{'case':<46} {'d_o':>7} {'solve':>18} {'build':>9} {'peak RSS':>9} {'baseline':>9} {'traced':>9}")
    for name in LOW_RANK_CASES:
        r = _spawn(name, args.d_o, args.repeats)
        print(
            f"{'low rank: ' + name:<46} {args.d_o:>7} {r['seconds']:>7.3f} s ({r['cpu']:.3f} s) "
            f"{r['build']:>7.3f} s {r['peak_rss_mb']:>6.0f} MB {r['baseline_mb']:>6.0f} MB {r['traced_mb']:>6.0f} MB"
            f"   (solved on {r['reduced_dim']} dims)",
            flush=True,
        )
    if not args.no_dense:
        r = _spawn("dense", args.dense_d_o)
        print(
            f"{'dense: §4.2 isotropic σ=0.5, d_a=8, d_z=8':<46} {args.dense_d_o:>7} {r['seconds']:>7.1f} s "
            f"({r['cpu']:.1f} s) {'':>9} {r['peak_rss_mb']:>6.0f} MB {r['baseline_mb']:>6.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
