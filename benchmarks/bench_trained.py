"""Estimate the wall time of ``lamproof reproduce all --mode trained`` at the paper's step counts.

    python benchmarks/bench_trained.py [--steps 320] [--rounds 2] [--workers 2]

A full trained reproduction is 871 configurations and 28.4 M configuration-steps (hours on this
machine), so it is not run here. Instead, for every trained study, the runner's first training
group (a d_z sweep sharing one system, trained as one computation by ``train_together``) is
trained for ``--steps`` steps exactly as ``reproduce`` trains it, and its trained parameters are
scored once. The cost of a group is then extrapolated to the study's step count, and the groups
of all studies are scheduled on ``--workers`` processes as the runner schedules them (largest
first, each to the first free worker).

Per configuration-step the CPU time of this process is the honest number on a shared machine
(wall time there includes other people's processes): the estimate is given from both. Not
counted: start-up, the closed form that trained figures draw, and writing the outputs (seconds).
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time

# Small matrix products: on 2 shared cores, OpenBLAS's threads cost far more than they give.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from lamproof.numeric.trainer import Trainer, train_together
from lamproof.studies.definitions import STUDIES
from lamproof.studies.evaluate import score_parameters
from lamproof.studies.runner import training_groups


def trainable() -> list:
    return [s for s in STUDIES.values() if "trained" in getattr(s, "modes", ("trained",))]


def time_group(study, group, steps: int) -> tuple[float, float, float]:
    """CPU and wall seconds per configuration-step of one group, and CPU seconds to score a member."""
    trainers = [
        Trainer(study.system(c), study.spec(c), labeled_fraction=study.labeled_fraction(c)) for c in group
    ]
    train_together(trainers, 32)  # warm-up: one block of minibatches drawn and used
    wall, cpu = time.perf_counter(), time.process_time()
    train_together(trainers, steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    score = time.process_time()
    score_parameters(study, group[0], trainers[0].params, steps=study.steps)
    return cpu / (steps * len(group)), wall / (steps * len(group)), time.process_time() - score


def makespan(durations: list[float], workers: int) -> float:
    """Largest first, each to the first free worker: the runner's schedule."""
    free = [0.0] * workers
    for d in sorted(durations, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=320, help="timed steps per group (multiple of 32)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    studies = trainable()
    for r in range(1, args.rounds + 1):
        print(
            f"round {r}: {args.steps} steps of one group per study, {args.workers} workers, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'study':6s} {'configs':>7s} {'steps':>6s} {'groups':>6s} {'M cfg-steps':>11s} {'cpu µs':>7s} "
            f"{'wall µs':>8s} {'steps/s/cfg':>11s} {'score s':>8s} {'est. cpu min':>12s}"
        )
        durations_cpu, durations_wall, total_cpu, total_steps = [], [], 0.0, 0
        for study in studies:
            groups = training_groups(study, study.configs())
            cpu, wall, score = time_group(study, groups[0], args.steps)
            config_steps = sum(len(g) for g in groups) * study.steps
            total_steps += config_steps
            study_cpu = config_steps * cpu + score * sum(len(g) for g in groups)
            total_cpu += study_cpu
            durations_cpu += [len(g) * (study.steps * cpu + score) for g in groups]
            durations_wall += [len(g) * (study.steps * wall + score) for g in groups]
            print(
                f"§{study.name:5s} {sum(len(g) for g in groups):7d} {study.steps:6d} {len(groups):6d} "
                f"{config_steps / 1e6:11.2f} {1e6 * cpu:7.0f} {1e6 * wall:8.0f} {1 / cpu:11.0f} {score:8.3f} "
                f"{study_cpu / 60:12.1f}"
            )
        print(
            f"all: {total_steps / 1e6:.1f} M configuration-steps, {total_cpu / 60:.0f} min of CPU; "
            f"estimated wall on {args.workers} idle cores {makespan(durations_cpu, args.workers) / 60:.0f} min "
            f"(from CPU time), {makespan(durations_wall, args.workers) / 60:.0f} min at this round's load "
            f"(from wall time); target 30 min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
