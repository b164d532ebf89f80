"""Steps per second per configuration of the NumPy trainer on the paper's §4.2 loop, against PyTorch.

    python benchmarks/bench_trainer.py [--steps 1000] [--rounds 2] [--full]

The §4.2 sweep at one noise level: d_o = 128, d_a = 8, isotropic noise σ = 0.5, d_z = 2, 4, …, 16,
batch 128, Adam defaults, MSE loss. Timed in one process, round after round (the machine is
shared: compare numbers of the same round):

- ``numpy batched``: the eight configurations as one computation (``train_together``), the way
  ``lamproof reproduce --mode trained`` runs a sweep; per configuration-step, in total and (the
  row below it) the CPU time of the fastest tenth of the run, the least disturbed by other jobs;
- ``numpy alone``: one configuration (d_z = 8) by itself;
- ``torch``: the authors' loop (bias-free ``nn.Linear`` IDM on cat[o, o'], FDM on cat[o, z]), one
  configuration (d_z = 8), float64 and float32, with data drawn in blocks as the NumPy trainer does
  (timed only when ``import torch`` works; not a dependency of lamproof).

Prints wall and CPU time per configuration-step, steps per second per configuration (from wall
and from CPU time: on a shared machine the CPU time is the honest one), the ratio to PyTorch
(measured in the same round, or else the recorded :data:`TORCH_RECORDED` against CPU steps/s), and the peak memory (resident set) of the process. ``--full`` also times the
paper's 10 000 steps of the whole batch.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

# Small matrix products: on 2 shared cores, OpenBLAS's threads cost far more than they give
# (measured 10x slower per step under load). Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from lamproof.lam import LAMSpec
from lamproof.numeric.trainer import SAMPLE_BLOCK, Trainer, train_together
from lamproof.systems import paper_system

SWEEP = tuple(range(2, 17, 2))

#: PyTorch 2.13 CPU on this loop, one configuration, steps/s, as recorded in the README when torch
#: was installed; the ratios fall back to these when ``import torch`` fails.
TORCH_RECORDED = {"float32": 748.0, "float64": 577.0}


def _timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


#: The batched run is timed in this many chunks: besides the total, the least disturbed chunk's CPU
#: time (the others' jobs inflate CPU time too, through the shared caches), as ``timeit`` reports.
CHUNKS = 10


def time_batched(steps: int) -> tuple[float, float, float]:
    """Per configuration-step, the §4.2 sweep at σ = 0.5 trained as one computation: wall, CPU, and
    the CPU time of the fastest of :data:`CHUNKS` chunks."""
    system = paper_system(noise="isotropic", sigma=0.5)
    trainers = [Trainer(system, LAMSpec(d_z=d), seed=0) for d in SWEEP]
    train_together(trainers, 50)  # warm-up
    # whole blocks of minibatches, so that every chunk draws as many (and the fastest is no luckier)
    chunk = SAMPLE_BLOCK * max(1, steps // (CHUNKS * SAMPLE_BLOCK))
    times = [_timed(lambda: train_together(trainers, chunk)) for _ in range(CHUNKS)]
    scale = chunk * len(SWEEP)
    wall, cpu = sum(t[0] for t in times), sum(t[1] for t in times)
    return wall / (CHUNKS * scale), cpu / (CHUNKS * scale), min(t[1] for t in times) / scale


def time_alone(steps: int) -> tuple[float, float]:
    system = paper_system(noise="isotropic", sigma=0.5)
    trainer = Trainer(system, LAMSpec(d_z=8), seed=0)
    trainer.run(50)
    wall, cpu = _timed(lambda: trainer.run(steps))
    return wall / steps, cpu / steps


def time_torch(steps: int, dtype: str) -> tuple[float, float] | None:
    """The authors' loop in PyTorch, with data drawn in blocks exactly as the NumPy trainer does."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(0)
    torch_dtype = getattr(torch, dtype)
    system = paper_system(noise="isotropic", sigma=0.5)
    transition = system.transition(1)
    rng = np.random.default_rng(0)
    d_o, d_z = system.d_o, 8
    idm = torch.nn.Linear(2 * d_o, d_z, bias=False).to(torch_dtype)
    fdm = torch.nn.Linear(d_o + d_z, d_o, bias=False).to(torch_dtype)
    optimizer = torch.optim.Adam(list(idm.parameters()) + list(fdm.parameters()))
    loss_fn = torch.nn.MSELoss()

    blocks = []

    def step():
        if not blocks:
            data = transition.sample(128 * SAMPLE_BLOCK, rng)
            o_all = torch.from_numpy(data["obs"]).to(torch_dtype)
            next_all = torch.from_numpy(data["next_obs"]).to(torch_dtype)
            blocks.extend(zip(o_all.split(128)[::-1], next_all.split(128)[::-1], strict=True))
        o, o_next = blocks.pop()
        z = idm(torch.cat([o, o_next], dim=1))
        loss = loss_fn(fdm(torch.cat([o, z], dim=1)), o_next)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def run():
        for _ in range(steps):
            step()

    for _ in range(50):
        step()
    wall, cpu = _timed(run)
    return wall / steps, cpu / steps


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time 10 000 steps of the batch")
    args = parser.parse_args()
    print(
        f"{'round':>5} {'trainer':<26}{'wall µs/step':>14}{'cpu µs/step':>13}{'steps/s':>9}{'cpu steps/s':>12}"
        f"{'vs torch32':>11}{'vs torch64':>11}"
    )
    for r in range(1, args.rounds + 1):
        wall, cpu, best = time_batched(args.steps)
        rows = [
            ("numpy batched (8 configs)", (wall, cpu)),
            ("  fastest chunk, cpu", (best, best)),
            ("numpy alone (d_z = 8)", time_alone(args.steps)),
        ]
        torch_times = {}
        for dtype in ("float32", "float64"):
            found = time_torch(args.steps, dtype)
            if found is not None:
                torch_times[dtype] = found
                rows.append((f"torch CPU {dtype}", found))
        for name, (wall, cpu) in rows:
            if torch_times:  # same round, same clock
                ratios = "".join(
                    f"{torch_times[d][0] / wall:10.2f}x" if d in torch_times else f"{'-':>11}"
                    for d in ("float32", "float64")
                )
            else:  # the recorded PyTorch numbers against this process's CPU time
                ratios = "".join(f"{1 / (cpu * TORCH_RECORDED[d]):10.2f}x" for d in ("float32", "float64"))
            print(
                f"{r:>5} {name:<26}{1e6 * wall:14.0f}{1e6 * cpu:13.0f}{1 / wall:9.0f}{1 / cpu:12.0f}{ratios}"
            )
        print(f"      load average {os.getloadavg()[0]:.1f}; peak memory {peak_mb():.0f} MB")
    if not torch_times:
        print(
            f"torch not installed: ratios are CPU steps/s against the recorded PyTorch {TORCH_RECORDED['float32']:.0f} "
            f"(float32) and {TORCH_RECORDED['float64']:.0f} (float64) steps/s"
        )
    if args.full:
        system = paper_system(noise="isotropic", sigma=0.5)
        trainers = [Trainer(system, LAMSpec(d_z=d), seed=0) for d in SWEEP]
        wall, cpu = _timed(lambda: train_together(trainers, 10_000))
        print(
            f"10 000 steps of the 8-configuration batch: {wall:.1f} s wall, {cpu:.1f} s cpu "
            f"({wall / len(SWEEP):.1f} s per configuration; the authors: 94 s with probes)"
        )
    print(
        f"(BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; data drawn {SAMPLE_BLOCK} batches per sample call)"
    )


if __name__ == "__main__":
    main()
