"""The ``exo`` study (issue 10), ``lamproof reproduce exo``: exogenous state against the window and the FDM path.

Unlike the paper's six studies, built from :func:`lamproof.systems.paper_system`, each configuration
here is a state-space system (:func:`exo_system`): an endogenous random walk ``s' = s + a`` (``d_a``
actions of unit variance) beside an exogenous AR(1) ``x' = e x + η`` (``Var η = σ_η²``) of the same
dimension, observed through isotropic noise of variance ``τ²`` (so that a context can help: ``s`` and
``x`` are hidden behind it). The sweep (:data:`EXO_AXES`) crosses the exogenous noise ``σ_η``, its
persistence ``e``, the horizon ``k``, the context ``T``, the latent size ``d_z`` and the FDM path (``A``
learned or ``A = I``). Every configuration is solved once (:func:`lamproof.solve` on its window) and
every column read from that solution, as a value and a range over the optimal family:

- ``recon_loss``: the optimal loss per observed dimension;
- ``loading``: the exogenous loading (:func:`lamproof.exogenous.loading_over_family`);
- ``consistency``: ``tr E[Var(z | a)]/tr Var(z)`` (:func:`lamproof.exogenous.consistency_over_family`);
- ``act_mse``, ``act_mse_z``: action probes of the predicted change ``ô' − o_t`` and of the latent;
- ``exo_mse``: the probe of the exogenous innovation from ``ô' − o_t``;
- ``action_first``, ``margin``: whether the controllable directions come first in the innovation, and
  by how much (:func:`lamproof.exogenous.action_first`).

Closed form only: the study has no training protocol of the paper to reproduce.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lamproof._validation import as_int, as_real
from lamproof.errors import InputError
from lamproof.exogenous import (
    action_first,
    consistency_over_family,
    loading_over_family,
)
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.numeric.probes import probe_family
from lamproof.statespace import StateSpaceSystem
from lamproof.studies.definitions import Config

__all__ = ["EXO_AXES", "EXO_COLUMNS", "EXO_STUDY", "ExoStudy", "exo_system", "exo_row", "exo_table"]

#: The sweep: exogenous noise σ_η, persistence e, horizon k, context T, latent size d_z, FDM path.
EXO_AXES: Mapping[str, tuple] = {
    "sigma_eta": (0.5, 1.0, 2.0),
    "persistence": (0.0, 0.5, 0.9),
    "horizon": (1, 2, 4),
    "context": (1, 2, 4),
    "dz": (1, 2, 3),
    "fdm": ("learned", "identity"),
}
#: Quantities with a range over the optimal family: the value, then ``_min``, ``_max``, ``_identified``, ``_bounds``.
RANGED = ("loading", "consistency", "act_mse", "act_mse_z", "exo_mse")
RANGE_SUFFIXES = ("_min", "_max", "_identified", "_bounds")
#: Result columns, after the configuration's.
EXO_COLUMNS = (
    ("recon_loss",)
    + RANGED
    + tuple(q + s for q in RANGED for s in RANGE_SUFFIXES)
    + ("action_first", "margin", "method")
)
#: The study's probes: (column, target, representation).
EXO_PROBES = (
    ("act_mse", "action", "predicted_change"),
    ("exo_mse", "exogenous", "predicted_change"),
    ("act_mse_z", "action", "latent"),
)
#: Actions of the study's system (its latent sizes sweep around it).
EXO_ACTIONS = 2


def exo_system(
    sigma_eta: float, persistence: float, *, d_a: int = EXO_ACTIONS, obs_noise: float = 0.25
) -> StateSpaceSystem:
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
    return StateSpaceSystem(
        F,
        G,
        process_noise_cov=W,
        observation_noise_cov=tau2 * np.eye(n),
        exogenous=list(range(d_a, n)),
        initial={"cov": cov0},
    )


@lru_cache(maxsize=64)
def _window(sigma_eta: float, persistence: float, horizon: int, context: int):
    """The window of one point of the sweep; shared by its ``dz`` and ``fdm`` values, whose moments and
    innovations are cached on it."""
    return exo_system(sigma_eta, persistence).transition(horizon, context)


def _ranged(name: str, result) -> dict:
    identified = "" if result.identified is None else bool(result.identified)
    return {
        name: result.value,
        f"{name}_min": result.min,
        f"{name}_max": result.max,
        f"{name}_identified": identified,
        f"{name}_bounds": result.bounds,
    }  # proved and attained coincide ("exact") or not ("outer")


def exo_row(values: Mapping) -> dict:
    """One configuration (keys of :data:`EXO_AXES`) → its row (:data:`EXO_COLUMNS`)."""
    k, T = int(values["horizon"]), int(values["context"])
    t = _window(float(values["sigma_eta"]), float(values["persistence"]), k, T)
    path, d_z = str(values["fdm"]), int(values["dz"])
    solution = solve(t.system, LAMSpec(d_z, path, horizon=k, context=T), transition=t)
    row = dict(values)
    row["recon_loss"] = solution.optimal_loss / t.d_o
    row.update(_ranged("loading", loading_over_family(solution)))
    row.update(_ranged("consistency", consistency_over_family(solution)))
    for representation in ("predicted_change", "latent"):
        items = [(column, target) for column, target, rep in EXO_PROBES if rep == representation]
        scores = probe_family(solution, representation, targets=tuple(target for _, target in items))
        for column, target in items:
            row.update(_ranged(column, scores[target]))
    condition = action_first(t, path)
    row["action_first"] = "" if condition.holds is None else bool(condition.holds)
    row["margin"] = condition.margin
    row["method"] = solution.method
    return {key: (math.nan if value is None else value) for key, value in row.items()}


def _headers() -> dict:
    return {
        "sigma_eta": r"$\sigma_\eta$",
        "persistence": "$e$",
        "horizon": "$k$",
        "context": "$T$",
        "dz": "$d_z$",
        "fdm": "$A$",
        "recon_loss": "recon",
        "loading": "loading",
        "consistency": "consistency",
        "act_mse": r"action ($\hat o' - o$)",
        "act_mse_z": "action ($z$)",
        "exo_mse": r"exog. ($\hat o' - o$)",
        "action_first": "first",
        "margin": "margin",
    }


@dataclass(frozen=True)
class ExoStudy:
    """The exo sweep, with the interface :mod:`lamproof.studies.runner` drives (closed form only).

    ``axes`` is a tuple of ``(column, values)`` pairs (picklable, for the process pool).
    """

    axes: tuple = tuple(EXO_AXES.items())
    name: str = "exo"
    slug: str = "exo_exogenous_state"
    title: str = (
        "Exogenous state: loading, consistency and action probes over noise, persistence, horizon, context"
    )
    steps: int = 0
    modes: tuple = ("closed-form",)
    #: The LaTeX table shows this latent size (``d_z = d_a``); the CSV holds every one.
    table_dz: int = EXO_ACTIONS
    notes: tuple = field(default=(), compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    def with_axes(self, **axes) -> ExoStudy:
        """The same study on other axes (e.g. a reduced sweep for a quick check)."""
        known = dict(self.axes)
        unknown = sorted(set(axes) - set(known))
        if unknown:
            raise InputError(f"{unknown[0]}: not an axis of study exo (axes: {', '.join(known)})")
        for name, values in axes.items():
            known[name] = tuple(values) if isinstance(values, (list, tuple, range)) else (values,)
        return ExoStudy(tuple(known.items()), table_dz=self.table_dz)

    def configs(self, seed: int = 0) -> list[Config]:
        """Configurations in sweep order, ``dz`` and ``fdm`` innermost: neighbours share their window."""
        names = self.columns
        return [
            Config(self.name, dict(zip(names, point, strict=True)), seed)
            for point in itertools.product(*(values for _, values in self.axes))
        ]

    def row(self, config: Config) -> tuple[dict, float]:
        start = time.perf_counter()
        row = exo_row(config.values)
        return row, time.perf_counter() - start

    def result_columns(self, *, ranges: bool = True) -> list[str]:
        return list(self.columns) + list(EXO_COLUMNS)

    def latex_table(self, frame, *, caption_suffix: str = "") -> str:
        """A ``longtable`` of the configurations with ``d_z = table_dz``: each ranged quantity as
        ``value [min, max]`` where the optimal family does not identify it."""
        import pandas as pd

        from lamproof.studies.outputs import cell, ranged_cells

        part = frame[frame["dz"] == self.table_dz] if (frame["dz"] == self.table_dz).any() else frame
        head = _headers()
        shown = pd.DataFrame()
        for column in self.columns:
            if column == "dz" and part["dz"].nunique() == 1:
                continue
            shown[head[column]] = [str(v) if isinstance(v, str) else f"{v:g}" for v in part[column]]
        shown[head["recon_loss"]] = [cell(v) for v in part["recon_loss"]]
        for name in RANGED:
            shown[head[name]] = ranged_cells(part, name)
        shown[head["action_first"]] = [
            "--"
            if v == "" or v is None or (isinstance(v, float) and math.isnan(v))
            else ("yes" if bool(v) else "no")
            for v in part["action_first"]
        ]
        shown[head["margin"]] = [cell(v) for v in part["margin"]]
        caption = (
            f"Exogenous state (lamproof's study for issue 10){caption_suffix}: an endogenous random walk "
            f"($d_a = {EXO_ACTIONS}$) beside an exogenous AR(1) of persistence $e$ and noise $\\sigma_\\eta^2$, "
            "observed with noise $0.25 I$; horizon $k$, context $T$, FDM path $A$ learned or $I$, "
            f"$d_z = {self.table_dz}$ (the CSV holds every $d_z$). Loading: exogenous share of the captured "
            "variance; consistency: $\\mathrm{tr}\\,E[\\mathrm{Var}(z\\mid a)]/\\mathrm{tr}\\,\\mathrm{Var}(z)$; "
            "probes: fractions of variance unexplained; [min, max] spans the optimal family."
        )
        return shown.to_latex(
            index=False,
            escape=False,
            longtable=True,
            caption=caption,
            label=f"tab:{self.slug}",
            column_format="r" * len(shown.columns),
        )

    def write_figure(self, path, closed, trained=None, *, kind: str = "trained") -> None:
        """Loading, consistency and the action probe of ``ô' − o`` against ``σ_η``: one curve per
        persistence ``e`` (solid ``T = 1``, dashed the longest context), one panel column per FDM path
        and horizon (the shortest and the longest), at ``d_z = table_dz``; family ranges shaded."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from lamproof.studies.outputs import write_atomic

        frame = closed[closed["dz"] == self.table_dz] if (closed["dz"] == self.table_dz).any() else closed
        horizons = sorted(set(frame["horizon"]))
        contexts = sorted(set(frame["context"]))
        panels = [
            (fdm, k)
            for k in dict.fromkeys([horizons[0], horizons[-1]])
            for fdm in dict.fromkeys(frame["fdm"])
        ]
        metrics = [
            ("loading", "exogenous loading"),
            ("consistency", "consistency"),
            ("act_mse", "action probe of ô' − o"),
        ]
        persistences = sorted(set(frame["persistence"]))
        colors = plt.get_cmap("viridis")(
            [0.85 * i / max(1, len(persistences) - 1) for i in range(len(persistences))]
        )
        fig, axes = plt.subplots(
            len(metrics),
            len(panels),
            figsize=(2.4 + 3.2 * len(panels), 0.8 + 2.2 * len(metrics)),
            squeeze=False,
            sharex=True,
        )
        for j, (fdm, k) in enumerate(panels):
            for i, (metric, label) in enumerate(metrics):
                ax = axes[i][j]
                for color, e in zip(colors, persistences, strict=True):
                    for T, style in [(contexts[0], "-")] + (
                        [(contexts[-1], "--")] if len(contexts) > 1 else []
                    ):
                        part = frame[
                            (frame["fdm"] == fdm)
                            & (frame["horizon"] == k)
                            & (frame["persistence"] == e)
                            & (frame["context"] == T)
                        ].sort_values("sigma_eta")
                        if part.empty:
                            continue
                        x = part["sigma_eta"].to_numpy(dtype=float)
                        ax.plot(
                            x,
                            part[metric].to_numpy(dtype=float),
                            style,
                            color=color,
                            lw=1.2,
                            label=f"e={e:g}, T={T}",
                        )
                        ax.fill_between(
                            x,
                            part[f"{metric}_min"].to_numpy(dtype=float),
                            part[f"{metric}_max"].to_numpy(dtype=float),
                            color=color,
                            alpha=0.10,
                            lw=0,
                        )
                ax.set_ylim(-0.05, 1.05)
                if i == 0:
                    ax.set_title(f"A {'learned' if fdm == 'learned' else '= I'}, k = {k}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(label, fontsize=8)
                if i == len(metrics) - 1:
                    ax.set_xlabel(r"$\sigma_\eta$")
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
        fig.suptitle(f"{self.title} (d_z = {self.table_dz}; closed form, family range shaded)", fontsize=8)
        width, height = fig.get_size_inches()
        fig.subplots_adjust(
            left=0.8 / width,
            right=1 - 1.4 / width,
            bottom=0.5 / height,
            top=1 - 0.55 / height,
            wspace=0.25,
            hspace=0.15,
        )
        try:
            write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
        finally:
            plt.close(fig)


#: The study ``lamproof reproduce exo`` runs.
EXO_STUDY = ExoStudy()


def exo_table(axes: Mapping[str, tuple] | None = None):
    """The sweep as a pandas DataFrame (``axes`` overrides some of :data:`EXO_AXES`), in this process."""
    import pandas as pd

    study = EXO_STUDY.with_axes(**dict(axes)) if axes else EXO_STUDY
    rows = [exo_row(config.values) for config in study.configs()]
    return pd.DataFrame(rows, columns=study.result_columns())
