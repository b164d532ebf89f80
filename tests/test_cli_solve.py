"""`lamproof solve FILE`: the JSON users script against, and bad input as one line with exit 2."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lamproof import LAMSpec, paper_system, solve
from lamproof.api import solution_to_dict, spec_from_dict, spec_to_dict
from lamproof.cli import main

KEYS = {
    "method",
    "optimal_loss",
    "objective",
    "innovation_eigenvalues",
    "eigengap",
    "unique",
    "maps",
    "probes",
    "conditions",
}
TOML = """
[system]
action_matrix = [[1, 0], [0, 1], [0, 0]]
noise_cov = [[0, 0, 0], [0, 0, 0], [0, 0, 0.5]]

[lam]
d_z = 2
"""


def _cli():
    """The installed console script when present, else the module (same entry point)."""
    script = shutil.which("lamproof")
    return [script] if script else [sys.executable, "-m", "lamproof.cli"]


def run(*args, cwd=None):
    return subprocess.run([*_cli(), *args], capture_output=True, text=True, cwd=cwd)


def test_solve_toml_prints_the_documented_json(tmp_path):
    path = tmp_path / "problem.toml"
    path.write_text(TOML)
    result = run("solve", str(path))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert KEYS <= set(out)
    assert out["method"] == "closed-form"
    # two unit actions, one noise direction of variance 0.5, d_z = 2: actions are captured
    assert out["innovation_eigenvalues"] == pytest.approx([1.0, 1.0, 0.5])
    assert out["optimal_loss"] == pytest.approx(0.5)
    assert out["eigengap"] == pytest.approx(0.5) and out["unique"] is True
    assert np.array(out["maps"]["next_obs"]) == pytest.approx(np.diag([1.0, 1.0, 0.0]))
    action = out["probes"]["predicted_change"]["action"]
    assert action["value"] == pytest.approx(0.0, abs=1e-12) and action["identified"] is True
    leak = out["probes"]["latent"]["observation"]
    assert leak["identified"] is False and leak["min"] < leak["max"]  # observation leakage is a range
    assert set(leak) >= {"value", "min", "max", "identified"}


def test_json_and_toml_files_agree(tmp_path):
    system = paper_system(6, 2, noise="structured", sigma=1.5, noise_dim=2, seed=1)
    spec = LAMSpec(3, augmentation=0.1)
    (tmp_path / "p.json").write_text(json.dumps(spec_to_dict(system, spec)))
    parsed = spec_from_dict(json.loads((tmp_path / "p.json").read_text()))
    expected = solution_to_dict(solve(*parsed))
    assert main(["solve", str(tmp_path / "p.json")]) == 0
    assert expected["optimal_loss"] == pytest.approx(solve(system, spec).optimal_loss)


def test_text_format(tmp_path, capsys):
    path = tmp_path / "problem.toml"
    path.write_text(TOML)
    assert main(["solve", str(path), "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert "closed-form" in text and "probes" in text


BAD = [
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "noise_cov": [[1, 2], [0, 1]]}, "lam": {"d_z": 1}}',
        "system.noise_cov: covariance is not symmetric",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "noise_cov": [[-1, 0], [0, 1]]}, "lam": {"d_z": 1}}',
        "system.noise_cov: covariance is not positive semi-definite",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "obs_cov": [[1, 0, 0]]}, "lam": {"d_z": 1}}',
        "system.obs_cov:",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "obs_mean": [NaN, 0]}, "lam": {"d_z": 1}}',
        "system.obs_mean:",
    ),
    ('{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 3}}', "lam.d_z: must be in [1, d_o]"),
    ('{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 0}}', "lam.d_z:"),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 1, "augmentation": -1}}',
        "lam.augmentation:",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 1, "action_loss_weight": -2}}',
        "lam.action_loss_weight:",
    ),
    ('{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 1, "horizon": 0}}', "lam.horizon:"),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "color": 1}, "lam": {"d_z": 1}}',
        "system.color: unknown field",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 1, "depth": 2}}',
        "lam.depth: unknown field",
    ),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]]}, "lam": {"d_z": 1}, "extra": {}}',
        "extra: unknown top-level",
    ),
    ('{"system": {}, "lam": {"d_z": 1}}', "system.action_matrix: required"),
    ('{"system": {"action_matrix": [[1, 0], [0, 1]]}}', "lam: required"),
    (
        '{"system": {"action_matrix": [[1, 0], [0, 1]], "dynamics": [[1, 0]]}, "lam": {"d_z": 1}}',
        "system.dynamics:",
    ),
    ("[1, 2]", "file: expected a table"),
    ('{"system": ', "file: not valid JSON"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_files_give_one_line_and_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = run("solve", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert message in lines[0], lines[0]


def test_missing_file_and_usage_errors():
    for args in (["solve", "/nonexistent/problem.json"], ["solve"], ["frobnicate"], []):
        result = run(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
