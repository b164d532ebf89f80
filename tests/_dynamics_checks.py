"""Independent checks of a dynamics engine's gradient, shared by the one-frame and window tests.

Both routes avoid the engine's gradient code: central differences of the exact objective
(:func:`population_objective`), and the average of the stochastic trainer's minibatch gradients.
"""

from __future__ import annotations

import numpy as np

from lamproof.lam import LAMSpec
from lamproof.numeric.objective import population_objective


def batch_partner(spec: LAMSpec) -> LAMSpec:
    """A second member for a batch with ``spec``: a smaller latent (padded in a batch), another ``s``
    and ``λ``, the same variant, horizon and context."""
    return LAMSpec(
        max(1, spec.d_z - 1),
        fdm_obs_path=spec.fdm_obs_path,
        idm=spec.idm,
        augmentation=spec.augmentation / 2,
        action_loss_weight=2 * spec.action_loss_weight,
        horizon=spec.horizon,
        context=spec.context,
    )


def objective(engine, flat: np.ndarray) -> float:
    """Σ over the batch of J/d_o, through the exact objective (not the engine's gradient code)."""
    members = engine.unpack(flat)
    total = sum(
        population_objective(p, engine.transition, s).total
        for p, s in zip(members, engine.specs, strict=True)
    )
    return total / engine.d_o


def central_differences(engine, flat: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(flat)
    for i in range(flat.size):
        step = np.zeros_like(flat)
        step[i] = h
        out[i] = (objective(engine, flat + step) - objective(engine, flat - step)) / (2 * h)
    return out


def assert_minibatch_mean_is_the_gradient(trainer, engine, draws: int = 60) -> None:
    """The mean of ``draws`` minibatch gradients of ``trainer`` (at its current point) lies within
    a few standard errors of ``engine``'s exact gradient there. A wrong scale (e.g. ×d_o) gives
    z-scores far above 10."""
    engine.theta[...] = engine.pack([trainer.params])
    exact = engine.unpack(engine.gradient())[0]
    samples = []
    for _ in range(draws):
        trainer._loss_and_gradient(trainer._next_batch())
        g = trainer.g
        samples.append(np.concatenate([g["idm"].ravel(), g["fdm"].ravel(), g["head"].ravel()]))
    samples = np.array(samples)
    mean, sem = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    expected = np.concatenate(
        [np.hstack([exact.C, exact.D]).ravel(), np.hstack([exact.A, exact.B]).ravel(), exact.H.ravel()]
    )
    z = np.abs(mean - expected) / np.maximum(sem, 1e-12)
    assert np.quantile(z, 0.95) < 3.5 and np.max(z) < 6
