"""capture_conditions at d_o = 128 against the solve it annotates (run with OPENBLAS_NUM_THREADS=1)."""

import time

import numpy as np

from lamproof.conditions import capture_conditions
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.systems import paper_system


def best(f, *args, n=20):
    """Median wall time of ``f(*args)`` in milliseconds."""
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f(*args)
        ts.append(time.perf_counter() - t)
    return 1e3 * np.median(ts)


for label, kw, k in [
    ("4.3 structured σ=1.5", dict(noise="structured", sigma=1.5), 1),
    ("4.2 isotropic σ=0.5", dict(noise="isotropic", sigma=0.5), 1),
    ("5 policy χ=0.5", dict(chi=0.5), 1),
    ("4.3 structured, k=4", dict(noise="structured", sigma=1.5), 4),
]:
    s = paper_system(128, 8, **kw)
    spec = LAMSpec(8, horizon=k)
    sol = solve(s, spec)
    print(
        f"{label:24s} solve {best(solve, s, spec):6.1f} ms   "
        f"capture_conditions {best(capture_conditions, sol):5.1f} ms"
    )
