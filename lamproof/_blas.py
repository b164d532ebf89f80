"""Single-threaded BLAS for in-process sweeps and checks.

lamproof's matrices are small (≤ 2·d_o); multi-threaded OpenBLAS gains nothing on them and, on a
busy 2-core machine, its spinning threads make every call orders of magnitude slower (a
16-configuration §4.1 sweep: 0.46 s single-threaded, 27 s with default threads at load 10).
"""

from __future__ import annotations

from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def single_threaded_blas():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
