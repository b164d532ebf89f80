"""Systems in the paper's form at any size: identity plus low-rank moments, solved in a small space.

A :class:`LowRankSystem` has ``o ~ (μ_o, α I)``, identity dynamics, actions ``a = K o + e`` through
a thin ``G`` (``d_o × d_a``), and noise ``ε ~ (μ_ε, γ I + N Nᵀ)`` with a thin ``N``: what
:func:`lamproof.systems.paper_system` builds, stored as its factors (``O(d_o·r)`` memory, never a
``d_o × d_o`` matrix).

**The reduction.** Let ``W`` be the span of every factor (``G``, ``Kᵀ``, ``N``, the means),
``r = dim W``. On ``W⊥`` every moment is isotropic: there ``o' = o + ε`` coordinate by coordinate,
with ``Var o = α``, ``Var ε = γ``, independent of everything else, so every rotation of ``W⊥`` is a
symmetry of the whole problem (system, objective, optimal family, probe targets). A member's
features (``d_z`` latent rows on ``[o; o']``, or the predicted change, whose drift lies in ``W``)
touch at most ``3·d_z`` directions of ``W⊥`` (two per latent row, and leaked observation rows),
and a rotation of ``W⊥`` carries them into any fixed ``s``-dimensional subspace with
``s ≥ 3·d_z + 1``. So the optimum and every probe range of the full problem are those of the
*reduced* system on ``span(W, s directions of W⊥)`` (dimension ``d' = r + s``), solved by the dense
path (:func:`lamproof.numeric.closed_form.solve`), plus ``d_o − d'`` more coordinates of
``W⊥``:

- each adds the innovation eigenvalue ``γ`` (learned and identity path alike: ``v = ε`` there),
  uncaptured, so the loss grows by ``(d_o − d')·γ`` and a tie at ``γ`` by ``d_o − d'`` directions;
- each adds ``τ`` to a probe target's total variance (``α`` for the observation, ``γ`` for the
  noise, 0 for the action) and nothing to what any member explains, so a fraction of unexplained
  variance maps as ``1 − (1 − f)·T'/T`` (``T'``, ``T``: reduced and full totals), a monotone map:
  proved bounds stay proved, witnessed members stay members (embedded by the basis), and
  ``identified``/``bounds`` are decided again on the mapped numbers with the same tolerances.

A probe fitted or scored on another system (the paper's noise-free and random-action data) is
reduced with the same basis; its factors must lie in the main system's ``W``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg

from lamproof._validation import MAX_DIM
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.objective import LAMParameters
from lamproof.numeric.tolerances import DECISION_RTOL, IDENTIFIED_ATOL, WITNESS_ATOL
from lamproof.systems import System, paper_parts


@dataclass(frozen=True, eq=False)
class LowRankSystem:
    """``o ~ (obs_mean, obs_scale·I)``, ``a = policy_gain·o + e``, ``o' = o + G a + ε``,
    ``ε ~ (noise_mean, noise_scale·I + noise_factor·noise_factorᵀ)``: :class:`System`'s fields as factors."""

    action_matrix: np.ndarray  # G, d_o × d_a
    obs_scale: float = 1.0
    obs_mean: np.ndarray | None = None
    policy_gain: np.ndarray | None = None  # K, d_a × d_o
    exploration_cov: np.ndarray | None = None  # d_a × d_a (default I)
    noise_scale: float = 0.0
    noise_factor: np.ndarray | None = None  # d_o × r
    noise_mean: np.ndarray | None = None
    noise_distribution: str = "gaussian"

    @property
    def d_o(self) -> int:
        return self.action_matrix.shape[0]

    @property
    def d_a(self) -> int:
        return self.action_matrix.shape[1]

    @classmethod
    def paper(cls, d_o: int = 128, d_a: int = 8, *, noise: str = "none", sigma: float = 0.0, noise_dim: int = 8,
              chi: float = 0.0, seed: int = 0) -> LowRankSystem:
        """:func:`~lamproof.systems.paper_system` as factors: the same random draws, any ``d_o``."""
        parts = paper_parts(d_o, d_a, noise=noise, sigma=sigma, noise_dim=noise_dim, chi=chi, seed=seed)
        d_o, sigma, chi = parts["d_o"], parts["sigma"], parts["chi"]
        kwargs: dict = {}
        if noise == "isotropic":
            kwargs["noise_scale"] = sigma**2
        elif noise == "structured":
            kwargs["noise_factor"] = sigma * parts["psi"]
        elif noise == "uniform":
            kwargs.update(noise_scale=sigma**2 / 12, noise_mean=np.full(d_o, sigma / 2), noise_distribution="uniform")
        if chi:
            kwargs.update(policy_gain=chi * parts["policy"], exploration_cov=(1 - chi) ** 2 * np.eye(d_a))
        return cls(parts["phi"], **kwargs)

    def replace(self, **changes) -> LowRankSystem:
        return replace(self, **changes)

    def factors(self) -> list[np.ndarray]:
        """The columns that span ``W``."""
        out = [self.action_matrix]
        if self.policy_gain is not None:
            out.append(self.policy_gain.T)
        if self.noise_factor is not None:
            out.append(self.noise_factor)
        out += [m[:, None] for m in (self.obs_mean, self.noise_mean) if m is not None]
        return out

    def restricted(self, Q: np.ndarray, extra: int = 0) -> System:
        """The system on ``span(Q)`` plus ``extra`` directions orthogonal to every factor, as a dense
        :class:`System` in the coordinates ``[Q, Q_⊥]`` (``Q``: orthonormal columns containing ``W``).
        Its ``Q_⊥`` block is isotropic whatever ``Q_⊥`` is, so it is never formed."""
        d, r = Q.shape[1] + extra, Q.shape[1]

        def lift(rows: np.ndarray) -> np.ndarray:  # Qᵀ·(something in W), zero on the extra directions
            return np.concatenate([rows, np.zeros((extra,) + rows.shape[1:])])

        kwargs = {"obs_cov": self.obs_scale * np.eye(d)}
        if self.obs_mean is not None:
            kwargs["obs_mean"] = lift(Q.T @ self.obs_mean)
        if self.policy_gain is not None:
            kwargs["policy_gain"] = lift((self.policy_gain @ Q).T).T
        if self.exploration_cov is not None:
            kwargs["exploration_cov"] = self.exploration_cov
        noise = self.noise_scale * np.eye(d)
        if self.noise_factor is not None:
            f = Q.T @ self.noise_factor
            noise[:r, :r] += f @ f.T
        kwargs["noise_cov"] = noise
        if self.noise_mean is not None:
            kwargs["noise_mean"] = lift(Q.T @ self.noise_mean)
        return System(lift(Q.T @ self.action_matrix), noise_distribution=self.noise_distribution, **kwargs)

    def dense(self) -> System:
        """The same system as a dense :class:`System` (only where ``d_o`` allows)."""
        return self.restricted(np.eye(self.d_o))


#: Cholesky QR of the factors is taken when their normalized Gram matrix has no eigenvalue below
#: this (singular values above 1e-3: rank certain, far above ``DECISION_RTOL``); else the SVD decides.
FAST_GRAM = 1e-6


def span_basis(factors: list[np.ndarray]) -> np.ndarray:
    """Orthonormal basis (``d_o × r``) of ``W = span(factors)``, the rank decided relative to the
    normalized columns (``DECISION_RTOL``). Two rounds of Cholesky QR where the columns are well
    conditioned (one pass over ``d_o × r`` each), the SVD otherwise."""
    columns = np.hstack(factors)
    scales = np.linalg.norm(columns, axis=0)
    columns = columns[:, scales > 0] / scales[scales > 0]
    if columns.shape[1] and float(np.linalg.eigvalsh(columns.T @ columns)[0]) > FAST_GRAM:
        Q = columns
        for _ in range(2):
            R = np.linalg.cholesky(Q.T @ Q)
            Q = scipy.linalg.solve_triangular(R, Q.T, lower=True).T  # Q R⁻ᵀ
        return Q
    u, s, _ = np.linalg.svd(columns, full_matrices=False)
    return u[:, s > DECISION_RTOL * (s[0] if s.size else 1.0)]


def complement_basis(Q: np.ndarray, extra: int) -> np.ndarray:
    """``extra`` orthonormal directions of ``W⊥`` (``Q``: orthonormal basis of ``W``): the residuals
    of the coordinate axes ``W`` reaches least (each keeps at least ``1 − r/d_o`` of its length),
    orthonormalized by Cholesky QR. Any choice gives the same answers (the symmetry); only
    :meth:`EmbeddedParameters.dense` needs them."""
    reach = np.einsum("ij,ij->i", Q, Q)
    axes = np.sort(np.argpartition(reach, extra - 1)[:extra])
    Z = -Q @ Q[axes].T  # e_i − Q Qᵀ e_i for the chosen axes i
    Z[axes, np.arange(extra)] += 1.0
    for _ in range(2):
        Z -= Q @ (Q.T @ Z)
        R = np.linalg.cholesky(Z.T @ Z)
        Z = scipy.linalg.solve_triangular(R, Z.T, lower=True).T
    return Z


@dataclass(frozen=True, eq=False)
class EmbeddedParameters:
    """A member of the full problem: ``reduced`` parameters in the coordinates ``[Q, Q_⊥]`` of the
    reduced system, the identity (FDM path) and zero (latent) on the rest of ``W⊥``:
    ``A = I + P (A' − I) Pᵀ``, ``B = P B'``, ``C = C' Pᵀ``, ``D = D' Pᵀ``, ``H = H'`` with ``P = [Q, Q_⊥]``."""

    reduced: LAMParameters
    basis: np.ndarray  # Q
    extra: int  # columns of Q_⊥

    def dense(self) -> LAMParameters:
        """The full matrices (``d_o × d_o``: only where that fits)."""
        Q, p = self.basis, self.reduced
        b = np.hstack([Q, complement_basis(Q, self.extra)]) if self.extra else Q
        A = np.eye(b.shape[0]) + b @ (p.A - np.eye(p.A.shape[0])) @ b.T
        return LAMParameters(A, b @ p.B, p.C @ b.T, p.D @ b.T, p.H)


@dataclass(frozen=True, eq=False)
class LowRankSolution:
    """The optimum of a :class:`LowRankSystem`: the reduced solution and how it maps back."""

    system: LowRankSystem
    spec: LAMSpec
    reduced: object  # lamproof.numeric.closed_form.Solution of the reduced system
    basis: np.ndarray  # Q: d_o × r, orthonormal basis of W
    extra: int  # s: directions of W⊥ kept in the reduced system
    extra_value: float  # γ: the innovation eigenvalue of each dropped direction of W⊥
    notes: tuple[str, ...] = field(default=())

    @property
    def dropped(self) -> int:
        """How many directions of ``W⊥`` the reduced system leaves out: ``d_o − d'``."""
        return self.system.d_o - self.basis.shape[1] - self.extra

    @property
    def method(self) -> str:
        return self.reduced.method

    @property
    def optimal_loss(self) -> float:
        return self.reduced.optimal_loss + self.dropped * self.extra_value

    @property
    def objective(self) -> float:
        return self.reduced.objective + self.dropped * self.extra_value

    @property
    def innovation_eigenvalues(self) -> np.ndarray:
        """All ``d_o`` eigenvalues of the innovation's second moment, descending."""
        values = np.concatenate([self.reduced.innovation.eigenvalues, np.full(self.dropped, self.extra_value)])
        return np.sort(values)[::-1]

    @property
    def eigengap(self) -> float | None:
        values, d = self.innovation_eigenvalues, self.spec.d_z
        return None if d >= len(values) else float(values[d - 1] - values[d])

    @property
    def unique(self) -> bool | None:
        return self.reduced.unique

    @property
    def captured_dim(self) -> int:
        return self.reduced.innovation.rank

    @property
    def parameters(self) -> EmbeddedParameters:
        return EmbeddedParameters(self.reduced.parameters, self.basis, self.extra)

    def probe(self, target: str, representation: str, *, fit: LowRankSystem | None = None,
              score: LowRankSystem | None = None):
        """:func:`lamproof.numeric.probes.probe` over the full optimal family."""
        return self.probe_family(representation, fit=fit, score=score, targets=(target,))[target]

    def probe_family(self, representation: str, *, fit: LowRankSystem | None = None,
                     score: LowRankSystem | None = None, targets=("action", "observation", "noise")) -> dict:
        """Every target read from ``representation``: the reduced family's scores, mapped to ``d_o``."""
        from lamproof.numeric.probes import probe_family

        score_system = (self.system if fit is None else fit) if score is None else score
        fit_t = self.reduced.transition if fit is None else self._transition(fit)
        score_t = fit_t if score is None or score is fit else self._transition(score)
        found = probe_family(self.reduced, representation, fit=fit_t, score=score_t, targets=tuple(targets))
        out = {}
        for target in targets:
            reduced_total = _total(score_t, target)
            full_total = reduced_total + self.dropped * _per_direction(score_system, target)
            out[target] = _mapped(found[target], reduced_total, full_total, self.basis, self.extra)
        return out

    def all_probes(self, *, fit: LowRankSystem | None = None, score: LowRankSystem | None = None) -> dict:
        return {rep: self.probe_family(rep, fit=fit, score=score) for rep in ("predicted_change", "latent")}

    def _transition(self, other: LowRankSystem):
        """The reduced transition of ``other`` (one object per system, so the probes' moments are cached)."""
        cache = self.__dict__.setdefault("_transitions", {})
        if id(other) not in cache:
            cache[id(other)] = (other, self._reduce(other).transition(self.spec.horizon))
        return cache[id(other)][1]

    def _reduce(self, other: LowRankSystem) -> System:
        if other.d_o != self.system.d_o:
            raise InputError(f"fit: d_o = {other.d_o} differs from the solved system's {self.system.d_o}")
        Q = self.basis
        for factor in other.factors():
            residual = factor - Q @ (Q.T @ factor)
            if np.linalg.norm(residual) > 1e3 * np.finfo(float).eps * max(np.linalg.norm(factor), 1e-300) * other.d_o:
                raise InputError("fit: a factor of this system lies outside the solved system's low-rank span; "
                                 "solve with it included (solve_lowrank(..., also=[it]))")
        return other.restricted(self.basis, self.extra)


def _total(transition, target: str) -> float:
    from lamproof.numeric.probes import TARGETS

    T = transition.factor(TARGETS[target], mean=False)
    return float(np.sum(T**2))


def _per_direction(system: LowRankSystem, target: str) -> float:
    """The variance a dropped direction of ``W⊥`` adds to a probe target's total."""
    return {"action": 0.0, "observation": system.obs_scale, "noise": system.noise_scale}[target]


def _mapped(score, reduced_total: float, full_total: float, basis: np.ndarray, extra: int):
    """A reduced :class:`~lamproof.numeric.probes.ProbeScore` on the full problem (see the module docstring)."""
    from lamproof.numeric.probes import ProbeScore

    if score.bounds == "undefined" or reduced_total == 0:
        return score
    ratio = reduced_total / full_total

    def f(x):  # not clipped: a probe fitted on other data can do worse than the mean (above 1)
        return None if x is None else 1.0 - (1.0 - x) * ratio

    lo, hi, low, high = f(score.min), f(score.max), f(score.attained_min), f(score.attained_max)
    bounds, identified = score.bounds, score.identified
    if bounds in ("exact", "outer"):
        exact = hi is not None and abs(low - lo) <= WITNESS_ATOL and abs(high - hi) <= WITNESS_ATOL
        bounds = "exact" if exact else "outer"
        if hi is not None and hi - lo <= IDENTIFIED_ATOL:
            identified = True
        elif high - low > IDENTIFIED_ATOL:
            identified = False
        else:
            identified = None
    witnesses = None if score.witnesses is None else {end: EmbeddedParameters(member, basis, extra)
                                                      for end, member in score.witnesses.items()}
    scores = None if score.witness_scores is None else {end: f(v) for end, v in score.witness_scores.items()}
    return ProbeScore(f(score.value), lo, hi, identified, bounds, low, high, witnesses, score.approached, scores)


def solve_lowrank(system: LowRankSystem, spec: LAMSpec, *, also=(), allow_numeric: bool = True) -> LowRankSolution:
    """The optimal LAM of a :class:`LowRankSystem` through its reduction (module docstring).

    ``also``: other systems whose factors the basis must contain (the data a probe is fitted or
    scored on, when they are not already in ``W``). One frame, horizon 1.
    """
    from lamproof.numeric.closed_form import solve

    if not isinstance(system, LowRankSystem):
        raise InputError("system: expected a LowRankSystem")
    if spec.horizon != 1 or spec.context != 1:
        raise InputError("lam.horizon: the low-rank path solves one step with one frame (horizon = context = 1)")
    spec.check_for(system.d_o)
    for other in also:
        if not isinstance(other, LowRankSystem) or other.d_o != system.d_o:
            raise InputError(f"also: expected LowRankSystems with d_o = {system.d_o}")
    factors = system.factors() + [f for other in also for f in other.factors()]
    Q = span_basis(factors)
    r = Q.shape[1]
    extra = min(3 * spec.d_z + 1, system.d_o - r)
    if r + extra > MAX_DIM:
        raise InputError(f"system: its low-rank part and d_z need {r + extra} dimensions, more than the "
                         f"{MAX_DIM} the dense solver accepts")
    reduced = solve(system.restricted(Q, extra), spec, allow_numeric=allow_numeric)
    dropped = system.d_o - r - extra
    notes = tuple(_full_note(n, reduced, dropped, system.noise_scale) for n in reduced.notes)
    if dropped:
        notes += (f"solved on {r + extra} of {system.d_o} dimensions: the span of the system's factors "
                  f"({r}) and {extra} of the isotropic rest, which is the same in every direction",)
    return LowRankSolution(system, spec, reduced, Q, extra, system.noise_scale, notes)


def _full_note(note: str, reduced, dropped: int, gamma: float) -> str:
    """The reduced solution's tie note with the full tie size (a tie at γ gains the dropped directions)."""
    space = reduced.selection
    if not dropped or space is None or not space.tied or not note.startswith("eigenvalue tie"):
        return note
    level = float(space.eigenvalues[space.tie_start])
    if abs(level - gamma) > DECISION_RTOL * max(level, gamma, np.finfo(float).tiny):
        return note
    m = space.tie.shape[1]
    return note.replace(f"of {m} tied", f"of {m + dropped} tied")
