"""solve() on context windows and state-space systems, against routes that never use the closed form.

- A System and its state-space form (``H = I``, ``T = 1``) give the same solve JSON (two window
  layouts of the same moments).
- On windows the closed form equals the population minimizer on the window's exact moments.
- The exogenous probe target, the exogenous loading and the latent consistency over the optimal
  family against samples, the minimizer's optimum, members drawn from the family and a direct
  optimization of the ratio the loading is.
- Capture conditions of a state-space system (``W_k^act = H W_k Hᵀ`` from the closed loop in state
  space) against the minimizer's captured change, measured with the window's own exploration part
  of the innovation (:func:`lamproof.exogenous.action_operator`).

Tolerances:
- ``SAME_RTOL``: the two layouts differ only in round-off (factor columns in another order),
  ~1e-14 relative; 1e-9 leaves orders of margin while any modelling difference is O(1).
- ``OBJECTIVE_RTOL``: L-BFGS-B from several starts agrees to ~1e-9 relative; 1e-6 of the data's
  scale, as in tests/test_closed_form.py.
- ``SAMPLE_ATOL``: 40 000 draws to fit and 40 000 to score, as in tests/test_probes.py (~6σ).
- ``RANGE_ATOL``: members scored exactly lie in a proved range up to round-off.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from lamproof import LAMSpec, solve
from lamproof.api import solution_to_dict
from lamproof.cli import main
from lamproof.conditions import capture_conditions
from lamproof.errors import InputError
from lamproof.exogenous import (
    _ratio_extremes,
    action_operator,
    consistency_over_family,
    exogenous_loading,
    exogenous_loading_range,
    latent_consistency,
    loading_over_family,
)
from lamproof.numeric.closed_form import captured_basis
from lamproof.numeric.objective import OBSERVED, population_objective
from lamproof.numeric.population import minimize_population
from lamproof.numeric.probes import probe, probe_error, sample_probe_error, targets_for
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL
from lamproof.statespace import StateSpaceSystem, random_walk_with_exogenous
from lamproof.strategies import lam_specs, problems, state_space_systems, systems

SAME_RTOL = 1e-9
OBJECTIVE_RTOL = 1e-6
SAMPLE_ATOL = 0.03
RANGE_ATOL = 1e-7
#: The minimizer's parameters are accurate to ~1e-5 relative: a share below ZERO is 0 and one
#: above CLEAR clearly positive (as in tests/test_conditions.py).
ZERO, CLEAR = 1e-4, 1e-3

WINDOWS = state_space_systems(
    n=st.integers(1, 3),
    observation="generic",
    observation_noise=None,
    feedback=None,
    coupling=None,
    initial=None,
    means=None,
)
EXOGENOUS = state_space_systems(
    n=st.integers(2, 3),
    exogenous=st.just(1),
    observation="generic",
    observation_noise=None,
    feedback=None,
    coupling=None,
)


def _scale(transition) -> float:
    return max(1.0, float(np.trace(transition.second_moment("next_obs"))))


def _numbers(value, path=""):
    """Every number of a solve JSON with its path (maps only where the prediction is unique)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("reason", "notes", "method"):
                continue
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")
    else:
        yield path, value


# -- one system, two layouts ----------------------------------------------------------------------------
@settings(max_examples=25)
@given(
    problems(
        systems(d_o=st.integers(1, 3), noise="any", feedback=None, dynamics=None, means=None),
        lambda s: lam_specs(s.d_o, fdm_obs_path="any", idm="any", horizon=st.integers(1, 2)),
    )
)
def test_system_and_its_state_space_form_give_the_same_solve(problem):
    system, spec = problem
    ours = solution_to_dict(solve(StateSpaceSystem.from_system(system), spec))
    theirs = solution_to_dict(solve(system, spec))
    assert ours["method"] == theirs["method"] and ours.keys() == theirs.keys()
    if theirs["method"] != "closed-form" or not theirs["unique"]:
        ours.pop("maps"), theirs.pop("maps")  # a tied member: only its family is determined
    if theirs["method"] != "closed-form":  # the minimizer's own path through two layouts: its objective
        assert ours["objective"] == pytest.approx(theirs["objective"], rel=OBJECTIVE_RTOL, abs=OBJECTIVE_RTOL)
        return
    a, b = dict(_numbers(ours)), dict(_numbers(theirs))
    assert a.keys() == b.keys()
    scale = max(1.0, float(np.max(np.abs(theirs["innovation_eigenvalues"]), initial=0.0)))
    for key, value in b.items():
        if isinstance(value, (bool, str)) or value is None:
            assert a[key] == value, key
        else:
            assert a[key] == pytest.approx(value, rel=SAME_RTOL, abs=SAME_RTOL * scale), key


# -- the closed form against the population minimizer, on windows -------------------------------------
@settings(max_examples=15)
@given(
    problems(
        WINDOWS,
        lambda s: lam_specs(
            s.d_o,
            fdm_obs_path="any",
            idm="any",
            context=st.integers(1, 3),
            horizon=st.integers(1, 2),
            augmentation=st.sampled_from([0.0, 0.0, 0.5]),
            action_loss_weight=st.sampled_from([0.0, 0.0, 1.5]),
        ),
    )
)
def test_solve_on_windows_equals_the_population_minimizer(problem):
    system, spec = problem
    solution = solve(system, spec)
    t = solution.transition
    assert (t.context, t.horizon, t.d_c) == (spec.context, spec.horizon, spec.context * system.d_o)
    scale = _scale(t)
    stated = population_objective(solution.parameters, t, spec).total
    assert stated == pytest.approx(solution.objective, abs=OBJECTIVE_RTOL * scale)
    optimum = minimize_population(t, spec, seed=1).objective.total
    assert optimum >= solution.objective - OBJECTIVE_RTOL * scale
    assert optimum == pytest.approx(solution.objective, abs=OBJECTIVE_RTOL * scale), (
        solution.method,
        solution.notes,
    )


def test_solve_refuses_a_window_of_another_lam():
    system = random_walk_with_exogenous()
    with pytest.raises(InputError, match="^transition:"):
        solve(system, LAMSpec(1, context=2), transition=system.transition(1, 3))
    with pytest.raises(InputError, match="^system:"):
        solve(object(), LAMSpec(1))


@settings(max_examples=10)
@given(
    state_space_systems(
        n=st.integers(1, 3),
        observation="generic",
        observation_noise=None,
        feedback=None,
        initial=None,
        means=None,
        coupling=None,
    ),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_window_factors_are_exact(system, context, horizon):
    """``X Xᵀ`` is the second moment (with the mean column) and the covariance (without): the probes and
    the closed form work on factors, the moments come from the window's block maps."""
    t = system.transition(horizon, context)
    for names in (OBSERVED, ("action", "noise", "current_obs"), tuple(v for v in t.variables if v != "obs")):
        with_mean, without = t.factor(names), t.factor(names, mean=False)
        moment, cov = t.second_moment(names), t.cov(names)
        size = max(1.0, float(np.max(np.abs(moment))))
        np.testing.assert_allclose(with_mean @ with_mean.T, moment, atol=1e-12 * size)
        np.testing.assert_allclose(without @ without.T, cov, atol=1e-12 * size)


# -- the exogenous probe target ---------------------------------------------------------------------------
@settings(max_examples=8)
@given(
    problems(EXOGENOUS, lambda s: lam_specs(s.d_o, fdm_obs_path="any", context=st.integers(1, 2))),
    st.sampled_from(["latent", "predicted_change"]),
)
def test_exogenous_probe_equals_least_squares_on_sampled_windows(problem, representation):
    system, spec = problem
    solution = solve(system, spec)
    t = solution.transition
    assert "exogenous" in targets_for(t)
    features = (
        solution.parameters.latent_map
        if representation == "latent"
        else solution.parameters.predicted_change_map
    )
    exact = probe_error(features, "exogenous", t)
    sampled = sample_probe_error(features, "exogenous", t, samples=40_000, rng=np.random.default_rng(0))
    if exact is None:
        assert sampled is None
    else:
        assert sampled == pytest.approx(exact, abs=SAMPLE_ATOL)


def test_exogenous_target_needs_exogenous_coordinates():
    from lamproof import paper_system

    solution = solve(paper_system(4, 2), LAMSpec(1))
    assert "exogenous" not in targets_for(solution.transition)
    with pytest.raises(InputError, match="^target:"):
        probe(solution, "exogenous", "latent")
    with pytest.raises(InputError, match="^transition:"):
        loading_over_family(solution)


# -- exogenous loading over the optimal family -------------------------------------------------------------
@settings(max_examples=10)
@given(
    problems(
        EXOGENOUS,
        lambda s: lam_specs(s.d_o, fdm_obs_path="any", context=st.integers(1, 2), horizon=st.integers(1, 2)),
    )
)
def test_loading_range_contains_the_minimizer_and_matches_ky_fan(problem):
    """The minimizer's optimum (it never sees S_v) has a loading inside the proved range; the range is
    phase 1's Ky Fan range; its ends are attained by members, which are optimal."""
    system, spec = problem
    solution = solve(system, spec)
    t, path = solution.transition, spec.fdm_obs_path
    loading = loading_over_family(solution)
    reference = exogenous_loading_range(t, spec.d_z, path)
    if loading.value is None:
        assert reference.value is None
        return
    assert (loading.min, loading.max) == pytest.approx((reference.min, reference.max), abs=RANGE_ATOL)
    assert loading.bounds == "exact"
    for end in ("min", "max"):
        member = loading.witnesses[end]
        assert population_objective(member, t, spec).total == pytest.approx(
            solution.objective, abs=OBJECTIVE_RTOL * _scale(t)
        )
    result = minimize_population(t, spec, starts=2, seed=2)
    found = exogenous_loading(t, captured_basis(result.params), path)
    if found is not None and result.converged:
        assert loading.min - 1e-4 <= found <= loading.max + 1e-4


@settings(max_examples=6)
@given(problems(EXOGENOUS, lambda s: lam_specs(s.d_o, fdm_obs_path="any", context=st.integers(1, 2))))
def test_loading_matches_a_monte_carlo_attribution(problem):
    """The loading's numerator attributes the captured change to the exogenous process noise through the
    window's source maps; here the attribution is a regression of the sampled captured innovation on the
    sampled exogenous noise (100 000 windows: the shares carry a standard error of ~0.003)."""
    system, spec = problem
    solution = solve(system, spec)
    t = solution.transition
    value = loading_over_family(solution).value
    if value is None or t.exogenous_columns.size == 0:
        return
    from lamproof.context import innovation

    draws = t.sample(100_000, np.random.default_rng(0), OBSERVED)
    v = np.hstack([draws["obs"], draws["next_obs"]]) @ innovation(t, spec.fdm_obs_path).map.T
    P = captured_basis(solution.parameters)
    Pv = v @ P
    exo = draws["sources"][:, t.exogenous_columns]
    coefficients, *_ = np.linalg.lstsq(exo, Pv, rcond=None)
    explained = float(np.mean(np.sum((exo @ coefficients) ** 2, axis=1)))
    assert explained / float(np.mean(np.sum(Pv**2, axis=1))) == pytest.approx(value, abs=0.02)


def test_loading_of_a_tie_spans_the_tied_directions():
    """Scalar example at the threshold g²σ_a² = σ_η² (A learned): the action and the exogenous
    innovation tie, so a one-dimensional latent may keep either: loading over [0, 1], both attained."""
    system = random_walk_with_exogenous(1.0, 1.0, 0.5, 1.0)
    solution = solve(system, LAMSpec(1))
    loading = loading_over_family(solution)
    assert (loading.min, loading.max, loading.bounds, loading.identified) == (
        pytest.approx(0.0, abs=1e-12),
        pytest.approx(1.0),
        "exact",
        False,
    )
    assert (loading.attained_min, loading.attained_max) == (pytest.approx(0.0, abs=1e-12), pytest.approx(1.0))
    away = loading_over_family(solve(random_walk_with_exogenous(1.0, 1.0, 0.5, 1.5), LAMSpec(1)))
    assert (away.value, away.identified) == (
        pytest.approx(1.0),
        True,
    )  # σ_η² > g²σ_a²: the latent is exogenous (D13)


def test_loading_with_an_action_head_is_a_ratio_range():
    """A tie in the reduced-rank regression (action direction at 1 + λ, exogenous at σ_η² = 1 + λ): the
    captured change is span(c·g e_s + s·e_x) for unit (c, s), so the loading sweeps [0, 1]; the
    captured denominator tr(P S_v) varies, which Dinkelbach's iteration handles."""
    weight = 1.0
    system = random_walk_with_exogenous(1.0, 1.0, 0.5, 1.0 + weight)
    solution = solve(system, LAMSpec(1, action_loss_weight=weight))
    assert solution.selection.tied
    loading = loading_over_family(solution)
    assert (loading.min, loading.max) == (pytest.approx(0.0, abs=1e-9), pytest.approx(1.0, abs=1e-9))
    assert loading.bounds == "exact"


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2**31 - 1))
def test_ratio_extremes_against_direct_optimization(m, k, fixed, seed):
    """Dinkelbach's min and max of tr(P N)/tr(P D) over fixed ⊕ (k-subspace of span R), against L-BFGS
    over the Stiefel manifold (QR of a free m × k matrix) from many starts: never beaten, and reached."""
    k = min(k, m)
    rng = np.random.default_rng(seed)
    d = fixed + m + 1
    basis, _ = np.linalg.qr(rng.standard_normal((d, fixed + m)))
    F0, R = basis[:, :fixed], basis[:, fixed:]
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    N = a @ a.T
    Dm = N + b @ b.T  # N ⪯ D, as S_exo ⪯ S_v
    (low, _), (high, _) = _ratio_extremes(N, Dm, F0, R, k)

    def ratio(flat, sign):
        Y, _ = np.linalg.qr(flat.reshape(m, k))
        P = F0 @ F0.T + R @ Y @ Y.T @ R.T
        return sign * float(np.trace(P @ N)) / float(np.trace(P @ Dm))

    found = {}
    for sign in (1.0, -1.0):
        values = [minimize(ratio, rng.standard_normal(m * k), args=(sign,)).fun for _ in range(12)]
        found[sign] = sign * min(values)
    assert found[1.0] >= low - 1e-9 and found[-1.0] <= high + 1e-9
    assert found[1.0] == pytest.approx(low, abs=1e-6) and found[-1.0] == pytest.approx(high, abs=1e-6)


# -- latent consistency over the optimal family --------------------------------------------------------------
@settings(max_examples=10)
@given(
    problems(
        EXOGENOUS,
        lambda s: lam_specs(
            s.d_o,
            fdm_obs_path="any",
            idm="any",
            context=st.integers(1, 2),
            augmentation=st.sampled_from([0.0, 0.3]),
        ),
    ),
    st.integers(0, 2**31 - 1),
)
def test_consistency_range_contains_every_sampled_member_and_remixing(problem, seed):
    system, spec = problem
    solution = solve(system, spec)
    if solution.method != "closed-form":
        return
    t = solution.transition
    result = consistency_over_family(solution)
    if result.value is None:
        return
    assert result.min - RANGE_ATOL <= result.value <= result.max + RANGE_ATOL
    for end, value in (("min", result.attained_min), ("max", result.attained_max)):
        witness = result.witnesses[end]
        assert latent_consistency(t, witness.latent_map) == pytest.approx(value, abs=1e-9)  # the pinv route
        assert population_objective(witness, t, spec).total == pytest.approx(
            solution.objective, abs=OBJECTIVE_RTOL * _scale(t)
        )
    rng = np.random.default_rng(seed)
    d_z = spec.d_z
    for _ in range(6):
        member = solution.sample_member(rng)
        mix = rng.standard_normal((d_z, d_z)) + 3 * np.eye(d_z)  # z → T z, B → B T⁻¹: equally optimal
        from lamproof.numeric.families import transform_latent

        remixed = transform_latent(member, mix, np.zeros_like(member.latent_map), d_z)
        for m in (member, remixed):
            value = latent_consistency(t, m.latent_map)
            if value is not None:
                assert result.min - RANGE_ATOL <= value <= result.max + RANGE_ATOL


def test_consistency_of_the_d13_cases():
    """Lee et al.'s claims, read linearly (D13): exogenous first → the latent is the exogenous innovation
    (consistency 1 for every member of a one-dimensional clean latent); an action head above λ* turns it
    to the action (0)."""
    system = random_walk_with_exogenous(1.0, 1.0, 0.5, 2.0)  # σ_η² = 2 > g²σ_a² = 1
    clean = consistency_over_family(solve(system, LAMSpec(1, augmentation=0.5)))
    assert (clean.value, clean.min, clean.max) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    head = consistency_over_family(solve(system, LAMSpec(1, action_loss_weight=3.0)))  # λ* = 1
    assert head.value == pytest.approx(0.0, abs=1e-12)


# -- capture conditions of a state-space system ------------------------------------------------------------
def _miss(M2: np.ndarray, S_act: np.ndarray) -> float:
    R = np.eye(M2.shape[0]) - M2
    return float(np.trace(R @ S_act @ R.T)) / max(float(np.trace(S_act)), 1e-300)


@settings(max_examples=12)
@given(
    problems(
        state_space_systems(
            n=st.integers(1, 3), observation="generic", observation_noise=None, feedback=None, coupling=None
        ),
        lambda s: lam_specs(s.d_o, horizon=st.integers(1, 2), context=st.integers(1, 2), fdm_obs_path="any"),
    ),
    st.integers(0, 1000),
)
def test_state_space_conditions_agree_with_the_population_minimizer(problem, seed):
    system, spec = problem
    solution = solve(system, spec, allow_numeric=False)
    conditions = capture_conditions(solution)
    t = solution.transition
    S_act = action_operator(t, spec.fdm_obs_path)  # the window's exploration part: another route to H W_k Hᵀ
    assert conditions["capacity"].margin == spec.d_z - np.linalg.matrix_rank(
        S_act, tol=1e-8 * max(1.0, float(np.max(np.abs(S_act))))
    )
    if solution.unique is False or conditions["action_captured"].holds is None:
        return
    gap, top = solution.eigengap, float(solution.innovation.eigenvalues[0]) or 1.0
    if gap is not None and solution.innovation.rank == spec.d_z and gap < 1e-2 * top:
        return
    result = minimize_population(t, spec, starts=2, seed=seed)
    miss, predicted = _miss(result.params.next_obs_map, S_act), _miss(solution.parameters.next_obs_map, S_act)
    if conditions["action_captured"].holds:
        assert miss < ZERO
    elif predicted > CLEAR:
        assert miss > CLEAR / 2
    recoverable = conditions["actions_recoverable"].holds
    found = probe_error(result.params.predicted_change_map, "action", t, rtol=NUMERIC_FEATURE_RTOL)
    exact = probe_error(solution.parameters.predicted_change_map, "action", t)
    if found is None or recoverable is None:
        return
    if recoverable:
        assert found < ZERO
    elif exact > CLEAR:
        assert found > CLEAR / 2


# -- the command line ----------------------------------------------------------------------------------------
def test_cli_text_shows_the_exogenous_quantities(tmp_path, capsys):
    path = tmp_path / "exo.json"
    path.write_text(
        json.dumps(
            {
                "state_space": random_walk_with_exogenous(1.0, 1.0, 0.5, 1.0).to_dict(),
                "lam": {"d_z": 1, "context": 2},
            }
        )
    )
    assert main(["solve", str(path), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "exogenous loading" in out and "latent consistency" in out and "exogenous " in out
    assert "[0, 1] (exact)" in out.split("exogenous loading")[1].splitlines()[0]


def test_dynamics_runs_state_space_files_and_context_windows(tmp_path, capsys):
    """The learning dynamics read a state-space file (one frame of a hidden-state window) and a
    context window too (``dynamics.WindowEngine``); the acquisition order labels the window's own
    sources: the exploration of the step is the action."""
    ss = {"state_space": random_walk_with_exogenous().to_dict(), "lam": {"d_z": 1}, "dynamics": {"steps": 10}}
    window = {
        "system": {"action_matrix": [[1.0], [0.0]]},
        "lam": {"d_z": 1, "context": 2},
        "dynamics": {"steps": 10},
    }
    for data in (ss, window):
        path = tmp_path / "dynamics.json"
        path.write_text(json.dumps(data))
        assert main(["dynamics", str(path)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert [row["step"] for row in report["trajectory"]][-1] == 10
        assert "action" in {d["direction"] for d in report["acquisition"]["directions"]}
