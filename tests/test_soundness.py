"""Sound verdicts: proved ranges, witnessed members, answers that float64 can vouch for.

Every number here is checked against a route that does not share the code under test: the
population minimizer (never uses the closed form), members scored afresh by ``probe_error``,
members sampled in parameter space, least squares on samples, or the hand computation quoted
in the issue that reported the defect.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lamproof import LAMSpec, System, all_probes, paper_system, probe, solve
from lamproof.claims import Undecided, assert_family, assert_family_within, check, claim
from lamproof.errors import IllConditioned
from lamproof.numeric.objective import population_objective
from lamproof.numeric.population import minimize_population
from lamproof.numeric.probes import probe_member, sample_probe_error
from lamproof.numeric.tolerances import WITNESS_ATOL
from lamproof.strategies import lam_specs, problems, systems

#: Members of the optimal family reach the optimum to round-off (relative).
OBJECTIVE_RTOL = 1e-9
#: A member's score, recomputed, agrees with what the range reported to round-off.
SCORE_ATOL = 1e-8


def _issue_system(rotated: bool) -> System:
    """G = I, F = diag(1, 1.5), no noise, d_z = 1 (issue 9), optionally in a rotated basis."""
    Q = np.linalg.qr(np.cos(np.array([[1.0, 2.0], [3.0, 4.0]])))[0] if rotated else np.eye(2)
    return System(Q, dynamics=Q @ np.diag([1.0, 1.5]) @ Q.T)


@pytest.mark.parametrize("rotated", [False, True])
def test_the_issues_tie_with_drift_in_either_basis(rotated):
    """Tied innovation (1, 1): the predicted change is (L − I) o + u uᵀ a. Generic u recovers o₂ and
    uᵀa (action FVU 1/2); the member aligned with the drift carries a₂ + o₂/2 only (FVU 0.6)."""
    sol = solve(_issue_system(rotated), LAMSpec(1))
    score = probe(sol, "action", "predicted_change")
    assert (score.min, score.max) == pytest.approx((0.5, 0.6), abs=1e-12)
    assert score.bounds == "exact" and score.identified is False
    for end, value in (("min", 0.5), ("max", 0.6)):
        member = score.witnesses[end]
        assert population_objective(member, sol.transition, sol.spec).total == pytest.approx(
            sol.objective, rel=1e-12
        )
        assert probe_member(member, "action", "predicted_change", sol.transition) == pytest.approx(
            value, abs=1e-12
        )
    aligned = score.witnesses["max"].next_obs_map  # M₂ = u uᵀ with u the drift direction (Q e₂)
    drift = _issue_system(rotated).action_matrix[:, 1]
    assert aligned == pytest.approx(np.outer(drift, drift), abs=1e-9)


def test_the_issues_observation_probe_is_an_honest_outer_range():
    """The observation probe of the same change: generic members 0.5, the aligned one 0.9 (issue's
    mechanism). The proved interval contains both; it is outer, and says so."""
    score = probe(solve(_issue_system(False), LAMSpec(1)), "observation", "predicted_change")
    assert score.attained_min == pytest.approx(0.5, abs=1e-12) and score.attained_max == pytest.approx(
        0.9, abs=1e-12
    )
    assert score.min <= 0.5 + 1e-12 and score.max >= 0.9 - 1e-12
    assert score.identified is False


def test_pseudo_inverse_does_not_cut_a_direction_the_dynamics_amplify():
    """Σ_o = diag(1, 1e-12), F = diag(1, 1e6): o₂ has variance 1e-12 but drives o'₂. The exact loss is
    the noise 0.01 left after capturing the action (issue 9: solve reported 1.01 and a tie)."""
    system = System(
        [[1.0], [0.0]],
        obs_cov=np.diag([1.0, 1e-12]),
        dynamics=np.diag([1.0, 1e6]),
        noise_cov=0.01 * np.eye(2),
    )
    sol = solve(system, LAMSpec(1))
    assert sol.optimal_loss == pytest.approx(0.01, rel=1e-9)
    assert sol.unique is True
    member = population_objective(
        sol.parameters, sol.transition, LAMSpec(1)
    )  # the objective, evaluated afresh
    assert member.total == pytest.approx(0.01, rel=1e-6)
    pop = minimize_population(sol.transition, LAMSpec(1), seed=0)  # cannot resolve 1e-12, but never beats it
    assert pop.objective.total >= 0.01 * (1 - 1e-9)


@pytest.mark.parametrize("kwargs", [dict(obs_cov=1e11 * np.eye(2)), dict(action_matrix=[[1e5], [0.0]])])
def test_probes_are_defined_in_any_units(kwargs):
    """The action is recoverable from ô' − o whatever the units (issue 9: every action probe was null)."""
    fields = {"action_matrix": [[1.0], [0.0]], **kwargs}
    system = System(fields.pop("action_matrix"), **fields)
    sol = solve(system, LAMSpec(1))
    score = probe(sol, "action", "predicted_change")
    assert score.value == pytest.approx(0.0, abs=1e-9) and score.identified
    features = sol.parameters.predicted_change_map
    sampled = sample_probe_error(
        features, "action", sol.transition, samples=20_000, rng=np.random.default_rng(0)
    )
    assert sampled == pytest.approx(0.0, abs=0.01)


def test_an_action_weight_float64_cannot_resolve_is_refused():
    """λ = 1e100 (issue 9 reported a reconstruction loss of 278.5 > tr S_r = 7)."""
    system = System(np.eye(4)[:, :2], noise_cov=np.diag([0.5, 0.5, 2.0, 2.0]))
    with pytest.raises(IllConditioned, match="^lam.action_loss_weight:"):
        solve(system, LAMSpec(1, action_loss_weight=1e100))
    sol = solve(system, LAMSpec(1, action_loss_weight=1e3))  # large but resolvable: actions first
    assert sol.optimal_loss == pytest.approx(7.0 - 1.5, rel=1e-9)
    assert sol.optimal_loss <= np.trace(sol.innovation_operator)


def test_an_undecidable_tie_is_refused():
    """Two action directions whose variances differ by 1e-10 relative: float64 cannot tell a tie
    (a family) from a gap (one answer), and the captured space depends on it."""
    system = System(np.eye(2), exploration_cov=np.diag([1.0, 1.0 + 1e-10]))
    with pytest.raises(IllConditioned, match="innovation"):
        solve(system, LAMSpec(1))
    solve(System(np.eye(2), exploration_cov=np.diag([1.0, 1.0 + 1e-6])), LAMSpec(1))  # a clear gap: answered


families = systems(
    d_o=st.integers(1, 4),
    noise=["none", "isotropic", "structured"],
    feedback=None,
    dynamics=None,
    means=None,
    sigma=st.sampled_from([0.5, 1.0, 2.0]),
    exploration="psd",
)


@settings(max_examples=30)
@given(
    problems(
        families,
        lambda s: lam_specs(
            s.d_o,
            fdm_obs_path="any",
            idm="any",
            augmentation=st.sampled_from([0.0, 0.5]),
            action_loss_weight=st.sampled_from([0.0, 2.0]),
        ),
    )
)
def test_witnesses_are_optimal_members_and_sampled_members_lie_in_the_proved_range(problem):
    system, spec = problem
    try:
        sol = solve(system, spec)
        probes = all_probes(sol)
    except IllConditioned:
        assume(False)
    assume(sol.method == "closed-form")
    rng = np.random.default_rng(0)
    sampled = [sol.sample_member(rng) for _ in range(6)]
    for rep, scores in probes.items():
        for target, score in scores.items():
            if score.value is None:
                continue
            for end in ("min", "max"):
                member = score.witnesses[end]
                total = population_objective(member, sol.transition, spec).total
                assert total == pytest.approx(sol.objective, rel=OBJECTIVE_RTOL, abs=OBJECTIVE_RTOL), (
                    rep,
                    target,
                    end,
                )
                again = probe_member(member, target, rep, sol.transition)
                assert again == pytest.approx(score.witness_scores[end], abs=SCORE_ATOL), (rep, target, end)
            assert (
                score.min - WITNESS_ATOL
                <= score.attained_min
                <= score.attained_max
                <= score.max + WITNESS_ATOL
            )
            if score.bounds == "exact":
                assert (score.attained_min, score.attained_max) == pytest.approx(
                    (score.min, score.max), abs=WITNESS_ATOL
                )
            for member in sampled:
                value = probe_member(member, target, rep, sol.transition)
                assert score.min - SCORE_ATOL <= value <= score.max + SCORE_ATOL, (rep, target)
                if score.identified:
                    assert value == pytest.approx(score.value, abs=SCORE_ATOL), (rep, target)


@pytest.mark.parametrize("chi", [0.3, 0.7])
def test_transfer_probe_ranges_contain_every_member(chi):
    """§5's protocol (fitted on the policy's data, scored on random actions), at d_z < d_a (a tie):
    the proved bounds contain sampled members, and the tie provably does not move the action probe."""
    system = paper_system(8, 3, chi=chi, seed=2)
    score_on = system.replace(policy_gain=np.zeros((3, 8)), exploration_cov=np.eye(3)).transition()
    sol = solve(system, LAMSpec(2))
    rng = np.random.default_rng(1)
    members = [sol.sample_member(rng) for _ in range(8)]
    for rep, scores in all_probes(sol, fit=sol.transition, score=score_on).items():
        for target, s in scores.items():
            if s.value is None:
                continue
            for member in members:
                value = probe_member(member, target, rep, sol.transition, score_on)
                assert s.min - SCORE_ATOL <= value and (s.max is None or value <= s.max + SCORE_ATOL), (
                    rep,
                    target,
                )
    action = probe(sol, "action", "predicted_change", fit=sol.transition, score=score_on)
    assert action.identified and action.bounds == "exact"
    assert action.value == pytest.approx((3 - 2) / 3 * (1 + chi**2), abs=1e-9)  # paper §5's closed form


# -- claims: refuted by a member, holding by proof, otherwise undecided --------------------------
def test_assert_family_refutes_with_a_member_and_is_otherwise_undecided():
    score = probe(
        solve(_issue_system(False), LAMSpec(1)), "observation", "predicted_change"
    )  # outer, [0.5, 0.9]
    with pytest.raises(AssertionError, match="member"):
        assert_family(score, 0.5, "observation")  # the aligned member scores 0.9
    with pytest.raises(Undecided):
        assert_family_within(score, 0.5, 0.95, "observation")  # every witness inside, the proof reaches 1
    assert_family_within(score, 0.0, 1.0, "observation")  # proved


def test_an_undecided_claim_does_not_meet_its_expectation():
    @claim(systems=systems(d_o=2, d_a=1))
    def never_settled(system, spec, solution):
        raise Undecided("cannot tell")

    result = check(never_settled, examples=5)
    assert result.verdict == "undecided" and not result.meets_expectation
    assert result.counterexample is not None  # the example it could not decide, as a solve file


def test_a_tie_without_drift_has_both_ends_witnessed():
    """examples/exogenous.toml ties the action with the exogenous innovation and has no drift: the
    latent captures either, so its action probe spans [0, 1], both ends attained by members that
    re-score to 0 and 1 (before, the search skipped drift-free ties and reported an outer [0, 1])."""
    from pathlib import Path

    from lamproof.api import load_spec_file

    system, spec = load_spec_file(Path(__file__).parent.parent / "examples" / "exogenous.toml")
    sol = solve(system, spec)
    score = probe(sol, "action", "latent")
    assert score.bounds == "exact" and score.identified is False
    for end, value in (("min", 0.0), ("max", 1.0)):
        member = score.witnesses[end]
        assert population_objective(member, sol.transition, sol.spec).total == pytest.approx(
            sol.objective, rel=1e-12
        )
        assert probe_member(member, "action", "latent", sol.transition) == pytest.approx(value, abs=1e-9)
