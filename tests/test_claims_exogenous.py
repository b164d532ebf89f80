"""The state-space claims (lamproof.claims.exogenous) meet their expectations today: the true ones hold
over random systems, the false ones are refuted with a shrunk counterexample. They run with
``solution=None``; the two that read the solved optimum wait on solve() for windows (phase 2)."""

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import NoSuchExample

from lamproof.claims.exogenous import NEEDS_SOLUTION, STATE_SPACE_CLAIMS
from lamproof.strategies import problems

CHECKABLE = [c for c in STATE_SPACE_CLAIMS if c not in NEEDS_SOLUTION]
QUICK = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
#: Counterexamples are searched without shrinking here (tests/test_inverse.py shrinks the inverse-model
#: witnesses and checks their structure): a refutation only needs one.
SEARCH = settings(max_examples=200, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate])


def _fails(c, problem) -> bool:
    system, spec = problem
    try:
        c(system, spec, None)
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("c", [c for c in CHECKABLE if c.expect == "true"], ids=lambda c: c.name)
def test_true_claims_hold(c):
    @QUICK
    @given(problems(c.systems, c.specs))
    def run(problem):
        c(*problem, None)

    run()


@pytest.mark.parametrize("c", [c for c in CHECKABLE if c.expect == "false"], ids=lambda c: c.name)
def test_false_claims_are_refuted(c):
    try:
        system, spec = find(problems(c.systems, c.specs), lambda p: _fails(c, p), settings=SEARCH)
    except NoSuchExample:
        pytest.fail(f"{c.name}: no counterexample in {SEARCH.max_examples} examples")
    with pytest.raises(AssertionError):
        c(system, spec, None)


def test_claims_waiting_on_phase_two_are_marked():
    assert {c.name for c in NEEDS_SOLUTION} == {"optimal_loss_is_context_innovation_tail",
                                                "action_head_makes_latent_consistent"}
    assert all("phase 2" in c.statement for c in NEEDS_SOLUTION)
