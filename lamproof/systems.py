"""The data-generating system: independent sources, a linear policy and linear dynamics.

    a  = K o + e                 policy gain K, exploration e ~ (0, Σ_e)
    o' = F o + G a + ε           dynamics F, action embedding G, noise ε ~ (μ_ε, Σ_ε)

with ``o ~ (μ_o, Σ_o)``. Every variable a learner sees is a linear map of the source vector
``x = [o; e_0 … e_{k-1}; ε_0 … ε_{k-1}]`` of a ``k``-step :class:`Transition`, so every first and
second moment is exact. The module knows nothing of latent action models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg import block_diag

from lamproof._validation import (
    MAX_DIM,
    MAX_HORIZON,
    MAX_MOMENT,
    MAX_SOURCES,
    as_choice,
    as_covariance,
    as_int,
    as_matrix,
    as_real,
    as_vector,
    check_magnitude,
)
from lamproof.errors import InputError

NOISE_DISTRIBUTIONS = ("gaussian", "uniform")

#: Names of the variables of a transition, the targets a probe can read. ``obs`` is the LAM's
#: first input (a stack of frames when the LAM has a context window), ``current_obs`` the frame
#: ``o_t`` the prediction starts from (the same variable here, where the context is one frame).
VARIABLES = ("obs", "current_obs", "next_obs", "action", "exploration", "noise")

SYSTEM_FIELDS = (
    "action_matrix",
    "obs_mean",
    "obs_cov",
    "dynamics",
    "policy_gain",
    "exploration_cov",
    "noise_mean",
    "noise_cov",
    "noise_distribution",
)


def _identity_or(value, name: str, size: int, *, covariance: bool) -> np.ndarray:
    if value is None or (isinstance(value, str) and value == "identity"):
        return np.eye(size)
    if isinstance(value, str):
        raise InputError(f"{name}: the only string accepted is 'identity', got {value!r}")
    if covariance:
        return as_covariance(value, name, size)
    return as_matrix(value, name, (size, size))


#: An eigenvalue of a covariance typed by a user counts as zero below this many ``n·eps·λ_max``:
#: ``eigh`` returns the eigenvalues of a symmetric ``n × n`` matrix with an absolute error of a few
#: ``n·eps·λ_max``, so anything smaller cannot be told from an exact zero (a rank-deficient
#: ``σ²ΨΨᵀ``), while every eigenvalue above it is kept (``diag(1, 1e-12)`` is full rank).
COVARIANCE_ROUNDOFF = 16.0


def root_factor(cov: np.ndarray) -> np.ndarray:
    """``R`` with ``R Rᵀ = cov`` and one column per nonzero eigenvalue (see :data:`COVARIANCE_ROUNDOFF`).

    A diagonal covariance keeps its exact square roots; any other goes through ``eigh``.
    """
    n = cov.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    diagonal = np.diag(cov)
    if not np.any(cov - np.diag(diagonal)):
        values, vectors = diagonal, None
    else:
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    cut = COVARIANCE_ROUNDOFF * n * np.finfo(float).eps * float(np.max(np.abs(values), initial=0.0))
    keep = values > cut
    if vectors is None:
        return np.eye(n)[:, keep] * np.sqrt(values[keep])
    return vectors[:, keep] * np.sqrt(values[keep])


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues clipped to 0)."""
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


class System:
    """A linear data-generating system (docs/theory.md §1.1), validated at construction.

    Parameters mirror the ``system`` table of a ``lamproof solve`` file. Covariances may be the
    string ``"identity"``; ``noise_distribution`` chooses how noise is *sampled* (Gaussian, or
    i.i.d. uniform coordinates standardized to the given mean and covariance); moments never
    depend on it.

    Contract: ``a = K o + e``, ``o' = F o + G a + ε`` with independent ``o ~ (μ_o, Σ_o)``,
    ``e ~ (0, Σ_e)``, ``ε ~ (μ_ε, Σ_ε)`` (paper §2 with ``F = I``, ``K = χP``; docs/theory.md §1.1).
    Bad input raises :class:`~lamproof.errors.InputError` naming the field.

    >>> system = System([[1.0], [0.0]], noise_cov=[[0.1, 0], [0, 0.1]])
    >>> system.d_o, system.d_a
    (2, 1)
    >>> system.transition().second_moment("next_obs")  # E[o' o'ᵀ] = Σ_o + G Gᵀ + Σ_ε
    array([[2.1, 0. ],
           [0. , 1.1]])
    """

    def __init__(
        self,
        action_matrix,
        *,
        obs_mean=None,
        obs_cov="identity",
        dynamics="identity",
        policy_gain=None,
        exploration_cov="identity",
        noise_mean=None,
        noise_cov=None,
        noise_distribution: str = "gaussian",
    ):
        G = as_matrix(action_matrix, "action_matrix", (None, None))
        d_o, d_a = G.shape
        if d_o < 1 or d_a < 1:
            raise InputError(f"action_matrix: needs at least one row and one column, got shape {G.shape}")
        if max(d_o, d_a) > MAX_DIM:
            raise InputError(
                f"action_matrix: shape {G.shape} exceeds the largest dimension accepted, {MAX_DIM}"
            )
        self.action_matrix = G
        self.obs_mean = np.zeros(d_o) if obs_mean is None else as_vector(obs_mean, "obs_mean", d_o)
        self.obs_cov = _identity_or(obs_cov, "obs_cov", d_o, covariance=True)
        self.dynamics = _identity_or(dynamics, "dynamics", d_o, covariance=False)
        self.policy_gain = (
            np.zeros((d_a, d_o)) if policy_gain is None else as_matrix(policy_gain, "policy_gain", (d_a, d_o))
        )
        self.exploration_cov = _identity_or(exploration_cov, "exploration_cov", d_a, covariance=True)
        self.noise_mean = np.zeros(d_o) if noise_mean is None else as_vector(noise_mean, "noise_mean", d_o)
        self.noise_cov = (
            np.zeros((d_o, d_o)) if noise_cov is None else as_covariance(noise_cov, "noise_cov", d_o)
        )
        self.noise_distribution = as_choice(noise_distribution, "noise_distribution", NOISE_DISTRIBUTIONS)
        for name, array in zip(SYSTEM_FIELDS, self._arrays(), strict=False):
            check_magnitude(array, name)
            array.setflags(write=False)

    # -- description -------------------------------------------------------------------------
    @property
    def d_o(self) -> int:
        return self.action_matrix.shape[0]

    @property
    def d_a(self) -> int:
        return self.action_matrix.shape[1]

    @property
    def closed_loop(self) -> np.ndarray:
        """``F + G K``: how the observation evolves under the policy, before exploration."""
        return self.dynamics + self.action_matrix @ self.policy_gain

    @cached_property
    def _square_roots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Symmetric square roots of the three covariances, for sampling."""
        return psd_sqrt(self.obs_cov), psd_sqrt(self.exploration_cov), psd_sqrt(self.noise_cov)

    def _arrays(self):
        return (
            self.action_matrix,
            self.obs_mean,
            self.obs_cov,
            self.dynamics,
            self.policy_gain,
            self.exploration_cov,
            self.noise_mean,
            self.noise_cov,
        )

    def replace(self, **changes) -> System:
        """A copy with some fields changed (validated again: this is a public boundary).

        >>> System([[1.0], [0.0]]).replace(noise_cov=[[0.5, 0], [0, 0.5]]).noise_cov.trace()
        np.float64(1.0)
        """
        fields = {name: getattr(self, name) for name in SYSTEM_FIELDS}
        fields.update(changes)
        return System(fields.pop("action_matrix"), **fields)

    def with_noise_scaled(self, factor: float) -> System:
        """This system with its noise cleaned or amplified, ``ε → c ε`` (data cleaning, paper
        insight 6; docs/theory.md §7): noise mean ``c μ_ε`` and covariance ``c² Σ_ε``.

        Built from the validated arrays without validating them again (``c² Σ_ε`` is PSD for a
        PSD ``Σ_ε``), so a bisection over ``c`` pays for validation once, at its boundary. Only
        ``factor`` is checked.

        >>> System([[1.0]], noise_cov=[[4.0]]).with_noise_scaled(0.5).noise_cov
        array([[1.]])
        """
        c = as_real(factor, "factor", minimum=0.0)
        copy = object.__new__(System)
        for name in SYSTEM_FIELDS:
            setattr(copy, name, getattr(self, name))
        copy.noise_mean, copy.noise_cov = c * self.noise_mean, c**2 * self.noise_cov
        copy.noise_mean.setflags(write=False)
        copy.noise_cov.setflags(write=False)
        return copy

    def to_dict(self) -> dict:
        """The ``system`` table of a solve file (plain lists), inverse of :meth:`from_dict`."""
        out = {name: getattr(self, name) for name in SYSTEM_FIELDS}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, table: Mapping, prefix: str = "system.") -> System:
        """Build from a solve file's ``system`` table; unknown keys and bad values name the field."""
        if not isinstance(table, Mapping):
            raise InputError(f"{prefix.rstrip('.')}: expected a table of fields")
        unknown = sorted(set(table) - set(SYSTEM_FIELDS))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(SYSTEM_FIELDS)})")
        if "action_matrix" not in table:
            raise InputError(f"{prefix}action_matrix: required field is missing")
        kwargs = dict(table)
        try:
            return cls(kwargs.pop("action_matrix"), **kwargs)
        except InputError as error:
            raise InputError(f"{prefix}{error}") from None

    def __repr__(self) -> str:
        return f"System(d_o={self.d_o}, d_a={self.d_a}, noise={self.noise_distribution})"

    # -- the k-step transition ---------------------------------------------------------------
    def transition(self, horizon: int = 1, context: int = 1) -> Transition:
        """The variables of ``o_0 → o_k`` as linear maps of the independent sources.

        Refuses (``horizon: …``, or ``system: …`` when one step is already too much) a horizon
        whose sources exceed ``MAX_SOURCES`` or whose moments or maps ``F_cl^j G`` exceed
        ``MAX_MOMENT``, before they overflow float64 (see :func:`_moment_bound`). ``context = T > 1``
        gives the window of ``T`` frames up to ``o_t`` and ``o_{t+k}``: the System is then the
        state-space system with ``H = I``, no observation noise and the explicit initial distribution
        ``o ~ (μ_o, Σ_o)`` at the window's first frame (:meth:`~lamproof.statespace.StateSpaceSystem.from_system`).
        """
        k = as_int(horizon, "horizon", minimum=1, maximum=MAX_HORIZON)
        if as_int(context, "context", minimum=1) > 1:
            from lamproof.statespace import StateSpaceSystem

            return StateSpaceSystem.from_system(self).transition(k, context)
        d_o, d_a = self.d_o, self.d_a
        if d_o + k * (d_a + d_o) > MAX_SOURCES:
            raise InputError(
                f"horizon: {k} steps of d_o = {d_o}, d_a = {d_a} make {d_o + k * (d_a + d_o)} "
                f"sources, more than the {MAX_SOURCES} accepted"
            )
        # Source blocks: o, then e_0 … e_{k-1}, then ε_0 … ε_{k-1}; each variable is built as
        # a map per block (see _Segment), so identity and zero blocks cost nothing.
        sizes = [d_o] + [d_a] * k + [d_o] * k
        covs = [self.obs_cov] + [self.exploration_cov] * k + [self.noise_cov] * k
        means = [self.obs_mean] + [np.zeros(d_a)] * k + [self.noise_mean] * k
        F = 1.0 if np.array_equal(self.dynamics, np.eye(d_o)) else self.dynamics
        K = None if not np.any(self.policy_gain) else self.policy_gain
        G = self.action_matrix
        current = _Segment(d_o, {0: 1.0})
        actions, explorations, noises = [], [], []
        for j in range(k):
            e_j = _Segment(d_a, {1 + j: 1.0})
            eps_j = _Segment(d_o, {1 + k + j: 1.0})
            a_j = current.times(K, d_a).plus(e_j)
            current = current.times(F, d_o).plus(a_j.times(G, d_o)).plus(eps_j)
            bound = max(_moment_bound(a_j, sizes, covs, means), _moment_bound(current, sizes, covs, means))
            if not bound <= MAX_MOMENT:  # also NaN
                where = "system" if j == 0 else f"horizon: {k} steps"
                raise InputError(
                    f"{where}: second moments or maps F_cl^j G of step {j + 1} reach about "
                    f"{bound:.1e}, above the {MAX_MOMENT:g} float64 can carry through the solver "
                    f"(the scales multiply{'' if j == 0 else ' and grow with the horizon'}; "
                    f"change units{'' if j == 0 else ' or shorten the horizon'})"
                )
            actions.append(a_j)
            explorations.append(e_j)
            noises.append(eps_j)
        segments = {
            "obs": [_Segment(d_o, {0: 1.0})],
            "current_obs": [_Segment(d_o, {0: 1.0})],
            "next_obs": [current],
            "action": actions,
            "exploration": explorations,
            "noise": noises,
        }
        return Transition(
            k,
            tuple(sizes),
            tuple(covs),
            tuple(means),
            segments,
            self,
            draw=lambda n, rng: self._draw_sources(k, n, rng),
        )

    def _draw_sources(self, k: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """``n`` draws of the source blocks of a ``k``-step transition (rows are samples)."""
        d_o, d_a = self.d_o, self.d_a
        obs_root, exploration_root, noise_root = self._square_roots
        obs = _plus(_times_root(rng.standard_normal((n, d_o)), obs_root), self.obs_mean)
        exploration = np.hstack(
            [_times_root(rng.standard_normal((n, d_a)), exploration_root) for _ in range(k)]
        )
        if self.noise_distribution == "uniform":
            # i.i.d. uniform coordinates on [-√3, √3]: zero mean, unit variance.
            standard = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, k * d_o))
        else:
            standard = rng.standard_normal((n, k * d_o))
        noise = [_times_root(standard[:, j * d_o : (j + 1) * d_o], noise_root) for j in range(k)]
        noise = noise[0] if k == 1 else np.hstack(noise)
        if np.any(self.noise_mean):
            noise += np.tile(self.noise_mean, k)
        return (
            [obs]
            + [exploration[:, j * d_a : (j + 1) * d_a] for j in range(k)]
            + [noise[:, j * d_o : (j + 1) * d_o] for j in range(k)]
        )


def _times_root(draws: np.ndarray, root: np.ndarray) -> np.ndarray:
    """``draws @ root``; for a diagonal root (the paper's covariances) the same numbers elementwise.

    Each entry of the product then has one nonzero term, ``draws[i, j]·root[j, j]``, and adding the
    exact zeros of the others leaves it unchanged, so the shortcut only saves the ``n·d²`` work.
    """
    diagonal = np.diag(root)
    if root.shape[0] == root.shape[1] and not np.any(root - np.diag(diagonal)):
        return draws if np.all(diagonal == 1.0) else draws * diagonal  # x·1 is x
    return draws @ root


def _plus(draws: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``draws + mean``, skipping the pass when the mean is zero (``x + 0`` is ``x`` but for the sign
    of a zero draw)."""
    return draws + mean if np.any(mean) else draws


def _moment_bound(segment: _Segment, sizes, covs, means) -> float:
    """An upper bound on ``|E[x xᵀ]|`` entrywise for the variable ``x = Σ_b op_b s_b``, and on its maps.

    Per source block ``b`` (size ``n``): a row of ``op_b`` has norm at most ``√n·max|op_b|`` (``|c|``
    for a scalar op), ``λ_max(Σ_b) ≤ n·max|Σ_b|`` and ``|μ_b| ≤ √n·max|μ_b|``; by Cauchy–Schwarz
    ``|E[x_i x_j]| ≤ max_i E[x_i²] ≤ (Σ_b ‖row‖·√λ_max)² + (Σ_b ‖row‖·|μ_b|)²``. Only maxima are
    taken, so the bound itself cannot overflow before it exceeds :data:`MAX_MOMENT`.
    """
    spread = drift = largest_op = 0.0
    for b, op in segment.ops.items():
        n = sizes[b]
        top = abs(op) if isinstance(op, float) else float(np.max(np.abs(op), initial=0.0))
        row = top if isinstance(op, float) else np.sqrt(n) * top
        largest_op = max(largest_op, top)
        spread += row * np.sqrt(n * float(np.max(np.abs(covs[b]), initial=0.0)))
        drift += row * np.sqrt(n) * float(np.max(np.abs(means[b]), initial=0.0))
    if not (spread <= MAX_MOMENT and drift <= MAX_MOMENT):
        return max(spread, drift) if np.isfinite(max(spread, drift)) else np.inf
    return max(spread**2 + drift**2, largest_op)


def _compose(left, right):
    """``left ∘ right`` for operators that are a matrix, a scalar multiple of I, or None (zero)."""
    if left is None or right is None:
        return None
    if isinstance(left, float) or isinstance(right, float):
        return left * right
    return left @ right


def _add(left, right):
    if left is None:
        return right
    if right is None:
        return left
    if isinstance(left, float) and isinstance(right, float):
        return left + right
    if isinstance(left, float):
        return left * np.eye(right.shape[0]) + right
    if isinstance(right, float):
        return left + right * np.eye(left.shape[0])
    return left + right


@dataclass(frozen=True)
class _Segment:
    """A variable as ``Σ_b op_b · source_b``; ``op_b`` is a matrix or a scalar (times the identity)."""

    dim: int
    ops: dict

    def times(self, matrix, dim: int) -> _Segment:
        """``matrix @ self`` (``matrix`` a matrix, a scalar, or None for zero)."""
        if matrix is None:
            return _Segment(dim, {})
        return _Segment(dim, {b: _compose(matrix, op) for b, op in self.ops.items()})

    def plus(self, other: _Segment) -> _Segment:
        ops = dict(self.ops)
        for b, op in other.ops.items():
            ops[b] = _add(ops.get(b), op)
        return _Segment(self.dim, ops)

    def dense(self, sizes) -> np.ndarray:
        out = np.zeros((self.dim, sum(sizes)))
        offsets = np.cumsum((0,) + tuple(sizes))
        for b, op in self.ops.items():
            out[:, offsets[b] : offsets[b + 1]] = op * np.eye(sizes[b]) if isinstance(op, float) else op
        return out

    def mean(self, means) -> np.ndarray:
        out = np.zeros(self.dim)
        for b, op in self.ops.items():
            out += op * means[b] if isinstance(op, float) else op @ means[b]
        return out

    def apply(self, blocks, n: int) -> np.ndarray:
        """The variable's draws from draws of the source blocks (rows are samples)."""
        # Summed as (0 + t₀) + t₁ + … would be, without the zeros (0 + t is t, up to the sign of a
        # zero) and without copies: a term that is a block itself (op 1) is added, never written.
        # The result may therefore *be* a block (Transition.sample hands each out once).
        out, fresh = None, False
        for b, op in self.ops.items():
            if isinstance(op, float):
                term, new = (blocks[b], False) if op == 1.0 else (op * blocks[b], True)
            else:
                term, new = blocks[b] @ op.T, True
            if out is None:
                out, fresh = term, new
            elif fresh:
                out += term
            elif new:  # t₀ + t₁ = t₁ + t₀ exactly: accumulate in the new array
                term += out
                out, fresh = term, True
            else:
                out, fresh = out + term, True
        return np.zeros((n, self.dim)) if out is None else out

    def factor(self, roots, means) -> np.ndarray:
        """The variable's square-root factor: ``op_b R_b`` per block, then its mean (see ``Transition.factor``)."""
        blocks = []
        for b, root in enumerate(roots):
            op = self.ops.get(b)
            if op is None:
                blocks.append(np.zeros((self.dim, root.shape[1])))
            elif isinstance(op, float):
                blocks.append(op * root)
            else:
                blocks.append(op @ root)
        return np.hstack(blocks + [self.mean(means)[:, None]])

    def cov(self, other: _Segment, covs) -> np.ndarray:
        out = np.zeros((self.dim, other.dim))
        for b in self.ops.keys() & other.ops.keys():
            left, right, cov = self.ops[b], other.ops[b], covs[b]
            if isinstance(left, float) and isinstance(right, float):
                out += (left * right) * cov
            elif isinstance(left, float):
                out += left * (cov @ right.T)
            elif isinstance(right, float):
                out += right * (left @ cov)
            else:
                out += left @ cov @ right.T
        return out


class _DenseMaps(Mapping):
    """The read-only mapping :attr:`Transition.maps`: a variable's dense source map, built on first access."""

    def __init__(self, transition: Transition):
        self._transition = transition
        self._built: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._built:
            t = self._transition
            self._built[name] = np.vstack([s.dense(t._sizes) for s in t._segments[name]])
        return self._built[name]

    def __iter__(self):
        return iter(self._transition._segments)

    def __len__(self) -> int:
        return len(self._transition._segments)


class Transition:
    """A transition or window: named variables as linear maps of independent source blocks.

    The sources of a :meth:`System.transition` are ``o``, ``e_0 … e_{k-1}``, ``ε_0 … ε_{k-1}``
    with the system's means and covariances; a state-space window
    (:class:`lamproof.statespace.WindowTransition`) has its own blocks. Moments of named
    variables (``"obs"``, ``("obs", "next_obs")``, …) are computed block by block and cached;
    any other linear function is given as a dense map of the stacked sources (:meth:`stacked`,
    :attr:`maps`).

    ``context`` is the number of frames ``T`` stacked in ``obs`` (its dimension ``d_c = T·d_o``),
    ``horizon`` the number of steps ``k`` from the current frame ``o_t`` to ``next_obs``;
    ``draw(n, rng)`` returns ``n`` draws of every source block (what :meth:`sample` maps).
    """

    #: Named covariances with more segment pairs than this are formed from the dense source maps
    #: (``None``: always block by block). A long window has O((T + k)²) pairs sharing O(T + k)
    #: blocks each, where one dense product is an order of magnitude faster.
    dense_pairs: int | None = None

    def __init__(self, horizon, sizes, covs, means, segments, system, *, draw=None, context: int = 1):
        self.horizon = horizon
        self.context = context
        self.system = system
        self._sizes, self._covs, self._means = sizes, covs, means
        self._segments = segments
        self._draw = draw
        self._cache: dict = {}

    def __repr__(self) -> str:
        window = f"context={self.context}, " if self.context != 1 else ""
        return f"{type(self).__name__}({window}horizon={self.horizon}, {self.system!r})"

    def memo(self, key, compute):
        """``compute()`` once per transition and ``key``: where other modules cache what they
        derive from a transition's moments (the innovation, the dynamics' structured moments).

        >>> t = System([[1.0]]).transition()
        >>> t.memo("answer", lambda: 42), t.memo("answer", lambda: 0)
        (42, 42)
        """
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def d_o(self) -> int:
        """Dimension of one frame (``current_obs``, ``next_obs``)."""
        return self._segments["next_obs"][0].dim

    @property
    def d_c(self) -> int:
        """Dimension of the LAM's first input ``obs``: ``T · d_o``."""
        return sum(segment.dim for segment in self._segments["obs"])

    @property
    def variables(self) -> tuple[str, ...]:
        """The names this transition knows (:data:`VARIABLES`, and more for a state-space window)."""
        return tuple(self._segments)

    @property
    def frame_selector(self) -> np.ndarray:
        """``E`` (``d_o × d_c``) with ``o_t = E · obs``: the current frame within the LAM's first input.

        The identity FDM path is ``A = E`` and the tied IDM reads ``o' − E · obs``. With one frame
        ``E = I``; a context window of ``T`` frames has ``E = [0 … 0 I]``.
        """
        d_o = self.d_o
        return np.hstack([np.zeros((d_o, self.d_c - d_o)), np.eye(d_o)])

    @property
    def frame_shift(self) -> np.ndarray:
        """``S`` (``d_c × d_o``) with ``obs + S κ`` the first input with every frame shifted by ``κ``.

        Augmentation adds one shared draw to every frame, so its penalty reads ``C S`` and ``A S``.
        ``S = [I; …; I]``, the identity for one frame.
        """
        return np.tile(np.eye(self.d_o), (self.d_c // self.d_o, 1))

    @cached_property
    def source_mean(self) -> np.ndarray:
        return np.concatenate(self._means)

    @cached_property
    def source_cov(self) -> np.ndarray:
        return block_diag(*self._covs)

    @cached_property
    def source_roots(self) -> tuple[np.ndarray, ...]:
        """Per source block ``b``, a factor ``R_b`` with ``R_b R_bᵀ = Σ_b`` (:func:`root_factor`)."""
        return tuple(root_factor(cov) for cov in self._covs)

    @cached_property
    def white_size(self) -> int:
        """Columns of a :meth:`factor`: the white source coordinates, then one constant column."""
        return sum(root.shape[1] for root in self.source_roots) + 1

    def factor(self, variable, *, mean: bool = True) -> np.ndarray:
        """A square-root factor ``X`` of a variable in white source coordinates.

        ``X Xᵀ = E[v vᵀ]`` with ``mean=True`` (the last column is ``E v``: what a bias-free learner
        sees), ``X Xᵀ = Cov(v)`` with ``mean=False`` (that column dropped: what an affine probe
        sees). Factors of different variables share their columns, so ``X_u X_vᵀ`` is their cross
        moment. Working with factors rather than their products keeps the small directions that
        squaring would drown in round-off. ``variable`` is a name, a tuple of names, or a dense map
        of the stacked sources.
        """
        names = self._names(variable)
        if names is None:
            dense = np.asarray(variable, dtype=np.float64)
            offsets = np.cumsum((0,) + tuple(self._sizes))
            blocks = [
                dense[:, offsets[b] : offsets[b + 1]] @ root for b, root in enumerate(self.source_roots)
            ]
            full = np.hstack(blocks + [(dense @ self.source_mean)[:, None]])
        else:
            key = ("factor", names)
            if key not in self._cache:
                parts = [
                    segment.factor(self.source_roots, self._means)
                    for n in names
                    for segment in self._segments[n]
                ]
                self._cache[key] = np.vstack(parts) if parts else np.zeros((0, self.white_size))
            full = self._cache[key]
        return full if mean else full[:, :-1]

    @cached_property
    def maps(self) -> Mapping[str, np.ndarray]:
        """Dense maps of the sources, one per variable name (each built when first read: a long window
        has many variables, and most computations need two or three)."""
        return _DenseMaps(self)

    def _names(self, variable):
        if isinstance(variable, str):
            variable = (variable,)
        if isinstance(variable, tuple) and all(isinstance(v, str) for v in variable):
            for name in variable:
                if name not in self._segments:
                    raise InputError(f"variable: unknown name {name!r} (known: {', '.join(self._segments)})")
            return variable
        return None

    def _map(self, variable) -> np.ndarray:
        names = self._names(variable)
        if names is not None:
            key = ("map", names)
            if key not in self._cache:
                self._cache[key] = np.vstack([self.maps[name] for name in names])
            return self._cache[key]
        return np.asarray(variable, dtype=np.float64)

    def stacked(self, *variables) -> np.ndarray:
        """The dense map of the stacked variables, e.g. ``stacked("obs", "next_obs")``."""
        return np.vstack([self._map(v) for v in variables])

    def mean(self, variable) -> np.ndarray:
        names = self._names(variable)
        if names is None:
            return self._map(variable) @ self.source_mean
        key = ("mean", names)
        if key not in self._cache:
            self._cache[key] = np.concatenate([s.mean(self._means) for n in names for s in self._segments[n]])
        return self._cache[key]

    def cov(self, left, right=None) -> np.ndarray:
        """``Cov(left, right)``; each side a name, a tuple of names (stacked) or a dense source map."""
        right = left if right is None else right
        left_names, right_names = self._names(left), self._names(right)
        if left_names is None or right_names is None:
            T1, T2 = self._map(left), self._map(right)
            return T1 @ self.source_cov @ T2.T
        key = ("cov", left_names, right_names)
        if key not in self._cache:
            pairs = sum(len(self._segments[n]) for n in left_names) * sum(
                len(self._segments[n]) for n in right_names
            )
            if self.dense_pairs is not None and pairs > self.dense_pairs:
                T1, T2 = self._map(left_names), self._map(right_names)
                self._cache[key] = T1 @ self.source_cov @ T2.T
            else:
                rows = [
                    [a.cov(b, self._covs) for n2 in right_names for b in self._segments[n2]]
                    for n1 in left_names
                    for a in self._segments[n1]
                ]
                self._cache[key] = np.block(rows)
        return self._cache[key]

    def second_moment(self, left, right=None) -> np.ndarray:
        """``E[left rightᵀ]``: what a bias-free learner's optimum depends on."""
        right = left if right is None else right
        return self.cov(left, right) + np.outer(self.mean(left), self.mean(right))

    # -- attribution to sources --------------------------------------------------------------
    def source_columns(self, blocks) -> np.ndarray:
        """Indices of the stacked sources that belong to the given source blocks."""
        offsets = np.cumsum((0,) + tuple(self._sizes))
        return (
            np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b in blocks])
            if len(blocks)
            else np.zeros(0, dtype=int)
        )

    def blocks_of(self, name: str) -> tuple[int, ...]:
        """The source blocks a variable reads (for a source variable such as ``exploration``: its own)."""
        self._names(name)
        return tuple(sorted({b for segment in self._segments[name] for b in segment.ops}))

    def cov_from(self, variable, columns) -> np.ndarray:
        """The part of ``Cov(variable)`` that the source coordinates ``columns`` contribute.

        ``M_S Σ_SS M_Sᵀ`` for the dense map ``M`` of ``variable`` restricted to ``S = columns``.
        Sources in ``S`` must be uncorrelated with the others (true for whole blocks, and for the
        exogenous coordinates of a state-space window's process noise), so that contributions of
        disjoint sets add up to the covariance.
        """
        M = self._map(variable)[:, columns]
        return M @ self.source_cov[np.ix_(columns, columns)] @ M.T

    # -- sampling ----------------------------------------------------------------------------
    def sample_sources(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """``n`` independent draws of every source block (rows are samples)."""
        return self._draw(n, rng)

    def sample(
        self, n: int, rng: np.random.Generator, variables=None, *, sources: bool = True
    ) -> dict[str, np.ndarray]:
        """``n`` independent draws of the variables (default: all), one row each, and the sources
        (``sources=False``: not them).

        The random stream does not depend on ``variables``: asking for fewer only saves work.
        """
        blocks = self.sample_sources(n, rng)
        names = self._segments if variables is None else self._names(tuple(variables))
        out = {}
        for name in names:
            parts = [segment.apply(blocks, n) for segment in self._segments[name]]
            array = parts[0] if len(parts) == 1 else np.hstack(parts)
            if any(array is seen for seen in out.values()):
                array = array.copy()  # one source block (op 1) asked twice: two arrays
            out[name] = array
        if sources:
            out["sources"] = np.hstack(blocks)
        return out


# -- the paper's setups ------------------------------------------------------------------------
def random_orthonormal(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A ``rows x cols`` matrix with orthonormal columns: QR of a Gaussian matrix, as the paper does."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


def paper_parts(
    d_o: int, d_a: int, noise_dim: int, chi: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The random parts of the paper's family, drawn from ``rng`` in one order (paper §4–§5):
    ``Φ`` (``d_o x d_a``) and ``Ψ`` (``d_o x noise_dim``) from one QR, so their column spaces are
    exactly orthogonal, then, when ``χ ≠ 0``, the policy ``K = χ P`` (``P`` with orthonormal rows)
    and ``Σ_e = (1 − χ)² I`` as :class:`System` keywords (``{}`` when ``χ = 0``).

    The one home of the family's construction: :func:`paper_system` and the derivations' checked
    systems build on it. Inner code: the arguments are trusted.

    >>> phi, psi, policy = paper_parts(4, 2, 1, 0.5, np.random.default_rng(0))
    >>> np.allclose(np.hstack([phi, psi]).T @ np.hstack([phi, psi]), np.eye(3)), sorted(policy)
    (True, ['exploration_cov', 'policy_gain'])
    """
    basis = random_orthonormal(d_o, d_a + noise_dim, rng)
    policy: dict = {}
    if chi:
        P = random_orthonormal(d_o, d_a, rng).T
        policy = {"policy_gain": chi * P, "exploration_cov": (1 - chi) ** 2 * np.eye(d_a)}
    return basis[:, :d_a], basis[:, d_a:], policy


def paper_system(
    d_o: int = 128,
    d_a: int = 8,
    *,
    noise: str = "none",
    sigma: float = 0.0,
    noise_dim: int = 8,
    chi: float = 0.0,
    seed: int = 0,
) -> System:
    """The data of the paper's studies (paper §4–§7; docs/theory.md §1.4).

    ``o ~ N(0, I)``, ``o' = o + Φ a + ε`` with ``Φ`` orthonormal (QR of a Gaussian matrix) and

    - ``noise="none"``: ``ε = 0`` (§4.1);
    - ``"isotropic"``: ``ε ~ N(0, σ² I)`` (§4.2);
    - ``"structured"``: ``ε = σ Ψ b``, ``b ~ N(0, I_noise_dim)``, ``Ψ`` orthonormal (§4.3, §7);
      ``Φ`` and ``Ψ`` come from one QR, so their column spaces are exactly orthogonal;
    - ``"uniform"``: ``ε`` i.i.d. uniform on ``[0, σ)`` per coordinate, mean ``σ/2`` (§6);

    and the policy ``a = (1 − χ) e + χ P o`` with ``e ~ N(0, I)``, ``P`` with orthonormal rows (§5).

    >>> system = paper_system(16, 4, noise="isotropic", sigma=0.5)
    >>> system.d_o, system.d_a, float(system.noise_cov[0, 0])
    (16, 4, 0.25)
    """
    d_o = as_int(d_o, "d_o", minimum=1)
    d_a = as_int(d_a, "d_a", minimum=1, maximum=d_o)
    as_choice(noise, "noise", ("none", "isotropic", "structured", "uniform"))
    sigma = as_real(sigma, "sigma", minimum=0.0)
    chi = as_real(chi, "chi", minimum=0.0, maximum=1.0)
    noise_dim = as_int(
        noise_dim, "noise_dim", minimum=1, maximum=d_o - d_a if noise == "structured" else None
    )
    phi, psi, kwargs = paper_parts(
        d_o, d_a, noise_dim if noise == "structured" else 0, chi, np.random.default_rng(seed)
    )
    if noise == "isotropic":
        kwargs["noise_cov"] = sigma**2 * np.eye(d_o)
    elif noise == "structured":
        kwargs["noise_cov"] = sigma**2 * psi @ psi.T
    elif noise == "uniform":
        kwargs.update(
            noise_mean=np.full(d_o, sigma / 2),
            noise_cov=sigma**2 / 12 * np.eye(d_o),
            noise_distribution="uniform",
        )
    return System(phi, **kwargs)
