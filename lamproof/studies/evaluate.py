"""One configuration of a study → one row of the authors' log format.

Two sources of LAM parameters share one scoring protocol:

- :func:`closed_form_row` solves the exact optimum once per (system, spec) and reads every probe
  (value and range over the optimal family) from that one solution;
- :func:`score_parameters` scores any :class:`LAMParameters` (the trained ones) with the same
  probes on the same distributions.

Normalizations (the authors' logs, docs/theory.md §1.4):

- ``recon_loss`` is ``E‖ô' − o'‖² / d_o`` (per dimension), on the data the probes are scored
  on: the study's own data, the noise-free data for §4.2, random actions for §5 (the authors'
  logs fit only this reading; see the studies' notes);
- ``act_mse``/``obs_mse``/``noi_mse`` are fractions of variance left unexplained by the best
  affine probe (the authors' targets have unit variance, so their per-dimension MSE is this);
- the authors' noise target is the standardized noise source ``b`` (``ε = σ·(isometry)·b`` in
  every study), so its score equals the score of ``ε``; where ``ε`` has no variance on the
  scoring data (σ = 0, or §4.2's noise-free probes) ``b`` is still drawn but independent of
  everything, and its score is exactly 1 — the 1.0 of the authors' logs;
- §6 multiplies the noise score by ``Var(b) = 1/12`` (uniform ``b`` on ``[0, 1)``, error divided
  by σ² rather than by the variance σ²/12).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from lamproof.numeric import probes as _probes
from lamproof.numeric.closed_form import solve
from lamproof.numeric.objective import LAMParameters, population_objective
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL
from lamproof.studies.definitions import Config, Study
from lamproof.systems import Transition, paper_system

#: Columns written for every probe: the canonical member's value, then the family's range.
RANGE_SUFFIXES = ("_min", "_max", "_identified", "_bounds")


def protocol_transitions(
    study: Study, config: Config, own: Transition
) -> tuple[Transition, Transition, Transition]:
    """``(fit, score, recon)``: where probes are fitted, where they are scored, where recon_loss is measured.

    The same object is returned wherever the distributions coincide, so that the probe module
    can use its exact family ranges (it needs ``fit is score``).
    """
    fit = score = own
    if study.protocol == "noise_free":
        fit = score = shared_transition(study, config, own.horizon, noise_free=True)
    elif study.protocol == "random_action" and float(config.get("chi", 0.0)) != 0.0:
        score = shared_transition(study, config, own.horizon, random_actions=True)
    recon = score  # the authors measure recon_loss on the data the probes are scored on
    return fit, score, recon


def shared_transition(
    study: Study, config: Config, horizon: int, *, noise_free: bool = False, random_actions: bool = False
) -> Transition:
    """The transition of ``study.system(config, …)``, one object for every configuration with the
    same data (configurations that differ only in ``dz``, ``kappa``, ``mask_ratio`` or the probe
    protocol): the solver and the probes cache the moments, the innovation's eigendecomposition
    and the targets' factors on it, so a ``dz`` sweep pays for them once."""
    d_o, d_a, keywords = study.system_arguments(config, noise_free=noise_free, random_actions=random_actions)
    return _shared_transition(d_o, d_a, keywords, horizon)


#: Transitions kept for sharing: the runner orders a sweep so that configurations with the same
#: data are neighbours, so a few suffice (the study's own data and its protocol's reference data);
#: more would only hold memory (a d_o = 1024 transition with its moments is ~100 MB).
SHARED_TRANSITIONS = 4


@lru_cache(maxsize=SHARED_TRANSITIONS)
def _shared_transition(d_o: int, d_a: int, keywords: tuple, horizon: int) -> Transition:
    return paper_system(d_o, d_a, **dict(keywords)).transition(horizon)


def _grouped_probes(study: Study) -> dict[str, list[tuple[str, str]]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for column, target, representation in study.probes:
        groups.setdefault(representation, []).append((column, target))
    return groups


def _probe_scores(solution, representation: str, targets: list[str], fit, score) -> dict:
    """Every target of one representation from one solution, over its optimal family."""
    return _probes.probe_family(solution, representation, fit=fit, score=score, targets=tuple(targets))


def _probe_values(features, targets: list[str], fit, score) -> dict:
    """Exact probes of parameters found numerically (trained): optimizer noise dropped (``rtol``)."""
    return _probes.probe_errors(features, fit, score, tuple(targets), rtol=NUMERIC_FEATURE_RTOL)


def _base_row(study: Study, config: Config, steps: int | None) -> dict:
    row = {name: config[name] for name in study.columns}
    row["iter"] = steps if steps is not None else math.nan
    return row


def _noise_default(study: Study, target: str, value):
    """The authors' convention for a noise target without variance (see the module docstring)."""
    if value is None and target == "noise":
        return 1.0
    return value


def _scaled(study: Study, target: str, value):
    if value is None:
        return math.nan
    return value * study.noise_scale if target == "noise" else value


def closed_form_row(study: Study, config: Config) -> tuple[dict, float]:
    """The exact optimum's row (values, and ``_min``/``_max``/``_identified`` over the family) and its seconds."""
    start = time.perf_counter()
    spec = study.spec(config)
    transition = shared_transition(study, config, spec.horizon)
    system = transition.system
    solution = solve(system, spec, transition=transition)
    fit, score, recon = protocol_transitions(study, config, solution.transition)
    row = _base_row(study, config, None)
    loss = (
        solution.optimal_loss
        if recon is solution.transition
        else population_objective(solution.parameters, recon, spec).reconstruction
    )
    row["recon_loss"] = loss / system.d_o
    ranges = {}
    scores = {}
    for representation, items in _grouped_probes(study).items():
        found = _probe_scores(solution, representation, [t for _, t in items], fit, score)
        scores.update({column: (target, found[target]) for column, target in items})
    for column, target, _ in study.probes:
        target, result = scores[column]
        if result.value is None and target == "noise":
            value = low = high = 1.0
            identified, bounds = True, "exact"
        else:
            value, low, high, identified = result.value, result.min, result.max, result.identified
            bounds = result.bounds
        row[column] = _scaled(study, target, value)
        ranges[column + "_min"] = _scaled(study, target, low)
        ranges[column + "_max"] = _scaled(study, target, high)
        ranges[column + "_identified"] = "" if identified is None else bool(identified)
        ranges[column + "_bounds"] = bounds  # proved and attained coincide ("exact") or not ("outer")
    row.update(ranges)
    row["method"] = solution.method
    return row, time.perf_counter() - start


def closed_form_task(task: tuple[Study, Config]) -> tuple[dict, float]:
    """:func:`closed_form_row` of a ``(study, config)`` pair (the unit of work of the process pool); a study
    of lamproof's own (:mod:`lamproof.studies.exo`) computes its row itself."""
    study, config = task
    if not isinstance(study, Study):
        return study.row(config)
    return closed_form_row(study, config)


def score_parameters(
    study: Study, config: Config, params: LAMParameters, *, steps: int | None = None
) -> dict:
    """The row of given LAM parameters (e.g. trained ones), scored exactly on the protocol's distributions.

    Trained mode uses the *exact* :func:`~lamproof.numeric.probes.probe_error` of the trained
    parameters on the system's exact moments rather than probes fitted on samples: the
    parameters are the stochastic object under test; a probe fitted on finite samples (the
    authors train theirs with 5000 Adam steps) would add its own estimation error, of order
    ``d_z / n``, on top of the LAM's, and hide which of the two a discrepancy comes from. The
    exact probe is the limit the authors' probes estimate.
    """
    system, spec = study.system(config), study.spec(config)
    own = system.transition(spec.horizon)
    fit, score, recon = protocol_transitions(study, config, own)
    row = _base_row(study, config, steps)
    row["recon_loss"] = population_objective(params, recon, spec).reconstruction / system.d_o
    for representation, items in _grouped_probes(study).items():
        features = params.latent_map if representation == "latent" else params.predicted_change_map
        values = _probe_values(features, [t for _, t in items], fit, score)
        for column, target in items:
            row[column] = _scaled(study, target, _noise_default(study, target, values[target]))
    row["method"] = "trained"
    return row


def dynamics_groups(study: Study, configs: list[Config], batch: int) -> list[list[Config]]:
    """Configurations that share a system (they differ only in ``dz``, ``kappa``, ``mask_ratio``),
    sorted by ``dz`` and cut into batches of at most ``batch``: one population run each."""
    shared = [c for c in study.columns if c not in ("dz", "kappa", "mask_ratio")]
    groups: dict[tuple, list[Config]] = {}
    for config in configs:
        groups.setdefault(tuple(config.get(c) for c in shared) + (config.seed,), []).append(config)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda c: (c["dz"], c.get("kappa", 0.0), c.get("mask_ratio", 0.0)))
        out += [members[i : i + batch] for i in range(0, len(members), batch)]
    return out


def dynamics_rows(study: Study, configs: list[Config], settings) -> tuple[list[dict], float]:
    """Population Adam (or ``settings.optimizer``) on configurations that share a system, each from
    the stochastic trainer's initial point with ``settings.seed``, for ``settings.steps``; the rows
    of the final parameters, scored like trained ones, and the seconds it took."""
    from lamproof.numeric.dynamics import initial_parameters, run_batch

    start = time.perf_counter()
    system = study.system(configs[0])
    specs = [study.spec(c) for c in configs]
    initial = [initial_parameters(system, spec, settings) for spec in specs]
    batch = run_batch(
        system.transition(specs[0].horizon), specs, initial, settings, records=(settings.steps,)
    )
    rows = []
    for config, params in zip(configs, batch.params[-1], strict=True):
        row = score_parameters(study, config, params, steps=settings.steps)
        row["method"] = f"dynamics-{settings.optimizer}"
        rows.append(row)
    return rows, time.perf_counter() - start


def dynamics_task(task) -> tuple[list[dict], float]:
    """:func:`dynamics_rows` of a ``(study, configs, settings)`` triple (a unit of work of the pool)."""
    return dynamics_rows(*task)


def result_columns(study: Study, *, ranges: bool) -> list[str]:
    """CSV columns: the authors' (configuration, iter, recon_loss, probes), then ranges and method."""
    if not isinstance(study, Study):
        return study.result_columns(ranges=ranges)
    columns = list(study.columns) + ["iter", "recon_loss"] + [c for c, _, _ in study.probes]
    if ranges:
        columns += [c + suffix for c, _, _ in study.probes for suffix in RANGE_SUFFIXES]
    return columns + ["method"]
