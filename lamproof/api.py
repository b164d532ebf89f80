"""The interface users script against: solve files in, the solve JSON out (docs/cli.md).

A solve file (JSON or TOML, same structure) has two tables, ``system`` and ``lam``; see
:meth:`lamproof.systems.System.from_dict` and :meth:`lamproof.lam.LAMSpec.from_dict`. A
``state_space`` table (:meth:`lamproof.statespace.StateSpaceSystem.from_dict`) or a
``paper_system`` table (the arguments of :func:`lamproof.systems.paper_system`, solved through
its low-rank structure at any ``d_o``: :class:`lamproof.numeric.lowrank.LowRankSystem`) may
replace ``system``: a file has exactly one of the three. A dynamics file (``lamproof dynamics``)
adds one more table, ``dynamics`` (:meth:`lamproof.numeric.dynamics.DynamicsSettings.from_dict`); ``lamproof
solve`` refuses it.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from lamproof._validation import show
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import Solution, solve
from lamproof.numeric.lowrank import LowRankSolution, LowRankSystem
from lamproof.numeric.probes import all_probes
from lamproof.statespace import StateSpaceSystem
from lamproof.systems import System

TOP_LEVEL_KEYS = ("system", "state_space", "paper_system", "lam")
SYSTEM_KEYS = ("system", "state_space", "paper_system")


def _unique_keys(pairs: list) -> dict:
    """A JSON object, refusing a repeated key (``json`` would keep the last one silently)."""
    table = {}
    for key, value in pairs:
        if key in table:
            raise InputError(f"file: duplicate key {show(key)} in a JSON object")
        table[key] = value
    return table


def _parse_text(text: str, fmt: str) -> Any:
    """A file's tables; duplicate keys are refused in both formats (TOML's parser refuses them itself)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys) if fmt == "json" else tomllib.loads(text)
    except RecursionError:
        raise InputError(f"file: not valid {fmt.upper()} (nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, TOMLDecodeError, an integer of over 4300 digits
        if isinstance(error, InputError):
            raise
        raise InputError(f"file: not valid {fmt.upper()} ({error})") from None
    return data


def parse_spec_text(text: str, *, fmt: str) -> tuple[System | StateSpaceSystem, LAMSpec]:
    """Parse a solve file's text (``fmt`` is ``"json"`` or ``"toml"``) into a system and a LAMSpec."""
    return spec_from_dict(_parse_text(text, fmt))


def spec_from_dict(
    data: Any, *, extra: tuple[str, ...] = ()
) -> tuple[System | StateSpaceSystem | LowRankSystem, LAMSpec]:
    """A solve file's tables as a :class:`System` (``system``), a :class:`StateSpaceSystem`
    (``state_space``) or a :class:`LowRankSystem` (``paper_system``), and a :class:`LAMSpec`
    checked against the system's ``d_o``. Top-level
    keys other than these and the optional ``extra`` tables (which the caller reads) are refused."""
    if not isinstance(data, dict):
        raise InputError("file: expected a table with 'system' (or 'state_space') and 'lam'")
    known = TOP_LEVEL_KEYS + tuple(extra)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{unknown[0]}: unknown top-level key (known: {', '.join(known)})")
    present = [key for key in SYSTEM_KEYS if key in data]
    if not present:
        raise InputError("system: required table is missing (or give a state_space or paper_system table)")
    if len(present) > 1:
        raise InputError(
            f"{present[1]}: a file has one of the tables system, state_space, paper_system, "
            f"not both {present[0]} and {present[1]}"
        )
    if "lam" not in data:
        raise InputError("lam: required table is missing")
    if present[0] == "system":
        system = System.from_dict(data["system"])
    elif present[0] == "paper_system":
        system = LowRankSystem.from_dict(data["paper_system"])
    else:
        system = StateSpaceSystem.from_dict(data["state_space"])
    spec = LAMSpec.from_dict(data["lam"])
    try:
        spec.check_for(system.d_o)
    except InputError as error:
        raise InputError(f"lam.{error}") from None
    return system, spec


def _read(path: str | Path) -> Any:
    """A ``.json`` or ``.toml`` file's tables (other endings are tried as JSON), UTF-8 text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"file: cannot read {str(path)!r} ({error.strerror or type(error).__name__})"
        ) from None
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is accepted
    except UnicodeDecodeError as error:
        raise InputError(
            f"file: {str(path)!r} is not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})"
        ) from None
    return _parse_text(text, "toml" if path.suffix.lower() == ".toml" else "json")


def load_spec_file(path: str | Path) -> tuple[System | StateSpaceSystem, LAMSpec]:
    """Read a ``.json`` or ``.toml`` solve file (other endings are tried as JSON), UTF-8 text."""
    return spec_from_dict(_read(path))


def spec_to_dict(system: System | StateSpaceSystem, spec: LAMSpec) -> dict:
    """The solve-file form of a system and spec (what :func:`spec_from_dict` reads back)."""
    key = "state_space" if isinstance(system, StateSpaceSystem) else "system"
    return {key: system.to_dict(), "lam": spec.to_dict()}


def _clean(value):
    """Plain JSON values: arrays to lists, non-finite floats to ``None``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and np.all(np.isfinite(value)):  # the common case, without a walk
            return value.tolist()
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def conditions_for(solution: Solution) -> dict:
    """Controllability and capture conditions (docs/theory.md §10), as the solve JSON holds them."""
    from lamproof.conditions import capture_conditions

    return {name: condition.as_dict() for name, condition in capture_conditions(solution).items()}


def exogenous_outputs(solution: Solution) -> dict:
    """``exogenous_loading`` and ``latent_consistency`` over the optimal family, where the system
    declares exogenous coordinates (else nothing)."""
    if "exogenous" not in solution.transition.variables:
        return {}
    from lamproof.exogenous import consistency_over_family, loading_over_family

    return {
        "exogenous_loading": loading_over_family(solution).as_dict(),
        "latent_consistency": consistency_over_family(solution).as_dict(),
    }


def solution_to_dict(solution: Solution | LowRankSolution) -> dict:
    """The ``lamproof solve`` JSON (the keys of docs/cli.md, including ``notes`` and ``captured_dim``; with
    exogenous coordinates also :func:`exogenous_outputs`). A low-rank solution has the same keys;
    its ``maps`` are ``d_o × d_o`` and are left out (``null``)."""
    if isinstance(solution, LowRankSolution):
        return _lowrank_to_dict(solution)
    eigenvalues = np.clip(solution.innovation.eigenvalues, 0.0, None)
    out = {
        "method": solution.method,
        "optimal_loss": max(solution.optimal_loss, 0.0),
        "objective": max(solution.objective, 0.0),
        "innovation_eigenvalues": eigenvalues,
        "eigengap": solution.eigengap,
        "unique": solution.unique,
        "maps": {"obs": solution.parameters.obs_map, "next_obs": solution.parameters.next_obs_map},
        "probes": {
            rep: {target: score.as_dict() for target, score in scores.items()}
            for rep, scores in all_probes(solution).items()
        },
        "conditions": conditions_for(solution),
        "captured_dim": int(solution.captured.shape[1]),
        **exogenous_outputs(solution),
        "notes": list(solution.notes),
    }
    return _clean(out)


def _lowrank_to_dict(solution: LowRankSolution) -> dict:
    out = {
        "method": solution.method,
        "optimal_loss": max(solution.optimal_loss, 0.0),
        "objective": max(solution.objective, 0.0),
        "innovation_eigenvalues": np.clip(solution.innovation_eigenvalues, 0.0, None),
        "eigengap": solution.eigengap,
        "unique": solution.unique,
        "maps": None,
        "probes": {
            rep: {target: score.as_dict() for target, score in scores.items()}
            for rep, scores in solution.all_probes().items()
        },
        "conditions": {name: condition.as_dict() for name, condition in solution.conditions().items()},
        "captured_dim": solution.captured_dim,
        "notes": list(solution.notes)
        + [
            "maps: left out, they are d_o × d_o; the Python API gives the solution "
            "as factors (lamproof.numeric.lowrank.LowRankSolution.parameters)"
        ],
    }
    return _clean(out)


def solve_file(path: str | Path) -> dict:
    system, spec = load_spec_file(path)
    try:
        return solution_to_dict(solve(system, spec))
    except InputError as error:  # the transition names the horizon; in a file it is lam.horizon
        if str(error).startswith("horizon:"):
            raise type(error)(f"lam.{error}") from None
        if isinstance(system, StateSpaceSystem) and str(error).startswith("system:"):
            raise type(error)(f"state_space:{str(error).removeprefix('system:')}") from None
        raise


# -- dynamics files ----------------------------------------------------------------------------------
def dynamics_from_dict(data: Any):
    """``(system, spec, settings)`` of a dynamics file: a solve file plus an optional ``dynamics`` table.

    Explicit initial matrices are checked against the system and the LAM here, once.
    """
    from lamproof.numeric.dynamics import DynamicsSettings, initial_parameters

    system, spec = spec_from_dict(data, extra=("dynamics",))
    if isinstance(system, LowRankSystem):
        raise InputError(
            "paper_system: lamproof dynamics reads a [system] or [state_space] table (a paper_system "
            "table's d_o × d_o parameters are what its low-rank solve avoids); lamproof solve takes it"
        )
    settings = DynamicsSettings.from_dict(data.get("dynamics", {}))
    if not isinstance(settings.init, str):
        try:
            initial_parameters(system, spec, settings)
        except InputError as error:
            raise InputError(f"dynamics.{error}") from None
    return system, spec, settings


def load_dynamics_file(path: str | Path):
    return dynamics_from_dict(_read(path))


def dynamics_file(path: str | Path, *, progress=None) -> dict:
    """The ``lamproof dynamics`` JSON of a file (see :func:`lamproof.trajectory.analyze`)."""
    from lamproof.trajectory import analyze

    system, spec, settings = load_dynamics_file(path)
    return _clean(analyze(system, spec, settings, progress=progress))
