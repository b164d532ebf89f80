"""The one exception type for bad input, and its refusal subtype.

``InputError`` is what every validator raises: a ``ValueError`` whose message begins with the
field it concerns (``system.noise_cov: …``, ``file: …``). It is the only exception the CLI
reports as bad input (one line on stderr, exit code 2); anything else is a bug in lamproof.

``IllConditioned`` is the refusal: the input is well-formed, but float64 cannot decide a
quantity the answer depends on (a rank, a tie, a variance that vanishes in its own units). The
message names that quantity. lamproof refuses rather than print a number it cannot vouch for.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input; the message starts with the field's name."""


class IllConditioned(InputError):
    """float64 cannot decide a quantity the answer depends on; the message names the quantity."""
