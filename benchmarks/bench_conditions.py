"""capture_conditions at d_o = 128 against the solve it annotates (run with OPENBLAS_NUM_THREADS=1)."""
import time, numpy as np
from lamproof.systems import paper_system
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.conditions import capture_conditions
def best(f, n=20):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return 1e3*np.median(ts)
for label, kw, k in [("4.3 structured σ=1.5", dict(noise="structured", sigma=1.5), 1),
                     ("4.2 isotropic σ=0.5", dict(noise="isotropic", sigma=0.5), 1),
                     ("5 policy χ=0.5", dict(chi=0.5), 1),
                     ("4.3 structured, k=4", dict(noise="structured", sigma=1.5), 4)]:
    s = paper_system(128, 8, **kw); spec = LAMSpec(8, horizon=k)
    sol = solve(s, spec)
    print(f"{label:24s} solve {best(lambda: solve(s, spec)):6.1f} ms   capture_conditions {best(lambda: capture_conditions(sol)):5.1f} ms")
