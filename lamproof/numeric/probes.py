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
import scipy.sparse

from lamproof.errors import InputError
from lamproof.numeric.closed_form import FeatureFamily, Solution
from lamproof.numeric.linalg import RANK_RTOL, pinv_psd, scale_of, whitener
from lamproof.numeric.objective import OBSERVED, LAMParameters
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


class _Moments:
    """First and second moments of ``x = [o; o']`` and of each probe target, from a transition."""

    def __init__(self, transition: Transition):
        self.transition = transition
        self.mean_x = transition.mean(OBSERVED)
        self.cov_x = transition.cov(OBSERVED)

    def quad(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``left · Cov(x) · rightᵀ``, with mostly-zero maps (selectors) multiplied as sparse."""
        return _product(right, _product(left, self.cov_x).T).T

    def target(self, target: str):
        """``(mean_t, Cov(t, x), tr Cov(t))`` of a target (by its probe name)."""
        name = TARGETS[target]
        t = self.transition
        return t.mean(name), t.cov(name, OBSERVED), float(np.trace(t.cov(name)))

    def undefined(self, total: float) -> bool:
        """A target without variance has no fraction of variance to explain."""
        return total <= RANK_RTOL * scale_of(np.diag(self.cov_x))


def _product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right``, through a sparse copy of a large ``left`` when at most a tenth of it is nonzero.

    Below ~2e5 entries building the sparse copy costs more than the dense product saves.
    """
    if left.size > 200_000 and np.count_nonzero(left) * 10 <= left.size:
        return np.asarray(scipy.sparse.csr_matrix(left) @ right)
    return left @ right


def _moments_of(transition: Transition) -> _Moments:
    cache = transition._cache
    if "probe_moments" not in cache:
        cache["probe_moments"] = _Moments(transition)
    return cache["probe_moments"]


def probe_errors(features: np.ndarray, fit: Transition, score: Transition | None = None,
                 targets=tuple(TARGETS)) -> dict[str, float | None]:
    """Fraction of unexplained variance of each target by the best affine probe of ``features @ [o; o']``.

    The probe is fitted on ``fit`` and scored on ``score`` (default: ``fit``); ``None`` for a
    target without variance on ``score``.
    """
    fit_m = _moments_of(fit)
    score_m = fit_m if score is None else _moments_of(score)
    features = np.atleast_2d(features)
    cov_f = features @ fit_m.cov_x @ features.T
    inverse = pinv_psd(cov_f)
    mean_f_fit = features @ fit_m.mean_x
    mean_f_score = features @ score_m.mean_x
    cov_f_score = cov_f if score_m is fit_m else features @ score_m.cov_x @ features.T
    out = {}
    for target in targets:
        mean_t, cross_fit, _ = fit_m.target(target)
        coef = cross_fit @ features.T @ inverse
        intercept = mean_t - coef @ mean_f_fit
        mean_s, cross_s, total = score_m.target(target)
        if score_m.undefined(total):
            out[target] = None
            continue
        variance = total - 2 * np.sum(coef * (cross_s @ features.T)) + np.sum((coef @ cov_f_score) * coef)
        residual_mean = mean_s - coef @ mean_f_score - intercept
        out[target] = max(float(variance + residual_mean @ residual_mean), 0.0) / total
    return out


def probe_error(features: np.ndarray, target: str, fit: Transition, score: Transition | None = None) -> float | None:
    """:func:`probe_errors` for one target."""
    if target not in TARGETS:
        raise InputError(f"target: must be one of {', '.join(TARGETS)}, got {target!r}")
    return probe_errors(features, fit, score, targets=(target,))[target]


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


def family_ranges(family: FeatureFamily, transition: Transition, targets=tuple(TARGETS)) -> dict:
    """Exact (or outer) ``(min, max)`` score of each target over a family described by features.

    Explained variance is ``EV(fixed) + tr((UᵀAU)⁻¹ UᵀXXᵀU)`` for a ``k``-dimensional choice
    ``U`` inside ``span(free)``, where ``A`` and ``X`` are the covariance of ``free`` and its
    cross-covariance with the target, both residualized on ``fixed``; its extremes are sums of
    the top / bottom ``k`` eigenvalues of ``A^{-1/2} X Xᵀ A^{-1/2}`` (Ky Fan).
    """
    m = _moments_of(transition)
    fixed = family.fixed
    inv_fixed = pinv_psd(m.quad(fixed, fixed))

    def gains(free: np.ndarray, crosses: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        cov_wf = m.quad(free, fixed)
        A = m.quad(free, free) - cov_wf @ inv_fixed @ cov_wf.T
        whiten = whitener(A)
        out = []
        for cross in crosses:  # cross = Cov(x, t)
            X = _product(free, cross) - cov_wf @ inv_fixed @ (fixed @ cross)
            Y = whiten.T @ X  # gains are the squared singular values of Y
            small = Y.T @ Y if Y.shape[1] < Y.shape[0] else Y @ Y.T
            values = np.clip(np.linalg.eigvalsh(small)[::-1], 0.0, None)
            padded = np.zeros(whiten.shape[1])
            padded[: min(len(values), len(padded))] = values[: len(padded)]
            out.append(padded)
        return out, free.shape[0] - whiten.shape[1]

    results: dict = {}
    crosses, totals, bases = [], [], []
    for target in targets:
        _, cross_tx, total = m.target(target)
        crosses.append(cross_tx.T)
        totals.append(total)
        cf = cross_tx @ fixed.T
        bases.append(float(np.sum((cf @ inv_fixed) * cf)))
    best_gains, null = gains(family.free, crosses)
    worst_gains = best_gains
    if family.free_for_min is not None:
        worst_gains, null = gains(family.free_for_min, crosses)
    worst_k = max(0, family.k_min - null)
    for i, target in enumerate(targets):
        if m.undefined(totals[i]):
            results[target] = None
            continue
        best = bases[i] + float(np.sum(best_gains[i][: family.k_max]))
        worst = bases[i] + (float(np.sum(worst_gains[i][::-1][:worst_k])) if worst_k else 0.0)
        clip = lambda ev, total=totals[i]: min(max(1.0 - ev / total, 0.0), 1.0)  # noqa: E731
        results[target] = (clip(best), clip(worst))
    return results


def _features(params: LAMParameters, representation: str) -> np.ndarray:
    return params.latent_map if representation == "latent" else params.predicted_change_map


def _features(params: LAMParameters, representation: str) -> np.ndarray:
    return params.latent_map if representation == "latent" else params.predicted_change_map


def _check(target: str, representation: str) -> None:
    if target not in TARGETS:
        raise InputError(f"target: must be one of {', '.join(TARGETS)}, got {target!r}")
    if representation not in REPRESENTATIONS:
        raise InputError(f"representation: must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")


def probe_family(solution: Solution, representation: str, *, fit: Transition | None = None,
                 score: Transition | None = None, targets=tuple(TARGETS),
                 rng: np.random.Generator | None = None) -> dict[str, ProbeScore]:
    """Probe scores of several targets read from one representation, over the optimal family."""
    for target in targets:
        _check(target, representation)
    fit = solution.transition if fit is None else fit
    same = score is None or score is fit
    family = solution.latent_family if representation == "latent" else solution.change_family
    if family is not None and family.determined:  # one member: its (possibly compressed) features
        values = probe_errors(family.fixed, fit, score, targets)
        return {t: ProbeScore(v, v, v, True, "exact") if v is not None else _UNDEFINED for t, v in values.items()}
    compress = (lambda f: f) if family is None or family.column_space is None \
        else (lambda f: family.column_space.T @ f)  # noqa: E731  (same information, fewer rows)
    values = probe_errors(compress(_features(solution.parameters, representation)), fit, score, targets)
    if family is None:
        return {t: ProbeScore(v, None, None, None, "unknown") if v is not None else _UNDEFINED
                for t, v in values.items()}
    if family.bounds != "sampled" and same:
        ranges = family_ranges(family, fit, targets)
        return {t: ProbeScore(values[t], *ranges[t], ranges[t][1] - ranges[t][0] <= IDENTIFIED_ATOL, family.bounds)
                if values[t] is not None else _UNDEFINED for t in targets}
    rng = np.random.default_rng(0) if rng is None else rng
    samples = [values]
    for _ in range(SAMPLED_MEMBERS):
        member = _features(solution.sample_member(rng), representation)
        samples.append(probe_errors(compress(member), fit, score, targets))
    out = {}
    for t in targets:
        if values[t] is None:
            out[t] = _UNDEFINED
            continue
        low, high = min(s[t] for s in samples), max(s[t] for s in samples)
        out[t] = ProbeScore(values[t], low, high, high - low <= IDENTIFIED_ATOL, "sampled")
    return out


_UNDEFINED = ProbeScore(None, None, None, None, "undefined")


def probe(solution: Solution, target: str, representation: str, *, fit: Transition | None = None,
          score: Transition | None = None, rng: np.random.Generator | None = None) -> ProbeScore:
    """The probe score of ``target`` read from ``representation`` over the solution's optimal family."""
    _check(target, representation)
    return probe_family(solution, representation, fit=fit, score=score, targets=(target,), rng=rng)[target]


def all_probes(solution: Solution, *, fit: Transition | None = None, score: Transition | None = None) -> dict:
    """Every probe of the solve JSON: ``{representation: {target: ProbeScore}}``."""
    return {rep: probe_family(solution, rep, fit=fit, score=score) for rep in REPRESENTATIONS}
