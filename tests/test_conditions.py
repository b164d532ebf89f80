"""Capture conditions agree with what the solvers actually do (docs/theory.md §10).

The independent route is the population minimizer (never uses the closed form): where
``action_captured`` holds, the exploration-driven part of its reconstruction error
``E‖(I − M₂)u‖²`` is 0, and where ``actions_recoverable`` holds its action probe of ``ô' − o`` is
0; where they fail, both are clearly positive. Cases within the minimizer's resolution of a
boundary (a predicted miss below ``CLEAR``) or with an eigenvalue tie are skipped, not counted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lamproof import control
from lamproof.api import solution_to_dict
from lamproof.cli import main
from lamproof.conditions import (
    Condition,
    action_weight_threshold,
    capture_conditions,
    cleaning_threshold,
    family_action_captured,
    family_thresholds,
    system_conditions,
)
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.numeric.population import minimize_population
from lamproof.numeric.probes import probe_error
from lamproof.numeric.tolerances import NUMERIC_FEATURE_RTOL
from lamproof.strategies import lam_specs, problems, systems
from lamproof.systems import System, paper_system

#: The minimizer's parameters are accurate to ~1e-5 relative (its objective to ~1e-9), so a
#: fraction below ZERO counts as 0 and a predicted miss or probe error above CLEAR as clearly > 0.
ZERO = 1e-4
CLEAR = 1e-3

CASES = settings(
    max_examples=100,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)

KINDS = st.sampled_from(
    [("orthonormal", "identity"), ("integer", "identity"), ("orthonormal", "psd"), ("integer", "psd")]
)
SYSTEMS = KINDS.flatmap(
    lambda kind: systems(
        noise="any", feedback=None, dynamics=None, means=None, action=kind[0], exploration=kind[1]
    )
)


def exploration_miss(M2: np.ndarray, system: System, k: int) -> float:
    """``E‖(I − M₂) u‖² / E‖u‖²``: the share of the controllable change the prediction misses."""
    W = control.action_gramian(system, k)
    R = np.eye(system.d_o) - M2
    return float(np.trace(R @ W @ R.T)) / max(float(np.trace(W)), 1e-300)


def _check_against_minimizer(system: System, spec: LAMSpec, seed: int) -> None:
    solution = solve(system, spec, allow_numeric=False)
    conditions = capture_conditions(solution)
    if solution.unique is False or conditions["action_captured"].holds is None:
        return
    gap, top = solution.eigengap, float(solution.innovation.eigenvalues[0]) or 1.0
    if gap is not None and solution.innovation.rank == spec.d_z and gap < 1e-2 * top:
        return  # the minimizer cannot resolve which side of a near-tie it is on
    result = minimize_population(solution.transition, spec, starts=2, seed=seed)
    miss = exploration_miss(result.params.next_obs_map, system, spec.horizon)
    predicted_miss = exploration_miss(solution.parameters.next_obs_map, system, spec.horizon)
    captured = conditions["action_captured"].holds
    if captured:
        assert miss < ZERO, conditions["action_captured"]
    elif predicted_miss > CLEAR:
        assert miss > CLEAR / 2, conditions["action_captured"]
    recoverable = conditions["actions_recoverable"].holds
    probe = probe_error(
        result.params.predicted_change_map, "action", solution.transition, rtol=NUMERIC_FEATURE_RTOL
    )
    predicted = probe_error(solution.parameters.predicted_change_map, "action", solution.transition)
    if probe is None or recoverable is None:
        return
    if recoverable:
        assert probe < ZERO, conditions["actions_recoverable"]
    elif predicted > CLEAR:
        assert probe > CLEAR / 2, conditions["actions_recoverable"]


@CASES
@given(
    problems(SYSTEMS, lambda s: lam_specs(s.d_o, horizon=st.integers(1, 3), fdm_obs_path="any")),
    st.integers(0, 1000),
)
def test_conditions_agree_with_the_population_minimizer(problem, seed):
    _check_against_minimizer(*problem, seed)


@CASES
@given(
    st.integers(2, 5).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(2, n + 1), st.integers(1, n), st.integers(1, 3))
    ),
    st.integers(0, 2**31 - 1),
)
def test_rank_deficient_g_and_singular_exploration(dims, seed):
    """Rank-deficient ``G`` (repeated columns), singular ``Σ_e`` (a deterministic component), ``d_z < rank``."""
    d_o, d_a, d_z, k = dims
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d_o, d_a))
    G[:, -1] = G[:, 0]  # rank(G) < d_a
    root = rng.standard_normal((d_a, d_a - 1))  # rank(Σ_e) = d_a − 1
    noise = rng.standard_normal((d_o, 1))
    system = System(G, exploration_cov=root @ root.T, noise_cov=0.3 * noise @ noise.T)
    spec = LAMSpec(d_z, horizon=k)
    conditions = capture_conditions(solve(system, spec))
    reach = np.linalg.matrix_rank(control.action_gramian(system, k), tol=1e-8)
    assert conditions["capacity"].holds == (d_z >= reach)
    assert conditions["capacity"].margin == d_z - reach
    _check_against_minimizer(system, spec, seed % 1000)


def test_singular_exploration_hides_directions():
    G = np.eye(3)[:, :2]
    system = System(G, exploration_cov=np.diag([1.0, 0.0]))
    conditions = capture_conditions(solve(system, LAMSpec(2)))
    assert conditions["excitation"].holds is False
    assert conditions["excitation"].margin == -1.0
    assert "hides" in conditions["excitation"].reason
    # with dynamics mixing the two action directions, two steps excite both again
    mixed = system.replace(dynamics=np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    assert capture_conditions(solve(mixed, LAMSpec(2)))["excitation"].holds is False
    assert system_conditions(mixed, 2)["excitation"].holds is True
    shifted = system.replace(dynamics=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))
    assert system_conditions(shifted, 2)["excitation"].holds is False  # G reaches 3 directions, e only 2


def test_paper_thresholds_in_the_conditions():
    """Structured noise first iff σ² > 1 (c = 1, χ = 0): the conditions flip exactly there."""
    for sigma, captured in ((0.9, True), (1.1, False)):
        system = paper_system(12, 3, noise="structured", sigma=sigma, noise_dim=3)
        conditions = capture_conditions(solve(system, LAMSpec(3)))
        assert conditions["action_captured"].holds is captured
        assert conditions["dominance"].margin == pytest.approx(1 - sigma**2)
        assert conditions["actions_recoverable"].holds is captured
    iso = capture_conditions(solve(paper_system(12, 3, noise="isotropic", sigma=0.5), LAMSpec(3)))
    assert iso["action_captured"].holds is True and iso["actions_recoverable"].holds is False


def test_family_thresholds_and_numeric_bisection_agree():
    import sympy

    from lamproof.symbolic import families as fam

    t = family_thresholds()
    assert sympy.simplify(t["c"] - (1 - fam.chi) / fam.sigma) == 0
    assert sympy.simplify(t["sigma"].subs({fam.c: 1, fam.chi: 0}) - 1) == 0
    assert sympy.simplify(t["lambda"] - (fam.c**2 * fam.sigma**2 - 1)) == 0
    for sigma, chi in ((1.5, 0.0), (2.0, 0.3)):
        system = paper_system(10, 2, noise="structured", sigma=sigma, noise_dim=3, chi=chi)
        numeric = cleaning_threshold(system, LAMSpec(2))
        assert numeric.value == pytest.approx((1 - chi) / sigma, rel=1e-6)
        assert numeric.holds is False and numeric.margin < 0
    system = paper_system(10, 2, noise="structured", sigma=1.5, noise_dim=3)
    weight = action_weight_threshold(system, LAMSpec(2))
    assert weight.value == pytest.approx(1.5**2 - 1, rel=1e-6)
    captured = family_action_captured(head=True).subs(
        {fam.d_z: 2, fam.d_a: 2, fam.d_b: 3, fam.c: 1, fam.sigma: 1.5}
    )
    assert bool(captured.subs(fam.lam, 1.3)) and not bool(captured.subs(fam.lam, 1.2))


@settings(max_examples=30, deadline=None, database=None)
@given(
    st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_staircase_rank_equals_kalman_rank(dims, seed, block):
    n, m = dims
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, n))
    B = rng.standard_normal((n, m))
    if block and n > 1:  # a known uncontrollable part
        F[n // 2 :, : n // 2] = 0.0
        B[n // 2 :] = 0.0
    assert control.reachable_dimension(F, B) == control.kalman_rank(F, B)


# -- the solve JSON and bad input ------------------------------------------------------------------
def _write(tmp_path, data, name="case.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_solve_json_contains_the_conditions(tmp_path, capsys):
    data = {
        "system": {
            "action_matrix": [[1, 0], [0, 1], [0, 0]],
            "exploration_cov": [[1, 0], [0, 3]],
            "noise_cov": [[0, 0, 0], [0, 0, 0], [0, 0, 4]],
        },
        "lam": {"d_z": 2, "horizon": 2},
    }
    assert main(["solve", str(_write(tmp_path, data))]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {
        "controllable",
        "excitation",
        "capacity",
        "dominance",
        "action_captured",
        "identifiable",
        "actions_recoverable",
    }
    assert names <= set(out["conditions"])
    for condition in out["conditions"].values():
        assert set(condition) == {"holds", "margin", "reason"} and "\n" not in condition["reason"]
    assert (
        out["conditions"]["action_captured"]["holds"] is False
    )  # two steps: noise 8 and action 6 beat action 2
    assert out["conditions"]["capacity"]["holds"] is True


def test_numeric_solution_is_undecided():
    system = System(np.eye(3)[:, :2], dynamics=0.5 * np.eye(3))
    solution = solve(system, LAMSpec(2, augmentation=1.0))
    assert solution.method == "numeric"
    conditions = capture_conditions(solution)
    assert conditions["dominance"].holds is None and "numeric" in conditions["dominance"].reason
    assert conditions["capacity"].holds is True
    assert solution_to_dict(solution)["conditions"]["action_captured"]["holds"] is None


@pytest.mark.parametrize(
    "system, lam, field",
    [
        ({"action_matrix": [[1], [0]], "dynamics": [[1, 0, 0], [0, 1, 0]]}, {"d_z": 1}, "system.dynamics"),
        ({"action_matrix": [[1], [0], [0]], "dynamics": [[1, 0], [0, 1]]}, {"d_z": 1}, "system.dynamics"),
        ({"action_matrix": [[1], [0]]}, {"d_z": 1, "horizon": 0}, "lam.horizon"),
        ({"action_matrix": [[1], [0]]}, {"d_z": 1, "horizon": "infinite"}, "lam.horizon"),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, system, lam, field):
    assert main(["solve", str(_write(tmp_path, {"system": system, "lam": lam}))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err


def test_bad_arguments_name_the_argument():
    stable = System(np.eye(2)[:, :1], dynamics=0.5 * np.eye(2))
    unstable = stable.replace(dynamics=1.5 * np.eye(2))
    assert system_conditions(stable, "infinite")["excitation"].holds is True
    with pytest.raises(ValueError, match="^closed_loop"):
        system_conditions(unstable, "infinite")
    with pytest.raises(ValueError, match="^horizon"):
        system_conditions(stable, 0)
    with pytest.raises(ValueError, match="^horizon"):
        system_conditions(stable, "forever")
    with pytest.raises(ValueError, match="^system"):
        system_conditions("not a system")
    with pytest.raises(ValueError, match="^solution"):
        capture_conditions(stable)
    with pytest.raises(ValueError, match="^dynamics"):
        System(np.eye(2)[:, :1], dynamics=np.ones((2, 3)))
    with pytest.raises(ValueError, match="^d_z"):
        system_conditions(stable, 1, d_z=3)
    with pytest.raises(ValueError, match="^spec"):
        cleaning_threshold(stable, "spec")


def test_condition_as_dict():
    assert Condition(True, 0.5, "why").as_dict() == {"holds": True, "margin": 0.5, "reason": "why"}
