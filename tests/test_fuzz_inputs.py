"""Fuzzing ``lamproof solve``: every file gets an answer or a one-line refusal, never a crash.

Hypothesis writes solve files, JSON and TOML, and runs ``lamproof.cli.main(["solve", path])``
in this process with stdout and stderr captured. The files are:

- small valid files, unchanged or with one field perturbed: a value of the wrong type, a huge,
  tiny or non-finite number, an integer of hundreds of digits, a string, a boolean, an empty or
  ragged or deeply nested array, a table; a field removed, an unknown field added, a key repeated;
- random structures (nested lists and tables of any scalars), with and without the two tables;
- the bytes of a valid file mutated: cut short, bytes flipped or inserted (non-UTF-8 included).

Each run must end with exit code 0, a valid answer on stdout (JSON with a finite optimal loss)
and nothing on stderr, or with exit code 2, nothing on stdout and exactly one line on stderr
starting ``lamproof: error: ``. Never a traceback or another exit code; the Hypothesis deadline
(generous: a hang guard, not a benchmark) stops an example that runs away. Sizes are bounded
(d ≤ 4, horizon ≤ 3 on the valid path) so that an example takes milliseconds.

Valid files combine at most one of an action head (λ > 0), augmentation and a policy gain, and
the first two come without dynamics or means: the combinations without a closed form go to the
numeric minimizer, which takes seconds per file and is tested elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import warnings
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from lamproof.cli import main
from lamproof.systems import SYSTEM_FIELDS

#: A hang guard per example, not a benchmark. Most examples take milliseconds; a perturbation
#: can still make a file that only the numeric minimizer solves (seconds on a loaded machine).
DEADLINE = timedelta(seconds=30)

SYSTEM_KEYS = SYSTEM_FIELDS  # the package's own list: a new field is fuzzed too
LAM_KEYS = ("d_z", "fdm_obs_path", "idm", "augmentation", "action_loss_weight", "horizon")


class Pairs(list):
    """A table written as its (key, value) pairs, so that a key can appear twice."""


# -- writing files -----------------------------------------------------------------------------------
def to_json(value) -> str:
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return to_json(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)  # NaN, Infinity and integers of any length included


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value == math.inf else "-inf" if value == -math.inf else repr(value))
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, Pairs)):
        items = value if isinstance(value, Pairs) else value.items()
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in items if v is not None) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    return '""'  # None has no TOML form


def to_toml(document) -> str:
    """Top-level tables as ``[name]`` sections, everything nested inside them inline."""
    items = list(document) if isinstance(document, Pairs) else list(document.items())
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in items
        if not isinstance(v, (dict, Pairs)) and v is not None
    ]
    for key, table in items:
        if isinstance(table, (dict, Pairs)):
            lines.append(f"[{_toml_key(key)}]")
            entries = table if isinstance(table, Pairs) else table.items()
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entries if v is not None]
    return "\n".join(lines) + "\n"


# -- valid files -------------------------------------------------------------------------------------
SMALL = st.sampled_from([0, 1, -1, 2, 0.5, -0.5, 1.5, 0.25])


def matrices(rows: int, cols: int, entries=SMALL):
    return st.lists(st.lists(entries, min_size=cols, max_size=cols), min_size=rows, max_size=rows)


@st.composite
def covariances(draw, size: int):
    kind = draw(st.sampled_from(["identity", "diagonal", "gram"]))
    if kind == "identity":
        return "identity"
    if kind == "diagonal":
        diagonal = draw(st.lists(st.sampled_from([0, 0.1, 0.5, 1, 2, 4]), min_size=size, max_size=size))
        return [[diagonal[i] if i == j else 0 for j in range(size)] for i in range(size)]
    m = draw(matrices(size, size, st.integers(-2, 2)))  # integer M Mᵀ: exactly symmetric, PSD
    return [[sum(m[i][k] * m[j][k] for k in range(size)) for j in range(size)] for i in range(size)]


@st.composite
def valid_documents(draw) -> dict:
    d_o = draw(st.integers(1, 4))
    d_a = draw(st.integers(1, d_o))
    system = {"action_matrix": draw(matrices(d_o, d_a))}
    # at most one of: an action head, augmentation, a policy (see the module docstring)
    head, augmented, policy = draw(st.sampled_from([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]))
    drift = not (head or augmented)  # with L ≠ I or a mean, these have no closed form either
    if drift and draw(st.booleans()):
        system["obs_mean"] = draw(st.lists(SMALL, min_size=d_o, max_size=d_o))
    if draw(st.booleans()):
        system["obs_cov"] = draw(covariances(d_o))
    if drift and draw(st.booleans()):
        system["dynamics"] = draw(matrices(d_o, d_o))
    if policy:
        system["policy_gain"] = draw(matrices(d_a, d_o))
    if draw(st.booleans()):
        system["exploration_cov"] = draw(covariances(d_a))
    if draw(st.booleans()):
        system["noise_cov"] = draw(covariances(d_o))
    if drift and draw(st.booleans()):
        system["noise_mean"] = draw(st.lists(SMALL, min_size=d_o, max_size=d_o))
    if draw(st.booleans()):
        system["noise_distribution"] = draw(st.sampled_from(["gaussian", "uniform"]))
    lam = {"d_z": draw(st.integers(1, d_o))}
    if draw(st.booleans()):
        lam["fdm_obs_path"] = draw(st.sampled_from(["learned", "identity"]))
    if draw(st.booleans()):
        lam["idm"] = draw(st.sampled_from(["free", "tied"]))
    if augmented:
        lam["augmentation"] = draw(st.sampled_from([0.1, 1.0, 3]))
    if head:
        lam["action_loss_weight"] = draw(st.sampled_from([0.5, 1, 10]))
    if draw(st.booleans()):
        lam["horizon"] = draw(st.integers(1, 3))
    return {"system": system, "lam": lam}


# -- malformed and extreme values ----------------------------------------------------------------------
EXTREME_NUMBERS = st.sampled_from(
    [
        0,
        -0.0,
        1e-300,
        5e-324,
        -5e-324,
        1e15,
        1.0000001e15,
        -1e15,
        1e16,
        1e60,
        1e100,
        1e155,
        -1e155,
        1e308,
        1.7976931348623157e308,
        math.nan,
        math.inf,
        -math.inf,
        2**53 + 1,
        2**63 - 1,
        2**63,
        2**64,
        10**15,
        10**16,
        10**100,
        10**400,
        -(10**400),
        7 * 10**999,
    ]
)
NUMBERS = EXTREME_NUMBERS | st.integers() | st.floats() | SMALL
SCALARS = (
    NUMBERS
    | st.booleans()
    | st.none()
    | st.text(max_size=6)
    | st.sampled_from(
        ["identity", "gaussian", "uniform", "learned", "tied", "free", "1", "nan", "1e400", "\u00e9", "\x00"]
    )
)


def nested(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
ARRAYS = st.one_of(
    st.integers(0, 4).flatmap(lambda r: st.integers(0, 4).flatmap(lambda c: matrices(r, c, NUMBERS))),
    st.integers(0, 4).flatmap(lambda n: st.lists(NUMBERS, min_size=n, max_size=n)),
    st.lists(st.lists(SMALL, max_size=4), min_size=1, max_size=4),  # ragged rows
    st.lists(st.lists(SCALARS, max_size=3), max_size=3),  # rows of anything
    st.sampled_from([[], [[]], [[[]]], [[], []], [[1], []], [[1, 2], 3], [[[1]], [[0]]], [[True]], [["1"]]]),
    st.integers(3, 300).map(nested),
)
BAD_VALUES = NUMBERS | SCALARS | ARRAYS | STRUCTURES


@st.composite
def perturbed_documents(draw) -> dict | Pairs:
    """A valid document with one change (or none: the valid path is fuzzed too)."""
    document = draw(valid_documents())
    change = draw(
        st.sampled_from(
            ["none", "entry", "entry", "entry", "value", "value", "remove", "unknown", "duplicate", "retype"]
        )
    )
    where = draw(st.sampled_from(["system", "lam"] if change == "entry" else ["system", "lam", "top"]))
    table = document if where == "top" else document[where]
    keys = {"system": SYSTEM_KEYS, "lam": LAM_KEYS, "top": ("system", "lam")}[where]
    key = draw(st.sampled_from(keys))
    if change == "entry" and where == "lam":  # one number of the spec
        table[key] = draw(NUMBERS | st.booleans())
    elif change == "entry":  # one entry of a matrix or vector, the shape kept: reaches the solver
        key = draw(st.sampled_from(sorted(k for k, v in table.items() if isinstance(v, list))))
        array = json.loads(json.dumps(table[key]))
        row = draw(st.integers(0, len(array) - 1))
        if isinstance(array[row], list):
            array[row][draw(st.integers(0, len(array[row]) - 1))] = draw(NUMBERS)
        else:
            array[row] = draw(NUMBERS)
        table[key] = array
    elif change == "value":
        table[key] = draw(BAD_VALUES)
    elif change == "remove":
        table.pop(key, None)
    elif change == "unknown":
        table[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
    elif change == "retype":
        table[key] = draw(st.sampled_from([[], {}, "", None, 0, [table.get(key)], {"value": table.get(key)}]))
    elif change == "duplicate" and key in table:
        pairs = Pairs(table.items())
        pairs.append((key, draw(SCALARS | ARRAYS)))
        if where == "top":
            return pairs
        document[where] = pairs
    note(f"change {change} of {where}.{key}")
    return document


# -- running it -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def solve_cli(path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("always")  # a warning is a second line on stderr, every time
        code = main(["solve", str(path)])
    return code, out.getvalue(), err.getvalue()


def assert_answered_or_refused(path, contents) -> str:
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode("utf-8", "surrogatepass"))
    code, out, err = solve_cli(path)
    note(f"exit {code}; stderr {err!r}")
    if code == 0:
        assert err == ""
        answer = json.loads(out)
        assert isinstance(answer["optimal_loss"], float) and math.isfinite(answer["optimal_loss"])
        return "answered"
    assert code == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("lamproof: error: "), err
    assert "Traceback" not in err
    return "refused"


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=DEADLINE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz(120)
@given(document=perturbed_documents(), fmt=st.sampled_from(["json", "toml"]))
def test_valid_files_perturbed_one_field_at_a_time(folder, document, fmt):
    text = to_json(document) if fmt == "json" else to_toml(document)
    assert_answered_or_refused(folder / f"perturbed.{fmt}", text)


@fuzz(60)
@given(
    document=st.one_of(
        STRUCTURES, st.dictionaries(st.sampled_from(["system", "lam", "other"]), STRUCTURES, max_size=3)
    ),
    fmt=st.sampled_from(["json", "toml"]),
)
def test_random_structures(folder, document, fmt):
    if fmt == "toml" and not isinstance(document, dict):
        document = {"value": document}
    text = to_json(document) if fmt == "json" else to_toml(document)
    assert_answered_or_refused(folder / f"random.{fmt}", text)


@st.composite
def mutated_bytes(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["json", "toml"]))
    document = draw(valid_documents())
    data = bytearray((to_json(document) if fmt == "json" else to_toml(document)).encode())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "latin-1"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            data[at:at] = "\u00e9".encode("latin-1")  # not UTF-8
    return fmt, bytes(data)


@fuzz(60)
@given(mutated=mutated_bytes())
def test_mutated_bytes(folder, mutated):
    fmt, data = mutated
    assert_answered_or_refused(folder / f"mutated.{fmt}", data)


def test_the_fuzzer_reaches_both_outcomes(folder):
    # The strategies must produce answers as well as refusals (a fuzzer that only ever produces
    # garbage would not test the valid path).
    outcomes = set()

    @settings(max_examples=20, deadline=DEADLINE, derandomize=True)
    @given(document=perturbed_documents())
    def collect(document):
        outcomes.add(assert_answered_or_refused(folder / "both.json", to_json(document)))

    collect()
    assert outcomes == {"answered", "refused"}
