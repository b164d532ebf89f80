"""Population dynamics: seconds for the paper's §4.2 run, cost per step, and reproduce all.

    python benchmarks/bench_dynamics.py [--steps 10000] [--repeat 2] [--full]

1. Population Adam for ``--steps`` steps on the §4.2 system (``paper_system(128, 8,
   noise="isotropic", sigma=0.5)``, d_z = 8, torch init): wall and CPU seconds, ``--repeat`` times
   (the machine is shared: the best run is the one to quote, all are printed).
2. A batched d_z sweep (d_z = 1…8 and 9…16 in one run each): microseconds per configuration-step.
3. The stochastic trainer for the same steps, for the ratio.
4. The estimate for ``lamproof reproduce all --mode dynamics``: every batch of every study (cut as
   the command cuts them; ``--sample N``: N per study) runs ``--probe-steps`` steps in one of two
   worker processes at once, as in the command; CPU time per configuration-step times the study's
   configuration-steps, over 2 workers. CPU time, because the machine is shared.
5. ``--full``: that command into a temporary folder (2 workers), wall and CPU time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from lamproof.lam import LAMSpec
from lamproof.numeric.dynamics import (
    DynamicsSettings,
    initial_parameters,
    population_dynamics,
    run_batch,
)
from lamproof.numeric.trainer import Trainer
from lamproof.studies import STUDIES
from lamproof.studies.evaluate import dynamics_groups
from lamproof.studies.runner import DYNAMICS_BATCH
from lamproof.systems import paper_system


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def batch_cpu(task: tuple[str, int, int]) -> tuple[float, int]:
    """CPU seconds of ``steps`` population-Adam steps of batch ``index`` of a study, after a warm-up
    step (set-up and kernel loading), and its configuration-steps; run in a worker process."""
    name, index, steps = task
    study = STUDIES[name]
    group = dynamics_groups(study, study.configs(), DYNAMICS_BATCH)[index]
    system, specs = study.system(group[0]), [study.spec(c) for c in group]
    short = DynamicsSettings(steps=steps, record=[steps])
    starts = [initial_parameters(system, spec, short) for spec in specs]
    transition = system.transition(specs[0].horizon)
    run_batch(transition, specs, starts, short, records=(1,))
    _, cpu = timed(lambda: run_batch(transition, specs, starts, short, records=(steps,)))
    return cpu, steps * len(group)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--full", action="store_true")
    parser.add_argument(
        "--sample", type=int, default=0, help="batches timed per study for the estimate (0: all of them)"
    )
    parser.add_argument("--probe-steps", type=int, default=100, help="steps per timed batch")
    args = parser.parse_args()
    system = paper_system(128, 8, noise="isotropic", sigma=0.5)
    settings = DynamicsSettings(steps=args.steps, record=[0, args.steps])
    print(f"population Adam, §4.2 system (d_o = 128, d_a = 8, σ = 0.5), d_z = 8, {args.steps} steps")
    warm = DynamicsSettings(steps=10, record=[0, 10])
    wall, _ = timed(lambda: population_dynamics(system, LAMSpec(8), warm))
    print(f"  (first call, loading or compiling the kernels: {wall:.1f} s)")
    for _ in range(args.repeat):
        wall, cpu = timed(lambda: population_dynamics(system, LAMSpec(8), settings))
        print(f"  {wall:6.2f} s wall  {cpu:6.2f} s CPU  ({1e6 * wall / args.steps:.0f} µs/step)")
    for zs in (range(1, 9), range(9, 17)):
        specs = [LAMSpec(z) for z in zs]
        short = DynamicsSettings(steps=min(2000, args.steps), record=[min(2000, args.steps)])
        starts = [initial_parameters(system, spec, short) for spec in specs]
        wall, cpu = timed(
            lambda specs=specs, starts=starts, short=short: run_batch(
                system.transition(), specs, starts, short
            )
        )
        cost = wall / (short.steps * len(specs))
        print(
            f"batch d_z = {zs[0]}…{zs[-1]}: {1e6 * cost:.0f} µs per configuration-step wall "
            f"({1e6 * cpu / (short.steps * len(specs)):.0f} CPU)"
        )
    trainer_steps = min(2000, args.steps)
    trainer = Trainer(system, LAMSpec(8), seed=0)
    wall, _ = timed(lambda: trainer.run(trainer_steps))
    print(
        f"stochastic trainer (batch 128): {trainer_steps / wall:.0f} steps/s, i.e. {args.steps * wall / trainer_steps:.1f} s "
        f"for {args.steps} steps"
    )
    # the estimate: every study's batches as `reproduce --mode dynamics` cuts them (or a sample),
    # each run for a few steps in one of two workers at once, as the command runs them (they share
    # the L3 cache and the memory bandwidth: one process alone is ~25 % faster); CPU time per
    # configuration-step times the study's configuration-steps
    tasks = []
    for name, study in STUDIES.items():
        count = len(dynamics_groups(study, study.configs(), DYNAMICS_BATCH))
        stride = 1 if args.sample <= 0 else max(1, count // args.sample)
        tasks += [(name, i, args.probe_steps) for i in range(0, count, stride)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        timings = list(pool.map(batch_cpu, tasks))
    cpu_total, work = 0.0, 0
    for name, study in STUDIES.items():
        mine = [(cpu, steps) for (n, _, _), (cpu, steps) in zip(tasks, timings, strict=True) if n == name]
        seconds, steps = sum(c for c, _ in mine), sum(s for _, s in mine)
        study_work = len(study.configs()) * study.steps
        cpu_total, work = cpu_total + seconds / steps * study_work, work + study_work
        print(f"  §{name}: {1e6 * seconds / steps:.0f} µs CPU per configuration-step ({len(mine)} batches)")
    print(
        f"reproduce all --mode dynamics: {work / 1e6:.1f} M configuration-steps, {cpu_total / 60:.0f} min CPU; "
        f"estimate on 2 idle cores: {cpu_total / 2 / 60:.0f} min"
    )
    if args.full:
        with tempfile.TemporaryDirectory() as out:
            command = [
                sys.executable,
                "-m",
                "lamproof.cli",
                "reproduce",
                "all",
                "--mode",
                "dynamics",
                "--out",
                out,
                "--no-plot",
            ]
            start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            print(
                f"reproduce all --mode dynamics: {(time.perf_counter() - start) / 60:.1f} min wall, "
                f"{cpu / 60:.0f} min CPU (load average now {os.getloadavg()[0]:.1f})"
            )


if __name__ == "__main__":
    main()
