"""Linear probes: how much of a target a representation carries.

A probe score is the fraction of variance left unexplained by the best affine probe,
``E‖t − t̂‖² / tr Cov(t)``, with the probe fitted on one transition and scored on another
(the same one by default). Over an optimal *family* the score is a range: for features that are
``fixed`` rows plus any ``k``-dimensional subspace of ``span(free)``, the explained variance is
``EV(fixed) + tr((UᵀAU)⁻¹ UᵀXXᵀU)`` with ``A``, ``X`` the residual (co)variances of ``free``
given ``fixed``; its extremes over ``U`` are sums of the top / bottom ``k`` generalized
eigenvalues of ``(XXᵀ, A)`` (Ky Fan), which gives exact ranges without any search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamproof.numeric.closed_form import FeatureFamily, Solution
from lamproof.numeric.linalg import RANK_RTOL, eigh_descending, pinv_psd, scale_of
from lamproof.numeric.objective import LAMParameters
from lamproof.systems import Transition

TARGETS = {"action": "action", "observation": "obs", "noise": "noise"}
REPRESENTATIONS = ("predicted_change", "latent")

#: A range whose ends differ by less than this (in units of the score, a fraction) is a point.
IDENTIFIED_ATOL = 1e-9

#: Members drawn for a ``"sampled"`` range (plus the canonical one).
SAMPLED_MEMBERS = 24


@dataclass(frozen=True)
class ProbeScore:
    """A probe score over the optimal family; ``None`` where it is undefined or not decided."""

    value: float | None  # the canonical member's score
    min: float | None
    max: float | None
    identified: bool | None  # min == max
    bounds: str  # "exact" | "outer" | "sampled" | "unknown" | "undefined"

    def as_dict(self) -> dict:
        return {"value": self.value, "min": self.min, "max": self.max, "identified": self.identified,
                "bounds": self.bounds}


def _source_rows(features: np.ndarray, transition: Transition) -> np.ndarray:
    return features @ transition.stacked("obs", "next_obs")


def probe_error(features: np.ndarray, target: str, fit: Transition, score: Transition | None = None) -> float | None:
    """Fraction of unexplained variance of ``target`` by the best affine probe of ``features @ [o; o']``.

    The probe is fitted on ``fit`` and scored on ``score``; ``None`` when the target has no
    variance on ``score``.
    """
    score = fit if score is None else score
    name = TARGETS[target]
    f_fit, t_fit = _source_rows(features, fit), fit.maps[name]
    coef = fit.cov(t_fit, f_fit) @ pinv_psd(fit.cov(f_fit))
    intercept = fit.mean(t_fit) - coef @ fit.mean(f_fit)
    error_map = score.maps[name] - coef @ _source_rows(features, score)
    total = float(np.trace(score.cov(score.maps[name])))
    if total <= RANK_RTOL * max(1.0, float(np.max(np.abs(score.source_cov), initial=0.0))):
        return None
    residual_mean = score.mean(error_map) - intercept
    error = float(np.trace(score.cov(error_map))) + float(residual_mean @ residual_mean)
    return max(error, 0.0) / total


def sample_probe_error(features: np.ndarray, target: str, fit: Transition, score: Transition | None = None,
                       *, samples: int = 20000, rng: np.random.Generator) -> float | None:
    """:func:`probe_error` from samples: least-squares affine probe on draws of ``fit``, scored on fresh draws."""
    score = fit if score is None else score
    name = TARGETS[target]
    train = fit.sample(samples, rng)
    test = score.sample(samples, rng)
    design = np.hstack([np.hstack([train["obs"], train["next_obs"]]) @ features.T, np.ones((samples, 1))])
    coef, *_ = np.linalg.lstsq(design, train[name], rcond=None)
    test_design = np.hstack([np.hstack([test["obs"], test["next_obs"]]) @ features.T, np.ones((samples, 1))])
    residual = test[name] - test_design @ coef
    total = float(np.sum(np.var(test[name], axis=0)))
    if total <= 1e-12:
        return None
    return float(np.mean(np.sum(residual**2, axis=1))) / total


def _explained(target_rows, feature_rows, transition) -> float:
    if feature_rows.shape[0] == 0:
        return 0.0
    cross = transition.cov(target_rows, feature_rows)
    return float(np.trace(cross @ pinv_psd(transition.cov(feature_rows)) @ cross.T))


def _subspace_gains(target_rows, fixed_rows, free_rows, transition) -> tuple[np.ndarray, int]:
    """Generalized eigenvalues of ``(XXᵀ, A)`` (descending) and the dimension of ``A``'s null space."""
    stacked = np.vstack([free_rows, fixed_rows])
    cov = transition.cov(stacked)
    m = free_rows.shape[0]
    C_ww, C_wf, C_ff = cov[:m, :m], cov[:m, m:], cov[m:, m:]
    cross = transition.cov(stacked, target_rows)
    C_wt, C_ft = cross[:m], cross[m:]
    if fixed_rows.shape[0]:
        inv_ff = pinv_psd(C_ff)
        A = C_ww - C_wf @ inv_ff @ C_wf.T
        X = C_wt - C_wf @ inv_ff @ C_ft
    else:
        A, X = C_ww, C_wt
    values, vectors = eigh_descending(A)
    keep = values > RANK_RTOL * scale_of(np.diag(cov)) if cov.size else values > 0
    whiten = vectors[:, keep] / np.sqrt(values[keep])
    gains, _ = eigh_descending(whiten.T @ X @ X.T @ whiten) if keep.any() else (np.zeros(0), None)
    return np.clip(gains, 0.0, None), m - int(keep.sum())


def family_range(family: FeatureFamily, target: str, transition: Transition) -> tuple[float, float] | None:
    """Exact (or outer) ``(min, max)`` of the score over a family described by features."""
    name = TARGETS[target]
    target_rows = transition.maps[name]
    total = float(np.trace(transition.cov(target_rows)))
    if total <= RANK_RTOL * max(1.0, float(np.max(np.abs(transition.source_cov), initial=0.0))):
        return None
    fixed = _source_rows(family.fixed, transition)
    base = _explained(target_rows, fixed, transition)
    gains, null = _subspace_gains(target_rows, fixed, _source_rows(family.free, transition), transition)
    best = base + float(np.sum(gains[: family.k_max]))
    if family.free_for_min is not None:
        gains, null = _subspace_gains(target_rows, fixed, _source_rows(family.free_for_min, transition), transition)
    worst_k = max(0, family.k_min - null)
    worst = base + (float(np.sum(gains[::-1][:worst_k])) if worst_k else 0.0)
    clip = lambda ev: min(max(1.0 - ev / total, 0.0), 1.0)  # noqa: E731
    return clip(best), clip(worst)


def _features(params: LAMParameters, representation: str) -> np.ndarray:
    return params.latent_map if representation == "latent" else params.predicted_change_map


def probe(solution: Solution, target: str, representation: str, *, fit: Transition | None = None,
          score: Transition | None = None, rng: np.random.Generator | None = None) -> ProbeScore:
    """The probe score of ``target`` read from ``representation`` over the solution's optimal family."""
    if target not in TARGETS:
        raise ValueError(f"target: must be one of {', '.join(TARGETS)}, got {target!r}")
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation: must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
    fit = solution.transition if fit is None else fit
    score = fit if score is None else score
    value = probe_error(_features(solution.parameters, representation), target, fit, score)
    if value is None:
        return ProbeScore(None, None, None, None, "undefined")
    family = solution.latent_family if representation == "latent" else solution.change_family
    if family is None:
        return ProbeScore(value, None, None, None, "unknown")
    if family.determined:
        return ProbeScore(value, value, value, True, "exact")
    if family.bounds != "sampled" and fit is score:
        low, high = family_range(family, target, fit)
        return ProbeScore(value, low, high, high - low <= IDENTIFIED_ATOL, family.bounds)
    rng = np.random.default_rng(0) if rng is None else rng
    scores = [value]
    for _ in range(SAMPLED_MEMBERS):
        member = solution.sample_member(rng)
        scores.append(probe_error(_features(member, representation), target, fit, score))
    low, high = min(scores), max(scores)
    return ProbeScore(value, low, high, high - low <= IDENTIFIED_ATOL, "sampled")


def all_probes(solution: Solution, *, fit: Transition | None = None, score: Transition | None = None) -> dict:
    """Every probe of the solve JSON: ``{representation: {target: ProbeScore}}``."""
    return {rep: {target: probe(solution, target, rep, fit=fit, score=score) for target in TARGETS}
            for rep in REPRESENTATIONS}
