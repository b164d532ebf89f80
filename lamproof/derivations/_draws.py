"""Systems the derivations are checked on, built from Hypothesis-drawn cases (not to be confused
with :mod:`lamproof.systems`, the System itself, or :func:`lamproof.strategies.systems`).

A case is a small dict of dimensions, scalars and a NumPy seed; the matrices come from a seeded
``numpy.random.Generator`` so that every case is reproducible from its printed dict.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lamproof.derivations._framework import generator_seeds
from lamproof.lam import LAMSpec
from lamproof.numeric.population import minimize_population
from lamproof.systems import System, paper_parts

#: Starts of the population minimizer per example: two independent starts agree to ~1e-9 on
#: these small systems, and the best is kept.
STARTS = 2


def random_psd(
    n: int, rng: np.random.Generator, *, rank: int | None = None, ridge: float = 0.0
) -> np.ndarray:
    rank = n if rank is None else rank
    M = rng.standard_normal((n, rank)) / np.sqrt(max(rank, 1))
    return M @ M.T + ridge * np.eye(n)


def general_system(
    d_o: int, d_a: int, seed: int, *, feedback: bool, dynamics: bool, means: bool, noise_rank: int
) -> System:
    """A generic linear system: random ``G``, optional ``K``, ``F ≠ I``, means, low-rank noise."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d_o, d_a))
    kwargs = dict(
        obs_cov=random_psd(d_o, rng, ridge=0.3),
        exploration_cov=random_psd(d_a, rng, ridge=0.3),
        noise_cov=random_psd(d_o, rng, rank=noise_rank) if noise_rank else None,
    )
    if feedback:
        kwargs["policy_gain"] = 0.5 * rng.standard_normal((d_a, d_o)) / np.sqrt(d_o)
    if dynamics:
        kwargs["dynamics"] = np.eye(d_o) + 0.5 * rng.standard_normal((d_o, d_o)) / np.sqrt(d_o)
    if means:
        kwargs["obs_mean"] = rng.standard_normal(d_o)
        kwargs["noise_mean"] = 0.5 * rng.standard_normal(d_o)
    return System(G, **kwargs)


def structured_system(
    d_o: int,
    d_a: int,
    d_b: int,
    seed: int,
    *,
    sigma: float = 0.0,
    tau: float = 0.0,
    chi: float = 0.0,
    clean: float = 1.0,
) -> System:
    """The parametric family of :mod:`lamproof.symbolic.families`: the paper's family
    (:func:`lamproof.systems.paper_parts`) with structured and isotropic noise at once.

    ``o ~ N(0, I)``, ``o' = o + Φ a + ε``, ``ε = c σ Ψ b + τ ξ``, ``a = (1 − χ) e + χ P o``.
    """
    phi, psi, policy = paper_parts(d_o, d_a, d_b, chi, np.random.default_rng(seed))
    return System(phi, noise_cov=(clean * sigma) ** 2 * psi @ psi.T + tau**2 * np.eye(d_o), **policy)


def minimize(system: System, spec: LAMSpec, seed: int):
    return minimize_population(system.transition(spec.horizon), spec, starts=STARTS, seed=seed)


def dims(min_o: int = 2, max_o: int = 6):
    """Strategy for ``(d_o, d_a, d_z)`` with ``1 ≤ d_a, d_z ≤ d_o``."""
    return st.integers(min_o, max_o).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(1, n))
    )


def noise_dims(min_noise: int = 1, max_o: int = 6):
    """Strategy for ``(d_o, d_a, d_b, d_z)``: actions and ``d_b ≥ min_noise`` noise directions fit in ``d_o``."""

    def with_dims(n):
        return st.integers(1, n - 1).flatmap(
            lambda na: st.tuples(st.just(n), st.just(na), st.integers(min_noise, n - na), st.integers(1, n))
        )

    return st.integers(2, max_o).flatmap(with_dims)


def cleaning_cases(chi: tuple[float, float], sigma: tuple[float, float], clean: tuple[float, float]):
    """Cases of the cleaning family (:func:`structured_system` with ``χ``, ``σ``, ``c``): dimensions
    with at least one noise direction, and the scalars at least 0.1 from the boundary
    ``c σ = 1 − χ`` where the actions and the noise tie."""
    return st.fixed_dictionaries(
        {
            "dims": noise_dims(1),
            "chi": st.floats(*chi, allow_nan=False),
            "sigma": st.floats(*sigma, allow_nan=False),
            "clean": st.floats(*clean, allow_nan=False),
            "seed": generator_seeds(),
        }
    ).filter(lambda k: abs(k["clean"] * k["sigma"] - (1 - k["chi"])) >= 0.1)


def exogenous_scalars(e_max: float):
    """``(g, σ_a, e, σ_η)`` of the scalar random walk with an exogenous AR(1) state
    (:func:`lamproof.statespace.random_walk_with_exogenous`), ``|e| ≤ e_max``."""
    return st.tuples(st.floats(0.3, 2.0), st.floats(0.2, 2.0), st.floats(-e_max, e_max), st.floats(0.2, 2.0))


def away_from(values: list[float], lo: float, hi: float, margin: float = 0.1):
    """Floats in ``[lo, hi]`` at least ``margin`` from each of ``values`` (phase boundaries)."""
    return st.floats(lo, hi, allow_nan=False).filter(lambda x: all(abs(x - v) >= margin for v in values))
