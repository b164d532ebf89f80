"""What a trained LAM holds after N steps: a population trajectory set beside the optimum.

:mod:`lamproof.numeric.dynamics` gives the parameters along a deterministic trajectory; this
module scores them (loss, objective, every probe) and compares them with the closed-form optimum
(:func:`lamproof.solve`, :func:`lamproof.all_probes`), which the trajectory never used. The
predictions a user can ask for:

- **steps to the optimal loss**: the first step after which ``|loss − optimal_loss| ≤ ε·ℓ₀``
  for good, where ``ℓ₀ = E‖o' − o‖²`` is the loss of predicting no change;
- **steps to a probe's optimal range**: the first step after which the probe stays within ``ε``
  (absolute, in units of the score) of ``[min, max]`` over the optimal family;
- **order of acquisition**: the innovation's eigen-directions, grouped by eigenvalue (ties are one
  group) and labelled by what moves them (``action`` if the group holds action variance,
  otherwise ``noise`` or ``observation``), each with the step at which its captured fraction
  ``tr(U_cᵀ B D U_c)/m_c`` first reaches half its optimal value (Saxe et al.'s half-time), and
  the leakage of the observation into the latent, with the step at which it reaches its optimal
  range.

"For good" and "first" are decided on a log-spaced grid of ``GRID_POINTS`` steps (plus the
recorded ones): the answer is exact to the grid's spacing, a ratio of about
``steps^(1/GRID_POINTS)`` (8 % at 10 000 steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.numeric.dynamics import DynamicsSettings, log_steps, population_dynamics
from lamproof.numeric.linalg import pinv_psd
from lamproof.numeric.objective import OBSERVED, LAMParameters, population_objective
from lamproof.numeric.probes import (
    REPRESENTATIONS,
    TARGETS,
    all_probes,
    probe_errors,
    targets_for,
)
from lamproof.numeric.tolerances import DECISION_RTOL, TRAJECTORY_FEATURE_RTOL
from lamproof.statespace import StateSpaceSystem
from lamproof.systems import System, Transition

#: Steps (log-spaced) at which the predictions are evaluated, besides the recorded ones.
GRID_POINTS = 120

#: A direction group counts as action when it holds at least this fraction of the action's
#: variance (the rest of a group that small is round-off of an exact zero).
HOLDS_RTOL = 1e-6

#: Groups whose eigenvalue is below this fraction of the largest carry nothing to learn.
ZERO_RTOL = 1e-9

#: A group is "acquired" when its captured fraction reaches this fraction of its optimal value.
HALF = 0.5


def _features(params: LAMParameters, representation: str) -> np.ndarray:
    return params.latent_map if representation == "latent" else params.predicted_change_map


def resolved(features: np.ndarray, transition: Transition) -> np.ndarray:
    """The combinations of ``features`` that carry at least ``TRAJECTORY_FEATURE_RTOL`` of their largest variance.

    A trajectory's parameters are never exactly optimal: ``ô' − o`` keeps residuals ``(A − I + BC + P) o``
    of any size in directions where the optimum's features vanish, and an exact, scale-free probe
    reads the observation from them (its value then jumps with round-off). A probe trained on
    samples cannot find such directions either, so they are dropped.
    """
    cov = transition.cov(features @ transition.stacked(*OBSERVED))
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    keep = values > TRAJECTORY_FEATURE_RTOL * max(float(values[-1]), 1e-300)
    return vectors[:, keep].T @ features


def score(params: LAMParameters, transition: Transition, spec: LAMSpec) -> dict:
    """Loss (``E‖ô' − o'‖²``, summed over dimensions), objective and every probe of ``params``
    (probes on :func:`resolved` features)."""
    value = population_objective(params, transition, spec)
    probes = {
        rep: probe_errors(resolved(_features(params, rep), transition), transition) for rep in REPRESENTATIONS
    }
    return {"loss": value.reconstruction, "objective": value.total, "probes": probes}


def _innovation_groups(transition: Transition, spec: LAMSpec) -> list[dict]:
    """Eigen-groups of the innovation the LAM compresses, each with its variance by source class.

    Learned FDM path: ``r = o' − L·obs`` with ``L = S_{o'·obs} S_obs⁺``; identity path: ``Δ = o' − o_t``
    (``obs`` is the stack of the context's frames, ``o_t`` its last).
    """
    d_c = transition.d_c
    S = transition.second_moment(OBSERVED)
    if spec.fdm_obs_path == "learned":
        L = S[d_c:, :d_c] @ pinv_psd(S[:d_c, :d_c])
    else:
        L = transition.frame_selector
    r_map = transition.maps["next_obs"] - L @ transition.maps["obs"]
    S_r = transition.second_moment(r_map)
    values, vectors = np.linalg.eigh((S_r + S_r.T) / 2)
    values, vectors = values[::-1], vectors[:, ::-1]
    scale = max(float(values[0]), 1e-300)
    # variance of r by source class: action (the exploration of the k steps), noise (the noise of
    # those steps, and its mean), observation (everything else: the frames' history, hidden state)
    action = set(transition.blocks_of("exploration"))
    noise = set(transition.blocks_of("noise")) - action
    rest = [b for b in range(len(transition.source_roots)) if b not in action | noise]
    classes = {"observation": rest, "action": sorted(action), "noise": sorted(noise)}
    parts = {}
    for name, blocks in classes.items():
        mask = transition.source_columns(blocks)
        T = r_map[:, mask]
        mean = T @ transition.source_mean[mask]
        parts[name] = T @ transition.source_cov[np.ix_(mask, mask)] @ T.T + np.outer(mean, mean)
    totals = {name: float(np.trace(part)) for name, part in parts.items()}
    groups, start = [], 0
    for i in range(1, len(values) + 1):
        if i < len(values) and values[start] - values[i] <= DECISION_RTOL * scale:
            continue
        if values[start] > ZERO_RTOL * scale:
            U = vectors[:, start:i]
            held = {name: float(np.trace(U.T @ part @ U)) for name, part in parts.items()}
            label = (
                "action"
                if totals["action"] > 0 and held["action"] > HOLDS_RTOL * totals["action"]
                else max(("noise", "observation"), key=lambda n: held[n])
            )
            total = sum(held.values()) or 1.0
            groups.append(
                {
                    "direction": label,
                    "eigenvalue": float(np.mean(values[start:i])),
                    "dims": i - start,
                    "action_fraction": held["action"] / total,
                    "basis": U,
                }
            )
        start = i
    return groups


def _captured(params: LAMParameters, basis: np.ndarray) -> float:
    """``tr(Uᵀ B D U)/m``: the fraction of the group's directions the prediction carries from ``o'``."""
    return float(np.trace(basis.T @ params.B @ (params.D @ basis))) / basis.shape[1]


def _first_for_good(steps, ok) -> int | None:
    """The first step after which ``ok`` holds at every later step (None if it fails at the last)."""
    answer = None
    for step, good in zip(steps, ok, strict=True):
        if good and answer is None:
            answer = step
        elif not good:
            answer = None
    return answer


def _distance(value, low, high) -> float | None:
    if value is None or low is None or high is None:
        return None
    return max(low - value, value - high, 0.0)


def analyze(
    system: System,
    spec: LAMSpec,
    settings: DynamicsSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The trajectory of ``settings`` at its recorded steps, the optimum, and the predictions.

    Returns the ``lamproof dynamics`` JSON: ``trajectory`` (``step``, ``loss``, ``objective``,
    ``probes``), ``optimal_loss``, ``optimal_objective``, ``optimal_probes`` (value and range over
    the optimal family), ``steps_to_optimum`` (``loss``, ``probes``), ``acquisition`` (direction
    groups and leakage), ``settings`` and ``notes``.
    """
    settings = DynamicsSettings() if settings is None else settings
    if not isinstance(system, (System, StateSpaceSystem)):
        raise InputError(
            "system: the learning dynamics read a System or a StateSpaceSystem (a LowRankSystem's "
            "d_o × d_o parameters are what its low-rank solve avoids)"
        )
    spec.check_for(system.d_o)
    solution = solve(system, spec)
    optimal = all_probes(solution)
    recorded = settings.records
    grid = sorted(set(recorded) | set(log_steps(settings.steps, GRID_POINTS)))
    trajectory = population_dynamics(system, spec, settings, records=grid, progress=progress)
    transition = trajectory.transition
    scores = [score(p, transition, spec) for p in trajectory.params]
    eps = settings.epsilon
    notes = []

    # -- steps to the optimal loss ------------------------------------------------------------------
    change = transition.maps["next_obs"] - transition.maps["current_obs"]  # o' − o_t: predicting no change
    no_change = float(np.trace(transition.second_moment(change)))
    unit = no_change if no_change > 0 else 1.0
    optimal_loss = max(solution.optimal_loss, 0.0)
    loss_step = _first_for_good(grid, [abs(s["loss"] - optimal_loss) <= eps * unit for s in scores])
    if loss_step is None:
        notes.append(
            f"loss: not within ε = {eps:g} (× E‖o' − o‖² = {unit:.4g}) of the optimal loss after "
            f"{grid[-1]} steps"
        )

    # -- steps to each probe's optimal range ---------------------------------------------------------
    probe_steps: dict = {}
    outer: list[str] = []
    for rep in REPRESENTATIONS:
        probe_steps[rep] = {}
        for target in targets_for(transition):
            best = optimal[rep][target]
            low, high = (best.min, best.max) if best.min is not None else (best.value, best.value)
            distances = [_distance(s["probes"][rep][target], low, high) for s in scores]
            if any(d is None for d in distances):
                probe_steps[rep][target] = None
                continue
            if best.min is None:
                notes.append(
                    f"{rep}.{target}: the optimum came from the numeric fallback; its family range is "
                    "unknown, so the step is to its canonical member's value"
                )
            probe_steps[rep][target] = _first_for_good(grid, [d <= eps for d in distances])
            if best.bounds == "outer":
                outer.append(f"{rep}.{target}")
    if outer:
        notes.append(f"{', '.join(outer)}: the optimal range is an outer bound, so the step may be early")

    # -- order of acquisition ----------------------------------------------------------------------
    groups = _innovation_groups(transition, spec)
    acquisition = []
    for group in groups:
        U = group.pop("basis")
        target = _captured(solution.parameters, U)
        curve = [_captured(p, U) for p in trajectory.params]
        step = None
        if target > 1e-3:
            step = next((s for s, c in zip(grid, curve, strict=True) if c >= HALF * target), None)
        acquisition.append(
            {
                **group,
                "captured_optimal": target,
                "captured_final": curve[-1],
                "captured_initial": curve[0],
                "step": step,
            }
        )
    order = sorted(
        (a for a in acquisition if a["step"] is not None), key=lambda a: (a["step"], -a["eigenvalue"])
    )
    leak = optimal["latent"]["observation"]
    leakage = {
        "initial": scores[0]["probes"]["latent"]["observation"],
        "final": scores[-1]["probes"]["latent"]["observation"],
        "optimal": [leak.min, leak.max],
        "step": probe_steps["latent"]["observation"],
    }
    if settings.optimizer == "flow":
        notes.append(f"flow: step n is time t = n·lr = n × {settings.lr:g} of the gradient flow")
    notes.extend(solution.notes)

    by_step = dict(zip(grid, scores, strict=True))
    return {
        "settings": settings.to_dict(),
        "trajectory": [{"step": s, **by_step[s]} for s in recorded],
        "optimal_loss": optimal_loss,
        "optimal_objective": max(solution.objective, 0.0),
        "optimal_probes": {
            rep: {t: score_.as_dict() for t, score_ in scores_.items()} for rep, scores_ in optimal.items()
        },
        "steps_to_optimum": {"epsilon": eps, "loss": loss_step, "probes": probe_steps},
        "acquisition": {
            "order": [
                f"{a['direction']} (λ = {a['eigenvalue']:.4g}, {a['dims']} dims) at step {a['step']}"
                for a in order
            ],
            "directions": acquisition,
            "leakage": leakage,
        },
        "seconds": trajectory.seconds,
        "notes": notes,
    }


def text_table(report: dict) -> str:
    """A plain-text rendering of :func:`analyze`'s report."""

    def fmt(value, width=8):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—".rjust(width)
        return f"{value:{width}.4g}"

    columns = [(rep, t) for rep in REPRESENTATIONS for t in TARGETS if t in report["optimal_probes"][rep]]
    short = {"predicted_change": "Δ", "latent": "z"}
    head = f"{'step':>8} {'loss':>10} {'objective':>10} " + " ".join(
        f"{short[r] + '.' + t[:3]:>8}" for r, t in columns
    )
    lines = ["probes: fraction of variance unexplained (Δ = predicted change ô' − o, z = latent)", head]
    for row in report["trajectory"]:
        lines.append(
            f"{row['step']:>8} {fmt(row['loss'], 10)} {fmt(row['objective'], 10)} "
            + " ".join(fmt(row["probes"][r][t]) for r, t in columns)
        )
    best = report["optimal_probes"]
    lines.append(
        f"{'optimum':>8} {fmt(report['optimal_loss'], 10)} {fmt(report['optimal_objective'], 10)} "
        + " ".join(fmt(best[r][t]["value"]) for r, t in columns)
    )
    ranges = []
    for r, t in columns:
        b = best[r][t]
        if b["identified"] is False:
            ranges.append(f"{short[r]}.{t} ∈ [{b['min']:.4g}, {b['max']:.4g}]")
    if ranges:
        lines.append("optimal family: " + ", ".join(ranges))
    reach = report["steps_to_optimum"]
    lines.append(
        f"steps to within ε = {reach['epsilon']:g}: loss {reach['loss']}; "
        + ", ".join(f"{short[r]}.{t} {reach['probes'][r][t]}" for r, t in columns)
    )
    acquisition = report["acquisition"]
    lines.append("acquisition order: " + ("; ".join(acquisition["order"]) or "none within the run"))
    leak = acquisition["leakage"]
    lines.append(
        f"leakage (observation probe of z): {fmt(leak['initial'], 0)} at step 0 → "
        f"{fmt(leak['final'], 0)}; optimal range {leak['optimal']}; reached at step {leak['step']}"
    )
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def plot(report: dict, path) -> None:
    """Loss and probes against steps (symmetric-log axis, so step 0 shows), optimal values dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["trajectory"]
    steps = [r["step"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(steps, [r["loss"] for r in rows], marker=".", label="loss E‖ô' − o'‖²")
    left.axhline(report["optimal_loss"], linestyle="--", color="k", label="optimal loss")
    left.set_xscale("symlog", linthresh=1)
    left.set_xlim(0, max(steps[-1], 1))  # no negative steps in the axis's margin
    left.set_xlabel("step")
    left.set_ylabel("loss (summed over dimensions)")
    left.legend()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for rep in REPRESENTATIONS:
        for target in TARGETS:
            if target not in rows[0]["probes"][rep]:
                continue
            values = [r["probes"][rep][target] for r in rows]
            if all(v is None for v in values):
                continue
            color = colors[k % len(colors)]
            k += 1
            label = f"{'ô′ − o' if rep == 'predicted_change' else 'z'} → {target}"
            right.plot(
                steps, [np.nan if v is None else v for v in values], marker=".", color=color, label=label
            )
            best = report["optimal_probes"][rep][target]
            if best["min"] is not None and best["max"] is not None and best["max"] > best["min"]:
                right.axhspan(best["min"], best["max"], color=color, alpha=0.12)
            elif best["value"] is not None:
                right.axhline(best["value"], color=color, linestyle="--", linewidth=1)
    right.set_xscale("symlog", linthresh=1)
    right.set_xlim(0, max(steps[-1], 1))
    right.set_ylim(-0.02, 1.05)
    right.set_xlabel("step")
    right.set_ylabel("probe: fraction of variance unexplained")
    right.legend(fontsize=7)
    s = report["settings"]
    fig.suptitle(
        f"population {s['optimizer']}, lr {s['lr']:g}, init {s['init'] if isinstance(s['init'], str) else 'explicit'}"
        " — dashed/shaded: the optimum"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
