"""The state-space claims (lamproof.claims.exogenous) are in the builtin registry, read the solved optimum
where they say so, and give small counterexamples that `lamproof solve` accepts. (Their verdicts over random
systems are checked with the whole registry in tests/test_claims.py.)"""

import json

import numpy as np

import lamproof.claims.core as core
from lamproof.claims import builtin_claims, check
from lamproof.claims.exogenous import NEEDS_SOLUTION, STATE_SPACE_CLAIMS
from lamproof.cli import main


def test_state_space_claims_are_in_the_builtin_registry():
    names = [c.name for c in builtin_claims()]
    assert [c.name for c in STATE_SPACE_CLAIMS] == names[-len(STATE_SPACE_CLAIMS) :]
    assert {c.name for c in NEEDS_SOLUTION} >= {
        "C3.optimal-loss-is-context-innovation-tail",
        "X5.action-head-makes-latent-consistent",
    }
    for c in STATE_SPACE_CLAIMS:
        assert c.statement and c.source and (c.expect == "true" or c.note)


def test_claims_on_the_solved_optimum_catch_a_wrong_solver(monkeypatch):
    """C3 and X3 compare the solved optimum with formulas from the system's parameters: a solver that
    solves another system (the exogenous noise doubled) fails them."""
    real_solve = core.solve

    def wrong(system, spec):
        return real_solve(
            system.replace(process_noise_cov=2 * system.process_noise_cov + 0.1 * np.eye(system.n)), spec
        )

    monkeypatch.setattr(core, "solve", wrong)
    by_name = {c.name: c for c in STATE_SPACE_CLAIMS}
    for name in ("C3.optimal-loss-is-context-innovation-tail", "X3.reconstruction-loads-exogenous"):
        assert check(by_name[name], examples=20, shrink=False).verdict == "fails", name


def test_a_state_space_counterexample_is_small_and_solvable(tmp_path, capsys):
    by_name = {c.name: c for c in STATE_SPACE_CLAIMS}
    result = check(by_name["X7.endogenous-representation-with-coupling"], examples=30, seed=0)
    assert result.verdict == "fails" and result.meets_expectation
    ce = result.counterexample
    assert ce.system.n == 2 and ce.spec.horizon == 2 and ce.matrices["exogenous"] == [1]
    assert "H = " in ce.latex and r"\text{exogenous }" in ce.latex and "k = 2" in ce.latex
    path = tmp_path / "counterexample.json"
    path.write_text(json.dumps(ce.solve_file))
    assert main(["solve", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exogenous_loading"]["max"] > 0.05
