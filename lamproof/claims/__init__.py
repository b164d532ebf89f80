"""Claims about latent action models, checked across random systems (see :mod:`lamproof.claims.core`).

- :func:`claim`, :class:`Claim`: declare a claim and what it quantifies over;
- :func:`check`, :func:`check_all`: run Hypothesis and return :class:`ClaimResult` s;
- :func:`load_claims`: the claims of a user's Python file;
- :func:`builtin_claims`: the registry of the paper's claims (:mod:`lamproof.claims.registry`);
- :func:`render_text`, :func:`render_json`: what ``lamproof check`` prints.

:data:`TOLERANCE` is :func:`assert_close`'s default absolute tolerance:

>>> TOLERANCE
1e-07
"""

from lamproof.claims.core import (
    TOLERANCE,
    Claim,
    ClaimResult,
    Counterexample,
    Undecided,
    as_claim,
    assert_close,
    assert_family,
    assert_family_within,
    assert_value,
    check,
    check_all,
    claim,
    describe,
)
from lamproof.claims.files import load_claims
from lamproof.claims.report import render_json, render_text


def builtin_claims() -> list[Claim]:
    """The registry of the paper's claims, in order (insights 1–7, then the general results of docs/theory.md).

    >>> claims = builtin_claims()
    >>> claims[0].name, sum(c.expect == "false" for c in claims) > 0
    ('1a.pca-of-frame-difference', True)
    """
    from lamproof.claims.registry import REGISTRY

    return list(REGISTRY)


__all__ = [
    "TOLERANCE",
    "Claim",
    "ClaimResult",
    "Counterexample",
    "Undecided",
    "as_claim",
    "assert_close",
    "assert_family",
    "assert_family_within",
    "assert_value",
    "builtin_claims",
    "check",
    "check_all",
    "claim",
    "describe",
    "load_claims",
    "render_json",
    "render_text",
]
