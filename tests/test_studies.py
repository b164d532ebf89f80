"""The paper's studies: closed form against the authors' logged numbers, outputs, bad input.

Numbers quoted as "Zhang et al. 2025" are the authors' final-iteration logs of their simulation
code (arXiv:2506.15691; summarized in the project's paper notes). They come from stochastic
training (batch 128, Adam, 10 000–40 000 steps; probes trained for 5000 steps), so they scatter
around the population optimum: across the seven noise levels of §4.2 the action error at a
fixed d_z spreads over 0.004 (0.7479–0.7521 at d_z = 2), and in the 40 000-step §4.3 and §5 logs
single entries sit up to 0.045 from the optimum (§4.3, σ = 0.5, d_z = 2: 0.706 vs 0.75).
``SCATTER = 0.05`` covers that; where a log entry is known not to have converged, the test says
so instead of widening the tolerance.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lamproof._blas import single_threaded_blas
from lamproof.cli import main
from lamproof.studies import STUDIES, closed_form_row, compare_tables, get_study
from lamproof.studies.definitions import Config

#: Tolerance of a closed-form value against one of the authors' stochastic-training numbers.
SCATTER = 0.05

#: A reconstruction loss per dimension: the authors' final-iteration batch loss (128 samples)
#: scatters by about 1/√128 ≈ 9 % of its value; 0.01 absolute covers every quoted entry.
RECON_SCATTER = 0.01


@pytest.fixture(autouse=True)
def _small_matrices_single_thread():
    with single_threaded_blas():  # see lamproof._blas: threads only contend here
        yield


def row(name: str, **values) -> dict:
    study = get_study(name)
    point = {c: study.axes[c][0] for c in study.columns}
    point.update(values)
    return closed_form_row(study, Config(study.name, point))[0]


def in_family(r: dict, column: str, theirs: float, slack: float = 0.02) -> bool:
    """Their (stochastic) number lies in our optimal family's range, up to probe-training slack."""
    return r[f"{column}_min"] - slack <= theirs <= r[f"{column}_max"] + slack


# -- §4.1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "da, dz, act, recon",
    [
        (8, 4, 0.5016, 0.0321),  # Zhang et al. 2025, §4.1 log, d_a = 8, d_z = 4 (act_mse ≈ (d_a − d_z)/d_a)
        (4, 1, 0.7570, 0.0276),  # Zhang et al. 2025, §4.1 log, d_a = 4, d_z = 1
        (16, 8, 0.5030, 0.0634),  # Zhang et al. 2025, §4.1 log, d_a = 16, d_z = 8
        (2, 1, 0.5034, 0.0140),  # Zhang et al. 2025, §4.1 log, d_a = 2, d_z = 1
    ],
)
def test_4_1_action_error_is_the_missing_fraction(da, dz, act, recon):
    r = row("4.1", da=da, dz=dz)
    assert r["act_mse"] == pytest.approx(max(0, (da - dz) / da), abs=1e-9)
    assert abs(r["act_mse"] - act) < SCATTER
    assert abs(r["recon_loss"] - recon) < RECON_SCATTER


def test_4_1_unconverged_log_entry_is_flagged_not_matched():
    # Zhang et al. 2025, §4.1 log, d_a = d_z = 2: act_mse 0.257, recon_loss 0.0103 — a run that
    # found one of two action directions; the optimum captures both (error 0, loss 0).
    r = row("4.1", da=2, dz=2)
    assert r["act_mse"] < 1e-9 and abs(r["recon_loss"]) < 1e-12
    assert 0.257 - r["act_mse"] > SCATTER


def test_4_1_observation_leak_matches_the_trained_latents():
    # Zhang et al. 2025, §4.2 log at σ = 0 (= §4.1, d_a = 8): obs_mse 0.970 at d_z = 4, 0.880 at
    # d_z = 16 — inside the family's range [1 − d_z/d_o, 1], at its leaky end.
    for dz, theirs in ((4, 0.9699), (16, 0.8802)):
        r = row("4.1", da=8, dz=dz)
        assert r["obs_mse_min"] == pytest.approx(1 - dz / 128) and r["obs_mse_max"] == pytest.approx(1.0)
        assert r["obs_mse_identified"] is False
        assert in_family(r, "obs_mse", theirs)


# -- §4.2 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dz, theirs", [(2, 0.750), (4, 0.501), (6, 0.250), (8, 0.000)])
@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.5])
def test_4_2_isotropic_noise_never_displaces_the_action(dz, theirs, sigma):
    # Zhang et al. 2025, §4.2, d_a = 8: 0.750, 0.501, 0.250, 0.000 at d_z = 2, 4, 6, 8, for every σ
    r = row("4.2", dz=dz, sigma=sigma)
    assert abs(r["act_mse"] - theirs) < SCATTER
    assert r["noi_mse"] == 1.0  # probed on noise-free data: the noise source is independent


def test_4_2_recon_is_measured_on_noise_free_data():
    # Zhang et al. 2025, §4.2 log, σ = 0.5, d_z = 2: recon_loss 0.0507 (noise-free: 6/128 = 0.047;
    # with the noise it would be (6 + 0.25·126)/128 = 0.29)
    assert abs(row("4.2", dz=2, sigma=0.5)["recon_loss"] - 0.0507) < RECON_SCATTER


# -- §4.3 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sigma, dz, act, recon",
    [
        (2.0, 4, 0.9563, 0.1785),  # Zhang et al. 2025, §4.3 log: strong noise is captured first
        (2.0, 12, 0.4948, 0.0278),
        (2.0, 16, 0.0003, 0.0001),
        (0.5, 8, 0.0310, 0.0152),  # weak noise: the action first
        (0.5, 4, 0.4861, 0.0452),
    ],
)
def test_4_3_structured_noise_competes_by_variance(sigma, dz, act, recon):
    r = row("4.3", sigma=sigma, dz=dz)
    assert abs(r["act_mse"] - act) < SCATTER
    assert abs(r["recon_loss"] - recon) < RECON_SCATTER


def test_4_3_noise_probe_of_the_latent_is_a_family():
    # Zhang et al. 2025, §4.3 log, σ = 2, d_z = 16: noi_mse 0.654 although the optimal latent
    # holds the whole noise (clean member: 0). Observation leakage buries it: the family spans [0, 1].
    r = row("4.3", sigma=2.0, dz=16)
    assert r["noi_mse"] < 1e-9 and r["noi_mse_identified"] is False
    assert in_family(r, "noi_mse", 0.6538)


# -- §5 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "chi, dz, act, recon",
    [
        (0.0, 2, 0.747, 0.0479),  # Zhang et al. 2025, §5: 0.747 at χ = 0, d_z = 2
        (0.5, 2, 0.930, 0.0594),  # … rising to 0.930 at χ = 0.5
        (0.3, 4, 0.5397, 0.0346),  # Zhang et al. 2025, §5 log, χ = 0.3, d_z = 4
        (0.5, 8, 0.0002, 0.0001),  # 0 for d_z ≥ 8
    ],
)
def test_5_policy_correlation_hurts_transfer(chi, dz, act, recon):
    r = row("5", chi=chi, dz=dz)
    assert r["act_mse"] == pytest.approx(max(0, (8 - dz) / 8) * (1 + chi**2), abs=1e-9)
    assert abs(r["act_mse"] - act) < SCATTER
    assert abs(r["recon_loss"] - recon) < RECON_SCATTER  # on random actions, as the authors log it


# -- §6, §7 (no logs published; the paper's stated findings) ------------------------------------
def test_6_augmentation_removes_observation_leakage():
    # Zhang et al. 2025, §6: augmentation forces z to depend on o' − o only
    leaky, clean = row("6", sigma=0.5, kappa=0.0, dz=8), row("6", sigma=0.5, kappa=0.1, dz=8)
    assert leaky["obs_mse_identified"] is False and leaky["obs_mse_min"] < 0.95
    assert clean["obs_mse_identified"] is True and clean["obs_mse"] == pytest.approx(1.0)
    # noise error divided by σ² per dimension: an independent noise scores Var(ε/σ) = 1/12
    assert row("6", sigma=0.0, kappa=0.1, dz=8)["noi_mse"] == pytest.approx(1 / 12)


def test_7_one_percent_labels_put_the_action_first():
    # Zhang et al. 2025, §7: with 1 % labels the latent captures the action before noise of
    # variance σ² = 4 > 1; without labels the noise wins.
    without, with_labels = (
        row("7", sigma=2.0, dz=8, mask_ratio=0.0),
        row("7", sigma=2.0, dz=8, mask_ratio=0.01),
    )
    assert without["act_mse"] == pytest.approx(1.0, abs=1e-9)
    assert with_labels["act_mse"] == pytest.approx(0.0, abs=1e-9)


# -- sweeps -------------------------------------------------------------------------------------
def test_sweeps_cover_the_authors_configurations():
    sizes = {name: len(study.configs()) for name, study in STUDIES.items()}
    assert sizes == {"4.1": 128, "4.2": 128, "4.3": 30, "5": 165, "6": 240, "7": 180}
    s41 = {(c["da"], c["dz"]) for c in STUDIES["4.1"].configs()}
    assert (16, 16) in s41 and (2, 1) in s41  # d_a ∈ {2, 4, …, 16}, d_z ∈ {1, …, 16}
    assert {c["sigma"] for c in STUDIES["4.2"].configs()} >= {0.0, 0.1, 0.6, 1.5}


# -- comparison ---------------------------------------------------------------------------------
def test_compare_matches_rows_on_configuration_columns():
    ours = pd.DataFrame(
        {
            "do": [128, 128],
            "dz": [2, 4],
            "sigma": [0.1, 0.1],
            "iter": [math.nan] * 2,
            "act_mse": [0.75, 0.5],
            "act_mse_min": [0.75, 0.5],
            "act_mse_max": [0.75, 0.5],
        }
    )
    theirs = pd.DataFrame(
        {
            "do": [128, 128],
            "dz": [4, 2],
            "sigma": [0.1000000001, 0.1],
            "iter": [10000] * 2,
            "act_mse": [0.52, 0.74],
        }
    )
    table, info = compare_tables(ours, theirs)
    assert info["matched"] == 2 and list(table["column"]) == ["act_mse"]
    assert table.loc[0, "mean_abs_diff"] == pytest.approx(0.015)
    assert table.loc[0, "max_abs_diff"] == pytest.approx(0.02)
    assert table.loc[0, "in_family_range"] == "2/2"


# -- CLI: outputs and bad input -----------------------------------------------------------------
def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lamproof: error:")
    return err[0]


def test_unknown_study_exits_2(capsys, tmp_path):
    assert main(["reproduce", "4.4", "--out", str(tmp_path)]) == 2
    assert "unknown study" in one_line_error(capsys)


def test_unwritable_out_exits_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["reproduce", "4.3", "--out", str(blocker / "sub"), "--no-plot"]) == 2
    assert "--out" in one_line_error(capsys)


def test_existing_outputs_need_force(capsys, tmp_path):
    (tmp_path / "sec4_3_structured_noise.csv").write_text("do\n1\n")
    assert main(["reproduce", "4.3", "--out", str(tmp_path), "--no-plot"]) == 2
    assert "--force" in one_line_error(capsys)
    assert (tmp_path / "sec4_3_structured_noise.csv").read_text() == "do\n1\n"  # untouched


def test_reproduce_writes_csv_latex_figure_and_compare_reads_them(capsys, tmp_path):
    assert main(["reproduce", "4.3", "--out", str(tmp_path), "--force"]) == 0
    frame = pd.read_csv(tmp_path / "sec4_3_structured_noise.csv")
    assert list(frame.columns[:10]) == [
        "do",
        "da",
        "dz",
        "db",
        "sigma",
        "iter",
        "recon_loss",
        "act_mse",
        "obs_mse",
        "noi_mse",
    ]
    assert len(frame) == 30
    assert (tmp_path / "sec4_3_structured_noise.tex").read_text().startswith("\\begin{longtable}")
    pytest.importorskip("matplotlib")
    assert (tmp_path / "sec4_3_structured_noise.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    capsys.readouterr()
    csv = str(tmp_path / "sec4_3_structured_noise.csv")
    assert main(["compare", csv, csv]) == 0
    out = capsys.readouterr().out
    assert "matched 30 of their 30 rows" in out and "act_mse" in out


def test_compare_missing_file_exits_2(capsys, tmp_path):
    assert main(["compare", str(tmp_path / "no.csv"), str(tmp_path / "no.csv")]) == 2
    assert "no such file" in one_line_error(capsys)


def test_latex_tables_compile(tmp_path):
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    from lamproof.studies.outputs import latex_document, latex_table

    fragments = []
    for name, axes in (
        ("4.1", {"da": [2, 4], "dz": [1, 3]}),
        ("6", {"dz": [2, 9], "sigma": [0.5], "kappa": [0, 0.1]}),
    ):
        study = get_study(name).with_axes(**axes)
        frame = pd.DataFrame([closed_form_row(study, c)[0] for c in study.configs()])
        fragments.append(latex_table(study, frame))
    (tmp_path / "doc.tex").write_text(latex_document(fragments))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").exists()
