"""Writers for a study's results: CSV (the authors' columns), LaTeX table, PNG figure.

Every file is written atomically: to a temporary file in the target folder, then renamed over
the final name, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lamproof.studies.definitions import Study

#: LaTeX packages the tables need (``lamproof report`` must load them).
LATEX_PACKAGES = ("booktabs", "longtable")

_HEADERS = {
    "do": "$d_o$",
    "da": "$d_a$",
    "dz": "$d_z$",
    "db": "$d_b$",
    "sigma": r"$\sigma$",
    "chi": r"$\chi$",
    "kappa": "$s$",
    "mask_ratio": r"labeled",
    "iter": "steps",
    "recon_loss": "recon",
    "act_mse": "action",
    "obs_mse": "observation",
    "noi_mse": "noise",
}


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    The file gets the mode an ordinary ``open(path, "w")`` would give, ``0o666 & ~umask``
    (``mkstemp`` creates it private, 0600).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    write_text_atomic(path, buffer.getvalue())


def ranged_cells(frame: pd.DataFrame, column: str) -> list[str]:
    """The LaTeX cells of a column reported with its range (``column_min``, ``_max``, ``_identified``)."""
    return [
        cell(v, lo, hi, ident)
        for v, lo, hi, ident in zip(
            frame[column],
            frame[f"{column}_min"],
            frame[f"{column}_max"],
            frame[f"{column}_identified"],
            strict=True,
        )
    ]


def cell(value, low=None, high=None, identified=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    text = f"{value:.3f}"
    if identified is False and low is not None and high is not None:
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def latex_table(study: Study, frame: pd.DataFrame, *, caption_suffix: str = "") -> str:
    """A ``longtable`` (booktabs) of the study: swept columns, recon_loss and each probe.

    A probe whose optimum is a family shows ``value [min, max]``: the canonical member, then
    the range over all equally optimal LAMs. A study of lamproof's own writes its own table.
    """
    if not isinstance(study, Study):
        return study.latex_table(frame, caption_suffix=caption_suffix)
    shown = pd.DataFrame()
    for column in study.swept or study.columns:
        shown[_HEADERS.get(column, column)] = [f"{v:g}" for v in frame[column]]
    if "iter" in frame and frame["iter"].notna().any():
        shown["steps"] = [f"{int(v)}" if not math.isnan(v) else "--" for v in frame["iter"]]
    shown["recon"] = [cell(v) for v in frame["recon_loss"]]
    for column, _, _ in study.probes:
        if f"{column}_min" in frame:
            shown[_HEADERS[column]] = ranged_cells(frame, column)
        else:
            shown[_HEADERS[column]] = [cell(v) for v in frame[column]]
    fixed = ", ".join(
        f"{_HEADERS.get(c, c)} = {study.axes[c][0]:g}" for c in study.columns if c not in study.swept
    )
    caption = (
        f"Paper {_latex_escape(study.title)}{caption_suffix}. "
        f"Probe scores are fractions of variance unexplained; [min, max] spans the optimal family. "
        f"Fixed: {fixed}."
    )
    return shown.to_latex(
        index=False,
        escape=False,
        longtable=True,
        caption=caption,
        label=f"tab:{study.slug}",
        column_format="r" * len(shown.columns),
    )


def _latex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("χ", r"$\chi$"),
        ("σ", r"$\sigma$"),
        ("Φ", r"$\Phi$"),
        ("≤", r"$\le$"),
        ("§", r"\S"),
    ):
        text = text.replace(a, b)
    return text


def latex_document(fragments: list[str]) -> str:
    """A minimal document around table fragments (for checking that they compile)."""
    packages = "\n".join(rf"\usepackage{{{p}}}" for p in LATEX_PACKAGES)
    body = "\n\n".join(fragments)
    return (
        f"\\documentclass{{article}}\n\\usepackage[margin=2cm]{{geometry}}\n{packages}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )


# -- figures -----------------------------------------------------------------------------------------
FIGURE_METRICS = ("act_mse", "obs_mse", "noi_mse")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _curves(frame: pd.DataFrame, hue: str, facet: str | None) -> dict:
    """``{(hue value, facet value or None): rows sorted by d_z}`` of ``frame``."""
    keys = [hue] if facet is None else [hue, facet]
    return {
        (key[0], None if facet is None else key[1]): part.sort_values("dz")
        for key, part in frame.groupby(keys, sort=False)
    }


def write_figure(
    study: Study,
    path: Path,
    closed: pd.DataFrame | None,
    trained: pd.DataFrame | None,
    *,
    kind: str = "trained",
) -> None:
    """The paper's curves: each metric against ``dz``, one curve per value of the study's hue
    column, one panel column per value of its facet column. Closed form as lines with the
    optimal family's range shaded; trained (or population-dynamics, ``kind``) runs as markers. A study
    of lamproof's own draws its own figure."""
    if not isinstance(study, Study):
        study.write_figure(path, closed, trained, kind=kind)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = closed if closed is not None else trained
    facets = list(dict.fromkeys(base[study.facet])) if study.facet else [None]
    metrics = [m for m in FIGURE_METRICS if m in base]
    width, height = 2.4 + 3.4 * len(facets), 0.8 + 2.3 * len(metrics)
    fig, axes = plt.subplots(len(metrics), len(facets), figsize=(width, height), squeeze=False, sharex=True)
    hues = list(dict.fromkeys(base[study.hue]))
    colors = plt.get_cmap("viridis")([0.85 * i / max(1, len(hues) - 1) for i in range(len(hues))])
    # each curve's rows once, sorted by d_z, as plain arrays (pandas objects would go through
    # matplotlib's unit conversion on every call)
    curves = {
        source: _curves(frame, study.hue, study.facet)
        for frame, source in ((closed, "closed"), (trained, "trained"))
        if frame is not None
    }
    for j, facet in enumerate(facets):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            for color, hue in zip(colors, hues, strict=True):
                label = f"{_HEADERS.get(study.hue, study.hue)}={hue:g}"
                for source, parts in curves.items():
                    part = parts.get((hue, facet))
                    if part is None:
                        continue
                    dz = part["dz"].to_numpy(dtype=float)
                    if source == "closed":
                        ax.plot(dz, part[metric].to_numpy(dtype=float), color=color, lw=1.2, label=label)
                        if f"{metric}_min" in part:
                            ax.fill_between(
                                dz,
                                part[f"{metric}_min"].to_numpy(dtype=float),
                                part[f"{metric}_max"].to_numpy(dtype=float),
                                color=color,
                                alpha=0.12,
                                lw=0,
                            )
                    else:
                        ax.plot(
                            dz,
                            part[metric].to_numpy(dtype=float),
                            "o",
                            ms=3,
                            color=color,
                            label=None if "closed" in curves else label,
                        )
            if i == 0 and facet is not None:
                ax.set_title(f"{_HEADERS.get(study.facet, study.facet)} = {facet:g}")
            if j == 0:
                ax.set_ylabel(metric)
            if i == len(metrics) - 1:
                ax.set_xlabel("$d_z$")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    kinds = " + ".join(
        k
        for k, f in (("closed form (lines, family range shaded)", closed), (f"{kind} (markers)", trained))
        if f is not None
    )
    # the two-line title sits in a band of its own, above the panel titles when there are facets
    fig.suptitle(f"{study.title}\n{kinds}", fontsize=8, y=1 - 0.08 / height, va="top")
    top = 0.55 + (0.3 if study.facet else 0.0)
    fig.subplots_adjust(
        left=0.75 / width,
        right=1 - 1.5 / width,
        bottom=0.5 / height,
        top=1 - top / height,
        wspace=0.25,
        hspace=0.15,
    )

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=90)

    try:
        write_atomic(path, save)
    finally:
        plt.close(fig)
