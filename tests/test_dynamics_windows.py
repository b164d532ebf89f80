"""Population dynamics on context windows and state-space systems (:class:`dynamics.WindowEngine`).

Independent routes: the window engine's gradient against central differences of the exact
objective (:func:`population_objective`, which the engine does not call), against the one-frame
:class:`dynamics.Engine` (structured moments and compiled kernels, another implementation) where
both apply, and against the average of the stochastic trainer's minibatch gradients on windows;
long runs against the closed-form optimum of the window (:func:`lamproof.solve`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _dynamics_checks import assert_minibatch_mean_is_the_gradient, batch_partner, central_differences
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof import solve
from lamproof.cli import main
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric import dynamics as dyn
from lamproof.numeric.objective import population_objective
from lamproof.numeric.trainer import Trainer
from lamproof.strategies import lam_specs, problems, state_space_systems, systems
from lamproof.systems import paper_system

#: Central differences with step 1e-6 on O(1) objectives are accurate to ~1e-9 relative.
FD_RTOL = 1e-6

any_variant = dict(
    fdm_obs_path="any",
    idm="any",
    augmentation=st.sampled_from([0.0, 0.6]),
    action_loss_weight=st.sampled_from([0.0, 1.5]),
)


def _check_gradient(engine, seed: int) -> None:
    flat = np.random.default_rng(seed).standard_normal(engine.size)
    engine.theta[...] = flat
    analytic = engine.gradient().copy()
    numeric = central_differences(engine, flat)
    scale = max(1.0, float(np.max(np.abs(numeric))))
    assert np.max(np.abs(analytic - numeric)) <= FD_RTOL * scale


@settings(max_examples=25)
@given(
    problems(
        systems(d_o=st.integers(1, 3), noise="any", feedback=None, dynamics=None, means=None),
        lambda s: lam_specs(s.d_o, context=st.integers(2, 3), horizon=st.integers(1, 2), **any_variant),
    ),
    st.integers(0, 2**31 - 1),
)
def test_window_gradient_is_the_derivative_of_the_exact_objective(problem, seed):
    system, spec = problem
    other = batch_partner(spec)  # a smaller latent (padded) with another s and λ
    transition = system.transition(spec.horizon, spec.context)
    engine = dyn.engine_for(transition, [spec, other])
    assert isinstance(engine, dyn.WindowEngine)
    _check_gradient(engine, seed)


@settings(max_examples=15)
@given(
    problems(
        state_space_systems(observation="generic", observation_noise=None, feedback=None, means=None),
        lambda s: lam_specs(s.d_o, context=st.integers(1, 2), **any_variant),
    ),
    st.integers(0, 2**31 - 1),
)
def test_state_space_gradient_is_the_derivative_of_the_exact_objective(problem, seed):
    system, spec = problem
    engine = dyn.engine_for(system.transition(spec.horizon, spec.context), [spec])
    assert isinstance(engine, dyn.WindowEngine)  # a state-space window, even of one frame
    _check_gradient(engine, seed)


@settings(max_examples=20)
@given(
    problems(
        systems(d_o=st.integers(1, 4), noise="any", feedback=None, dynamics=None, means=None),
        lambda s: lam_specs(s.d_o, horizon=st.integers(1, 2), **any_variant),
    ),
    st.integers(0, 2**31 - 1),
)
def test_window_engine_of_one_frame_is_the_structured_engine(problem, seed):
    """Two implementations of one gradient: the window engine (the population minimizer's dense
    products) and the one-frame engine (structured moments, compiled kernels)."""
    system, spec = problem
    transition = system.transition(spec.horizon)
    fast, dense = dyn.Engine(transition, [spec]), dyn.WindowEngine(transition, [spec])
    point = dyn.initial_parameters(
        system, spec, dyn.DynamicsSettings(init="small", scale=0.7, seed=seed % 1000)
    )
    fast.theta[...] = fast.pack([point])
    dense.theta[...] = dense.pack([point])
    a, b = fast.unpack(fast.gradient())[0], dense.unpack(dense.gradient())[0]
    # compare ∂/∂B, ∂/∂D (and ∂/∂A, ∂/∂C on the paths where they are free parameters)
    names = (
        ["B", "D"] + (["A"] if spec.fdm_obs_path == "learned" else []) + (["C"] if spec.idm == "free" else [])
    )
    for name in names:
        x, y = getattr(a, name), getattr(b, name)
        assert np.allclose(x, y, rtol=1e-9, atol=1e-11 * max(1.0, float(np.abs(y).max()))), name


def test_expected_minibatch_gradient_on_a_window_is_the_engine_gradient():
    """Monte Carlo: the average of the trainer's minibatch gradients on windows → the engine's."""
    system = paper_system(4, 2, noise="uniform", sigma=0.8, seed=1).replace(dynamics=0.6 * np.eye(4))
    spec = LAMSpec(2, augmentation=0.5, action_loss_weight=0.7, context=2)
    trainer = Trainer(system, spec, seed=3, batch_size=4096)
    assert_minibatch_mean_is_the_gradient(trainer, dyn.engine_for(trainer.transition, [spec]))


@pytest.mark.parametrize(
    "spec",
    [
        LAMSpec(2, context=2, augmentation=0.3),
        LAMSpec(2, context=3, idm="tied", fdm_obs_path="identity"),
        LAMSpec(1, context=2, action_loss_weight=1.0),
    ],
)
def test_long_window_runs_reach_the_closed_form_optimum(spec):
    system = paper_system(4, 2, noise="isotropic", sigma=0.5, seed=2).replace(dynamics=0.5 * np.eye(4))
    settings_ = dyn.DynamicsSettings("adam", lr=1e-2, steps=6000, record=[0, 6000])
    trajectory = dyn.population_dynamics(system, spec, settings_)
    assert trajectory.transition.context == spec.context
    first, final = (population_objective(p, trajectory.transition, spec).total for p in trajectory.params)
    assert final == pytest.approx(solve(system, spec).objective, rel=1e-4, abs=1e-6)
    assert first > final + 0.1


@pytest.mark.parametrize("init", ["torch", "small"])
@pytest.mark.parametrize("idm, path", [("free", "learned"), ("tied", "identity")])
def test_window_initial_points_have_the_window_shapes(init, idm, path):
    system = paper_system(3, 1, seed=0)
    spec = LAMSpec(2, context=3, idm=idm, fdm_obs_path=path)
    start = dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init=init, seed=4))
    E = system.transition(1, 3).frame_selector
    assert start.A.shape == (3, 9) and start.C.shape == (2, 9) and start.D.shape == (2, 3)
    if path == "identity":
        assert np.array_equal(start.A, E)
    if idm == "tied":
        assert np.array_equal(start.C, -start.D @ E)
    if init == "torch":  # the trainer's own first point
        trained = Trainer(system, spec, seed=4).params
        for name in "ABCD":
            assert np.array_equal(getattr(start, name), getattr(trained, name)), name
    engine = dyn.engine_for(system.transition(1, 3), [spec])  # pack/unpack round trip
    back = engine.unpack(engine.pack([start]))[0]
    for name in "ABCD":
        assert np.array_equal(getattr(back, name), getattr(start, name)), name


def test_explicit_window_matrices_are_checked():
    system = paper_system(2, 1, seed=0)
    spec = LAMSpec(1, context=2, idm="tied")
    good = {"A": np.zeros((2, 4)), "B": np.ones((2, 1)), "D": np.ones((1, 2))}
    start = dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init=good))
    assert np.array_equal(start.C, -np.hstack([np.zeros((1, 2)), np.ones((1, 2))]))
    with pytest.raises(InputError, match=r"init.A: expected shape \(2, 4\)"):
        dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init={**good, "A": np.eye(2)}))
    with pytest.raises(InputError, match="init.D: required"):
        dyn.initial_parameters(
            system, spec, dyn.DynamicsSettings(init={"A": good["A"], "B": good["B"], "C": np.ones((1, 4))})
        )
    with pytest.raises(InputError, match="init.C: a tied IDM needs C = −D·E"):
        dyn.initial_parameters(system, spec, dyn.DynamicsSettings(init={**good, "C": np.ones((1, 4))}))


# -- lamproof dynamics on window and state-space files ----------------------------------------------
STATE_SPACE = """
[state_space]
dynamics = [[1.0, 0.0], [0.0, 0.5]]
action_matrix = [[1.0], [0.0]]
process_noise_cov = [[0.0, 0.0], [0.0, 1.0]]
exogenous = [1]
initial = {mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.3333333333333333]]}

[lam]
d_z = 1
context = 2

[dynamics]
steps = 3000
record = [0, 3000]
"""

WINDOW = """
[system]
dynamics = [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]
action_matrix = [[1.0], [0.0], [0.0]]
noise_cov = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.25]]

[lam]
d_z = 1
context = 3

[dynamics]
lr = 1e-2
steps = 3000
record = [0, 3000]
"""


@pytest.mark.parametrize("text", [STATE_SPACE, WINDOW], ids=["state_space", "window"])
def test_cli_runs_dynamics_on_windows_and_state_space_files(text, tmp_path, capsys):
    path = tmp_path / "file.toml"
    path.write_text(text)
    assert main(["dynamics", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    first, last = report["trajectory"][0], report["trajectory"][-1]
    assert first["step"] == 0 and last["step"] == 3000
    assert last["loss"] == pytest.approx(report["optimal_loss"], rel=1e-3)
    assert first["loss"] > 1.1 * report["optimal_loss"]
    assert report["acquisition"]["directions"][0]["direction"] == "action"


def test_cli_refuses_a_paper_system_table_in_one_line(tmp_path, capsys):
    path = tmp_path / "paper.toml"
    path.write_text("[paper_system]\nd_o = 8\nd_a = 2\n\n[lam]\nd_z = 2\n\n[dynamics]\nsteps = 10\n")
    assert main(["dynamics", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "paper_system" in err
