"""The claim API, the registry of the paper's claims, and `lamproof check`."""

import json
import textwrap

import numpy as np
import pytest
from hypothesis.errors import InvalidArgument

import lamproof.claims.core as core
from lamproof import probe
from lamproof.claims import (
    assert_close,
    builtin_claims,
    check,
    check_all,
    claim,
    load_claims,
    render_json,
    render_text,
)
from lamproof.cli import main
from lamproof.strategies import lam_specs, systems


@claim(systems=systems(noise="isotropic"), expect="false")
def no_leakage(system, spec, solution):
    """An optimal LAM's latent carries no observation information."""
    score = probe(solution, "observation", "latent")
    assert score.min >= 1 - 1e-6, f"observation probe min {score.min:.3g}"


def test_builtin_registry_meets_every_expectation():
    claims = builtin_claims()
    assert len(claims) >= 20 and len({c.name for c in claims}) == len(claims)
    assert {c.expect for c in claims} == {"true", "false"}
    results = check_all(claims, examples=12, seed=0)
    unmet = [
        (r.name, r.verdict, r.error, r.counterexample and r.counterexample.message)
        for r in results
        if not r.meets_expectation
    ]
    assert not unmet
    for r in results:
        assert r.statement and r.source
        if r.expect == "false":
            assert r.counterexample is not None and r.note


def test_registry_claim_catches_a_wrong_solver(monkeypatch):
    """A true claim compares the solver with an independent formula, so a wrong solver fails it."""
    real_solve = core.solve
    monkeypatch.setattr(
        core,
        "solve",
        lambda system, spec: real_solve(
            system.replace(noise_cov=4 * system.noise_cov + 0.1 * np.eye(system.d_o)), spec
        ),
    )
    by_name = {c.name: c for c in builtin_claims()}
    for name in (
        "1a.pca-of-frame-difference",
        "2b.isotropic-noise-contaminates",
        "R1.loss-is-innovation-tail",
    ):
        assert check(by_name[name], examples=20, shrink=False).verdict == "fails", name


def test_false_claim_gives_a_small_counterexample_that_solve_accepts(tmp_path):
    result = check(no_leakage, examples=50, seed=3)
    assert result.verdict == "fails" and result.meets_expectation
    ce = result.counterexample
    assert ce.system.d_o == 1 and ce.spec.d_z == 1
    assert ce.matrices["action_matrix"] == [[1.0]]
    assert "G = " in ce.latex and r"\left[" in ce.latex
    path = tmp_path / "counterexample.json"
    path.write_text(json.dumps(ce.solve_file))
    assert main(["solve", str(path)]) == 0


def test_seeded_runs_are_reproducible():
    a, b = check(no_leakage, examples=30, seed=7), check(no_leakage, examples=30, seed=7)
    assert a.counterexample.solve_file == b.counterexample.solve_file
    assert (a.examples, a.calls) == (b.examples, b.calls)


def test_holding_claim_counts_examples():
    @claim(systems=systems(d_o=3), specs=lambda s: lam_specs(s.d_o))
    def loss_nonnegative(system, spec, solution):
        assert solution.optimal_loss >= -1e-9

    result = check(loss_nonnegative, examples=25)
    assert result.verdict == "holds" and result.examples == 25 and result.counterexample is None
    assert result.seconds > 0


def test_errors_are_reported_per_claim_and_the_rest_still_runs():
    def raises(system, spec, solution):
        return 1 / 0

    def wrong_signature(system):
        pass

    def fine(system, spec, solution):
        assert True

    results = check_all([raises, wrong_signature, fine], examples=5)
    assert [r.verdict for r in results] == ["error", "error", "holds"]
    assert "ZeroDivisionError" in results[0].error and results[0].counterexample is not None
    assert "signature" in results[1].error
    text = render_text(results)
    assert "ZeroDivisionError" in text and "wrong signature" in text
    assert json.loads(render_json(results))["claims"][0]["verdict"] == "error"


def test_bad_declarations():
    with pytest.raises(ValueError):
        claim(expect="maybe")
    with pytest.raises(InvalidArgument):
        claim(systems=[1, 2])
    bad_strategy = claim(systems=systems(d_o=2), specs=lambda s: lam_specs(s.d_o, d_z=5))(
        lambda s, p, o: None
    )
    result = check(bad_strategy, examples=5)
    assert result.verdict == "error" and "d_z" in result.error


def test_assert_close_message():
    assert_close(1.0, 1.0 + 1e-9)
    with pytest.raises(AssertionError, match="probe: got 0.5, expected 0.25"):
        assert_close(0.5, 0.25, "probe")


CLAIMS_FILE = """
from lamproof.claims import claim
from lamproof.strategies import systems
from lamproof.claims.registry import full_capture   # imported claims are not collected

def helper(x):                                       # not a claim: neither decorated nor claim_*
    return x

def claim_loss_nonnegative(system, spec, solution):
    assert solution.optimal_loss >= -1e-9

@claim(systems=systems(noise="isotropic"))
def zero_loss(system, spec, solution):
    assert solution.optimal_loss <= 1e-9, f"optimal loss {solution.optimal_loss:.3g}"

def claim_wrong_signature(system, spec):
    pass
"""


def test_load_claims_collects_decorated_and_claim_functions(tmp_path):
    path = tmp_path / "my_claims.py"
    path.write_text(textwrap.dedent(CLAIMS_FILE))
    claims = load_claims(path)
    assert [c.name for c in claims] == ["claim_loss_nonnegative", "zero_loss", "claim_wrong_signature"]
    results = check_all(claims, examples=10)
    assert [r.verdict for r in results] == ["holds", "fails", "error"]


def test_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.py"
    good.write_text("def claim_ok(system, spec, solution):\n    assert solution.optimal_loss >= -1e-9\n")
    assert main(["check", str(good), "--examples", "5"]) == 0
    mixed = tmp_path / "mixed.py"
    mixed.write_text(textwrap.dedent(CLAIMS_FILE))
    assert main(["check", str(mixed), "--examples", "10"]) == 1
    out = capsys.readouterr().out
    assert "zero_loss" in out and "solve file" in out
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    assert main(["check", str(broken)]) == 1
    assert "does not import" in capsys.readouterr().out
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def claim_x(:\n")
    assert main(["check", str(syntax), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["claims"][0]["verdict"] == "error"
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["check", str(empty)]) == 2
    assert main(["check"]) == 2
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    assert main(["check", str(good), "--builtin"]) == 2


def test_cli_json_output(tmp_path, capsys):
    path = tmp_path / "c.py"
    path.write_text("def claim_ok(system, spec, solution):\n    pass\n")
    assert main(["check", str(path), "--examples", "3", "--seed", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["all_hold"] and data["claims"][0]["examples"] == 3


def test_worked_example_runs_unchanged(capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "claims_example.py"
    # one true claim and one declared false: both meet their expectation, so the file passes
    assert main(["check", str(example), "--examples", "30"]) == 0
    out = capsys.readouterr().out
    assert "holds" in out and "FAIL (as expected)" in out and "counterexample" in out
