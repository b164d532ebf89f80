"""``lamproof report``: one LaTeX document with every derivation and, optionally, a reproduction.

Writing and compiling only; the content comes from :mod:`lamproof.derivations` and from the
tables and figures that ``lamproof reproduce`` wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lamproof.errors import InputError


class CompileError(RuntimeError):
    """pdflatex ran and failed; the message holds the end of its transcript."""


def _figure(figure: Path, out_dir: Path) -> str:
    relative = os.path.relpath(figure.resolve(), out_dir.resolve()).replace(os.sep, "/")
    return (
        "\\begin{figure}[H]\\centering\n"
        f"\\includegraphics[width=0.9\\linewidth]{{{relative}}}\n"
        f"\\caption{{{figure.stem.replace('_', ' ')}}}\n\\end{{figure}}\n"
    )


def studies_section(folder: Path, out_dir: Path) -> str:
    """LaTeX for a ``reproduce --out`` folder: each study's table (``<slug>.tex``) inlined with its
    figure (``<slug>.png`` or ``.pdf``) right beside it; figures without a table follow."""
    if not folder.is_dir():
        raise InputError(f"--studies: {str(folder)!r} is not a directory")
    parts = ["\\clearpage\n\\section{Simulation studies}\n"]
    figures = sorted([*folder.rglob("*.pdf"), *folder.rglob("*.png")])
    placed = set()
    for table in sorted(folder.rglob("*.tex")):
        parts.append(
            f"\\subsection*{{{table.stem.replace('_', ' ')}}}\n{table.read_text(encoding='utf-8')}\n"
        )
        for figure in figures:
            if figure.with_suffix("") == table.with_suffix("") and figure not in placed:
                parts.append(_figure(figure, out_dir))
                placed.add(figure)
    parts += [_figure(figure, out_dir) for figure in figures if figure not in placed]
    return "".join(parts) if len(parts) > 1 else ""


def write_report(out: str | Path, *, studies: str | Path | None = None) -> Path:
    """Write the document to ``out`` (a ``.tex`` path in an existing directory)."""
    from lamproof import derivations

    out = Path(out)
    if out.suffix != ".tex":
        raise InputError(f"--out: expected a .tex file name, got {str(out)!r}")
    if not out.parent.is_dir():
        raise InputError(f"--out: directory {str(out.parent)!r} does not exist")
    extra = studies_section(Path(studies), out.parent) if studies else ""
    try:
        out.write_text(derivations.document(extra=extra), encoding="utf-8")
    except OSError as error:
        raise InputError(f"--out: cannot write {str(out)!r} ({error.strerror or error})") from None
    return out


def compile_pdf(tex: Path) -> Path:
    """Run pdflatex twice (for references) in a scratch directory; the PDF lands beside ``tex``."""
    if shutil.which("pdflatex") is None:
        raise InputError("--pdf: pdflatex is not installed")
    with tempfile.TemporaryDirectory() as build:
        for _ in range(2):
            run = subprocess.run(
                [
                    "pdflatex",
                    "-interaction=nonstopmode",
                    "-halt-on-error",
                    f"-output-directory={build}",
                    str(tex.resolve()),
                ],
                cwd=tex.parent,
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise CompileError(" ".join(run.stdout.splitlines()[-5:]))
        pdf = tex.with_suffix(".pdf")
        shutil.copyfile(Path(build) / (tex.stem + ".pdf"), pdf)
    return pdf
