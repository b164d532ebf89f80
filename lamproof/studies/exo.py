"""The ``exo`` study (issue 10): exogenous state against context, horizon and the FDM path.

Not yet a ``lamproof reproduce`` study: the columns that need the solved optimum (action probes,
and ranges of the consistency over the optimal family) wait on ``solve()`` for windows (phase 2).
What is computed here needs only the window's moments:

- ``loading``, ``loading_min``, ``loading_max``: the exogenous loading of every top-``d_z``
  eigenspace of the innovation (:func:`lamproof.exogenous.exogenous_loading_range`), i.e. of the
  plain LAM's optimum;
- ``consistency``: ``tr E[Var(z | a)]/tr Var(z)`` of the canonical clean latent ``z = Uᵀ v``;
- ``action_first`` and ``margin``: whether the controllable directions come first in the
  innovation, and by how much (:func:`lamproof.exogenous.action_first`).

The system (:func:`exo_system`) is an endogenous random walk ``s' = s + a`` (``d_a`` actions of unit
variance) beside an exogenous AR(1) ``x' = e x + η`` (``Var η = σ_η²``) of the same dimension,
observed through isotropic noise of variance ``τ²`` (so that a context can help: ``x`` is hidden).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from lamproof._validation import as_int, as_real
from lamproof.context import innovation
from lamproof.errors import InputError
from lamproof.exogenous import action_first, exogenous_loading_range, latent_consistency
from lamproof.numeric.linalg import top_eigenspace_of
from lamproof.statespace import StateSpaceSystem

__all__ = ["EXO_AXES", "EXO_COLUMNS", "WAITING_ON_SOLVE", "exo_system", "exo_row", "exo_table"]

#: The sweep: exogenous noise σ_η, persistence e, horizon k, context T, latent size d_z, FDM path.
EXO_AXES: Mapping[str, tuple] = {
    "sigma_eta": (0.5, 1.0, 1.5, 2.0),
    "persistence": (0.0, 0.5, 0.9),
    "horizon": (1, 2, 4),
    "context": (1, 2, 4),
    "dz": (1, 2, 3, 4),
    "fdm": ("learned", "identity"),
}
#: Result columns computed today.
EXO_COLUMNS = ("loading", "loading_min", "loading_max", "consistency", "action_first", "margin")
#: Result columns of the study that need ``solve()`` on windows (phase 2).
WAITING_ON_SOLVE = ("recon_loss", "act_mse", "act_mse_min", "act_mse_max", "consistency_min", "consistency_max")


def exo_system(sigma_eta: float, persistence: float, *, d_a: int = 2, obs_noise: float = 0.25) -> StateSpaceSystem:
    """The study's system (module docstring); the initial state has the stationary exogenous part."""
    sigma_eta = as_real(sigma_eta, "sigma_eta", minimum=0.0)
    e = as_real(persistence, "persistence", minimum=-1.0, maximum=1.0)
    if abs(e) >= 1.0:
        raise InputError(f"persistence: the exogenous AR(1) must be stationary, |e| < 1, got {persistence!r}")
    d_a = as_int(d_a, "d_a", minimum=1)
    tau2 = as_real(obs_noise, "obs_noise", minimum=0.0)
    n = 2 * d_a
    F = np.diag([1.0] * d_a + [e] * d_a)
    G = np.vstack([np.eye(d_a), np.zeros((d_a, d_a))])
    W = np.diag([0.0] * d_a + [sigma_eta**2] * d_a)
    cov0 = np.diag([1.0] * d_a + [sigma_eta**2 / (1 - e * e)] * d_a)
    return StateSpaceSystem(F, G, process_noise_cov=W, observation_noise_cov=tau2 * np.eye(n),
                            exogenous=list(range(d_a, n)), initial={"cov": cov0})


@lru_cache(maxsize=256)
def _window(sigma_eta: float, persistence: float, horizon: int, context: int):
    """The window of one point of the sweep; shared by its ``dz`` and ``fdm`` values, whose
    innovations the exogenous module caches on it."""
    return exo_system(sigma_eta, persistence).transition(horizon, context)


def exo_row(values: Mapping) -> dict:
    """One configuration (keys of :data:`EXO_AXES`) → its computed columns (:data:`EXO_COLUMNS`)."""
    t = _window(float(values["sigma_eta"]), float(values["persistence"]), int(values["horizon"]),
                int(values["context"]))
    path, d_z = values["fdm"], int(values["dz"])
    loading = exogenous_loading_range(t, d_z, path)
    inn = innovation(t, path)
    U = top_eigenspace_of(inn.operator, d_z).captured
    condition = action_first(t, path)
    return {
        **values,
        "loading": loading.value, "loading_min": loading.min, "loading_max": loading.max,
        "consistency": latent_consistency(t, U.T @ inn.map) if U.shape[1] else None,
        "action_first": condition.holds, "margin": condition.margin,
    }


def exo_table(axes: Mapping[str, tuple] | None = None):
    """The sweep as a pandas DataFrame (``axes`` overrides some of :data:`EXO_AXES`)."""
    import pandas as pd

    chosen = dict(EXO_AXES)
    if axes:
        unknown = sorted(set(axes) - set(EXO_AXES))
        if unknown:
            raise InputError(f"axes: unknown axis {unknown[0]!r} (known: {', '.join(EXO_AXES)})")
        chosen.update({k: tuple(v) for k, v in axes.items()})
    names = list(chosen)
    rows = [exo_row(dict(zip(names, point, strict=True))) for point in itertools.product(*chosen.values())]
    return pd.DataFrame(rows, columns=names + list(EXO_COLUMNS))
