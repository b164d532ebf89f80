"""``lamproof dynamics FILE``, ``reproduce --mode dynamics`` and ``compare`` with several sources."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lamproof.cli import main
from lamproof.lam import LAMSpec
from lamproof.numeric.dynamics import DynamicsSettings
from lamproof.studies import closed_form_row, get_study
from lamproof.studies.runner import run_dynamics
from lamproof.systems import paper_system
from lamproof.trajectory import analyze

SMALL = """
[system]
action_matrix = [[1, 0], [0, 1], [0, 0], [0, 0]]
noise_cov = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 2.25, 0], [0, 0, 0, 0]]

[lam]
d_z = 2
"""


def _write(tmp_path, text, name="case.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_dynamics_prints_the_documented_json(tmp_path, capsys):
    path = _write(tmp_path, SMALL + "[dynamics]\nsteps = 3000\nlr = 3e-3\nrecord = [0, 100, 3000]\n")
    assert main(["dynamics", path]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["step"] for row in out["trajectory"]] == [0, 100, 3000]
    for key in ("optimal_loss", "steps_to_optimum", "notes", "acquisition", "optimal_probes"):
        assert key in out
    row = out["trajectory"][-1]
    assert set(row) == {"step", "loss", "objective", "probes"}
    assert set(row["probes"]) == {"predicted_change", "latent"}
    # d_z = 2 captures the noise (variance 2.25) and one of the two tied action directions: loss → 1
    assert out["optimal_loss"] == pytest.approx(1.0)
    assert row["loss"] == pytest.approx(1.0, abs=0.01)
    assert out["steps_to_optimum"]["loss"] is not None and out["steps_to_optimum"]["loss"] <= 3000
    assert out["trajectory"][0]["loss"] > 3


def test_text_format_and_plot(tmp_path, capsys):
    path = _write(tmp_path, SMALL + "[dynamics]\nsteps = 500\nlr = 3e-3\n")
    png = tmp_path / "curve.png"
    assert main(["dynamics", path, "--format", "text", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "optimum" in out and "acquisition order" in out and "steps to within" in out
    assert png.exists() and png.stat().st_size > 1000


def test_solve_refuses_a_dynamics_table(tmp_path, capsys):
    path = _write(tmp_path, SMALL + "[dynamics]\nsteps = 10\n")
    assert main(["solve", path]) == 2
    assert "dynamics: unknown top-level key" in capsys.readouterr().err


@pytest.mark.parametrize(
    "table, message",
    [
        ("lr = 0", "dynamics.lr: must be > 0"),
        ("steps = 100000000", "dynamics.steps: must be <= 10000000"),
        ('optimizer = "rmsprop"', "dynamics.optimizer: must be one of"),
        ("steps = 100\nrecord = [0, 50, 20]", "dynamics.record: must be strictly increasing"),
        ("steps = 100\nrecord = [0, 200]", "dynamics.record: step 200 lies past steps = 100"),
        (
            "[dynamics.init]\nA = [[1, 0], [0, 1]]\nB = [[0, 0], [0, 0], [0, 0], [0, 0]]\n"
            "C = [[0, 0, 0, 0], [0, 0, 0, 0]]\nD = [[0, 0, 0, 0], [0, 0, 0, 0]]",
            "dynamics.init.A: expected shape (4, 4)",
        ),
        (
            "[dynamics.init]\nA = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]\nB = [[0], [0], [0], [0]]\n"
            "C = [[0, 0, 0, 0], [0, 0, 0, 0]]\nD = [[0, 0, 0, 0], [0, 0, 0, 0]]",
            "dynamics.init.B: expected shape (4, 2)",
        ),
    ],
)
def test_bad_dynamics_tables_give_one_line_and_exit_2(tmp_path, capsys, table, message):
    path = _write(tmp_path, SMALL + "[dynamics]\n" + table + "\n")
    assert main(["dynamics", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_explicit_initial_matrices_are_used(tmp_path, capsys):
    A = np.eye(4).tolist()
    table = {
        "system": {"action_matrix": [[1, 0], [0, 1], [0, 0], [0, 0]]},
        "lam": {"d_z": 2},
        "dynamics": {
            "steps": 1,
            "record": [0, 1],
            "optimizer": "gd",
            "lr": 0.1,
            "init": {
                "A": A,
                "B": [[1, 0], [0, 1], [0, 0], [0, 0]],
                "C": [[-1, 0, 0, 0], [0, -1, 0, 0]],
                "D": [[1, 0, 0, 0], [0, 1, 0, 0]],
            },
        },
    }
    path = _write(tmp_path, json.dumps(table), "case.json")
    assert main(["dynamics", path]) == 0
    out = json.loads(capsys.readouterr().out)
    # that start is an optimum (ô' = o + P(o' − o), P onto the actions): loss 0, and gd stays there
    assert out["trajectory"][0]["loss"] == pytest.approx(0.0, abs=1e-12)
    assert out["trajectory"][1]["loss"] == pytest.approx(0.0, abs=1e-12)


def test_structured_noise_is_acquired_before_the_action_under_flow_from_small_init():
    """Saxe et al.: under gradient flow from a small balanced start, larger eigenvalues first."""
    system = paper_system(8, 2, noise="structured", sigma=2.0, noise_dim=2)
    settings = DynamicsSettings("flow", lr=1.0, steps=600, init="small", scale=1e-3)
    report = analyze(system, LAMSpec(4, fdm_obs_path="identity", idm="tied"), settings)
    order = [a for a in report["acquisition"]["directions"] if a["step"] is not None]
    labels = [a["direction"] for a in sorted(order, key=lambda a: a["step"])]
    assert labels == ["noise", "action"]


def test_reproduce_dynamics_mode_matches_the_closed_form_after_long_training(tmp_path):
    study = get_study("4.3").with_axes(do=16, da=2, db=2, dz=[1, 2, 4], sigma=[2.0])
    [result] = run_dynamics([study], tmp_path, steps=4000, workers=1, lr=1e-2)
    frame = result.frame
    assert list(frame["method"].unique()) == ["dynamics-adam"] and (frame["iter"] == 4000).all()
    closed = pd.DataFrame([closed_form_row(study, c)[0] for c in study.configs()])
    assert np.allclose(frame["recon_loss"], closed["recon_loss"], atol=1e-4)
    assert np.allclose(frame["act_mse"], closed["act_mse"], atol=1e-3)
    # finished batches are kept: a rerun reads them back
    [again] = run_dynamics([study], tmp_path, steps=4000, workers=1, lr=1e-2)
    assert again.frame.equals(frame)


def test_compare_sets_several_sources_side_by_side(tmp_path, capsys):
    base = pd.DataFrame(
        {
            "do": [8, 8],
            "dz": [1, 2],
            "recon_loss": [0.1, 0.0],
            "act_mse": [0.5, 0.0],
            "method": ["closed-form"] * 2,
        }
    )
    dynamics = base.assign(act_mse=[0.52, 0.01], method="dynamics-adam")
    theirs = base.drop(columns="method").assign(act_mse=[0.55, 0.02])
    paths = []
    for name, frame in (("closed.csv", base), ("dyn.csv", dynamics), ("theirs.csv", theirs)):
        frame.to_csv(tmp_path / name, index=False)
        paths.append(str(tmp_path / name))
    assert main(["compare", *paths, "--rows"]) == 0
    out = capsys.readouterr().out
    assert "closed-form vs dynamics-adam" in out and "dynamics-adam vs theirs" in out
    line = next(row for row in out.splitlines() if row.strip().startswith("closed-form vs theirs"))
    assert "0.0350" in line  # mean |0.5 − 0.55|, |0 − 0.02|
    assert main(["compare", paths[0]]) == 2
    # two runs of one method are told apart by their step count
    dynamics.assign(iter=5000).to_csv(tmp_path / "short.csv", index=False)
    dynamics.assign(iter=20000).to_csv(tmp_path / "long.csv", index=False)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "short.csv"), str(tmp_path / "long.csv"), paths[2]]) == 0
    assert "dynamics-adam@5000 vs dynamics-adam@20000" in capsys.readouterr().out
