"""The worked notebook runs, and what its cells display renders (Jupyter's rich display)."""

import ast
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "worked_example.ipynb"


def _run(source: str, namespace: dict):
    """Execute a cell like IPython: the value of a final expression is what the cell displays."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
    return None


def test_worked_notebook_runs_and_displays():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    namespace: dict = {}
    shown = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            shown.append(_run(cell.source, namespace))
    html = [value._repr_html_() for value in shown if hasattr(value, "_repr_html_")]
    assert len(html) == len(shown), [type(v).__name__ for v in shown]
    solution, change, latent, derivation, report, result = shown
    assert "probes" in html[0] and "innovation eigenvalues" in html[0]
    assert solution._repr_latex_().startswith("$$")
    assert change.value == pytest.approx(0.5) and change.identified
    assert latent.min < latent.max and "proved range" in html[2]
    assert "Statement" in html[3] and report.passed
    assert (
        result.verdict == "fails" and "counterexample" in html[5] and result._repr_latex_().startswith("$$")
    )
