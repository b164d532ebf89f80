"""Rich display in Jupyter: what a cell shows for a solution, a probe score, a claim result and a
derivation (``_repr_html_`` / ``_repr_latex_`` of those classes call these functions).

Presentation only: every number comes from the object shown (and, for a solution's probe table,
from :func:`lamproof.all_probes`); nothing here computes mathematics.
"""

from __future__ import annotations

import html
import json

#: Eigenvalues shown in a solution's spectrum before it is elided.
SHOWN_EIGENVALUES = 12


def _num(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return html.escape(str(value))


def _spectrum(values) -> list[str]:
    shown = [_num(v) for v in list(values)[:SHOWN_EIGENVALUES]]
    return shown + (["…"] if len(values) > SHOWN_EIGENVALUES else [])


def _table(rows: list[tuple], head: tuple | None = None) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    top = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" if head else ""
    return f"<table>{top}{cells}</table>"


# -- probe scores -----------------------------------------------------------------------------------
def score_html(score) -> str:
    rows = [
        ("value (canonical member)", _num(score.value)),
        ("proved range [min, max]", f"[{_num(score.min)}, {_num(score.max)}]"),
        ("witnessed [low, high]", f"[{_num(score.attained_min)}, {_num(score.attained_max)}]"),
        ("identified", _num(score.identified)),
        ("bounds", html.escape(score.bounds)),
    ]
    if score.approached:
        rows.append(("approached in the limit", ", ".join(score.approached)))
    return "<b>probe score</b> (fraction of variance unexplained)" + _table(rows)


def score_latex(score) -> str:
    if score.identified or score.min is None:
        return f"$\\mathrm{{score}} = {_num(score.value)}$"
    return (
        f"$\\mathrm{{score}} = {_num(score.value)} \\in [{_num(score.min)}, {_num(score.max)}]"
        f"\\ (\\text{{{score.bounds}}})$"
    )


# -- solutions --------------------------------------------------------------------------------------
def solution_latex(solution) -> str:
    """The optimum as a formula: ``ô' = M₁o + M₂o'`` and the loss as the innovation's tail."""
    d_z = solution.spec.d_z
    values = ", ".join(_spectrum(solution.innovation.eigenvalues))
    return (
        "$$\\hat o' = M_1 o + M_2 o', \\quad M_2 = B D \\text{ projects on the top-"
        + str(d_z)
        + " eigenspace of } S_v, \\quad \\ell^\\ast = \\sum_{i > "
        + str(d_z)
        + "} \\lambda_i(S_v) = "
        + _num(solution.optimal_loss)
        + ", \\quad \\lambda(S_v) = ("
        + values
        + ")$$"
    )


def solution_html(solution) -> str:
    """Method, loss, spectrum, eigengap, then the probe table over the optimal family."""
    from lamproof.numeric.probes import all_probes

    head = [
        ("method", html.escape(solution.method)),
        ("optimal loss E‖ô' − o'‖²", _num(solution.optimal_loss)),
        ("objective", _num(solution.objective)),
        ("innovation eigenvalues", ", ".join(_spectrum(solution.innovation.eigenvalues))),
        ("eigengap", _num(solution.eigengap)),
        ("unique prediction", _num(solution.unique)),
    ]
    probes = [
        (
            html.escape(rep),
            html.escape(target),
            _num(s.value),
            f"[{_num(s.min)}, {_num(s.max)}]",
            _num(s.identified),
            html.escape(s.bounds),
        )
        for rep, scores in all_probes(solution).items()
        for target, s in scores.items()
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in solution.notes)
    return (
        f"<b>optimal LAM</b> (d_z = {solution.spec.d_z}, {html.escape(repr(solution.system))})"
        + _table(head)
        + "<b>probes</b> (fraction of variance unexplained over the optimal family)"
        + _table(probes, ("representation", "target", "value", "[min, max]", "identified", "bounds"))
        + (f"<ul>{notes}</ul>" if notes else "")
    )


# -- claim results ----------------------------------------------------------------------------------
def claim_html(result) -> str:
    rows = [
        ("verdict", html.escape(result.verdict)),
        ("expect", html.escape(result.expect)),
        ("meets expectation", _num(result.meets_expectation)),
        ("examples", str(result.examples)),
        ("seconds", _num(result.seconds)),
    ]
    if result.statement:
        rows.insert(0, ("statement", html.escape(" ".join(result.statement.split()))))
    if result.error:
        rows.append(("error", html.escape(result.error)))
    out = f"<b>claim {html.escape(result.name)}</b>" + _table(rows)
    ce = result.counterexample
    if ce is not None:
        out += (
            f"<b>counterexample</b> (shrunk): {html.escape(ce.message)}<br>$${ce.latex}$$"
            f"<pre>{html.escape(json.dumps(ce.solve_file, indent=1))}</pre>"
        )
    return out


def claim_latex(result) -> str | None:
    ce = result.counterexample
    if ce is None:
        return None
    return f"$${ce.latex}$$"


# -- derivations ------------------------------------------------------------------------------------
def report_html(report) -> str:
    status = "verified" if report.passed else f"FAILED ({report.failure_count})"
    rows = [
        ("checks", str(report.checks_run)),
        ("examples", str(report.examples)),
        ("worst error", f"{report.worst_error:.3g}"),
        ("seconds", _num(report.seconds)),
        ("status", status),
    ]
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in report.failures)
    return (
        f"<b>{html.escape(report.name)}: {html.escape(report.title)}</b>"
        + _table(rows)
        + (f"<ul>{failures}</ul>" if failures else "")
    )


def derivation_html(markdown_text: str) -> str:
    """A derivation's Markdown page as HTML paragraphs (headings and bold kept, code as code)."""
    import re

    lines = [line for line in markdown_text.splitlines() if not line.startswith("<!--")]
    blocks = [b.strip() for b in "\n".join(lines).split("\n\n") if b.strip()]
    out = []
    for block in blocks:
        text = html.escape(" ".join(block.split()))
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        text = re.sub(r"``(.+?)``", r"<code>\1</code>", text)
        text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
        out.append(f"<h3>{text[2:]}</h3>" if block.startswith("# ") else f"<p>{text}</p>")
    return "".join(out)
