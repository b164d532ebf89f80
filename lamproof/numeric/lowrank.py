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
touch at most ``3·d_z`` directions of ``W⊥``: the ``W⊥`` parts of the rows of ``C`` and ``D``
(``2·d_z``) and of the columns of ``B`` (``d_z``). On every other direction ``u`` of ``W⊥``,
``uᵀo' = uᵀo + uᵀε`` with ``uᵀε`` independent of ``(o, z)``, so an optimal member predicts
``uᵀo`` there (``α > 0``: ``A`` is determined) and its latent ignores it. A rotation of ``W⊥``
(fixing ``W``) carries those ``3·d_z`` directions into any fixed ``s``-dimensional subspace,
``s = 3·d_z + 1`` (the one more keeps an uncaptured direction of eigenvalue ``γ`` in the reduced
problem, so a tie at ``γ`` is seen there). So every optimal member of the full problem is a
rotation of a member of the *reduced* system on ``span(W, s directions of W⊥)`` (dimension
``d' = r + s``), embedded as the identity on the rest, and conversely; the reduced system is
solved by the dense path (:func:`lamproof.numeric.closed_form.solve`), and the other
``d_o − d'`` coordinates of ``W⊥`` are accounted for exactly:

- each adds the innovation eigenvalue ``γ`` (learned and identity path alike: ``v = ε`` there),
  uncaptured, so the loss grows by ``(d_o − d')·γ`` and a tie at ``γ`` by ``d_o − d'`` directions;
- each adds ``τ`` to a probe target's total variance (``α`` for the observation, ``γ`` for the
  noise, 0 for the action) and nothing to what any member explains, so a fraction of unexplained
  variance maps as ``1 − (1 − f)·T'/T`` (``T'``, ``T``: reduced and full totals), a monotone map:
  proved bounds stay proved, witnessed members stay members (embedded by the basis), and
  ``identified``/``bounds`` are decided again on the mapped numbers with the same tolerances.

A probe fitted or scored on another system (the paper's noise-free and random-action data) is
reduced with the same basis; its factors must lie in the main system's ``W`` (else the rotations
are not its symmetries: ``solve_lowrank(…, also=[it])``). The dense path's proved interval for
such a probe is an outer bound computed from the family's features; the reduced one is computed
from fewer, so it may be tighter, never looser.

Ranks and ties are decided in the reduced problem relative to its own scale (not the full
problem's, which grows with ``d_o``): what the dense solve of the full system would call round-off
next to ``d_o`` copies of ``α`` can be signal here. The paper's systems are far from that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg

from lamproof._validation import MAX_DIM, as_choice, as_covariance, as_int, as_matrix, as_real, as_vector
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.objective import LAMParameters
from lamproof.numeric.tolerances import DECISION_RTOL
from lamproof.systems import NOISE_DISTRIBUTIONS, System, paper_parts

#: Largest ``d_o`` of a low-rank system, and largest number of entries of its factors (``d_o``
#: times their columns; 8 bytes each: 400 MB). The solve reads the factors a few times (about
#: 0.1 s per million entries); beyond these a one-line file could exhaust memory instead of being
#: answered.
MAX_LOW_RANK_DIM = 1_000_000
MAX_FACTOR_ENTRIES = 50_000_000

#: Fields of a solve file's ``paper_system`` table: :func:`lamproof.systems.paper_system`'s arguments.
PAPER_FIELDS = ("d_o", "d_a", "noise", "sigma", "noise_dim", "chi", "seed")


@dataclass(frozen=True, eq=False)
class LowRankSystem:
    """``o ~ (obs_mean, obs_scale·I)``, ``a = policy_gain·o + e`` with ``e ~ (0, exploration_cov)``,
    ``o' = o + G a + ε``, ``ε ~ (noise_mean, noise_scale·I + noise_factor·noise_factorᵀ)``:
    :class:`~lamproof.systems.System`'s fields as factors, at any ``d_o`` (``O(d_o·r)`` memory).

    :func:`lamproof.solve` solves it through its low-rank structure (module docstring) and
    :func:`lamproof.probe` / :func:`lamproof.all_probes` read the proved ranges over the full
    optimal family, as for a dense system; probes on other data take other LowRankSystems.

    >>> from lamproof import LAMSpec, LowRankSystem, probe, solve
    >>> sol = solve(LowRankSystem.paper(100_000, 8, noise="isotropic", sigma=0.5), LAMSpec(d_z=8))
    >>> round(sol.optimal_loss, 9)  # (d_o − d_z) σ²: every uncaptured direction keeps its noise
    24998.0
    >>> round(probe(sol, "action", "predicted_change").value, 9)  # σ² / (1 + σ²), paper §4.2
    0.2
    """

    action_matrix: np.ndarray  # G, d_o × d_a
    obs_scale: float = 1.0
    obs_mean: np.ndarray | None = None
    policy_gain: np.ndarray | None = None  # K, d_a × d_o
    exploration_cov: np.ndarray | None = None  # d_a × d_a (default I)
    noise_scale: float = 0.0
    noise_factor: np.ndarray | None = None  # d_o × r
    noise_mean: np.ndarray | None = None
    noise_distribution: str = "gaussian"

    def __post_init__(self):  # validated once, here: the public boundary of the low-rank path
        G = as_matrix(self.action_matrix, "action_matrix", (None, None))
        d_o, d_a = G.shape
        if d_o < 1 or d_a < 1 or d_o > MAX_LOW_RANK_DIM or d_a > MAX_DIM:
            raise InputError(
                f"action_matrix: shape {G.shape} outside 1 ≤ d_o ≤ {MAX_LOW_RANK_DIM}, 1 ≤ d_a ≤ {MAX_DIM}"
            )
        fields = {
            "action_matrix": G,
            "obs_scale": as_real(self.obs_scale, "obs_scale", minimum=np.finfo(float).tiny),
            "noise_scale": as_real(self.noise_scale, "noise_scale", minimum=0.0),
            "noise_distribution": as_choice(
                self.noise_distribution, "noise_distribution", NOISE_DISTRIBUTIONS
            ),
        }
        for name in ("obs_mean", "noise_mean"):
            if getattr(self, name) is not None:
                fields[name] = as_vector(getattr(self, name), name, d_o)
        if self.policy_gain is not None:
            fields["policy_gain"] = as_matrix(self.policy_gain, "policy_gain", (d_a, d_o))
        if self.exploration_cov is not None:
            fields["exploration_cov"] = as_covariance(self.exploration_cov, "exploration_cov", d_a)
        if self.noise_factor is not None:
            fields["noise_factor"] = as_matrix(self.noise_factor, "noise_factor", (d_o, None))
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def d_o(self) -> int:
        return self.action_matrix.shape[0]

    @property
    def d_a(self) -> int:
        return self.action_matrix.shape[1]

    @classmethod
    def paper(
        cls,
        d_o: int = 128,
        d_a: int = 8,
        *,
        noise: str = "none",
        sigma: float = 0.0,
        noise_dim: int = 8,
        chi: float = 0.0,
        seed: int = 0,
    ) -> LowRankSystem:
        """:func:`~lamproof.systems.paper_system` as factors: the same random draws, any ``d_o``
        up to :data:`MAX_LOW_RANK_DIM` (``paper(d, …).dense()`` is ``paper_system(d, …)``'s system)."""
        d_o = as_int(d_o, "d_o", minimum=1, maximum=MAX_LOW_RANK_DIM)
        d_a = as_int(d_a, "d_a", minimum=1, maximum=min(d_o, MAX_DIM))
        as_choice(noise, "noise", ("none", "isotropic", "structured", "uniform"))
        sigma = as_real(sigma, "sigma", minimum=0.0)
        chi = as_real(chi, "chi", minimum=0.0, maximum=1.0)
        noise_dim = as_int(
            noise_dim, "noise_dim", minimum=1, maximum=d_o - d_a if noise == "structured" else None
        )
        seed = as_int(seed, "seed", minimum=0)
        columns = 2 * d_a + (noise_dim if noise == "structured" else 1)
        if d_o * columns > MAX_FACTOR_ENTRIES:
            raise InputError(
                f"d_o: {d_o} rows of up to {columns} factor columns exceed the {MAX_FACTOR_ENTRIES:g} "
                "entries accepted"
            )
        phi, psi, kwargs = paper_parts(
            d_o, d_a, noise_dim if noise == "structured" else 0, chi, np.random.default_rng(seed)
        )
        if noise == "isotropic":
            kwargs["noise_scale"] = sigma**2
        elif noise == "structured":
            kwargs["noise_factor"] = sigma * psi
        elif noise == "uniform":
            kwargs.update(
                noise_scale=sigma**2 / 12, noise_mean=np.full(d_o, sigma / 2), noise_distribution="uniform"
            )
        return cls(phi, **kwargs)

    @classmethod
    def from_dict(cls, table, prefix: str = "paper_system.") -> LowRankSystem:
        """A solve file's ``paper_system`` table (the arguments of :meth:`paper`); bad values name the field."""
        if not isinstance(table, dict):
            raise InputError(f"{prefix.rstrip('.')}: expected a table of fields")
        unknown = sorted(set(table) - set(PAPER_FIELDS))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(PAPER_FIELDS)})")
        for name in ("d_o", "d_a"):
            if name not in table:
                raise InputError(f"{prefix}{name}: required field is missing")
        try:
            return cls.paper(**table)
        except InputError as error:
            raise InputError(f"{prefix}{error}") from None

    def __repr__(self) -> str:
        return f"LowRankSystem(d_o={self.d_o}, d_a={self.d_a}, noise={self.noise_distribution})"

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


#: A factor column of a probe's data lies in the solved span ``W`` when its residual is below
#: this part of its length; the rank of ``W`` itself is decided at ``DECISION_RTOL``, so a column
#: that passes is in ``W`` up to what that decision already neglects.
OUTSIDE_RTOL = DECISION_RTOL

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

    def _with_dropped(self, values: np.ndarray) -> np.ndarray:
        """A reduced operator's eigenvalues with the dropped directions' ``γ`` added, descending."""
        return np.sort(np.concatenate([values, np.full(self.dropped, self.extra_value)]))[::-1]

    @property
    def innovation_eigenvalues(self) -> np.ndarray:
        """All ``d_o`` eigenvalues of the innovation's second moment, descending."""
        return self._with_dropped(self.reduced.innovation.eigenvalues)

    @property
    def eigengap(self) -> float | None:
        """``λ_{d_z} − λ_{d_z+1}`` of the operator the latent's top eigenspace is taken of (the
        innovation's, or the reduced-rank regression's with an action head): ``None`` if undecided."""
        if self.reduced.selection is None:
            return None
        values, d = self._with_dropped(self.reduced.selection.eigenvalues), self.spec.d_z
        return None if d >= len(values) else float(values[d - 1] - values[d])

    @property
    def unique(self) -> bool | None:
        return self.reduced.unique

    @property
    def captured_dim(self) -> int:
        """The dimension of the change directions the latent carries (``rank B D``)."""
        return int(self.reduced.captured.shape[1])

    def conditions(self) -> dict:
        """:func:`lamproof.conditions.capture_conditions` of the full system. Every one is a statement
        about ranks and eigenvalues that the dropped directions (isotropic, unreached by actions,
        eigenvalue ``γ`` already present in the reduced system) leave unchanged, except
        ``controllable``, whose dimension is ``d_o``: it is recounted here."""
        from lamproof.conditions import capture_conditions, controllable_condition

        out = dict(capture_conditions(self.reduced))
        if out["controllable"].margin is not None:
            rank = int(round(out["controllable"].margin)) + self.reduced.system.d_o
            out["controllable"] = controllable_condition(rank, self.system.d_o)
        return out

    @property
    def parameters(self) -> EmbeddedParameters:
        return EmbeddedParameters(self.reduced.parameters, self.basis, self.extra)

    def probe(
        self,
        target: str,
        representation: str,
        *,
        fit: LowRankSystem | None = None,
        score: LowRankSystem | None = None,
    ):
        """:func:`lamproof.numeric.probes.probe` over the full optimal family."""
        return self.probe_family(representation, fit=fit, score=score, targets=(target,))[target]

    def probe_family(
        self,
        representation: str,
        *,
        fit: LowRankSystem | None = None,
        score: LowRankSystem | None = None,
        targets=("action", "observation", "noise"),
    ) -> dict:
        """Every target read from ``representation``: the reduced family's scores, mapped to ``d_o``."""
        from lamproof.numeric.probes import probe_family

        for name, other in (("fit", fit), ("score", score)):
            if other is not None and not isinstance(other, LowRankSystem):
                raise InputError(
                    f"{name}: the probe data of a low-rank solution is a LowRankSystem, got "
                    f"{type(other).__name__}"
                )
        score_system = (self.system if fit is None else fit) if score is None else score
        fit_t = self.reduced.transition if fit is None else self._transition(fit, "fit")
        score_t = fit_t if score is None or score is fit else self._transition(score, "score")
        found = probe_family(self.reduced, representation, fit=fit_t, score=score_t, targets=tuple(targets))
        out = {}
        for target in targets:
            reduced_total = _total(score_t, target)
            full_total = reduced_total + self.dropped * _per_direction(score_system, target)
            out[target] = _mapped(found[target], reduced_total, full_total, self.basis, self.extra)
        return out

    def all_probes(self, *, fit: LowRankSystem | None = None, score: LowRankSystem | None = None) -> dict:
        return {rep: self.probe_family(rep, fit=fit, score=score) for rep in ("predicted_change", "latent")}

    def _transition(self, other: LowRankSystem, name: str):
        """The reduced transition of ``other`` (one object per system, so the probes' moments are cached)."""
        cache = self.__dict__.setdefault("_transitions", {})
        if id(other) not in cache:
            cache[id(other)] = (other, self._reduce(other, name).transition(self.spec.horizon))
        return cache[id(other)][1]

    def _reduce(self, other: LowRankSystem, name: str) -> System:
        if other.d_o != self.system.d_o:
            raise InputError(
                f"{name}: d_o = {other.d_o} of the probe's data differs from the solved system's {self.system.d_o}"
            )
        Q = self.basis
        for factor in other.factors():
            residual = np.linalg.norm(factor - Q @ (Q.T @ factor), axis=0)
            if np.any(residual > OUTSIDE_RTOL * np.linalg.norm(factor, axis=0)):
                raise InputError(
                    f"{name}: a factor of this system lies outside the solved system's low-rank span; "
                    "solve with it included (solve_lowrank(..., also=[it]))"
                )
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
    from lamproof.numeric.probes import ProbeScore, decide

    if score.bounds == "undefined" or reduced_total == 0:
        return score
    ratio = reduced_total / full_total

    def f(x):  # not clipped: a probe fitted on other data can do worse than the mean (above 1)
        return None if x is None else 1.0 - (1.0 - x) * ratio

    lo, hi, low, high = f(score.min), f(score.max), f(score.attained_min), f(score.attained_max)
    bounds, identified = score.bounds, score.identified
    if bounds in ("exact", "outer"):  # decided again on the full problem's numbers
        identified, exact = decide(lo, hi, low, high)
        bounds = "exact" if exact else "outer"
    witnesses = (
        None
        if score.witnesses is None
        else {end: EmbeddedParameters(member, basis, extra) for end, member in score.witnesses.items()}
    )
    scores = None if score.witness_scores is None else {end: f(v) for end, v in score.witness_scores.items()}
    return ProbeScore(
        f(score.value), lo, hi, identified, bounds, low, high, witnesses, score.approached, scores
    )


def solve_lowrank(
    system: LowRankSystem, spec: LAMSpec, *, also=(), allow_numeric: bool = True
) -> LowRankSolution:
    """The optimal LAM of a :class:`LowRankSystem` through its reduction (module docstring).

    ``also``: other systems whose factors the basis must contain (the data a probe is fitted or
    scored on, when they are not already in ``W``). One frame, horizon 1.
    """
    from lamproof.numeric.closed_form import solve

    if not isinstance(system, LowRankSystem):
        raise InputError("system: expected a LowRankSystem")
    if spec.horizon != 1 or spec.context != 1:
        raise InputError(
            "lam.horizon: the low-rank path solves one step with one frame (horizon = context = 1)"
        )
    spec.check_for(system.d_o)
    for other in also:
        if not isinstance(other, LowRankSystem) or other.d_o != system.d_o:
            raise InputError(f"also: expected LowRankSystems with d_o = {system.d_o}")
    factors = system.factors() + [f for other in also for f in other.factors()]
    Q = span_basis(factors)
    r = Q.shape[1]
    extra = min(3 * spec.d_z + 1, system.d_o - r)
    if r + extra > MAX_DIM:
        raise InputError(
            f"lam.d_z: the reduced problem (the system's {r} factor directions and {extra} more "
            f"for d_z = {spec.d_z}) needs {r + extra} dimensions, more than the {MAX_DIM} the dense "
            "solver accepts"
        )
    reduced = solve(system.restricted(Q, extra), spec, allow_numeric=allow_numeric)
    dropped = system.d_o - r - extra
    notes = tuple(_full_note(n, reduced, dropped, system.noise_scale) for n in reduced.notes)
    if dropped:
        notes += (
            f"solved on {r + extra} of {system.d_o} dimensions: the span of the system's factors "
            f"({r}) and {extra} of the isotropic rest, which is the same in every direction",
        )
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
