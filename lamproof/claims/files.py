"""Loading a user's claims file: decorated claims and top-level functions named ``claim_*``."""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import sys
import traceback
from pathlib import Path

from lamproof.claims.core import Claim, ClaimResult, as_claim, error_result

_counter = itertools.count()


def load_claims(path: str | Path) -> list[Claim | ClaimResult]:
    """The claims a Python file defines, in definition order.

    A claim is a :class:`Claim` (``@claim``-decorated) defined in the file, or a top-level
    function whose name starts with ``claim_``. A file that does not import gives one
    ``"error"`` :class:`ClaimResult` naming the file and the error; a file without claims gives
    an empty list. Raises ``FileNotFoundError`` for a missing file (a usage error).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "claims_demo.py"
    >>> lines = [
    ...     "def claim_loss_is_nonnegative(system, spec, solution):",
    ...     "    assert solution.optimal_loss >= 0",
    ... ]
    >>> _ = path.write_text(chr(10).join(lines))
    >>> [c.name for c in load_claims(path)]
    ['claim_loss_is_nonnegative']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file: no such file {str(path)!r}")
    module_name = f"_lamproof_claims_{next(_counter)}_{path.stem.replace('-', '_')}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        spec.loader.exec_module(module)
    except BaseException as error:  # SyntaxError, ImportError, anything the file raises; not Ctrl-C
        if isinstance(error, KeyboardInterrupt):
            raise
        sys.modules.pop(module_name, None)
        lines = traceback.format_exception_only(type(error), error)
        message = " ".join(" ".join(lines).split())
        return [error_result(path.name, f"the file does not import: {message}")]
    found: list[Claim] = []
    for attribute, value in vars(module).items():
        if isinstance(value, Claim):
            if getattr(value.function, "__module__", None) == module_name:
                found.append(value)
        elif attribute.startswith("claim_") and inspect.isfunction(value) and value.__module__ == module_name:
            found.append(as_claim(value))
    return found
