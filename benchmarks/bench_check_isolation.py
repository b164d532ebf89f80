"""What isolating each claim in a child process costs `lamproof check --builtin`.

    python benchmarks/bench_check_isolation.py              # builtin registry, 50 examples, 2 rounds
    python benchmarks/bench_check_isolation.py --rounds 3

Times the same claims checked in this process (``check_all``, the former behaviour) and in a
forked child with a deadline (``check_isolated``, what ``lamproof check`` runs now), alternating,
so that load from other processes hits both alike. CPU time includes the children's. The two
must give the same verdicts.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from lamproof._blas import single_threaded_blas
from lamproof.claims import builtin_claims, check_all
from lamproof.claims.isolation import check_isolated


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run):
    wall, spent = time.perf_counter(), cpu()
    results = run()
    return time.perf_counter() - wall, cpu() - spent, [(r.name, r.verdict) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    claims = builtin_claims()
    print(f"{len(claims)} builtin claims, {args.examples} examples, load average {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5s} {'how':12s} {'wall s':>8s} {'cpu s':>8s}")
    verdicts = {}
    with single_threaded_blas():
        for i in range(args.rounds):
            for how, run in (
                ("in-process", lambda: check_all(claims, examples=args.examples)),
                ("isolated", lambda: check_isolated(claims, examples=args.examples)),
            ):
                wall, spent, verdicts[how] = timed(run)
                print(f"{i + 1:5d} {how:12s} {wall:8.2f} {spent:8.2f}", flush=True)
    assert verdicts["in-process"] == verdicts["isolated"], "isolation changed a verdict"


if __name__ == "__main__":
    main()
