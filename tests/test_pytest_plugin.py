"""The pytest plugin: claims files collected as tests, judged by lamproof.claims.check."""

import os
import subprocess
import sys
import textwrap

CLAIMS = textwrap.dedent('''
    from lamproof.claims import assert_close, claim
    from lamproof.strategies import systems


    @claim(systems=systems(noise="none"))
    def loss_is_innovation_tail(system, spec, solution):
        """The optimal loss is the innovation spectrum's tail past d_z."""
        tail = float(sum(solution.innovation.eigenvalues[spec.d_z:]))
        assert_close(solution.optimal_loss, tail, "optimal loss")


    @claim(systems=systems(noise="isotropic", sigma=(0.5, 2.0)))
    def latent_never_reads_observation(system, spec, solution):
        """False: observation leakage is free (docs/theory.md §3)."""
        from lamproof import probe
        assert probe(solution, "observation", "latent").min >= 1 - 1e-9, "leakage"


    @claim(systems=systems(noise="isotropic", sigma=(0.5, 2.0)), expect="false")
    def latent_never_reads_observation_refuted(system, spec, solution):
        from lamproof import probe
        assert probe(solution, "observation", "latent").min >= 1 - 1e-9, "leakage"


    def claim_loss_nonnegative(system, spec, solution):
        assert solution.optimal_loss >= -1e-9
''')


def _pytest(folder, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--lamproof-examples", "25", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_claims_file_collects_and_judges_each_claim(tmp_path):
    (tmp_path / "claims_leakage.py").write_text(CLAIMS, encoding="utf-8")
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    pass\n", encoding="utf-8")
    run = _pytest(tmp_path, "claims_leakage.py")
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "PASSED claims_leakage.py::loss_is_innovation_tail" in out
    assert "PASSED claims_leakage.py::latent_never_reads_observation_refuted" in out  # expect="false"
    assert "PASSED claims_leakage.py::claim_loss_nonnegative" in out
    assert "FAILED claims_leakage.py::latent_never_reads_observation" in out
    # the report is lamproof check's: the shrunk counterexample and its solve file
    assert "expected to hold; its verdict is 'fails'" in out
    assert "counterexample (after" in out and "solve file: {" in out
    assert "1 failed, 3 passed" in out


def test_folder_collection_takes_only_claims_files(tmp_path):
    (tmp_path / "my_claims.py").write_text(
        CLAIMS.split('@claim(systems=systems(noise="isotropic"')[0], encoding="utf-8"
    )
    (tmp_path / "helpers.py").write_text(
        "def claim_not_collected(system, spec, solution):\n    assert False\n", encoding="utf-8"
    )
    run = _pytest(tmp_path, ".")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "helpers" not in run.stdout


def test_a_file_that_does_not_import_is_a_collection_error(tmp_path):
    (tmp_path / "claims_broken.py").write_text("import no_such_module_xyz\n", encoding="utf-8")
    run = _pytest(tmp_path, "claims_broken.py")
    assert run.returncode != 0 and "no_such_module_xyz" in run.stdout
