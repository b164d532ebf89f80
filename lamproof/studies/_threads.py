"""Single-threaded BLAS for in-process sweeps.

The studies' matrices are small (≤ 2·d_o = 256); multi-threaded OpenBLAS gains nothing on them
and, on a busy machine, its spinning threads make every call orders of magnitude slower (a
16-configuration §4.1 sweep: 0.46 s single-threaded, 27 s with default threads at load 10).
Uses ``threadpoolctl`` when installed, else OpenBLAS's own ``*_set_num_threads`` through ctypes;
does nothing if neither is found.
"""

from __future__ import annotations

import ctypes
import re
from contextlib import contextmanager


def _openblas_handles():
    try:
        with open("/proc/self/maps") as handle:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", handle.read())))
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    found.append((setter, getter))
                    break
            else:
                continue
            break
    return found


@contextmanager
def single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        return
    handles = _openblas_handles()
    saved = [(setter, getter()) for setter, getter in handles]
    for setter, _ in saved:
        setter(1)
    try:
        yield
    finally:
        for setter, count in saved:
            setter(count)
