"""Steps per second of the NumPy trainer in the paper's §4.2 setting, and of PyTorch if installed.

    python benchmarks/bench_trainer.py [--steps 2000] [--full]

d_o = 128, d_a = 8, d_z = 8, batch 128, isotropic noise σ = 0.5, Adam defaults, MSE loss.
``--full`` also times 10 000 steps, the paper's §4.2 training length (their 94 s include probes).
The PyTorch loop is the authors' (bias-free nn.Linear IDM on cat[o, o'], FDM on cat[o, z]); it
is timed only when ``import torch`` works and is not a dependency of lamproof.
"""

from __future__ import annotations

import argparse
import os
import time

# Small matrix products: on 2 shared cores, OpenBLAS's threads cost far more than they give
# (measured 10x slower per step under load). Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lamproof.lam import LAMSpec  # noqa: E402
from lamproof.numeric.trainer import SAMPLE_BLOCK, Trainer  # noqa: E402
from lamproof.systems import paper_system  # noqa: E402


def time_numpy(steps: int) -> float:
    system = paper_system(noise="isotropic", sigma=0.5)
    trainer = Trainer(system, LAMSpec(d_z=8), seed=0)
    trainer.run(50)  # warm-up
    start = time.perf_counter()
    trainer.run(steps)
    return time.perf_counter() - start


def time_torch(steps: int, dtype: str) -> float | None:
    """The same loop in PyTorch, with data drawn in blocks exactly as the NumPy trainer does."""
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

    for _ in range(50):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--full", action="store_true", help="also time 10 000 NumPy steps")
    args = parser.parse_args()
    rows = [("numpy (float64)", args.steps, time_numpy(args.steps))]
    torch_time = None
    for dtype in ("float64", "float32"):
        torch_time = time_torch(args.steps, dtype)
        if torch_time is not None:
            rows.append((f"torch CPU ({dtype})", args.steps, torch_time))
    if args.full:
        rows.append(("numpy (float64)", 10_000, time_numpy(10_000)))
    print(f"{'trainer':<22}{'steps':>8}{'seconds':>10}{'steps/s':>10}")
    for name, steps, seconds in rows:
        print(f"{name:<22}{steps:>8}{seconds:>10.2f}{steps / seconds:>10.0f}")
    print(f"(BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; data drawn {SAMPLE_BLOCK} batches per sample call)")
    if torch_time is None:
        print("(torch not installed: PyTorch loop skipped)")


if __name__ == "__main__":
    main()
