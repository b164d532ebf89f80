"""Bad input is refused at the boundary, in one line that names the field (issue 9, part 3).

Every entry of :data:`BAD` is a solve file that used to crash (a traceback, a SciPy message
naming no field, a run until memory ran out) or was silently misread (booleans and strings taken
as numbers, a duplicate key keeping its last value). ``lamproof solve`` must answer each with
exactly one line ``lamproof: error: <field>: …`` on stderr and exit code 2. Anything else that
escapes is a bug and must not be passed off as bad input (exit 3, with its traceback).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lamproof import LAMSpec, solve
from lamproof._validation import (
    MAX_ACTION_WEIGHT,
    MAX_DIM,
    MAX_HORIZON,
    MAX_MAGNITUDE,
    MAX_MOMENT,
    MAX_SOURCES,
)
from lamproof.api import solution_to_dict
from lamproof.cli import INTERNAL_ERROR, main
from lamproof.errors import InputError
from lamproof.systems import System

#: A warning (an overflow in NumPy, say) would be a second line on stderr: make it an error.
pytestmark = pytest.mark.filterwarnings("error")

HUGE = "1" + "0" * 399  # a 400-digit integer


def js(system: str = '"action_matrix": [[1], [0]]', lam: str = '"d_z": 1') -> str:
    return '{"system": {' + system + '}, "lam": {' + lam + "}}"


def toml(system: str = "action_matrix = [[1], [0]]", lam: str = "d_z = 1") -> str:
    return f"[system]\n{system}\n[lam]\n{lam}\n"


#: (label, file suffix, contents (str or bytes), the field the message must begin with)
BAD = [
    # huge integers
    (
        "400-digit integer in a matrix",
        ".json",
        js(f'"action_matrix": [[{HUGE}], [0]]'),
        "system.action_matrix:",
    ),
    (
        "400-digit integer as augmentation",
        ".json",
        js(lam=f'"d_z": 1, "augmentation": {HUGE}'),
        "lam.augmentation:",
    ),
    ("400-digit integer as horizon", ".json", js(lam=f'"d_z": 1, "horizon": {HUGE}'), "lam.horizon:"),
    ("400-digit integer as d_z", ".json", js(lam=f'"d_z": {HUGE}'), "lam.d_z:"),
    (
        "5000-digit integer (Python's parse limit)",
        ".json",
        js(f'"action_matrix": [[{"7" * 5000}], [0]]'),
        "file:",
    ),
    ("400-digit integer in TOML", ".toml", toml(f"action_matrix = [[{HUGE}], [0]]"), "system.action_matrix:"),
    ("5000-digit integer in TOML", ".toml", toml(f"action_matrix = [[{'7' * 5000}], [0]]"), "file:"),
    # magnitudes that overflow float64 later
    ("1e155 in a matrix", ".json", js('"action_matrix": [[1e155], [0]]'), "system.action_matrix:"),
    (
        "1e308 in a covariance",
        ".json",
        js('"action_matrix": [[1], [0]], "obs_cov": [[1e308, 0], [0, 1]]'),
        "system.obs_cov:",
    ),
    (
        "-1e308 in a mean",
        ".json",
        js('"action_matrix": [[1], [0]], "obs_mean": [-1e308, 0]'),
        "system.obs_mean:",
    ),
    (
        "1e400 (infinite) in a covariance",
        ".json",
        js('"action_matrix": [[1], [0]], "noise_cov": [[1e400, 0], [0, 1]]'),
        "system.noise_cov:",
    ),
    (
        "just above the largest magnitude",
        ".json",
        js('"action_matrix": [[1.0000001e15], [0]]'),
        "system.action_matrix:",
    ),
    (
        "1e16 in the dynamics",
        ".json",
        js('"action_matrix": [[1], [0]], "dynamics": [[1e16, 0], [0, 1]]'),
        "system.dynamics:",
    ),
    (
        "1e16 in the policy gain",
        ".json",
        js('"action_matrix": [[1], [0]], "policy_gain": [[1e16, 0]]'),
        "system.policy_gain:",
    ),
    ("augmentation 1e200", ".json", js(lam='"d_z": 1, "augmentation": 1e200'), "lam.augmentation:"),
    (
        "action weight 1e308",
        ".json",
        js(lam='"d_z": 1, "action_loss_weight": 1e308'),
        "lam.action_loss_weight:",
    ),
    (
        "G K products beyond the moment bound",
        ".json",
        js('"action_matrix": [[1e15], [0]], "policy_gain": [[1e15, 1e15]]'),
        "system:",
    ),
    (
        "F^k beyond the moment bound",
        ".json",
        js('"action_matrix": [[1], [0]], "dynamics": [[1e14, 0], [0, 1]]', '"d_z": 1, "horizon": 5'),
        "lam.horizon:",
    ),
    (
        "10^k over a long horizon",
        ".toml",
        toml("action_matrix = [[1], [0]]\ndynamics = [[10, 0], [0, 10]]", "d_z = 1\nhorizon = 100"),
        "lam.horizon:",
    ),
    # horizon and other counts
    ("horizon 10**9", ".json", js(lam='"d_z": 1, "horizon": 1000000000'), "lam.horizon:"),
    ("horizon 2**63", ".json", js(lam=f'"d_z": 1, "horizon": {2**63}'), "lam.horizon:"),
    ("horizon 2**63 in TOML", ".toml", toml(lam=f"d_z = 1\nhorizon = {2**63 - 1}"), "lam.horizon:"),
    (
        "horizon just above its bound",
        ".json",
        js(lam=f'"d_z": 1, "horizon": {MAX_HORIZON + 1}'),
        "lam.horizon:",
    ),
    (
        "horizon with too many sources",
        ".json",
        js('"action_matrix": ' + json.dumps(np.eye(64, 32).tolist()), f'"d_z": 1, "horizon": {MAX_HORIZON}'),
        "lam.horizon:",
    ),
    (
        "a 10000 x 1 action matrix",
        ".json",
        js('"action_matrix": [' + ",".join(["[0]"] * 10_000) + "]"),
        "system.action_matrix:",
    ),
    (
        "a 1 x 10000 action matrix",
        ".json",
        js('"action_matrix": [[' + ",".join(["0"] * 10_000) + "]]"),
        "system.action_matrix:",
    ),
    # nesting
    ("a matrix nested three deep", ".json", js('"action_matrix": [[[1]], [[0]]]'), "system.action_matrix:"),
    (
        "a vector nested as a matrix",
        ".json",
        js('"action_matrix": [[1], [0]], "obs_mean": [[0, 0]]'),
        "system.obs_mean:",
    ),
    ("a number where a matrix goes", ".json", js('"action_matrix": 1'), "system.action_matrix:"),
    ("a table where a matrix goes", ".json", js('"action_matrix": {"a": 1}'), "system.action_matrix:"),
    (
        "a table where a covariance goes",
        ".toml",
        toml("action_matrix = [[1], [0]]\nobs_cov = {a = 1}"),
        "system.obs_cov:",
    ),
    ("nesting 50000 deep", ".json", js('"action_matrix": ' + "[" * 50_000 + "]" * 50_000), "file:"),
    ("nesting 50000 deep in TOML", ".toml", toml("action_matrix = " + "[" * 50_000 + "]" * 50_000), "file:"),
    ("ragged rows", ".json", js('"action_matrix": [[1, 2], [0]]'), "system.action_matrix:"),
    ("ragged rows in TOML", ".toml", toml("action_matrix = [[1, 2], [0]]"), "system.action_matrix:"),
    ("numbers mixed with rows", ".json", js('"action_matrix": [[1, 2], 3]'), "system.action_matrix:"),
    ("a system that is a list", ".json", '{"system": [1, 2], "lam": {"d_z": 1}}', "system:"),
    ("a lam that is a number", ".json", '{"system": {"action_matrix": [[1]]}, "lam": 3}', "lam:"),
    # booleans, strings, other types where numbers go
    ("booleans in a matrix", ".json", js('"action_matrix": [[true], [false]]'), "system.action_matrix:"),
    ("booleans in TOML", ".toml", toml("action_matrix = [[true], [false]]"), "system.action_matrix:"),
    ("a boolean d_z", ".json", js(lam='"d_z": true'), "lam.d_z:"),
    ("a boolean augmentation", ".json", js(lam='"d_z": 1, "augmentation": true'), "lam.augmentation:"),
    ("a boolean horizon", ".toml", toml(lam="d_z = 1\nhorizon = true"), "lam.horizon:"),
    ("a numeric string in a matrix", ".json", js('"action_matrix": [["1"], [0]]'), "system.action_matrix:"),
    (
        "a string as dynamics",
        ".json",
        js('"action_matrix": [[1], [0]], "dynamics": "eye"'),
        "system.dynamics:",
    ),
    (
        "a date in a TOML matrix",
        ".toml",
        toml("action_matrix = [[1979-05-27], [0]]"),
        "system.action_matrix:",
    ),
    ("a float d_z", ".json", js(lam='"d_z": 1.0'), "lam.d_z:"),
    (
        "a list as fdm_obs_path",
        ".json",
        js(lam='"d_z": 1, "fdm_obs_path": ["identity"]'),
        "lam.fdm_obs_path:",
    ),
    (
        "a number as noise_distribution",
        ".json",
        js('"action_matrix": [[1], [0]], "noise_distribution": 1'),
        "system.noise_distribution:",
    ),
    (
        "NaN in a mean",
        ".json",
        js('"action_matrix": [[1], [0]], "noise_mean": [NaN, 0]'),
        "system.noise_mean:",
    ),
    ("inf in TOML", ".toml", toml("action_matrix = [[inf], [0]]"), "system.action_matrix:"),
    ("nan as augmentation in TOML", ".toml", toml(lam="d_z = 1\naugmentation = nan"), "lam.augmentation:"),
    # duplicate keys
    ("a duplicate key in lam", ".json", js(lam='"d_z": 1, "d_z": 2'), "file:"),
    (
        "a duplicate key in system",
        ".json",
        js('"action_matrix": [[1], [0]], "action_matrix": [[0], [1]]'),
        "file:",
    ),
    (
        "a duplicate top-level table",
        ".json",
        '{"system": {"action_matrix": [[1]]}, "lam": {"d_z": 1}, "lam": {"d_z": 1}}',
        "file:",
    ),
    ("a duplicate key in TOML", ".toml", toml(lam="d_z = 1\nd_z = 2"), "file:"),
    ("a duplicate table in TOML", ".toml", toml() + "[lam]\nd_z = 1\n", "file:"),
    # encodings
    ("a latin-1 byte in JSON", ".json", js().replace("}}", ', "x": "\xff"}}').encode("latin-1"), "file:"),
    ("a latin-1 byte in TOML", ".toml", ("# caf\xe9\n" + toml()).encode("latin-1"), "file:"),
    ("UTF-16 with its byte-order mark", ".json", js().encode("utf-16"), "file:"),
    ("binary noise", ".json", bytes(range(256)), "file:"),
    # empty arrays, missing tables, empty files
    ("an empty action matrix", ".json", js('"action_matrix": []'), "system.action_matrix:"),
    ("an action matrix of empty rows", ".json", js('"action_matrix": [[], []]'), "system.action_matrix:"),
    ("an empty mean", ".json", js('"action_matrix": [[1], [0]], "obs_mean": []'), "system.obs_mean:"),
    ("an empty covariance", ".toml", toml("action_matrix = [[1], [0]]\nnoise_cov = []"), "system.noise_cov:"),
    ("a missing lam table", ".toml", "[system]\naction_matrix = [[1]]\n", "lam:"),
    ("a missing system table", ".json", '{"lam": {"d_z": 1}}', "system:"),
    ("an empty JSON file", ".json", "", "file:"),
    ("an empty TOML file", ".toml", "", "system:"),
    ("a top-level array", ".json", "[1, 2]", "file:"),
]


def run_cli(*args):
    script = shutil.which("lamproof")
    return subprocess.run(
        [*([script] if script else [sys.executable, "-m", "lamproof.cli"]), *args],
        capture_output=True,
        text=True,
    )


def refuse(tmp_path, capsys, suffix: str, contents) -> tuple[int, str, str]:
    path = tmp_path / f"bad{suffix}"
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents, encoding="utf-8")
    code = main(["solve", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("label, suffix, contents, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_naming_the_field_and_exit_2(tmp_path, capsys, label, suffix, contents, field):
    code, out, err = refuse(tmp_path, capsys, suffix, contents)
    lines = err.splitlines()
    assert code == 2, err
    assert out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lamproof: error: {field}"), lines[0]
    assert len(lines[0]) < 400, "a message must not echo the input"


@pytest.mark.parametrize(
    "label",
    ["400-digit integer in a matrix", "1e308 in a covariance", "horizon 2**63", "a latin-1 byte in JSON"],
)
def test_the_issues_examples_through_the_installed_command(tmp_path, label):
    _, suffix, contents, field = next(b for b in BAD if b[0] == label)
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    result = run_cli("solve", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"lamproof: error: {field}"), (
        result.stderr
    )


def test_the_bad_inputs_are_distinct():
    assert len({(suffix, contents) for _, suffix, contents, _ in BAD}) == len(BAD)


# -- what stays accepted ----------------------------------------------------------------------------
def test_bounds_leave_room_for_a_change_of_units_by_1e10_either_way():
    # The invariance tests scale every second moment by c ∈ [1e-10, 1e10] (matrices by √c) on the
    # strategies' systems, whose covariances reach about 10: the bounds must accept all of them.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 3))
    base = dict(
        obs_cov=X @ X.T + np.eye(3),
        noise_cov=9.0 * np.eye(3),
        obs_mean=[2.0, -2.0, 1.0],
        noise_mean=[1.5, 0.0, 0.0],
        dynamics=np.eye(3) + 0.5 * np.round(rng.uniform(-1, 1, (3, 3))),
        policy_gain=rng.uniform(-2, 2, (2, 3)),
    )
    G = rng.uniform(-2, 2, (3, 2))
    losses = []
    for c in (1e-10, 1.0, 1e10):
        r = np.sqrt(c)
        system = System(
            r * G,
            obs_cov=c * base["obs_cov"],
            noise_cov=c * base["noise_cov"],
            obs_mean=r * np.array(base["obs_mean"]),
            noise_mean=r * np.array(base["noise_mean"]),
            dynamics=base["dynamics"],
            policy_gain=base["policy_gain"] / r,
        )
        result = solution_to_dict(solve(system, LAMSpec(2, horizon=3)))
        assert result["optimal_loss"] is not None
        losses.append(result["optimal_loss"] / c)
    # the route is the same up to units, so the scaled losses agree (a check that the numbers are sane)
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[2] == pytest.approx(losses[1], rel=1e-6)


def test_values_at_the_bounds_are_accepted():
    System([[MAX_MAGNITUDE], [0.0]])
    System([[1.0], [0.0]], noise_cov=[[MAX_MAGNITUDE, 0.0], [0.0, 0.0]])
    LAMSpec(1, augmentation=MAX_MAGNITUDE, action_loss_weight=MAX_ACTION_WEIGHT, horizon=MAX_HORIZON)
    System(np.ones((MAX_DIM, 1)))
    assert System([[1.0], [0.0]]).transition(MAX_HORIZON).horizon == MAX_HORIZON
    assert MAX_SOURCES >= 3 * MAX_DIM  # every one-step system fits


def test_growth_up_to_the_moment_bound_is_accepted_and_beyond_it_refused():
    # F = 10 I: the k-step moments grow like 10^(2k); o has unit variance, so the bound of
    # step k is about 10^(2k) (a factor d from the Cauchy-Schwarz bound): k = 29 fits below
    # 1e60, k = 31 does not.
    system = System([[1.0], [0.0]], dynamics=10.0 * np.eye(2))
    system.transition(29)
    with pytest.raises(InputError, match=r"^horizon: 31 steps: .* step 3\d"):
        system.transition(31)
    assert MAX_MOMENT == 1e60


# -- the Python boundary ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, words",
    [
        (np.array([[1 + 2j], [0]]), "complex"),
        ([[1 + 2j], [0]], "complex number"),
        (np.array([[True], [False]]), "bool"),
        ([[np.bool_(True)], [0]], "boolean"),
        (np.array([["1"], ["0"]]), "<U1"),
        (np.array([[1, None]], dtype=object), "NoneType"),
        ([[10**400], [0]], "too large for float64"),
        ([[[1]], [[0]]], "nested deeper"),
        ([[1, [2]]], "mixes numbers and lists"),
    ],
)
def test_system_refuses_values_that_are_not_real_numbers(value, words):
    with pytest.raises(InputError, match=r"^action_matrix: ") as info:
        System(value)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"horizon": 10**9}, "horizon"),
        ({"horizon": 2**63}, "horizon"),
        ({"augmentation": 10**400}, "augmentation"),
        ({"augmentation": np.bool_(True)}, "augmentation"),
        ({"action_loss_weight": 1e101}, "action_loss_weight"),
        ({"d_z": np.bool_(True)}, "d_z"),
        ({"idm": ["tied"]}, "idm"),
    ],
)
def test_lam_spec_refuses_at_construction(kwargs, field):
    # refused before anything is computed: a horizon of 2**63 costs nothing
    with pytest.raises(InputError, match=rf"^{field}: "):
        LAMSpec(**{"d_z": 1, **kwargs})


# -- not bad input: a bug --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exception",
    [RuntimeError("boom"), ValueError("not an InputError"), np.linalg.LinAlgError("SVD did not converge")],
)
def test_an_exception_that_is_not_bad_input_is_an_internal_error_not_exit_2(
    monkeypatch, tmp_path, capsys, exception
):
    import lamproof.api

    def broken(path):
        raise exception

    monkeypatch.setattr(lamproof.api, "solve_file", broken)
    path = tmp_path / "ok.json"
    path.write_text(js())
    assert main(["solve", str(path)]) == INTERNAL_ERROR != 2
    err = capsys.readouterr().err
    assert "Traceback" in err  # where the bug is
    assert err.splitlines()[-1].startswith("lamproof: internal error")
    assert "lamproof: error:" not in err


def test_a_valid_file_still_solves(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_bytes(b"\xef\xbb\xbf" + toml().encode())  # a byte-order mark is accepted
    assert main(["solve", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["optimal_loss"] == pytest.approx(0.0, abs=1e-12)


def test_a_closed_stdout_is_not_an_internal_error(tmp_path):
    # `lamproof solve file | head -1`: the reader goes away; lamproof ends quietly with 141
    path = tmp_path / "ok.toml"
    path.write_text(toml())
    script = shutil.which("lamproof")
    proc = subprocess.Popen(
        [*([script] if script else [sys.executable, "-m", "lamproof.cli"]), "solve", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # before anything is written
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141 and err == ""
