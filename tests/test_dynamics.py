"""The population dynamics engine: its gradient, its optimizers, its initial points, its input.

Independent routes: the gradient against central differences of the exact objective
(:func:`population_objective`) and against the average of the stochastic trainer's minibatch
gradients; Adam against a plain transcription of PyTorch's update; population Adam against the
stochastic trainer from the same initial point; long runs against the closed-form optimum.
"""

from __future__ import annotations

import numpy as np
import pytest
from _dynamics_checks import (
    assert_minibatch_mean_is_the_gradient,
    batch_partner,
    central_differences,
    objective,
)
from hypothesis import given
from hypothesis import strategies as st

from lamproof import solve
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric import dynamics as dyn
from lamproof.numeric import kernels
from lamproof.numeric.objective import population_objective
from lamproof.numeric.trainer import ADAM_BETAS, ADAM_EPS, Trainer
from lamproof.strategies import lam_specs, problems, systems
from lamproof.systems import paper_system

#: Central differences with step 1e-6 on O(1) objectives are accurate to ~1e-9 relative.
FD_RTOL = 1e-6


def _random_point(engine: dyn.Engine, rng: np.random.Generator) -> np.ndarray:
    """A random point whose padded latent units are zero (as :meth:`Engine.pack` makes them)."""
    return engine.pack([engine.unpack(rng.standard_normal(engine.size))[i] for i in range(engine.n)])


any_variant = dict(
    fdm_obs_path="any",
    idm="any",
    augmentation=st.sampled_from([0.0, 0.6]),
    action_loss_weight=st.sampled_from([0.0, 1.5]),
    horizon=st.integers(1, 2),
)


@given(
    problems(
        systems(d_o=st.integers(2, 4), noise="any", feedback=None, dynamics=None, means=None),
        lambda s: lam_specs(s.d_o, **any_variant),
    ),
    st.integers(0, 2**31 - 1),
)
def test_gradient_is_the_derivative_of_the_exact_objective(problem, seed):
    system, spec = problem
    rng = np.random.default_rng(seed)
    other = batch_partner(spec)  # a smaller latent (padded) with another s and λ
    engine = dyn.Engine(system.transition(spec.horizon), [spec, other])
    flat = _random_point(engine, rng)
    engine.theta[...] = flat
    analytic = engine.gradient().copy()
    numeric = central_differences(engine, flat)
    scale = max(1.0, float(np.max(np.abs(numeric))))
    assert np.max(np.abs(analytic - numeric)) <= FD_RTOL * scale


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(noise="isotropic", sigma=0.5),
        dict(noise="structured", sigma=2.0),
        dict(chi=0.4),
        dict(noise="uniform", sigma=1.0),
    ],
)
def test_paper_moments_are_identity_plus_low_rank_and_products_are_exact(kwargs):
    system = (
        paper_system(40, 3, noise_dim=3, **kwargs)
        if kwargs.get("noise") == "structured"
        else paper_system(40, 3, **kwargs)
    )
    S = system.transition().second_moment(("obs", "next_obs"))
    structured = dyn.StructuredMoment(S)
    assert structured.U is not None and structured.rank <= 8  # Φ, Ψ, P, the noise mean: low rank
    X = np.random.default_rng(0).standard_normal((3, 5, 80))
    assert np.allclose(structured.right(X), X @ S, rtol=0, atol=1e-12 * np.abs(X @ S).max())
    # ragged stacks: rows past each member's count are padding, and their products are zero
    rows = np.array([5, 2, 0])
    live = X * (np.arange(5)[None, :, None] < rows[:, None, None])
    assert np.allclose(structured.right(X, rows), live @ S, rtol=0, atol=1e-12 * np.abs(X @ S).max())


@pytest.mark.parametrize(
    "kwargs, spec",
    [
        (dict(noise="isotropic", sigma=0.5), LAMSpec(3, augmentation=0.4, action_loss_weight=0.8)),
        (dict(chi=0.4), LAMSpec(2, augmentation=0.2)),
        (dict(noise="uniform", sigma=1.0), LAMSpec(4, fdm_obs_path="identity", action_loss_weight=1.0)),
        (dict(noise="isotropic", sigma=0.3), LAMSpec(3, idm="tied", augmentation=0.5)),
        (dict(noise="isotropic", sigma=0.5, d_o=41), LAMSpec(5, augmentation=0.3, action_loss_weight=0.5)),
        (dict(noise="isotropic", sigma=0.5), LAMSpec(17, augmentation=0.3)),  # above the fused kernel's size
    ],
)
def test_structured_gradient_has_the_right_directional_derivatives(kwargs, spec):
    """The structured (identity + low rank) path, at d_o = 40 (and an odd 41, for the fused kernel's
    row pairs), with a batch of two latent sizes (ragged), along random directions."""
    kwargs = dict(kwargs)
    system = paper_system(kwargs.pop("d_o", 40), 3, **kwargs)
    engine = dyn.Engine(system.transition(), [spec, LAMSpec(1, fdm_obs_path=spec.fdm_obs_path, idm=spec.idm)])
    assert engine.moments.S.U is not None  # the structured path is the one under test
    learned = spec.fdm_obs_path == "learned"
    assert engine._fused == (learned and spec.d_z <= kernels.FUSED_MAX_LATENT)
    assert engine._latent == (spec.d_z <= kernels.FUSED_MAX_LATENT)  # the compiled latent side
    rng = np.random.default_rng(0)
    flat = _random_point(engine, rng) * 0.3
    engine.theta[...] = flat
    gradient = engine.gradient().copy()
    for _ in range(3):
        direction = _random_point(engine, rng)
        h = 1e-5
        numeric = (objective(engine, flat + h * direction) - objective(engine, flat - h * direction)) / (
            2 * h
        )
        assert gradient @ direction == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_expected_minibatch_gradient_is_the_engine_gradient():
    """Monte Carlo: the average of the trainer's minibatch gradients → the engine's gradient."""
    system = paper_system(6, 2, noise="uniform", sigma=0.8)
    spec = LAMSpec(2, augmentation=0.5, action_loss_weight=0.7)
    trainer = Trainer(system, spec, seed=3, batch_size=4096)
    assert_minibatch_mean_is_the_gradient(trainer, dyn.Engine(system.transition(), [spec]))


def _pytorch_adam(engine, steps, lr):
    """torch.optim.Adam (defaults), transcribed literally, on the engine's gradient."""
    beta1, beta2 = ADAM_BETAS
    theta = engine.theta
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, steps + 1):
        grad = engine.gradient()
        m = m + (1 - beta1) * (grad - m)
        v = beta2 * v + (1 - beta2) * grad * grad
        denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + ADAM_EPS
        theta -= (lr / (1 - beta1**t)) * m / denom
    return theta.copy()


def test_fused_adam_is_pytorchs_update():
    system = paper_system(8, 2, noise="isotropic", sigma=0.3)
    spec = LAMSpec(3, augmentation=0.2)
    settings = dyn.DynamicsSettings(steps=300, lr=3e-3, record=[300])
    start = dyn.initial_parameters(system, spec, settings)
    fused = dyn.run_batch(system.transition(), [spec], [start], settings).params[0][0]
    engine = dyn.Engine(system.transition(), [spec])
    engine.theta[...] = engine.pack([start])
    reference = engine.unpack(_pytorch_adam(engine, 300, 3e-3))[0]
    for name in "ABCD":
        a, b = getattr(fused, name), getattr(reference, name)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-11), name


def test_padded_batch_equals_separate_runs():
    system = paper_system(10, 3, noise="structured", sigma=1.5, noise_dim=3)
    specs = [LAMSpec(1, augmentation=0.1), LAMSpec(4, augmentation=0.3), LAMSpec(2)]
    settings = dyn.DynamicsSettings(steps=200, record=[0, 50, 200])
    starts = [dyn.initial_parameters(system, s, settings) for s in specs]
    batch = dyn.run_batch(system.transition(), specs, starts, settings)
    for i, (spec, start) in enumerate(zip(specs, starts, strict=True)):
        alone = dyn.run_batch(system.transition(), [spec], [start], settings)
        for k in range(3):
            assert np.allclose(batch.params[k][i].B, alone.params[k][0].B, rtol=1e-12, atol=1e-14)
            assert np.allclose(batch.params[k][i].D, alone.params[k][0].D, rtol=1e-12, atol=1e-14)


def test_torch_init_is_the_trainers_first_point():
    system = paper_system(12, 3)
    spec = LAMSpec(2, action_loss_weight=1.0)
    start = dyn.initial_parameters(system, spec, dyn.DynamicsSettings(seed=7))
    trainer = Trainer(system, spec, seed=7)
    for name in "ABCDH":
        assert np.array_equal(getattr(start, name), getattr(trainer.params, name))
    bound = 1 / np.sqrt(2 * 12)  # nn.Linear: U(±1/sqrt(fan_in)), the IDM reads [o, o']
    assert np.abs(start.C).max() <= bound and np.abs(start.C).max() > 0.8 * bound


def test_gradient_descent_follows_gradient_flow():
    """gd with a small step and flow reach the same point at the same time t = steps·lr."""
    system = paper_system(5, 2, noise="isotropic", sigma=0.4)
    spec = LAMSpec(2)
    start = dyn.initial_parameters(system, spec, dyn.DynamicsSettings(seed=1))
    flow = dyn.run_batch(
        system.transition(), [spec], [start], dyn.DynamicsSettings("flow", lr=0.5, steps=400, record=[400])
    ).params[0][0]
    gd = dyn.run_batch(
        system.transition(), [spec], [start], dyn.DynamicsSettings("gd", lr=0.05, steps=4000, record=[4000])
    ).params[0][0]
    assert np.allclose(flow.next_obs_map, gd.next_obs_map, atol=2e-3)  # gd's O(lr) error
    moved = np.abs(flow.next_obs_map - start.next_obs_map).max()
    assert moved > 0.1  # the comparison is not between two points that never moved


@pytest.mark.parametrize("optimizer, lr, steps", [("adam", 1e-2, 4000), ("gd", 1.0, 4000)])
def test_long_runs_reach_the_closed_form_optimum(optimizer, lr, steps):
    system = paper_system(6, 2, noise="structured", sigma=1.5, noise_dim=2)
    spec = LAMSpec(2, augmentation=0.3)
    trajectory = dyn.population_dynamics(system, spec, dyn.DynamicsSettings(optimizer, lr=lr, steps=steps))
    final = population_objective(trajectory.params[-1], trajectory.transition, spec).total
    assert final == pytest.approx(solve(system, spec).objective, rel=1e-4, abs=1e-6)
    first = population_objective(trajectory.params[0], trajectory.transition, spec).total
    assert first > final + 0.1


def test_population_adam_tracks_the_stochastic_trainer():
    """Same initial point, large batches: the stochastic loss curve stays within a few percent of
    the population one. (It lags: minibatch noise inflates Adam's second moment, so its steps are
    shorter; the lag shrinks with the batch.)"""
    system = paper_system(10, 3, noise="isotropic", sigma=0.5)
    spec = LAMSpec(2)
    steps = [0, 30, 100, 300, 600]
    trajectory = dyn.population_dynamics(
        system, spec, dyn.DynamicsSettings(steps=600, record=steps, seed=2, lr=3e-3)
    )
    trainer = Trainer(system, spec, seed=2, batch_size=1024, lr=3e-3)
    transition = trajectory.transition
    done = 0
    for k, step in enumerate(steps):
        trainer.run(step - done)
        done = step
        population = population_objective(trajectory.params[k], transition, spec).total
        stochastic = population_objective(trainer.params, transition, spec).total
        assert stochastic == pytest.approx(population, rel=0.05 if step < 600 else 0.01), step


# -- the [dynamics] table -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "table, message",
    [
        ({"lr": 0}, "dynamics.lr: must be > 0"),
        ({"lr": -1e-3}, "dynamics.lr: must be > 0"),
        ({"steps": dyn.MAX_STEPS + 1}, "dynamics.steps: must be <="),
        ({"optimizer": "sgd"}, "dynamics.optimizer: must be one of"),
        ({"record": [0, 10, 5]}, "dynamics.record: must be strictly increasing"),
        ({"record": [0, 20000]}, "dynamics.record: step 20000 lies past steps"),
        ({"init": "xavier"}, "dynamics.init: must be one of"),
        ({"scale": 0.0}, "dynamics.scale: must be > 0"),
        ({"seed": -1}, "dynamics.seed: must be >= 0"),
        ({"momentum": 0.9}, "dynamics.momentum: unknown field"),
        ({"init": {"Q": [[1]]}}, "dynamics.init.Q: unknown matrix"),
    ],
)
def test_bad_settings_name_the_field(table, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        dyn.DynamicsSettings.from_dict(table)


def test_explicit_matrices_are_checked_against_the_lam():
    system = paper_system(4, 2)
    spec = LAMSpec(2)
    good = {"A": np.eye(4), "B": np.zeros((4, 2)), "C": np.zeros((2, 4)), "D": np.ones((2, 4))}
    start = dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init=good))
    assert np.array_equal(start.D, np.ones((2, 4)))
    for name, bad in [("B", np.zeros((4, 3))), ("C", np.zeros((4, 2))), ("A", np.eye(3))]:
        with pytest.raises(InputError, match=f"init.{name}: expected shape"):
            dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init={**good, name: bad}))
    with pytest.raises(InputError, match="init.A: the identity FDM path has no A"):
        dyn.initial_parameters(system, LAMSpec(2, fdm_obs_path="identity"), dyn.DynamicsSettings(init=good))
    with pytest.raises(InputError, match="init.D: required"):
        dyn.initial_parameters(
            system, spec, dyn.DynamicsSettings(init={k: v for k, v in good.items() if k != "D"})
        )


def test_default_records_are_log_spaced_with_zero_and_the_last():
    records = dyn.DynamicsSettings(steps=10_000).records
    assert records[0] == 0 and records[-1] == 10_000 and 25 <= len(records) <= 31
    assert list(records) == sorted(set(records))
    assert dyn.DynamicsSettings(steps=1).records == (0, 1)


# -- the derivations' checks can fail -------------------------------------------------------------
def test_d14_catches_a_wrong_learning_rate_in_the_sigmoid():
    import sympy

    from lamproof import derivations

    module = derivations.get("D14")
    right = module.derive()
    wrong = right.replace(solution=right.solution.subs(module.lam, 2 * module.lam))  # κ = 8λ/d_o
    report = module.verify(examples=1, results=wrong)
    assert not report.passed
    assert any("logistic" in failure for failure in report.failures)
    assert isinstance(wrong.solution, sympy.Expr)


def test_d15_catches_a_rate_linear_in_s():
    from lamproof import derivations

    module = derivations.get("D15")
    right = module.derive()
    wrong = right.replace(
        slow=module.s,  # curvature ∝ s instead of s²
        rate_adam=right.rate_adam / module.s,
    )  # ∝ s
    report = module.verify(examples=1, results=wrong)
    assert not report.passed
    assert any("Richardson" in failure for failure in report.failures)
    assert any("noise-dominated" in failure for failure in report.failures)
