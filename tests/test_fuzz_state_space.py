"""Fuzzing ``lamproof solve`` on state-space files: an answer or a one-line refusal, never a crash.

The files of tests/test_fuzz_inputs.py's kinds, with a ``state_space`` table instead of ``system`` and a
``lam`` table with a context window: valid files (unstable dynamics, explicit or stationary starts,
exogenous coordinates that may be reached by the actions, observation matrices of any shape), then one
field perturbed. Same contract: exit 0 with a finite optimal loss, or exit 2 with one line on stderr.
Valid files leave out augmentation and the action head with a fixed path or tied IDM: with a drifting
state they have no closed form, and the numeric minimizer (seconds per file) is tested elsewhere.
"""

from __future__ import annotations

import json

from hypothesis import given, note, settings
from hypothesis import strategies as st
from test_fuzz_inputs import (
    BAD_VALUES,
    DEADLINE,
    NUMBERS,
    SMALL,
    assert_answered_or_refused,
    covariances,
    fuzz,
    matrices,
    to_json,
    to_toml,
)

from lamproof.statespace import STATE_SPACE_FIELDS

STATE_SPACE_KEYS = STATE_SPACE_FIELDS  # the package's own list: a new field is fuzzed too
LAM_KEYS = ("d_z", "fdm_obs_path", "idm", "action_loss_weight", "horizon", "context")


@st.composite
def valid_state_space_documents(draw) -> dict:
    n = draw(st.integers(1, 3))
    d_a = draw(st.integers(1, 2))
    table = {
        "dynamics": draw(matrices(n, n, st.sampled_from([0, 0.5, -0.5, 0.25, 1, 1.5]))),
        "action_matrix": draw(matrices(n, d_a)),
    }
    d_o = n
    if draw(st.booleans()):
        d_o = draw(st.integers(1, 3))
        table["observation"] = draw(matrices(d_o, n))
    if draw(st.booleans()):
        table["process_noise_cov"] = draw(covariances(n))
    if draw(st.booleans()):
        table["process_noise_mean"] = draw(st.lists(SMALL, min_size=n, max_size=n))
    if draw(st.booleans()):
        table["observation_noise_cov"] = draw(covariances(d_o))
    if draw(st.booleans()):
        table["policy_gain"] = draw(matrices(d_a, d_o, st.sampled_from([0, 0.25, -0.25])))
    if draw(st.booleans()):
        table["exploration_cov"] = draw(covariances(d_a))
    if draw(st.booleans()):
        table["exogenous"] = draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))
    if draw(st.booleans()):
        table["initial"] = {
            "mean": draw(st.lists(SMALL, min_size=n, max_size=n)),
            "cov": draw(covariances(n)),
        }
    lam = {
        "d_z": draw(st.integers(1, d_o)),
        "context": draw(st.integers(1, 3)),
        "horizon": draw(st.integers(1, 3)),
    }
    if draw(st.booleans()):
        lam["fdm_obs_path"] = draw(st.sampled_from(["learned", "identity"]))
    if draw(st.booleans()):
        lam["idm"] = draw(st.sampled_from(["free", "tied"]))
    if (
        lam.get("fdm_obs_path", "learned") == "learned"
        and lam.get("idm", "free") == "free"
        and draw(st.booleans())
    ):
        lam["action_loss_weight"] = draw(st.sampled_from([0.5, 2]))
    return {"state_space": table, "lam": lam}


@st.composite
def perturbed_state_space_documents(draw) -> dict:
    document = draw(valid_state_space_documents())
    change = draw(st.sampled_from(["none", "none", "entry", "entry", "value", "remove", "unknown"]))
    where = draw(st.sampled_from(["state_space", "lam"]))
    table = document[where]
    keys = STATE_SPACE_KEYS if where == "state_space" else LAM_KEYS
    key = draw(st.sampled_from(keys))
    if change == "entry" and where == "lam":
        table[key] = draw(NUMBERS | st.booleans())
    elif change == "entry":
        arrays = sorted(k for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], list))
        if arrays:
            key = draw(st.sampled_from(arrays))
            array = json.loads(json.dumps(table[key]))
            row = draw(st.integers(0, len(array) - 1))
            array[row][draw(st.integers(0, len(array[row]) - 1))] = draw(NUMBERS)
            table[key] = array
    elif change == "value":
        table[key] = draw(BAD_VALUES)
    elif change == "remove":
        table.pop(key, None)
    elif change == "unknown":
        table[draw(st.text(min_size=1, max_size=8))] = 1
    note(f"change {change} of {where}.{key}")
    return document


@fuzz(60)
@given(document=perturbed_state_space_documents(), fmt=st.sampled_from(["json", "toml"]))
def test_state_space_files_are_answered_or_refused(tmp_path_factory, document, fmt):
    folder = tmp_path_factory.mktemp("ss", numbered=True)
    text = to_json(document) if fmt == "json" else to_toml(document)
    assert_answered_or_refused(folder / f"state_space.{fmt}", text)


def test_the_state_space_fuzzer_reaches_both_outcomes(tmp_path):
    outcomes = set()

    @settings(max_examples=25, deadline=DEADLINE, derandomize=True)
    @given(document=valid_state_space_documents())
    def collect(document):
        outcomes.add(assert_answered_or_refused(tmp_path / "both.json", to_json(document)))

    collect()
    assert outcomes == {"answered", "refused"}  # unstable dynamics under "stationary" are refused
