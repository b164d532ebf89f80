"""The one random generic system the tests draw (means, policy feedback, dynamics, full-rank noise).

Imported by tests that need a system with everything switched on, built from a NumPy Generator so
that a failing case is reproducible from its seed.
"""

import numpy as np

from lamproof import System


def random_system(
    rng: np.random.Generator,
    d_o: int = 5,
    d_a: int = 2,
    *,
    means: bool = True,
    exploration: bool = True,
    dynamics: np.ndarray | None = None,
    noise: bool = True,
) -> System:
    """``o ~ (μ_o, Σ_o)``, ``a = K o + e``, ``o' = F o + G a + ε`` with random ``μ, Σ, K, F, G`` and noise.

    ``dynamics`` defaults to ``I + 0.3·N`` (``N`` Gaussian); ``exploration=False`` keeps ``Σ_e = I``;
    ``noise=False`` drops the noise; ``means=False`` keeps every mean at zero.
    """
    root_o = rng.standard_normal((d_o, d_o))
    root_n = 0.5 * rng.standard_normal((d_o, d_o))
    root_e = rng.standard_normal((d_a, d_a))
    return System(
        rng.standard_normal((d_o, d_a)),
        obs_mean=rng.standard_normal(d_o) if means else None,
        obs_cov=root_o @ root_o.T + 0.1 * np.eye(d_o),
        dynamics=np.eye(d_o) + 0.3 * rng.standard_normal((d_o, d_o)) if dynamics is None else dynamics,
        policy_gain=0.3 * rng.standard_normal((d_a, d_o)),
        exploration_cov=root_e @ root_e.T + 0.1 * np.eye(d_a) if exploration else "identity",
        noise_mean=0.5 * rng.standard_normal(d_o) if means else None,
        noise_cov=root_n @ root_n.T if noise else None,
    )
