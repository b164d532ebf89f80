"""Rendering claim results: a text table with the counterexamples, or JSON."""

from __future__ import annotations

import json

from lamproof.claims.core import ClaimResult


def _mark(result: ClaimResult, builtin: bool) -> str:
    if builtin:
        return "ok" if result.meets_expectation else "UNEXPECTED"
    if result.verdict == "fails" and result.expect == "false":
        return "FAIL (as expected)"
    return {"holds": "ok", "fails": "FAIL", "undecided": "UNDECIDED", "error": "ERROR"}[result.verdict]


def render_text(results: list[ClaimResult], *, builtin: bool = False) -> str:
    """A table (one row per claim), then one block per counterexample or error.

    >>> from lamproof.claims import check
    >>> print(render_text([check(lambda system, spec, solution: None, examples=2)]).splitlines()[-1])
    1 hold, 0 fail, 0 undecided, 0 error; 1 of 1 meet their expectation
    """
    if not results:
        return "no claims found (decorate functions with @claim or name them claim_*)"
    width = max(len(r.name) for r in results)
    head = f"{'claim':{width}s}  {'expect':6s}  {'verdict':7s}  {'examples':>8s}  {'time':>7s}  "
    lines = [head + ("meets expectation" if builtin else "status"), "-" * (len(head) + 17)]
    for r in results:
        lines.append(
            f"{r.name:{width}s}  {r.expect:6s}  {r.verdict:7s}  {r.examples:8d}  {r.seconds:6.2f}s  "
            + _mark(r, builtin)
        )
    for r in results:
        if r.verdict == "holds":
            continue
        lines.append("")
        lines.append(f"== {r.name}: {r.verdict}" + (" (expected)" if r.meets_expectation else ""))
        if r.statement:
            lines.append(f"   claim: {' '.join(r.statement.split())}")
        if r.source:
            lines.append(f"   source: {r.source}")
        if r.error:
            lines.append(f"   error: {r.error}")
        ce = r.counterexample
        if ce is not None:
            if r.verdict == "fails":
                lines.append(f"   assertion: {ce.message}")
            kind = (
                "undecided example (the first; not shrunk)"
                if r.verdict == "undecided"
                else f"counterexample (after {r.calls} evaluations, shrunk)"
            )
            lines.append(f"   {kind}: d_o={ce.system.d_o}, d_a={ce.system.d_a}, {_spec_text(ce.spec)}")
            for name, value in ce.matrices.items():
                if name != "lam":
                    lines.append(f"     {name} = {json.dumps(value)}")
            lines.append(f"   latex: {ce.latex}")
            lines.append(f"   solve file: {json.dumps(ce.solve_file)}")
        if r.note:
            lines.append(f"   note: {' '.join(r.note.split())}")
    failing = sum(1 for r in results if not r.meets_expectation)
    lines.append("")
    if builtin:
        lines.append(f"{len(results) - failing} of {len(results)} claims meet their expectation")
    else:
        counts = {v: sum(r.verdict == v for r in results) for v in ("holds", "fails", "undecided", "error")}
        lines.append(
            f"{counts['holds']} hold, {counts['fails']} fail, {counts['undecided']} undecided, "
            f"{counts['error']} error; "
            f"{len(results) - failing} of {len(results)} meet their expectation"
        )
    return "\n".join(lines)


def _spec_text(spec) -> str:
    parts = [f"d_z={spec.d_z}"]
    defaults = {
        "fdm_obs_path": "learned",
        "idm": "free",
        "augmentation": 0.0,
        "action_loss_weight": 0.0,
        "horizon": 1,
        "context": 1,
    }
    for key, default in defaults.items():
        value = getattr(spec, key)
        if value != default:
            parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts)


def render_json(results: list[ClaimResult], *, builtin: bool = False) -> str:
    """The ``lamproof check --format json`` document (docs/cli.md): ``builtin``, ``claims`` (each
    :meth:`ClaimResult.as_dict`), ``all_hold`` and ``all_meet_expectation``.

    >>> from lamproof.claims import check
    >>> import json
    >>> json.loads(render_json([check(lambda system, spec, solution: None, examples=2)]))["all_hold"]
    True
    """
    return json.dumps(
        {
            "builtin": builtin,
            "claims": [r.as_dict() for r in results],
            "all_hold": all(r.verdict == "holds" for r in results),
            "all_meet_expectation": all(r.meets_expectation for r in results),
        },
        indent=2,
    )
