"""The derivations: every check passes, the checker can fail, the LaTeX is current and compiles,
and the CLI works from an installed package."""

import os
import shutil
import subprocess
import sys
from importlib import resources

import pytest
import sympy

from lamproof import derivations
from lamproof.cli import main
from lamproof.symbolic import objective as so
from lamproof.symbolic.families import chi, d_a, d_z, sigma


@pytest.mark.parametrize("name", derivations.NAMES)
def test_every_derivation_verifies(name):
    report = derivations.get(name).verify()
    assert report.passed, report.failures
    assert report.checks_run > report.examples > 0
    assert report.name == name and report.worst_error < 1e-4


@pytest.mark.parametrize("name", ["D1", "D4", "D5"])
def test_exact_checks_have_zero_error(name):
    report = derivations.get(name).verify(examples=1, exact=True)
    assert report.passed, report.failures
    assert any(check.startswith("exact") for check in report.checks)


def test_a_wrong_formula_is_caught():
    """Mutation test of the checker: (1 − χ²) instead of (1 + χ²) in §5's transfer error."""
    module = derivations.get("D5")
    wrong = module.derive().replace(action_error=sympy.Max(0, (d_a - d_z) / d_a) * (1 - chi**2))
    report = module.verify(results=wrong)
    assert not report.passed
    assert any("transfer probe error" in failure for failure in report.failures)


def test_a_wrong_operator_is_caught():
    """Mutation of a matrix result: S_{o'o'} instead of the innovation S_r in D1."""
    module = derivations.get("D1")
    right = module.derive()
    M = so.moments()
    wrong = right.replace(innovation={"learned": M["S_pp"], "identity": right.innovation["identity"]})
    report = module.verify(examples=6, results=wrong)
    assert not report.passed


@pytest.mark.parametrize("name", derivations.NAMES)
def test_committed_tex_is_current(name):
    committed = derivations.tex_file(name).read_text(encoding="utf-8")
    assert committed == derivations.latex(name), (
        f"{derivations.tex_file(name).name} is stale: run `python -m lamproof.derivations --write {name}`"
    )


def test_tex_ships_as_package_data():
    folder = resources.files("lamproof.derivations")
    for module in derivations.MODULES.values():
        assert folder.joinpath(module + ".tex").is_file()


def test_installed_command_runs_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-m", "lamproof.cli", "verify", "D5", "--examples", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "derivation" in run.stdout and "D5" in run.stdout and "ok" in run.stdout
    script = shutil.which("lamproof")
    if script:
        run = subprocess.run(
            [script, "latex", "D1"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
        )
        assert run.returncode == 0 and "\\section{D1" in run.stdout


def test_cli_verify_table(capsys):
    assert main(["verify", "D5", "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "worst error" in out and "1 of 1 derivations verified" in out


@pytest.mark.parametrize(
    "argv, field",
    [
        (["verify", "D99"], "name"),
        (["verify", "D5", "--examples", "0"], "--examples"),
        (["latex", "nope"], "name"),
        (["report", "--out", "/nonexistent-dir/report.tex"], "--out"),
        (["report", "--out", "report.pdf"], "--out"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_library_refuses_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        derivations.resolve("D0")
    with pytest.raises(ValueError, match="examples"):
        derivations.verify(["D5"], examples=0)
    assert derivations.resolve("policy") == derivations.resolve("d5") == "D5"


def test_report_assembles_every_derivation(tmp_path):
    out = tmp_path / "report.tex"
    assert main(["report", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("\\section{") == len(derivations.NAMES)
    assert text.rstrip().endswith("\\end{document}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_report_compiles_with_pdflatex(tmp_path):
    out = tmp_path / "report.tex"
    assert main(["report", "--out", str(out), "--pdf"]) == 0
    assert (tmp_path / "report.pdf").stat().st_size > 10_000


def test_derive_returns_frozen_results():
    """``derive()`` is cached: its results are read-only fields, and a changed copy is a new object."""
    import dataclasses

    results = derivations.get("D6").derive()
    with pytest.raises(dataclasses.FrozenInstanceError):
        results.c_star = 0
    changed = results.replace(c_star=sympy.Integer(0))
    assert changed.c_star == 0 and results.c_star != 0 and derivations.get("D6").derive() is results


def test_symbolic_checks_read_the_results_given():
    """A wrong threshold handed to verify() fails D6's symbolic check, before any system is drawn."""
    module = derivations.get("D6")
    report = module.verify(examples=1, results=module.derive().replace(c_star=(1 + chi) / sigma))
    assert not report.passed
    assert any(failure.startswith("c* = (1 − χ)/σ (symbolic)") for failure in report.failures)
