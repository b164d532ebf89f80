"""The state-space system: validation, windows against samples, today's System as a special case,
the Kalman routes to the context innovation, and the solve-file table."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof import LAMSpec, System
from lamproof.api import parse_spec_text, spec_from_dict, spec_to_dict
from lamproof.cli import main
from lamproof.context import innovation
from lamproof.statespace import StateSpaceSystem, random_walk_with_exogenous, windows
from lamproof.strategies import state_space_systems, systems

#: Moments built by two different sets of source maps (System's and the window's) agree to
#: round-off: ~1e-15 relative per product, a few dozen products; 1e-11 leaves four orders.
SAME_RTOL = 1e-11
#: Monte Carlo with 100 000 draws: an O(1) second-moment entry has standard error ~0.005;
#: 0.05 of the scale is ~10σ, so only a real error in the exact moments fails.
SAMPLES = 100_000
MOMENT_ATOL = 0.05

NAMES = ("obs", "current_obs", "next_obs", "action", "exploration", "noise")


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0)) / max(1.0, float(np.max(np.abs(b), initial=0.0)))


# -- today's System is the case H = I, Σ_v = 0, explicit initial distribution -----------------------
@settings(max_examples=20)
@given(
    systems(
        d_o=st.integers(1, 4),
        noise="any",
        feedback=None,
        dynamics=None,
        means=None,
        obs_cov="psd",
        exploration="psd",
    ),
    st.integers(1, 3),
)
def test_system_is_the_state_space_case_with_identity_observation(system, horizon):
    state_space = StateSpaceSystem.from_system(system)
    ours, theirs = state_space.transition(horizon), system.transition(horizon)
    assert _relative(ours.second_moment(NAMES), theirs.second_moment(NAMES)) <= SAME_RTOL
    assert _relative(ours.mean(NAMES), theirs.mean(NAMES)) <= SAME_RTOL
    assert np.array_equal(ours.frame_selector, theirs.frame_selector)
    assert np.array_equal(ours.frame_shift, theirs.frame_shift)
    # the same context window through System.transition(context=T)
    window = system.transition(horizon, 3)
    assert window.context == 3 and window.d_c == 3 * system.d_o


# -- windows: exact moments against samples and trajectories -----------------------------------------
@settings(max_examples=10)
@given(
    state_space_systems(
        observation="generic", observation_noise=None, feedback=None, coupling=None, initial=None, means=None
    ),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_window_moments_match_samples_and_dense_maps(system, context, horizon):
    t = system.transition(horizon, context)
    names = ("obs", "next_obs", "action", "state", "next_state", "noise") + (
        ("exogenous",) if system.exogenous else ()
    )
    dense = t.stacked(*names)
    t.dense_pairs = None  # block by block here, whatever the window's length
    assert _relative(t.cov(names), dense @ t.source_cov @ dense.T) <= SAME_RTOL
    draws = t.sample(SAMPLES, np.random.default_rng(0))
    stacked = np.hstack([draws[name] for name in names])
    exact = t.second_moment(names)
    scale = max(1.0, float(np.max(np.diag(exact))))
    assert np.max(np.abs(stacked.T @ stacked / SAMPLES - exact)) <= MOMENT_ATOL * scale
    np.testing.assert_array_equal(draws["current_obs"], draws["obs"][:, -system.d_o :])
    np.testing.assert_allclose(t.frame_selector @ t.maps["obs"], t.maps["current_obs"], atol=0)


@settings(max_examples=8)
@given(
    state_space_systems(observation="generic", observation_noise=True, feedback=None, initial="stationary"),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_trajectory_windows_have_the_window_moments(system, context, horizon):
    """Windows cut at every position of stationary trajectories (the simulator, not the source maps)."""
    trajectories = system.sample_trajectories(4_000, context + horizon + 5, np.random.default_rng(1))
    cut = windows(trajectories, context, horizon)
    t = system.transition(horizon, context)
    names = ("obs", "next_obs", "action", "state")
    stacked = np.hstack([cut[name] for name in names])
    exact = t.second_moment(names)
    scale = max(1.0, float(np.max(np.diag(exact))))
    assert np.max(np.abs(stacked.T @ stacked / len(stacked) - exact)) <= MOMENT_ATOL * scale


def test_exogenous_innovation_is_the_state_innovation():
    """ξ = x_{t+k} − E[x_{t+k} | x_t]: uncorrelated with x_t and equal to x_{t+k} − F_xxᵏ x_t − const."""
    system = random_walk_with_exogenous(1.0, 1.0, 0.6, 0.5)
    t = system.transition(3, 2)
    x = np.eye(2)[[1]]
    draws = t.sample(20, np.random.default_rng(2))
    drift = draws["next_state"] @ x.T - 0.6**3 * draws["state"] @ x.T
    np.testing.assert_allclose(draws["exogenous"], drift, atol=1e-12)
    assert abs(t.cov("exogenous", t.maps["state"][[1]])[0, 0]) < 1e-12
    np.testing.assert_allclose(t.cov("exogenous"), [[0.5 * (1 + 0.36 + 0.6**4)]], rtol=1e-12)


# -- the context innovation and its Kalman limit -----------------------------------------------------
@settings(max_examples=15)
@given(
    state_space_systems(
        observation="generic", observation_noise=None, feedback=None, coupling=None, initial=None
    ),
    st.integers(1, 6),
    st.integers(1, 3),
)
def test_context_innovation_is_the_kalman_filter_innovation(system, context, horizon):
    """S_v of the window (a pseudo-inverse of window moments) equals the Riccati recursion (zero means)."""
    S_v = innovation(system.transition(horizon, context)).operator
    kalman = system.filtered_innovation(context, horizon)
    assert _relative(S_v, kalman) <= 1e-9


#: How close a context of 40 frames comes to the steady state: the error decays like
#: ρ(F − F P Hᵀ (H P Hᵀ + R)⁻¹ H)^{2T} (derivation D10); with the drawn spectral radii ≤ 3/4 and
#: positive definite noise the filter's closed loop has radius ≤ 3/4, so 0.75^80 ≈ 1e-10.
LIMIT_RTOL = 1e-7


@settings(max_examples=15)
@given(
    state_space_systems(
        observation="generic", observation_noise=True, feedback=None, coupling=None, initial=None
    ),
    st.integers(1, 2),
)
def test_long_context_reaches_the_steady_state_kalman_innovation(system, horizon):
    limit = system.kalman_innovation(horizon)
    assert _relative(innovation(system.transition(horizon, 40)).operator, limit) <= LIMIT_RTOL


def test_unobserved_random_walk_needs_the_filter():
    """A hidden random walk seen through noise: one frame is far from the limit, 30 frames reach it."""
    system = StateSpaceSystem(
        [[1.0]],
        [[1.0]],
        observation=[[1.0]],
        process_noise_cov=[[0.5]],
        observation_noise_cov=[[2.0]],
        exploration_cov=[[0.25]],
        initial={"mean": [0.0], "cov": [[4.0]]},
    )
    limit = system.kalman_innovation()[0, 0]
    q, r = 0.75, 2.0  # Q = Σ_w + σ_a², R = Σ_v; scalar DARE: P² − qP − qr = 0
    assert limit == pytest.approx((q + np.sqrt(q * q + 4 * q * r)) / 2 + r, rel=1e-12)
    one = innovation(system.transition(1, 1)).operator[0, 0]
    # by hand: P₀ = 4, P₁ = 4 + 0.75 − 4²/(4 + 2) = 2.0833…, innovation P₁ + R
    assert one == pytest.approx(4.75 - 16 / 6 + 2.0, rel=1e-12) and one > limit + 0.4
    many = innovation(system.transition(1, 30)).operator[0, 0]
    assert many == pytest.approx(limit, rel=1e-8)


# -- validation --------------------------------------------------------------------------------------
F2 = [[0.5, 0.0], [0.0, 0.5]]
G2 = [[1.0], [0.0]]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"dynamics": [[1.0, 0.0]]}, "dynamics"),
        ({"action_matrix": [[1.0]]}, "action_matrix"),
        ({"observation": [[1.0, 0.0, 0.0]]}, "observation"),
        ({"observation": "eye"}, "observation"),
        ({"process_noise_cov": -np.eye(2)}, "process_noise_cov"),
        ({"observation_noise_cov": np.eye(3)}, "observation_noise_cov"),
        ({"policy_gain": np.zeros((2, 2))}, "policy_gain"),
        ({"exploration_cov": [[-1.0]]}, "exploration_cov"),
        ({"exogenous": [2]}, "exogenous"),
        ({"exogenous": [1, 1]}, "exogenous"),
        ({"exogenous": "1"}, "exogenous"),
        ({"exogenous": [0]}, "exogenous"),  # reached by the actions
        ({"dynamics": [[0.5, 0.0], [0.3, 0.5]], "exogenous": [1]}, "exogenous"),  # driven by state 0
        ({"process_noise_cov": [[1.0, 0.5], [0.5, 1.0]], "exogenous": [1]}, "exogenous"),
        ({"dynamics": [[1.0, 0.0], [0.0, 0.5]]}, "initial"),  # a random walk has no stationary distribution
        ({"policy_gain": [[2.0, 0.0]]}, "initial"),  # the closed loop 0.5 + 2 is unstable
        ({"initial": "steady"}, "initial"),
        ({"initial": {"mean": [0.0, 0.0]}}, "initial.cov"),
        ({"initial": {"cov": np.eye(3)}}, "initial.cov"),
        ({"initial": {"cov": np.eye(2), "mean": [1.0]}}, "initial.mean"),
        ({"initial": {"cov": np.eye(2), "var": 1}}, "initial.var"),
        ({"process_noise_distribution": "laplace"}, "process_noise_distribution"),
    ],
)
def test_state_space_rejects_bad_fields(kwargs, field):
    fields = {"dynamics": F2, "action_matrix": G2, **kwargs}
    with pytest.raises(ValueError, match=f"^{field}"):
        StateSpaceSystem(fields.pop("dynamics"), fields.pop("action_matrix"), **fields)


def test_exogenous_may_drive_the_rest_and_be_read_by_the_policy():
    system = StateSpaceSystem(
        [[0.5, 0.3], [0.0, 0.5]], G2, exogenous=[1], policy_gain=[[0.1, 0.4]], process_noise_cov=np.eye(2)
    )
    assert system.exogenous == (1,) and system.endogenous == (0,)
    assert system.stationary and np.all(np.linalg.eigvalsh(system.initial_cov) > 0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"d_z": 1, "context": 0}, "context"),
        ({"d_z": 1, "context": 33}, "context"),
        ({"d_z": 1, "context": 2.0}, "context"),
        ({"d_z": 1, "horizon": 101}, "horizon"),  # MAX_HORIZON = 100
    ],
)
def test_lam_spec_bounds_context_and_horizon(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        LAMSpec(**kwargs)


def test_window_work_is_bounded_for_the_observation_size():
    with pytest.raises(ValueError, match="^context:"):
        LAMSpec(1, context=32).check_for(256)
    with pytest.raises(ValueError, match="^horizon:"):
        LAMSpec(1, context=2, horizon=64).check_for(128)
    LAMSpec(1, horizon=64).check_for(1024)  # one frame: as before, no window bound


# -- the solve-file table ----------------------------------------------------------------------------
STATE_SPACE_TOML = """
[state_space]
dynamics = [[1.0, 0.0], [0.0, 0.5]]
action_matrix = [[1.0], [0.0]]
process_noise_cov = [[0.0, 0.0], [0.0, 0.75]]
exogenous = [1]
initial = {mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]]}

[lam]
d_z = 1
context = 3
horizon = 2
"""


def test_state_space_table_parses_and_round_trips():
    system, spec = parse_spec_text(STATE_SPACE_TOML, fmt="toml")
    assert isinstance(system, StateSpaceSystem) and spec.context == 3 and spec.horizon == 2
    assert system.exogenous == (1,) and not system.stationary
    again, spec_again = spec_from_dict(json.loads(json.dumps(spec_to_dict(system, spec))))
    assert spec_again == spec
    names = ("obs", "next_obs", "action")
    np.testing.assert_array_equal(
        again.transition(2, 3).second_moment(names), system.transition(2, 3).second_moment(names)
    )
    stationary = dict(spec_to_dict(system, spec))
    stationary["state_space"] = dict(
        stationary["state_space"], dynamics=[[0.5, 0.0], [0.0, 0.5]], initial="stationary"
    )
    assert spec_from_dict(stationary)[0].stationary


@pytest.mark.parametrize(
    "data, field",
    [
        ({"lam": {"d_z": 1}}, "system"),
        (
            {
                "system": {"action_matrix": [[1.0]]},
                "state_space": {"dynamics": [[0.5]], "action_matrix": [[1.0]]},
                "lam": {"d_z": 1},
            },
            "state_space",
        ),
        ({"state_space": {"action_matrix": [[1.0]]}, "lam": {"d_z": 1}}, "state_space.dynamics"),
        (
            {"state_space": {"dynamics": [[0.5]], "action_matrix": [[1.0]], "noise": 1}, "lam": {"d_z": 1}},
            "state_space.noise",
        ),
        (
            {"state_space": {"dynamics": [[1.0]], "action_matrix": [[1.0]]}, "lam": {"d_z": 1}},
            "state_space.initial",
        ),
        (
            {
                "state_space": {"dynamics": [[0.5]], "action_matrix": [[1.0]], "exogenous": [0]},
                "lam": {"d_z": 1},
            },
            "state_space.exogenous",
        ),
        (
            {
                "state_space": {"dynamics": [[0.5]], "action_matrix": [[1.0]]},
                "lam": {"d_z": 1, "context": 99},
            },
            "lam.context",
        ),
        ({"state_space": {"dynamics": [[0.5]], "action_matrix": [[1.0]]}, "lam": {"d_z": 2}}, "lam.d_z"),
    ],
)
def test_bad_state_space_files_name_the_field(data, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        spec_from_dict(data)


def test_cli_solves_a_state_space_file_and_refuses_an_unstable_one_in_one_line(tmp_path, capsys):
    """The file of the issue's schema is solved (exit 0); an unstable closed loop under "stationary"
    is refused with exit 2 and one line naming the field, never a number."""
    path = tmp_path / "exo.toml"
    path.write_text(STATE_SPACE_TOML)
    assert main(["solve", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"exogenous_loading", "latent_consistency"} <= set(out) and "exogenous" in out["probes"]["latent"]
    path.write_text(
        STATE_SPACE_TOML.replace(
            "dynamics = [[1.0, 0.0], [0.0, 0.5]]", "dynamics = [[1.0, 0.0], [0.0, 1.5]]"
        ).replace("initial = {mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]]}", "")
    )
    assert main(["solve", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lamproof: error: state_space.initial:")


def test_system_with_context_is_solved_from_a_file(capsys, tmp_path):
    path = tmp_path / "context.json"
    path.write_text(
        json.dumps({"system": {"action_matrix": [[1.0], [0.0]]}, "lam": {"d_z": 1, "context": 2}})
    )
    assert main(["solve", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (
        len(out["maps"]["obs"][0]) == 4 and "exogenous_loading" not in out
    )  # [o_{t−1}; o_t]; no exogenous state
    assert System([[1.0]]).transition(1, 2).d_c == 2
