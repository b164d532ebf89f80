"""The derivations: one readable module per result, each with its LaTeX and its check.

========  ==========================================================================
D1        the linear LAM is PCA of the innovation (R1)
D2        the optimum is a family: observation leakage is free (R2)
D3        augmentation selects the clean latent, and what happens when ``L ≠ I`` (R3)
D4        isotropic versus structured noise and the dominance threshold (paper §4.2–4.3)
D5        policy correlation (R5)
D6        data cleaning
D7        auxiliary action prediction: reduced-rank regression, threshold, effective weight (R4)
D8        the multi-step LAM compresses the controllability Gramian (R6)
D9        capture conditions: capacity, dominance, recoverability and their thresholds
D10       a context window: the LAM compresses the Kalman innovation; its T → ∞ limit
D11       exogenous state: when actions come first (A learned vs A = I), general case, k*
D12       multi-step inverse models: exogenous invariance, AC-State, Levine's failure and repair
D13       exogenous loading and latent consistency: reconstruction, endogenous focus, action loss
D14       learning order and time: sigmoidal modes under gradient flow, where Adam departs
D15       augmentation removes leakage at a rate ∝ s²: the steps it needs, and §6's s = 0.01
========  ==========================================================================

The labels R1–R6 and the results are those of docs/theory.md (§2–§16, one derivation each).

Every module has ``NAME``, ``TITLE``, ``derive()`` (the SymPy steps and results, as the module's
frozen ``Results``), ``latex()`` (its section of the report, committed as the ``.tex`` beside it)
and ``verify(examples=None, seed=0, exact=False, results=None) -> VerificationReport``, whose body
is the one in :func:`lamproof.derivations._framework.verify` (``results``: a changed copy of
``derive()``, ``derive().replace(name=…)``, which the checks must then refute).
The ``.tex`` files ship inside the package, so an installed ``lamproof`` can print and verify.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from types import ModuleType

from lamproof.derivations._framework import VerificationReport
from lamproof.errors import InputError

MODULES = {
    "D1": "d1_pca",
    "D2": "d2_family",
    "D3": "d3_augmentation",
    "D4": "d4_noise",
    "D5": "d5_policy",
    "D6": "d6_cleaning",
    "D7": "d7_action",
    "D8": "d8_multistep",
    "D9": "d9_capture",
    "D10": "d10_context",
    "D11": "d11_exogenous",
    "D12": "d12_inverse",
    "D13": "d13_loading",
    "D14": "d14_learning_time",
    "D15": "d15_leakage_rate",
}
NAMES = tuple(MODULES)

__all__ = [
    "NAMES",
    "MODULES",
    "Derivation",
    "VerificationReport",
    "derivation",
    "get",
    "resolve",
    "verify",
    "latex",
    "shipped_tex",
    "write_tex",
    "document",
    "markdown",
    "folder_files",
    "write_folder",
]


def resolve(name: str) -> str:
    """The canonical name (``D1`` …) of a derivation given as ``D1``, ``d1``, its slug or module."""
    if not isinstance(name, str):
        raise InputError(f"name: expected a derivation name, got {name!r}")
    key = name.strip()
    for canonical, module in MODULES.items():
        slug = module.split("_", 1)[1]
        if key.upper() == canonical or key.lower() in (module, slug):
            return canonical
    raise InputError(f"name: unknown derivation {name!r} (known: {', '.join(NAMES)})")


def get(name: str) -> ModuleType:
    return importlib.import_module(f"lamproof.derivations.{MODULES[resolve(name)]}")


def verify(
    names=None, *, examples: int | None = None, seed: int = 0, exact: bool = False
) -> list[VerificationReport]:
    """Run the checks of the named derivations (all by default), in order."""
    chosen = [resolve(n) for n in names] if names else list(NAMES)
    return [get(n).verify(examples=examples, seed=seed, exact=exact) for n in chosen]


def latex(name: str) -> str:
    """The freshly generated LaTeX section of one derivation."""
    return get(name).latex()


def tex_file(name: str) -> Path:
    return Path(__file__).with_name(MODULES[resolve(name)] + ".tex")


def shipped_tex(name: str) -> str:
    """The committed (installed) ``.tex`` of one derivation; generated if it is missing."""
    module = MODULES[resolve(name)]
    try:
        return resources.files(__package__).joinpath(module + ".tex").read_text(encoding="utf-8")
    except FileNotFoundError:
        return latex(name)


def write_tex(names=None) -> list[Path]:
    """Regenerate the committed ``.tex`` files."""
    written = []
    for n in [resolve(x) for x in names] if names else NAMES:
        path = tex_file(n)
        path.write_text(latex(n), encoding="utf-8")
        written.append(path)
    return written


PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2.5cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage{float}
\usepackage{booktabs}
\usepackage{longtable}
\allowdisplaybreaks
\title{lamproof: derivations of the linear theory of latent action models}
\author{generated by \texttt{lamproof report}}
\begin{document}
\maketitle
\noindent Each section states a result, its assumptions, the SymPy steps that derive it, and how
\texttt{lamproof verify} checks it against an independent numeric solver on random systems.
The paper is Zhang et al., \emph{What Do Latent Action Models Actually Learn?}, NeurIPS 2025
(arXiv:2506.15691).
"""


def document(names=None, *, extra: str = "") -> str:
    """One LaTeX document holding every derivation's section (and ``extra`` before the end)."""
    chosen = [resolve(n) for n in names] if names else list(NAMES)
    body = "\n\\clearpage\n".join(shipped_tex(n) for n in chosen)
    return PREAMBLE + "\n" + body + "\n" + extra + "\n\\end{document}\n"


# -- the browsable folder (the repository's top-level derivations/) --------------------------------
_PARAGRAPHS = ("Statement.", "Assumptions.", "SymPy steps.", "Check.", "Adam departs.")


def markdown(name: str) -> str:
    """One derivation in Markdown: its statement, assumptions, steps and check in the module's words."""
    canonical = resolve(name)
    module = get(canonical)
    lines = (module.__doc__ or "").strip().splitlines()
    body = []
    for line in lines[1:]:
        for head in _PARAGRAPHS:
            if line.startswith(head):
                line = f"**{head}**{line[len(head) :]}"
                break
        body.append(line)
    return (
        f"<!-- Generated by `lamproof latex --all --out derivations/`; do not edit by hand. -->\n"
        f"# {canonical}: {module.TITLE}\n\n" + "\n".join(body).strip() + "\n\n"
        f"Verify: `lamproof verify {canonical}` (`--exact` adds the rational checks where there are any). "
        f"LaTeX: [{MODULES[canonical]}.tex]({MODULES[canonical]}.tex) (`lamproof latex {canonical}`).\n"
    )


class Derivation:
    """One derivation as a notebook shows it: its page (statement, assumptions, steps, check) as
    HTML, its LaTeX section and its check.

    >>> d = derivation("policy")
    >>> d.name, d.title
    ('D5', 'Policy correlation: the latent keeps only the exploration')
    """

    def __init__(self, name: str):
        self.name = resolve(name)
        self.title = get(self.name).TITLE

    def __repr__(self) -> str:
        return f"Derivation({self.name!r})"

    @property
    def latex(self) -> str:
        return shipped_tex(self.name)

    def verify(self, **options) -> VerificationReport:
        """``verify(examples=None, seed=0, exact=False)`` of the derivation's module."""
        return get(self.name).verify(**options)

    def _repr_html_(self) -> str:
        from lamproof.display import derivation_html

        return derivation_html(markdown(self.name))


def derivation(name: str) -> Derivation:
    """The derivation ``name`` (``D1`` … or its slug) as an object a notebook displays."""
    return Derivation(name)


def _index(chosen: list[str]) -> str:
    rows = "\n".join(
        f"| {n} | [{get(n).TITLE}]({MODULES[n]}.md) | [{MODULES[n]}.tex]({MODULES[n]}.tex) |" for n in chosen
    )
    return (
        "<!-- Generated by `lamproof latex --all --out derivations/`; do not edit by hand. -->\n"
        "# Derivations\n\n"
        "Each result lamproof derives with SymPy and checks against an independent numeric route, as a\n"
        "reader browses them: one Markdown page (statement, assumptions, steps, check) and one standalone\n"
        "LaTeX document per derivation. They are generated from the package (`lamproof/derivations/`),\n"
        "which ships the same LaTeX, so an installed lamproof prints (`lamproof latex D1`) and verifies\n"
        "(`lamproof verify`) them without this folder. The theory they belong to is `docs/theory.md`.\n\n"
        "| | derivation | LaTeX |\n|---|---|---|\n" + rows + "\n"
    )


def folder_files(names=None) -> dict[str, str]:
    """``{file name: text}`` of the browsable folder: ``<module>.tex`` (a standalone document),
    ``<module>.md`` per derivation, and ``README.md`` (the index of all of them)."""
    chosen = [resolve(n) for n in names] if names else list(NAMES)
    files = {}
    for n in chosen:
        files[MODULES[n] + ".tex"] = document([n])
        files[MODULES[n] + ".md"] = markdown(n)
    files["README.md"] = _index(list(NAMES))
    return files


def write_folder(out, names=None) -> list[Path]:
    """Write :func:`folder_files` into the folder ``out`` (created if needed); the paths written."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for file_name, text in folder_files(names).items():
            (out / file_name).write_text(text, encoding="utf-8")
            written.append(out / file_name)
    except OSError as error:
        raise InputError(f"--out: cannot write to {str(out)!r} ({error.strerror or error})") from None
    return written
