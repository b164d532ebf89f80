"""lamproof's pytest plugin: claims files collected as tests (registered as the ``pytest11`` entry
point ``lamproof``, so it is active wherever lamproof is installed).

``pytest claims_foo.py`` (or a folder holding ``claims_*.py`` / ``*_claims.py`` files) collects
every claim of such a file — ``@claim``-decorated, or a top-level function named ``claim_*``
(:func:`lamproof.claims.load_claims`) — as one test item. Each item runs
:func:`lamproof.claims.check`, the checker of ``lamproof check``:

- a claim passes when it meets its expectation: it holds, or, declared ``expect="false"``, it is
  refuted;
- otherwise it fails, and the report is ``lamproof check``'s: the verdict, the assertion, the
  shrunk counterexample with its matrices, its LaTeX and a solve file ``lamproof solve``
  accepts. A claim whose verdict is ``undecided`` or ``error`` fails with that verdict.

Files named ``test_*.py`` are pytest's own and are left to it. Options: ``--lamproof-examples N``
(Hypothesis examples per claim, default 100, as ``lamproof check``) and ``--lamproof-seed S``.
Claims run in the pytest process (pytest's own timeouts and ``-x`` apply); ``lamproof check``
is the command that isolates each claim in a child process.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

#: File names whose claims are collected (``test_*.py`` files are pytest's own modules).
PATTERNS = ("claims_*.py", "*_claims.py")
DEFAULT_EXAMPLES = 100


def is_claims_file(path: Path) -> bool:
    """Whether pytest should collect ``path``'s claims.

    >>> is_claims_file(Path("claims_noise.py")), is_claims_file(Path("my_claims.py"))
    (True, True)
    >>> is_claims_file(Path("test_claims.py")), is_claims_file(Path("claims.txt"))
    (False, False)
    """
    name = path.name
    return not name.startswith("test_") and any(fnmatch.fnmatch(name, p) for p in PATTERNS)


def pytest_addoption(parser) -> None:
    group = parser.getgroup("lamproof", "lamproof claims files (claims_*.py, *_claims.py)")
    group.addoption(
        "--lamproof-examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        metavar="N",
        help=f"Hypothesis examples per claim (default {DEFAULT_EXAMPLES})",
    )
    group.addoption(
        "--lamproof-seed",
        type=int,
        default=0,
        metavar="S",
        help="Hypothesis seed of the claims (default 0: reproducible)",
    )


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".py" and is_claims_file(file_path):
        return ClaimsFile.from_parent(parent, path=file_path)
    return None


class ClaimFailure(Exception):
    """A claim that does not meet its expectation; carries the :class:`ClaimResult`."""

    def __init__(self, result):
        super().__init__(result.name)
        self.result = result


class ClaimsFile(pytest.File):
    """A claims file: one :class:`ClaimItem` per claim, in definition order."""

    def collect(self):
        from lamproof.claims import load_claims
        from lamproof.claims.core import ClaimResult

        for entry in load_claims(self.path):
            if isinstance(entry, ClaimResult):  # the file does not import
                raise self.CollectError(entry.error)
            yield ClaimItem.from_parent(self, name=entry.name, claim=entry)


class ClaimItem(pytest.Item):
    """One claim, checked with :func:`lamproof.claims.check` when the item runs."""

    def __init__(self, *, claim, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        if claim.expect == "false":
            self.add_marker(pytest.mark.lamproof_expect_false)

    def runtest(self) -> None:
        from lamproof._blas import single_threaded_blas
        from lamproof.claims import check

        config = self.config
        with single_threaded_blas():
            result = check(
                self.claim,
                examples=config.getoption("lamproof_examples"),
                seed=config.getoption("lamproof_seed"),
            )
        self.user_properties.append(("verdict", result.verdict))
        if not result.meets_expectation:
            raise ClaimFailure(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ClaimFailure):
            from lamproof.claims import render_text

            result = excinfo.value.result
            wanted = "to be refuted" if result.expect == "false" else "to hold"
            return (
                f"claim {result.name!r} was expected {wanted}; its verdict is {result.verdict!r}\n"
                + render_text([result])
            )
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"claim {self.name}"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "lamproof_expect_false: a claim declared expect='false' (must be refuted)"
    )
