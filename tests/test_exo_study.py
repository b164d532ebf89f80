"""The exo study (`lamproof reproduce exo`): its columns against formulas and the population minimizer, and its
outputs (CSV, LaTeX that compiles, PNG) through the runner, in `reproduce all`."""

import shutil
import subprocess

import pandas as pd
import pytest

from lamproof import LAMSpec
from lamproof.cli import main
from lamproof.exogenous import exogenous_loading_range
from lamproof.numeric.population import minimize_population
from lamproof.studies import runner
from lamproof.studies.definitions import STUDIES, get_study, select
from lamproof.studies.exo import EXO_COLUMNS, EXO_STUDY, exo_system, exo_table

SMALL = {"sigma_eta": (0.5, 2.0), "persistence": (0.5,), "horizon": (1,), "context": (1, 3), "dz": (2, 4)}


def test_small_sweep_has_consistent_columns():
    df = exo_table(SMALL)
    assert len(df) == 2 * 2 * 2 * 2 and set(EXO_COLUMNS) <= set(df.columns)
    for name in ("loading", "consistency", "act_mse", "act_mse_z", "exo_mse"):
        assert ((df[f"{name}_min"] <= df[name] + 1e-12) & (df[name] <= df[f"{name}_max"] + 1e-12)).all(), name
    # A = I reads o' − o_t: nothing about it depends on the context
    fixed = df[df.fdm == "identity"].set_index(["sigma_eta", "dz", "context"])
    for column in ("loading", "consistency", "margin", "act_mse", "recon_loss"):
        assert fixed[column].xs(1, level="context").to_numpy() == pytest.approx(
            fixed[column].xs(3, level="context").to_numpy(), abs=1e-12
        )
    # the exogenous noise lives in other directions than the actions: actions first at d_z = d_a means loading 0
    first = df[(df.action_first == True) & (df.dz == 2)]  # noqa: E712  (a column of Python bools)
    assert len(first) and (first.loading.abs() < 1e-12).all()
    assert (first.act_mse < 1).all() and (df[(df.action_first == False) & (df.dz == 2)].act_mse > 0.999).all()  # noqa: E712


def test_noise_free_observation_matches_the_two_direction_loading_of_D13():
    """All four directions captured, no observation noise: loading σ_η²/(g²σ_a² + X) per pair (D13)."""
    for sigma, e in ((0.5, 0.0), (1.5, 0.9)):
        t = exo_system(sigma, e, obs_noise=0.0).transition()
        learned = exogenous_loading_range(t, 4, "learned").value
        identity = exogenous_loading_range(t, 4, "identity").value
        assert learned == pytest.approx(sigma**2 / (1 + sigma**2), rel=1e-12)
        assert identity == pytest.approx(sigma**2 / (1 + 2 * sigma**2 / (1 + e)), rel=1e-12)


@pytest.mark.parametrize(
    "values",
    [
        {"sigma_eta": 2.0, "persistence": 0.9, "horizon": 2, "context": 2, "dz": 1, "fdm": "learned"},
        {"sigma_eta": 0.5, "persistence": 0.5, "horizon": 1, "context": 3, "dz": 3, "fdm": "identity"},
    ],
)
def test_recon_loss_is_the_population_minimizers(values):
    """The row's optimal loss (closed form) against the minimizer on the same window, which never uses it."""
    (row,) = exo_table({k: (v,) for k, v in values.items()}).to_dict("records")
    t = exo_system(values["sigma_eta"], values["persistence"]).transition(
        values["horizon"], values["context"]
    )
    spec = LAMSpec(values["dz"], values["fdm"], horizon=values["horizon"], context=values["context"])
    optimum = minimize_population(t, spec, starts=2).objective.reconstruction
    assert row["recon_loss"] * t.d_o == pytest.approx(optimum, rel=1e-6, abs=1e-9)


def test_exo_is_a_study_of_reproduce_all_with_closed_form_only(tmp_path, capsys):
    assert get_study("exo") is EXO_STUDY and select("all")[-1] is EXO_STUDY
    assert "exo" not in STUDIES  # the paper's six stay the paper's six
    assert main(["reproduce", "exo", "--mode", "trained", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lamproof: error: mode:") and len(err.splitlines()) == 1


def test_runner_writes_csv_latex_that_compiles_and_png(tmp_path):
    study = EXO_STUDY.with_axes(sigma_eta=(0.5, 2.0), persistence=(0.0, 0.9), horizon=(1, 4), context=(1, 2))
    (result,) = runner.run_closed_form([study], workers=1)
    assert len(result.frame) == 2 * 2 * 2 * 2 * 3 * 2 and list(result.frame.columns) == study.result_columns()
    plot = pytest.importorskip("matplotlib") is not None
    runner.write_study(result, tmp_path, plot=plot)
    csv = pd.read_csv(tmp_path / f"{study.slug}.csv")
    assert list(csv.columns[:6]) == ["sigma_eta", "persistence", "horizon", "context", "dz", "fdm"]
    if plot:
        assert (tmp_path / f"{study.slug}.png").read_bytes()[:4] == b"\x89PNG"
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    from lamproof.studies.outputs import latex_document

    (tmp_path / "doc.tex").write_text(latex_document([(tmp_path / f"{study.slug}.tex").read_text()]))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
