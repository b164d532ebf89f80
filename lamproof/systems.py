"""The data-generating system: independent sources, a linear policy and linear dynamics.

    a  = K o + e                 policy gain K, exploration e ~ (0, Σ_e)
    o' = F o + G a + ε           dynamics F, action embedding G, noise ε ~ (μ_ε, Σ_ε)

with ``o ~ (μ_o, Σ_o)``. Every variable a learner sees is a linear map of the source vector
``x = [o; e_0 … e_{k-1}; ε_0 … ε_{k-1}]`` of a ``k``-step :class:`Transition`, so every first and
second moment is exact. The module knows nothing of latent action models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Mapping

import numpy as np
from scipy.linalg import block_diag

from lamproof._validation import as_choice, as_covariance, as_int, as_matrix, as_real, as_vector

NOISE_DISTRIBUTIONS = ("gaussian", "uniform")

#: Names of the variables of a transition, the targets a probe can read.
VARIABLES = ("obs", "next_obs", "action", "exploration", "noise")

SYSTEM_FIELDS = (
    "action_matrix", "obs_mean", "obs_cov", "dynamics", "policy_gain",
    "exploration_cov", "noise_mean", "noise_cov", "noise_distribution",
)


def _identity_or(value, name: str, size: int, *, covariance: bool) -> np.ndarray:
    if value is None or (isinstance(value, str) and value == "identity"):
        return np.eye(size)
    if isinstance(value, str):
        raise ValueError(f"{name}: the only string accepted is 'identity', got {value!r}")
    if covariance:
        return as_covariance(value, name, size)
    return as_matrix(value, name, (size, size))


def psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues clipped to 0)."""
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


class System:
    """A linear data-generating system (math.md §1), validated at construction.

    Parameters mirror the ``system`` table of a ``lamproof solve`` file. Covariances may be the
    string ``"identity"``; ``noise_distribution`` chooses how noise is *sampled* (Gaussian, or
    i.i.d. uniform coordinates standardized to the given mean and covariance); moments never
    depend on it.
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
            raise ValueError(f"action_matrix: needs at least one row and one column, got shape {G.shape}")
        self.action_matrix = G
        self.obs_mean = np.zeros(d_o) if obs_mean is None else as_vector(obs_mean, "obs_mean", d_o)
        self.obs_cov = _identity_or(obs_cov, "obs_cov", d_o, covariance=True)
        self.dynamics = _identity_or(dynamics, "dynamics", d_o, covariance=False)
        self.policy_gain = (
            np.zeros((d_a, d_o)) if policy_gain is None else as_matrix(policy_gain, "policy_gain", (d_a, d_o))
        )
        self.exploration_cov = _identity_or(exploration_cov, "exploration_cov", d_a, covariance=True)
        self.noise_mean = np.zeros(d_o) if noise_mean is None else as_vector(noise_mean, "noise_mean", d_o)
        self.noise_cov = np.zeros((d_o, d_o)) if noise_cov is None else as_covariance(noise_cov, "noise_cov", d_o)
        self.noise_distribution = as_choice(noise_distribution, "noise_distribution", NOISE_DISTRIBUTIONS)
        for array in self._arrays():
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
        return (self.action_matrix, self.obs_mean, self.obs_cov, self.dynamics, self.policy_gain,
                self.exploration_cov, self.noise_mean, self.noise_cov)

    def replace(self, **changes) -> "System":
        """A copy with some fields changed (validated again)."""
        fields = {name: getattr(self, name) for name in SYSTEM_FIELDS}
        fields.update(changes)
        return System(fields.pop("action_matrix"), **fields)

    def to_dict(self) -> dict:
        """The ``system`` table of a solve file (plain lists), inverse of :meth:`from_dict`."""
        out = {name: getattr(self, name) for name in SYSTEM_FIELDS}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, table: Mapping, prefix: str = "system.") -> "System":
        """Build from a solve file's ``system`` table; unknown keys and bad values name the field."""
        if not isinstance(table, Mapping):
            raise ValueError(f"{prefix.rstrip('.')}: expected a table of fields")
        unknown = sorted(set(table) - set(SYSTEM_FIELDS))
        if unknown:
            raise ValueError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(SYSTEM_FIELDS)})")
        if "action_matrix" not in table:
            raise ValueError(f"{prefix}action_matrix: required field is missing")
        kwargs = dict(table)
        try:
            return cls(kwargs.pop("action_matrix"), **kwargs)
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None

    def __repr__(self) -> str:
        return f"System(d_o={self.d_o}, d_a={self.d_a}, noise={self.noise_distribution})"

    # -- the k-step transition ---------------------------------------------------------------
    def transition(self, horizon: int = 1) -> "Transition":
        """The variables of ``o_0 → o_k`` as linear maps of the independent sources."""
        k = as_int(horizon, "horizon", minimum=1)
        d_o, d_a = self.d_o, self.d_a
        n_src = d_o + k * d_a + k * d_o
        offsets_e = d_o
        offsets_n = d_o + k * d_a

        def block(start: int, size: int) -> np.ndarray:
            selector = np.zeros((size, n_src))
            selector[:, start:start + size] = np.eye(size)
            return selector

        obs = block(0, d_o)
        current = obs
        actions, explorations, noises = [], [], []
        for j in range(k):
            e_j = block(offsets_e + j * d_a, d_a)
            eps_j = block(offsets_n + j * d_o, d_o)
            a_j = self.policy_gain @ current + e_j
            current = self.dynamics @ current + self.action_matrix @ a_j + eps_j
            actions.append(a_j)
            explorations.append(e_j)
            noises.append(eps_j)
        maps = {
            "obs": obs,
            "next_obs": current,
            "action": np.vstack(actions),
            "exploration": np.vstack(explorations),
            "noise": np.vstack(noises),
        }
        mean = np.concatenate([self.obs_mean, np.zeros(k * d_a), np.tile(self.noise_mean, k)])
        blocks = [self.obs_cov] + [self.exploration_cov] * k + [self.noise_cov] * k
        cov = block_diag(*blocks)
        return Transition(k, mean, cov, maps, self)


@dataclass(frozen=True, eq=False)
class Transition:
    """A ``k``-step transition: named linear maps of a source vector with known moments.

    ``maps[name] @ x`` is the variable ``name`` (see :data:`VARIABLES`); the sources ``x`` have
    mean ``source_mean`` and covariance ``source_cov`` and are independent block by block.
    """

    horizon: int
    source_mean: np.ndarray
    source_cov: np.ndarray
    maps: Mapping[str, np.ndarray]
    system: System = field(repr=False)

    def __post_init__(self):
        object.__setattr__(self, "maps", MappingProxyType(dict(self.maps)))

    def _map(self, variable) -> np.ndarray:
        if isinstance(variable, str):
            try:
                return self.maps[variable]
            except KeyError:
                raise ValueError(f"variable: unknown name {variable!r} (known: {', '.join(VARIABLES)})") from None
        return np.asarray(variable, dtype=np.float64)

    def stacked(self, *variables) -> np.ndarray:
        """The map of the stacked variables, e.g. ``stacked("obs", "next_obs")``."""
        return np.vstack([self._map(v) for v in variables])

    def mean(self, variable) -> np.ndarray:
        return self._map(variable) @ self.source_mean

    def cov(self, left, right=None) -> np.ndarray:
        """``Cov(left, right)`` for variables given by name or by a map of the sources."""
        T1 = self._map(left)
        T2 = T1 if right is None else self._map(right)
        return T1 @ self.source_cov @ T2.T

    def second_moment(self, left, right=None) -> np.ndarray:
        """``E[left rightᵀ]``: what a bias-free learner's optimum depends on."""
        T1 = self._map(left)
        T2 = T1 if right is None else self._map(right)
        m1, m2 = T1 @ self.source_mean, T2 @ self.source_mean
        return T1 @ self.source_cov @ T2.T + np.outer(m1, m2)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` independent draws of every variable, one row each (and the sources under ``"sources"``)."""
        system = self.system
        k, d_o, d_a = self.horizon, system.d_o, system.d_a
        obs_root, exploration_root, noise_root = system._square_roots
        obs = rng.standard_normal((n, d_o)) @ obs_root + system.obs_mean
        exploration = np.hstack([rng.standard_normal((n, d_a)) @ exploration_root for _ in range(k)])
        if system.noise_distribution == "uniform":
            # i.i.d. uniform coordinates on [-√3, √3]: zero mean, unit variance.
            standard = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, k * d_o))
        else:
            standard = rng.standard_normal((n, k * d_o))
        noise = np.hstack([standard[:, j * d_o:(j + 1) * d_o] @ noise_root for j in range(k)])
        noise += np.tile(system.noise_mean, k)
        sources = np.hstack([obs, exploration, noise])
        out = {name: sources @ matrix.T for name, matrix in self.maps.items()}
        out["sources"] = sources
        return out


# -- the paper's setups ------------------------------------------------------------------------
def random_orthonormal(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A ``rows x cols`` matrix with orthonormal columns: QR of a Gaussian matrix, as the paper does."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


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
    """The data of the paper's studies (``../shared/paper/README.md``).

    ``o ~ N(0, I)``, ``o' = o + Φ a + ε`` with ``Φ`` orthonormal (QR of a Gaussian matrix) and

    - ``noise="none"``: ``ε = 0`` (§4.1);
    - ``"isotropic"``: ``ε ~ N(0, σ² I)`` (§4.2);
    - ``"structured"``: ``ε = σ Ψ b``, ``b ~ N(0, I_noise_dim)``, ``Ψ`` orthonormal (§4.3, §7);
      ``Φ`` and ``Ψ`` come from one QR, so their column spaces are exactly orthogonal;
    - ``"uniform"``: ``ε`` i.i.d. uniform on ``[0, σ)`` per coordinate, mean ``σ/2`` (§6);

    and the policy ``a = (1 − χ) e + χ P o`` with ``e ~ N(0, I)``, ``P`` with orthonormal rows (§5).
    """
    d_o = as_int(d_o, "d_o", minimum=1)
    d_a = as_int(d_a, "d_a", minimum=1, maximum=d_o)
    as_choice(noise, "noise", ("none", "isotropic", "structured", "uniform"))
    sigma = as_real(sigma, "sigma", minimum=0.0)
    chi = as_real(chi, "chi", minimum=0.0, maximum=1.0)
    noise_dim = as_int(noise_dim, "noise_dim", minimum=1, maximum=d_o - d_a if noise == "structured" else None)
    rng = np.random.default_rng(seed)
    extra = noise_dim if noise == "structured" else 0
    basis = random_orthonormal(d_o, d_a + extra, rng)
    phi = basis[:, :d_a]
    kwargs: dict = {}
    if noise == "isotropic":
        kwargs["noise_cov"] = sigma**2 * np.eye(d_o)
    elif noise == "structured":
        psi = basis[:, d_a:]
        kwargs["noise_cov"] = sigma**2 * psi @ psi.T
    elif noise == "uniform":
        kwargs.update(noise_mean=np.full(d_o, sigma / 2), noise_cov=sigma**2 / 12 * np.eye(d_o),
                      noise_distribution="uniform")
    if chi:
        policy = random_orthonormal(d_o, d_a, rng).T
        kwargs.update(policy_gain=chi * policy, exploration_cov=(1 - chi) ** 2 * np.eye(d_a))
    return System(phi, **kwargs)
