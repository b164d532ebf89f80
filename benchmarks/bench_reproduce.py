"""Time ``lamproof reproduce all --mode closed-form``: per study, per configuration, against the
authors' 94 s per §4.2 configuration (docs/theory.md §1.4).

    python benchmarks/bench_reproduce.py            # the whole command, figures included
    python benchmarks/bench_reproduce.py --no-plot  # sweeps and tables only

Prints wall time (what the ≤ 10 s budget is about) and the CPU time of parent and workers (the
honest number on a shared machine: wall time there includes other people's processes).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

from lamproof.studies import AUTHORS_SECONDS_PER_CONFIG, reproduce


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        report = reproduce("all", out=out, plot=not args.no_plot, workers=args.workers, stream=sys.stderr)
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    configs = sum(len(r.frame) for r in report.results)
    print(
        f"{'study':6s} {'configs':>7s} {'ms/config':>14s} {'vs 94 s':>10s}   (per-configuration time measured inside the workers)"
    )
    for r in report.results:
        per = sum(r.config_seconds) / len(r.config_seconds)
        print(
            f"§{r.study.name:5s} {len(r.frame):7d} {1e3 * per:14.2f} {AUTHORS_SECONDS_PER_CONFIG / per:9.0f}x"
        )
    print(
        f"all: {configs} configurations, wall {wall:.2f} s, cpu {cpu:.2f} s (parent + workers), "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"wall per configuration {1e3 * wall / configs:.2f} ms: {AUTHORS_SECONDS_PER_CONFIG * configs / wall:.0f}x "
        f"faster than the authors' 94 s per configuration"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
