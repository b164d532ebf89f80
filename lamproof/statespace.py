"""A linear state-space system with hidden and exogenous state, and its windows of frames.

    s' = F s + G a + w          dynamics F (n × n), action embedding G (n × d_a), w ~ (μ_w, Σ_w)
    o  = H s + v                observation H (d_o × n), v ~ (0, Σ_v)
    a  = K o + e                policy gain K (d_a × d_o), exploration e ~ (0, Σ_e)

with ``w``, ``v``, ``e`` independent across time and of each other. The state at the first
frame of a window is drawn from the ``initial`` distribution: ``"stationary"`` (the stationary
distribution of the closed loop, which must be stable) or an explicit mean and covariance.

Coordinates listed in ``exogenous`` evolve on their own: the actions do not reach them (their
rows of ``G`` are zero), the rest of the state does not drive them (their rows of ``F`` vanish
outside the exogenous columns) and their process noise is uncorrelated with the rest's. They may
drive the rest (``F``'s exogenous columns) and the policy may read them through ``o``.

:meth:`StateSpaceSystem.transition` gives the exact joint moments of a window
``(o_{t−T+1}, …, o_t, a_t, …, a_{t+k−1}, o_{t+k})`` as a :class:`WindowTransition`, the
:class:`lamproof.systems.Transition` interface with more variables (state, exogenous
innovation). Today's :class:`lamproof.systems.System` is the case ``H = I``, ``Σ_v = 0`` with the
explicit initial distribution ``o ~ (μ_o, Σ_o)`` (:meth:`StateSpaceSystem.from_system`).

Like :mod:`lamproof.systems`, this module knows nothing of latent action models; the Kalman
filter routes at the end are the system's own prediction theory.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np
import scipy.linalg

from lamproof._validation import (
    MAX_SOURCES,
    as_choice,
    as_covariance,
    as_int,
    as_matrix,
    as_vector,
)
from lamproof.errors import InputError
from lamproof.numeric.linalg import pinv_psd
from lamproof.systems import NOISE_DISTRIBUTIONS, System, Transition, _Segment, psd_sqrt

__all__ = [
    "STATE_SPACE_FIELDS",
    "WINDOW_VARIABLES",
    "StateSpaceSystem",
    "WindowTransition",
    "windows",
    "random_walk_with_exogenous",
]

#: Fields of the ``state_space`` table of a solve file, in the order of the constructor.
STATE_SPACE_FIELDS = (
    "dynamics",
    "action_matrix",
    "observation",
    "process_noise_mean",
    "process_noise_cov",
    "observation_noise_cov",
    "policy_gain",
    "exploration_cov",
    "exogenous",
    "initial",
    "process_noise_distribution",
)

#: Variables of a window, beyond those of a one-step :class:`Transition` (``obs``,
#: ``current_obs``, ``next_obs``, ``action``, ``exploration``, ``noise``): the states at the
#: current and the predicted frame, every frame's observation noise, and (when exogenous
#: coordinates are declared) the exogenous innovation ``x_{t+k} − E[x_{t+k} | x_t]``.
WINDOW_VARIABLES = ("state", "next_state", "observation_noise", "exogenous")

#: ``F_cl`` counts as unstable when its spectral radius is at least ``1 − STABILITY_MARGIN``:
#: eigenvalues carry an error of about ``eps · ‖F‖``, so within 1e-10 of the unit circle
#: marginal stability (the random walk, where the stationary covariance diverges) cannot be
#: told from stability. The same margin as :data:`lamproof.control.STABILITY_MARGIN`.
STABILITY_MARGIN = 1e-10


def _identity_or_matrix(value, name: str, shape: tuple[int, int]) -> np.ndarray:
    if value is None or (isinstance(value, str) and value == "identity"):
        if shape[0] != shape[1]:
            raise InputError(f"{name}: the identity needs a square shape, here {shape} (give the matrix)")
        return np.eye(shape[0])
    if isinstance(value, str):
        raise InputError(f"{name}: the only string accepted is 'identity', got {value!r}")
    return as_matrix(value, name, shape)


def _covariance_or_identity(value, name: str, size: int) -> np.ndarray:
    if isinstance(value, str) and value == "identity":
        return np.eye(size)
    if isinstance(value, str):
        raise InputError(f"{name}: the only string accepted is 'identity', got {value!r}")
    return as_covariance(value, name, size)


def _indices(value, name: str, n: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"{name}: expected a list of state indices, got {value!r}")
    out = []
    for item in value:
        index = as_int(item, name, minimum=0, maximum=n - 1)
        if index in out:
            raise InputError(f"{name}: state index {index} is listed twice")
        out.append(index)
    return tuple(sorted(out))


class StateSpaceSystem:
    """A validated linear state-space system (module docstring); knows nothing of LAMs.

    Parameters mirror the ``state_space`` table of a solve file. ``observation`` defaults to the
    identity (then ``n = d_o``); ``exploration_cov`` defaults to the identity; every other noise
    and the policy gain default to zero. ``initial`` is ``"stationary"`` or a mapping with
    ``cov`` (required) and ``mean`` (default zero): the distribution of the state at a window's
    first frame. ``process_noise_distribution`` (``"gaussian"`` or ``"uniform"``: i.i.d. uniform
    coordinates standardized to ``Σ_w``) only changes how ``w`` is *sampled*, never a moment.
    """

    def __init__(
        self,
        dynamics,
        action_matrix,
        *,
        observation=None,
        process_noise_mean=None,
        process_noise_cov=None,
        observation_noise_cov=None,
        policy_gain=None,
        exploration_cov="identity",
        exogenous=(),
        initial="stationary",
        process_noise_distribution: str = "gaussian",
    ):
        F = as_matrix(dynamics, "dynamics", (None, None))
        if F.shape[0] != F.shape[1] or F.shape[0] < 1:
            raise InputError(f"dynamics: must be square with at least one row, got shape {F.shape}")
        n = F.shape[0]
        G = as_matrix(action_matrix, "action_matrix", (n, None))
        if G.shape[1] < 1:
            raise InputError(f"action_matrix: needs at least one column, got shape {G.shape}")
        d_a = G.shape[1]
        if observation is None or (isinstance(observation, str) and observation == "identity"):
            H = _identity_or_matrix(observation, "observation", (n, n))
        else:
            H = as_matrix(observation, "observation", (None, n))
            if H.shape[0] < 1:
                raise InputError(f"observation: needs at least one row, got shape {H.shape}")
        d_o = H.shape[0]
        self.dynamics, self.action_matrix, self.observation = F, G, H
        self.process_noise_mean = (
            np.zeros(n)
            if process_noise_mean is None
            else as_vector(process_noise_mean, "process_noise_mean", n)
        )
        self.process_noise_cov = (
            np.zeros((n, n))
            if process_noise_cov is None
            else _covariance_or_identity(process_noise_cov, "process_noise_cov", n)
        )
        self.observation_noise_cov = (
            np.zeros((d_o, d_o))
            if observation_noise_cov is None
            else _covariance_or_identity(observation_noise_cov, "observation_noise_cov", d_o)
        )
        self.policy_gain = (
            np.zeros((d_a, d_o)) if policy_gain is None else as_matrix(policy_gain, "policy_gain", (d_a, d_o))
        )
        self.exploration_cov = _covariance_or_identity(exploration_cov, "exploration_cov", d_a)
        self.exogenous = _indices(exogenous, "exogenous", n)
        self.process_noise_distribution = as_choice(
            process_noise_distribution, "process_noise_distribution", NOISE_DISTRIBUTIONS
        )
        self._check_exogenous()
        self._initial_spec = initial
        self.initial_mean, self.initial_cov = self._initial(initial)
        for array in (
            F,
            G,
            H,
            self.process_noise_mean,
            self.process_noise_cov,
            self.observation_noise_cov,
            self.policy_gain,
            self.exploration_cov,
            self.initial_mean,
            self.initial_cov,
        ):
            array.setflags(write=False)

    # -- validation ----------------------------------------------------------------------------
    def _check_exogenous(self) -> None:
        x, rest = list(self.exogenous), list(self.endogenous)
        for i in x:
            if np.any(self.action_matrix[i] != 0):
                raise InputError(
                    f"exogenous: state {i} is reached by the actions (row {i} of action_matrix "
                    "is nonzero); exogenous coordinates evolve on their own"
                )
            if rest and np.any(self.dynamics[i, rest] != 0):
                j = rest[int(np.flatnonzero(self.dynamics[i, rest] != 0)[0])]
                raise InputError(
                    f"exogenous: state {i} is driven by the non-exogenous state {j} "
                    f"(dynamics[{i}][{j}] != 0); exogenous coordinates evolve on their own"
                )
            if rest and np.any(self.process_noise_cov[i, rest] != 0):
                j = rest[int(np.flatnonzero(self.process_noise_cov[i, rest] != 0)[0])]
                raise InputError(
                    f"exogenous: the process noise of state {i} is correlated with that of the "
                    f"non-exogenous state {j} (process_noise_cov[{i}][{j}] != 0)"
                )

    def _initial(self, initial) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        if isinstance(initial, str):
            as_choice(initial, "initial", ("stationary",))
            F_cl = self.closed_loop
            radius = float(np.max(np.abs(np.linalg.eigvals(F_cl))))
            if radius >= 1.0 - STABILITY_MARGIN:
                raise InputError(
                    f"initial: the closed loop F + G K H has spectral radius {radius:.6g} >= 1, so there is no "
                    "stationary distribution; give initial = {mean = [...], cov = [[...]]}"
                )
            cov = scipy.linalg.solve_discrete_lyapunov(F_cl, self.closed_loop_noise_cov)
            mean = np.linalg.solve(np.eye(n) - F_cl, self.process_noise_mean)
            return mean, (cov + cov.T) / 2
        if not isinstance(initial, Mapping):
            raise InputError(
                f"initial: expected 'stationary' or a table with 'mean' and 'cov', got {initial!r}"
            )
        unknown = sorted(set(initial) - {"mean", "cov"})
        if unknown:
            raise InputError(f"initial.{unknown[0]}: unknown field (known: mean, cov)")
        if "cov" not in initial:
            raise InputError("initial.cov: required field is missing")
        cov = as_covariance(initial["cov"], "initial.cov", n)
        mean = np.zeros(n) if initial.get("mean") is None else as_vector(initial["mean"], "initial.mean", n)
        return mean, cov

    # -- description ---------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.dynamics.shape[0]

    @property
    def d_o(self) -> int:
        return self.observation.shape[0]

    @property
    def d_a(self) -> int:
        return self.action_matrix.shape[1]

    @property
    def endogenous(self) -> tuple[int, ...]:
        """The state indices not declared exogenous."""
        return tuple(i for i in range(self.n) if i not in self.exogenous)

    @property
    def stationary(self) -> bool:
        """Whether the initial distribution is the closed loop's stationary one."""
        return isinstance(self._initial_spec, str)

    @property
    def closed_loop(self) -> np.ndarray:
        """``F_cl = F + G K H``: how the state evolves under the policy (``a = K H s + K v + e``)."""
        return self.dynamics + self.action_matrix @ self.policy_gain @ self.observation

    @property
    def closed_loop_noise_cov(self) -> np.ndarray:
        """``Σ_w + G Σ_e Gᵀ + G K Σ_v Kᵀ Gᵀ``: the covariance of ``s' − F_cl s``."""
        GK = self.action_matrix @ self.policy_gain
        return (
            self.process_noise_cov
            + self.action_matrix @ self.exploration_cov @ self.action_matrix.T
            + GK @ self.observation_noise_cov @ GK.T
        )

    def __repr__(self) -> str:
        initial = "stationary" if self.stationary else "explicit initial"
        exo = f", exogenous={list(self.exogenous)}" if self.exogenous else ""
        return f"StateSpaceSystem(n={self.n}, d_o={self.d_o}, d_a={self.d_a}{exo}, {initial})"

    # -- conversion ----------------------------------------------------------------------------
    def _fields(self) -> dict:
        initial = "stationary" if self.stationary else {"mean": self.initial_mean, "cov": self.initial_cov}
        return {
            "dynamics": self.dynamics,
            "action_matrix": self.action_matrix,
            "observation": self.observation,
            "process_noise_mean": self.process_noise_mean,
            "process_noise_cov": self.process_noise_cov,
            "observation_noise_cov": self.observation_noise_cov,
            "policy_gain": self.policy_gain,
            "exploration_cov": self.exploration_cov,
            "exogenous": list(self.exogenous),
            "initial": initial,
            "process_noise_distribution": self.process_noise_distribution,
        }

    def replace(self, **changes) -> StateSpaceSystem:
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - set(STATE_SPACE_FIELDS))
        if unknown:
            raise InputError(f"{unknown[0]}: unknown field (known: {', '.join(STATE_SPACE_FIELDS)})")
        fields = self._fields()
        fields.update(changes)
        return StateSpaceSystem(fields.pop("dynamics"), fields.pop("action_matrix"), **fields)

    def to_dict(self) -> dict:
        """The ``state_space`` table of a solve file (plain lists), inverse of :meth:`from_dict`."""

        def plain(value):
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {name: plain(value) for name, value in self._fields().items()}

    @classmethod
    def from_dict(cls, table: Mapping, prefix: str = "state_space.") -> StateSpaceSystem:
        """Build from a solve file's ``state_space`` table; unknown keys and bad values name the field."""
        if not isinstance(table, Mapping):
            raise InputError(f"{prefix.rstrip('.')}: expected a table of fields")
        unknown = sorted(set(table) - set(STATE_SPACE_FIELDS))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(STATE_SPACE_FIELDS)})")
        for required in ("dynamics", "action_matrix"):
            if required not in table:
                raise InputError(f"{prefix}{required}: required field is missing")
        kwargs = dict(table)
        try:
            return cls(kwargs.pop("dynamics"), kwargs.pop("action_matrix"), **kwargs)
        except InputError as error:
            raise InputError(f"{prefix}{error}") from None

    @classmethod
    def from_system(cls, system: System) -> StateSpaceSystem:
        """Today's :class:`System` as a state-space system: ``s = o``, ``H = I``, ``Σ_v = 0``,
        ``w = ε``, and the explicit initial distribution ``o ~ (μ_o, Σ_o)``."""
        if not isinstance(system, System):
            raise InputError(f"system: expected a lamproof System, got {type(system).__name__}")
        return cls(
            system.dynamics,
            system.action_matrix,
            process_noise_mean=system.noise_mean,
            process_noise_cov=system.noise_cov,
            policy_gain=system.policy_gain,
            exploration_cov=system.exploration_cov,
            initial={"mean": system.obs_mean, "cov": system.obs_cov},
            process_noise_distribution=system.noise_distribution,
        )

    # -- windows -------------------------------------------------------------------------------
    @cached_property
    def _roots(self) -> dict[str, np.ndarray]:
        return {
            "initial": psd_sqrt(self.initial_cov),
            "exploration": psd_sqrt(self.exploration_cov),
            "process": psd_sqrt(self.process_noise_cov),
            "observation": psd_sqrt(self.observation_noise_cov),
        }

    def transition(self, horizon: int = 1, context: int = 1) -> WindowTransition:
        """The window of ``context = T`` frames up to ``o_t`` and ``o_{t+k}`` (``k = horizon``).

        The initial distribution is that of the state at the window's first frame ``o_{t−T+1}``.
        """
        k = as_int(horizon, "horizon", minimum=1)
        T = as_int(context, "context", minimum=1)
        n, d_o, d_a = self.n, self.d_o, self.d_a
        sources = n + (T + k) * d_o + (T + k - 1) * (d_a + n)
        if sources > MAX_SOURCES:
            raise InputError(
                f"horizon: a window of {T} + {k} frames with n = {n}, d_o = {d_o}, d_a = {d_a} has up to "
                f"{sources} sources, more than the {MAX_SOURCES} accepted"
            )
        return WindowTransition(self, T, k)

    def sample_trajectories(self, count: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``count`` independent trajectories of ``length`` frames from the initial distribution.

        Arrays of shape ``(count, length, ·)``: ``state``, ``obs``, ``action``, ``exploration``
        (the last two hold ``length − 1`` steps). A window at any position of a trajectory has the
        distribution of :meth:`transition` when the initial distribution is stationary; with an
        explicit one, only the window that starts at frame 0 does.
        """
        count = as_int(count, "count", minimum=1)
        length = as_int(length, "length", minimum=1)
        n, d_o, d_a = self.n, self.d_o, self.d_a
        roots = self._roots
        F, G, H, K = self.dynamics, self.action_matrix, self.observation, self.policy_gain
        state = np.empty((count, length, n))
        obs = np.empty((count, length, d_o))
        action = np.empty((count, max(length - 1, 0), d_a))
        exploration = np.empty_like(action)
        s = rng.standard_normal((count, n)) @ roots["initial"] + self.initial_mean
        for j in range(length):
            state[:, j] = s
            obs[:, j] = s @ H.T + rng.standard_normal((count, d_o)) @ roots["observation"]
            if j == length - 1:
                break
            exploration[:, j] = rng.standard_normal((count, d_a)) @ roots["exploration"]
            action[:, j] = obs[:, j] @ K.T + exploration[:, j]
            s = s @ F.T + action[:, j] @ G.T + self._process_draw(count, rng) + self.process_noise_mean
        return {"state": state, "obs": obs, "action": action, "exploration": exploration}

    def _process_draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        if self.process_noise_distribution == "uniform":
            standard = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(count, self.n))
        else:
            standard = rng.standard_normal((count, self.n))
        return standard @ self._roots["process"]

    # -- prediction theory (Kalman) ------------------------------------------------------------
    def _filter_noise(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, R)`` of the observer's model ``s' = F s + G K o + (G e + w)``, ``o = H s + v``.

        The policy's part ``G K o_t`` of the next state is known once ``o_t`` is seen, so the
        filter runs on the open-loop ``F`` with process noise ``Q = Σ_w + G Σ_e Gᵀ`` and
        measurement noise ``R = Σ_v``, uncorrelated.
        """
        G = self.action_matrix
        return self.process_noise_cov + G @ self.exploration_cov @ G.T, self.observation_noise_cov

    def _ahead(self, P: np.ndarray, horizon: int) -> np.ndarray:
        """Innovation covariance of ``o_{t+k}`` from the error covariance ``P`` of ``s_{t+1}``.

        From ``t + 1`` on the future observations are unseen, so the closed loop acts:
        ``P_{j+1} = F_cl P_j F_clᵀ + Σ_w + G Σ_e Gᵀ + G K Σ_v Kᵀ Gᵀ``; the result is ``H P_k Hᵀ + Σ_v``.
        """
        F_cl, Q_cl = self.closed_loop, self.closed_loop_noise_cov
        for _ in range(horizon - 1):
            P = F_cl @ P @ F_cl.T + Q_cl
        S = self.observation @ P @ self.observation.T + self.observation_noise_cov
        return (S + S.T) / 2

    def filtered_innovation(self, context: int, horizon: int = 1) -> np.ndarray:
        """Covariance of ``o_{t+k}`` minus its best affine prediction from ``T`` frames (Riccati recursion).

        The time-varying Kalman filter started from the initial covariance at the window's first
        frame: ``P_0 = Σ_0``, ``P_{j+1} = F P_j Fᵀ + Q − F P_j Hᵀ (H P_j Hᵀ + R)⁺ H P_j Fᵀ``, then
        :meth:`_ahead`. Exact for every ``T``; equal to the window's innovation second moment when
        every mean is zero.
        """
        return self.filtered_innovations(context, horizon)[-1]

    def filtered_innovations(self, max_context: int, horizon: int = 1) -> list[np.ndarray]:
        """:meth:`filtered_innovation` for ``T = 1 … max_context`` in one pass of the recursion."""
        T = as_int(max_context, "context", minimum=1)
        k = as_int(horizon, "horizon", minimum=1)
        F, H = self.dynamics, self.observation
        Q, R = self._filter_noise()
        P = self.initial_cov.copy()
        out = []
        for _ in range(T):
            S = H @ P @ H.T + R
            gain = F @ P @ H.T @ pinv_psd(S)
            P = F @ P @ F.T + Q - gain @ S @ gain.T
            P = (P + P.T) / 2
            out.append(self._ahead(P, k))
        return out

    def kalman_innovation(self, horizon: int = 1) -> np.ndarray:
        """The steady-state innovation covariance ``H P Hᵀ + Σ_v`` (``k = 1``), ``P`` from the filter DARE.

        ``P = F P Fᵀ + Q − F P Hᵀ (H P Hᵀ + R)⁻¹ H P Fᵀ`` (``scipy.linalg.solve_discrete_are`` on the
        dual pair ``(Fᵀ, Hᵀ)``), with ``Q``, ``R`` of :meth:`_filter_noise`; for ``k > 1`` the
        closed loop carries it on (:meth:`_ahead`). Needs ``(F, H)`` detectable and no mode of
        ``F`` on the unit circle that ``Q`` does not excite; otherwise ``InputError``.
        """
        k = as_int(horizon, "horizon", minimum=1)
        F, H = self.dynamics, self.observation
        Q, R = self._filter_noise()
        try:
            P = scipy.linalg.solve_discrete_are(F.T, H.T, Q, R)
        except (np.linalg.LinAlgError, ValueError) as error:
            raise InputError(
                f"dynamics: the filter Riccati equation has no stabilizing solution ({error})"
            ) from None
        return self._ahead((P + P.T) / 2, k)


class WindowTransition(Transition):
    """The window ``(o_{t−T+1}, …, o_t, a_t, …, a_{t+k−1}, o_{t+k})`` of a :class:`StateSpaceSystem`.

    Frames are numbered ``0 … T+k−1`` inside the window, the current frame ``o_t`` is frame
    ``T − 1``. Source blocks, in order: the state ``s_0`` at frame 0 (the initial
    distribution); a constant ``1`` when ``μ_w ≠ 0``; the observation noise ``v_j`` of every frame
    (when ``Σ_v ≠ 0``); the exploration ``e_j`` and the centred process noise ``w_j − μ_w`` of
    every step (the latter when ``Σ_w ≠ 0``).

    Variables: ``obs`` ``[o_{t−T+1}; …; o_t]`` (``d_c = T·d_o``), ``current_obs`` ``o_t``,
    ``next_obs`` ``o_{t+k}``, ``action`` ``[a_t; …; a_{t+k−1}]``, ``exploration`` ``[e_t; …]``,
    ``noise`` ``[w_t; …; w_{t+k−1}]`` (process noise, mean included), ``observation_noise``
    ``[v_{t−T+1}; …; v_{t+k}]``, ``state`` ``s_t``, ``next_state`` ``s_{t+k}`` and, with
    exogenous coordinates ``x``, ``exogenous`` ``ξ = x_{t+k} − E[x_{t+k} | x_t] =
    Σ_{j<k} F_xxᵏ⁻¹⁻ʲ (w_{x,t+j} − μ_{w,x})`` (zero mean).

    ``exploration_columns`` and ``exogenous_columns`` index the stacked sources that carry the
    horizon's exploration and exogenous innovations, for :meth:`Transition.cov_from`.
    """

    dense_pairs = 64

    def __init__(self, system: StateSpaceSystem, context: int, horizon: int):
        T, k = context, horizon
        n, d_o, d_a = system.n, system.d_o, system.d_a
        frames = T + k
        sizes, covs, means = [], [], []

        def block(size, cov, mean) -> int:
            sizes.append(size)
            covs.append(cov)
            means.append(mean)
            return len(sizes) - 1

        b_state = block(n, system.initial_cov, system.initial_mean)
        mu_w = system.process_noise_mean
        b_const = block(1, np.zeros((1, 1)), np.ones(1)) if np.any(mu_w) else None
        has_v = bool(np.any(system.observation_noise_cov))
        has_w = bool(np.any(system.process_noise_cov))
        b_v = (
            [block(d_o, system.observation_noise_cov, np.zeros(d_o)) for _ in range(frames)] if has_v else []
        )
        b_e = [block(d_a, system.exploration_cov, np.zeros(d_a)) for _ in range(frames - 1)]
        b_w = [block(n, system.process_noise_cov, np.zeros(n)) for _ in range(frames - 1)] if has_w else []
        kinds = {
            "state": [b_state],
            "const": [] if b_const is None else [b_const],
            "v": b_v,
            "e": b_e,
            "w": b_w,
        }

        F = 1.0 if np.array_equal(system.dynamics, np.eye(n)) else system.dynamics
        H = 1.0 if n == d_o and np.array_equal(system.observation, np.eye(n)) else system.observation
        K = None if not np.any(system.policy_gain) else system.policy_gain
        G = system.action_matrix
        state = _Segment(n, {b_state: 1.0})
        states, obs, actions, explorations, noises, obs_noises = [], [], [], [], [], []
        for j in range(frames):
            v_j = _Segment(d_o, {b_v[j]: 1.0} if has_v else {})
            o_j = state.times(H, d_o).plus(v_j)
            states.append(state)
            obs.append(o_j)
            obs_noises.append(v_j)
            if j == frames - 1:
                break
            e_j = _Segment(d_a, {b_e[j]: 1.0})
            a_j = o_j.times(K, d_a).plus(e_j)
            w_ops = {b_w[j]: 1.0} if has_w else {}
            if b_const is not None:
                w_ops[b_const] = mu_w[:, None].copy()
            w_j = _Segment(n, w_ops)
            state = state.times(F, n).plus(a_j.times(G, n)).plus(w_j)
            actions.append(a_j)
            explorations.append(e_j)
            noises.append(w_j)
        now = T - 1
        horizon_steps = range(now, now + k)
        segments = {
            "obs": obs[:T],
            "current_obs": [obs[now]],
            "next_obs": [obs[now + k]],
            "action": actions[now : now + k],
            "exploration": explorations[now : now + k],
            "noise": noises[now : now + k],
            "observation_noise": obs_noises,
            "state": [states[now]],
            "next_state": [states[now + k]],
        }
        x = list(system.exogenous)
        if x:
            F_xx = system.dynamics[np.ix_(x, x)]
            select = np.eye(n)[x]
            ops = {}
            if has_w:
                power = np.eye(len(x))
                for j in reversed(horizon_steps):  # ξ = Σ_j F_xx^{k−1−j} P_x (w_{t+j} − μ_w)
                    ops[b_w[j]] = power @ select
                    power = F_xx @ power
            segments["exogenous"] = [_Segment(len(x), ops)]
        super().__init__(
            k, tuple(sizes), tuple(covs), tuple(means), segments, system, draw=self._draw_blocks, context=T
        )
        self._kinds = kinds
        self.exploration_columns = self.source_columns([b_e[j] for j in horizon_steps])
        if x and has_w:
            self.exogenous_columns = np.concatenate([self.source_columns([b_w[j]])[x] for j in horizon_steps])
        else:
            self.exogenous_columns = np.zeros(0, dtype=int)

    def _draw_blocks(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        system = self.system
        roots = system._roots
        blocks: list[np.ndarray | None] = [None] * len(self._sizes)
        for kind, indices in self._kinds.items():
            for b in indices:
                if kind == "state":
                    blocks[b] = rng.standard_normal((n, system.n)) @ roots["initial"] + system.initial_mean
                elif kind == "const":
                    blocks[b] = np.ones((n, 1))
                elif kind == "v":
                    blocks[b] = rng.standard_normal((n, system.d_o)) @ roots["observation"]
                elif kind == "e":
                    blocks[b] = rng.standard_normal((n, system.d_a)) @ roots["exploration"]
                else:
                    blocks[b] = system._process_draw(n, rng)
        return blocks


def windows(
    trajectories: Mapping[str, np.ndarray], context: int, horizon: int, start: int | None = None
) -> dict[str, np.ndarray]:
    """Windows cut from :meth:`StateSpaceSystem.sample_trajectories`, one row per window.

    ``start`` (the index of a window's first frame) ``None`` takes every position of every
    trajectory (windows of a stationary system); an integer takes that position only (with an
    explicit initial distribution, ``start = 0`` is the window of :meth:`StateSpaceSystem.transition`).
    Returns ``obs``, ``current_obs``, ``next_obs``, ``action``, ``state``, ``next_state``.
    """
    T = as_int(context, "context", minimum=1)
    k = as_int(horizon, "horizon", minimum=1)
    obs, state, action = trajectories["obs"], trajectories["state"], trajectories["action"]
    count, length, d_o = obs.shape
    if length < T + k:
        raise InputError(f"trajectories: {length} frames cannot hold a window of {T} + {k} frames")
    starts = (
        range(length - T - k + 1)
        if start is None
        else [as_int(start, "start", minimum=0, maximum=length - T - k)]
    )
    parts: dict[str, list] = {
        name: [] for name in ("obs", "current_obs", "next_obs", "action", "state", "next_state")
    }
    for j in starts:
        now = j + T - 1
        parts["obs"].append(obs[:, j : j + T].reshape(count, T * d_o))
        parts["current_obs"].append(obs[:, now])
        parts["next_obs"].append(obs[:, now + k])
        parts["action"].append(action[:, now : now + k].reshape(count, -1))
        parts["state"].append(state[:, now])
        parts["next_state"].append(state[:, now + k])
    return {name: np.concatenate(values) for name, values in parts.items()}


def random_walk_with_exogenous(
    gain: float = 1.0,
    action_var: float = 1.0,
    persistence: float = 0.5,
    exo_var: float = 1.0,
    *,
    initial_var: float = 1.0,
) -> StateSpaceSystem:
    """The scalar example: an endogenous random walk beside a stationary exogenous AR(1), both observed.

    ``s' = s + g a``, ``x' = e x + η`` with ``a ~ (0, σ_a²)``, ``η ~ (0, σ_η²)``, ``o = [s; x]``;
    the explicit initial distribution has ``Var s = initial_var`` and the stationary
    ``Var x = σ_η²/(1 − e²)``. Actions come first for ``A`` learned iff ``g²σ_a² > σ_η²`` and for
    ``A = I`` iff ``g²σ_a² > 2σ_η²/(1 + e)`` (derivation D11).
    """
    from lamproof._validation import as_real

    g = as_real(gain, "gain")
    s_a = as_real(action_var, "action_var", minimum=0.0)
    e = as_real(persistence, "persistence", minimum=-1.0, maximum=1.0)
    if abs(e) >= 1.0:
        raise InputError(f"persistence: the exogenous AR(1) must be stationary, |e| < 1, got {persistence!r}")
    s_eta = as_real(exo_var, "exo_var", minimum=0.0)
    v0 = as_real(initial_var, "initial_var", minimum=0.0)
    return StateSpaceSystem(
        np.diag([1.0, e]),
        [[g], [0.0]],
        process_noise_cov=np.diag([0.0, s_eta]),
        exploration_cov=[[s_a]],
        exogenous=[1],
        initial={"mean": [0.0, 0.0], "cov": np.diag([v0, s_eta / (1.0 - e * e)])},
    )
