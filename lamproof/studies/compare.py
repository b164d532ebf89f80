"""Scoring a reproduction against a CSV in the authors' log format.

Rows are matched on the configuration columns both files have (``do``, ``da``, ``dz``, ``db``,
``sigma``, ``chi``, ``kappa``, ``mask_ratio``); for every other numeric column both have (not
``iter``, the training length), the mean and max absolute difference over matched rows. Where
ours has ``<column>_min``/``<column>_max`` (the range over the optimal family), the comparison
also counts how many of their values fall inside that range (widened by ``RANGE_SLACK``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lamproof.errors import InputError
from lamproof.studies.definitions import CONFIG_COLUMNS

#: Columns that describe a run rather than measure it.
METADATA_COLUMNS = ("iter", "method")

#: A value counts as inside a range widened by this much on each side: the authors' numbers are
#: from stochastic training and scatter a few hundredths around the population optimum.
RANGE_SLACK = 0.02

#: Configuration values are matched after rounding to this many decimals (0.1 vs 0.1000000001).
MATCH_DECIMALS = 6


def read_table(path: str | Path, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file {str(path)!r}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{name}: cannot read {str(path)!r} as CSV ({type(error).__name__})") from None
    return frame


def compare_tables(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per shared numeric column: matched rows, mean and max |ours − theirs|, and in-range counts."""
    keys = [c for c in CONFIG_COLUMNS if c in ours.columns and c in theirs.columns]
    if not keys:
        raise InputError(
            "theirs: no configuration column in common with ours "
            f"(expected some of {', '.join(CONFIG_COLUMNS)})"
        )
    left, right = ours.copy(), theirs.copy()
    for frame in (left, right):
        for key in keys:
            frame[key] = pd.to_numeric(frame[key], errors="coerce").round(MATCH_DECIMALS)
    if left.duplicated(keys).any():
        raise InputError(f"ours: configurations repeat on {', '.join(keys)}; cannot match rows")
    merged = right.merge(left, on=keys, how="inner", suffixes=("_theirs", "_ours"))
    skip = set(keys) | set(METADATA_COLUMNS)
    shared = [
        c
        for c in theirs.columns
        if c in ours.columns
        and c not in skip
        and pd.api.types.is_numeric_dtype(theirs[c])
        and pd.api.types.is_numeric_dtype(ours[c])
    ]
    rows = []
    for column in shared:
        a = merged[f"{column}_ours"].astype(float)
        b = merged[f"{column}_theirs"].astype(float)
        valid = a.notna() & b.notna()
        diff = (a[valid] - b[valid]).abs()
        row = {
            "column": column,
            "rows": int(valid.sum()),
            "mean_abs_diff": float(diff.mean()) if len(diff) else np.nan,
            "max_abs_diff": float(diff.max()) if len(diff) else np.nan,
        }
        if f"{column}_min" in merged.columns and f"{column}_max" in merged.columns:
            low = merged[f"{column}_min"].astype(float)[valid]
            high = merged[f"{column}_max"].astype(float)[valid]
            inside = (b[valid] >= low - RANGE_SLACK) & (b[valid] <= high + RANGE_SLACK)
            row["in_family_range"] = f"{int(inside.sum())}/{int(valid.sum())}"
            outside = np.maximum(low - b[valid], 0) + np.maximum(b[valid] - high, 0)
            row["max_dist_to_range"] = float(outside.max()) if len(outside) else np.nan
        rows.append(row)
    table = pd.DataFrame(
        rows,
        columns=["column", "rows", "mean_abs_diff", "max_abs_diff", "in_family_range", "max_dist_to_range"],
    )
    info = {"keys": keys, "matched": len(merged), "theirs": len(theirs), "ours": len(ours)}
    return table, info


def compare_files(ours: str | Path, theirs: str | Path) -> tuple[pd.DataFrame, dict]:
    return compare_tables(read_table(ours, "ours"), read_table(theirs, "theirs"))


def format_comparison(table: pd.DataFrame, info: dict) -> str:
    head = (
        f"matched {info['matched']} of their {info['theirs']} rows (ours: {info['ours']}) "
        f"on {', '.join(info['keys'])}"
    )
    shown = table.copy()
    for column in ("mean_abs_diff", "max_abs_diff", "max_dist_to_range"):
        shown[column] = [("—" if pd.isna(v) else f"{v:.4f}") for v in shown[column]]
    shown["in_family_range"] = (
        shown["in_family_range"].astype(object).where(shown["in_family_range"].notna(), "—")
    )
    return head + "\n" + shown.to_string(index=False)


# -- several reproductions beside one reference ------------------------------------------------------
def source_label(frame: pd.DataFrame, fallback: str) -> str:
    """What produced a table: its ``method`` column (closed-form, trained, dynamics-adam, …) or ``fallback``."""
    if "method" in frame.columns and frame["method"].notna().any():
        methods = list(dict.fromkeys(str(m) for m in frame["method"].dropna()))
        if set(methods) <= {"closed-form", "numeric"}:
            return "closed-form"
        return methods[0]
    return fallback


def _matched(frames: list[tuple[str, pd.DataFrame]]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per configuration present in every table; ``<column>[<label>]`` per source."""
    keys = [c for c in CONFIG_COLUMNS if all(c in f.columns for _, f in frames)]
    if not keys:
        raise InputError(
            "files: no configuration column common to all tables "
            f"(expected some of {', '.join(CONFIG_COLUMNS)})"
        )
    metrics = [
        c
        for c in frames[0][1].columns
        if c not in keys
        and c not in METADATA_COLUMNS
        and not c.endswith(("_min", "_max", "_identified"))
        and all(c in f.columns and pd.api.types.is_numeric_dtype(f[c]) for _, f in frames)
    ]
    merged = None
    for label, frame in frames:
        part = frame[keys + metrics].copy()
        for key in keys:
            part[key] = pd.to_numeric(part[key], errors="coerce").round(MATCH_DECIMALS)
        if part.duplicated(keys).any():
            raise InputError(f"{label}: configurations repeat on {', '.join(keys)}; cannot match rows")
        part = part.rename(columns={m: f"{m}[{label}]" for m in metrics})
        merged = part if merged is None else merged.merge(part, on=keys, how="inner")
    return merged, keys, metrics


def compare_sources(frames: list[tuple[str, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Several tables of the same study side by side (the last is usually the authors' log).

    Returns the matched rows (``<column>[<label>]``), the mean absolute difference of every pair
    of sources per shared column, and ``{"keys", "matched", "labels"}``.
    """
    labels = [label for label, _ in frames]
    if len(set(labels)) != len(labels):
        raise InputError(f"files: two tables have the same source ({', '.join(labels)}); give distinct files")
    merged, keys, metrics = _matched(frames)
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            row = {"pair": f"{a} vs {b}"}
            for metric in metrics:
                x = merged[f"{metric}[{a}]"].astype(float)
                y = merged[f"{metric}[{b}]"].astype(float)
                valid = x.notna() & y.notna()
                row[metric] = float((x[valid] - y[valid]).abs().mean()) if valid.any() else np.nan
            pairs.append(row)
    return (
        merged,
        pd.DataFrame(pairs, columns=["pair"] + metrics),
        {"keys": keys, "matched": len(merged), "labels": labels},
    )


def format_sources(merged: pd.DataFrame, pairs: pd.DataFrame, info: dict, *, rows: bool = False) -> str:
    head = (
        f"matched {info['matched']} configurations present in every table on {', '.join(info['keys'])}; "
        f"sources: {', '.join(info['labels'])}"
    )
    shown = pairs.copy()
    for column in shown.columns[1:]:
        shown[column] = [("—" if pd.isna(v) else f"{v:.4f}") for v in shown[column]]
    text = head + "\nmean |difference| per column\n" + shown.to_string(index=False)
    if rows:
        table = merged.copy()
        for column in table.columns:
            if column not in info["keys"]:
                table[column] = [("—" if pd.isna(v) else f"{v:.4f}") for v in table[column]]
        text += "\n\n" + table.to_string(index=False)
    return text


def compare_many(paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`compare_sources` of CSV files; the last (the reference) is labelled ``theirs`` unless it
    says what produced it."""
    frames = []
    for i, path in enumerate(paths):
        frame = read_table(path, f"files[{i}]")
        frames.append((source_label(frame, "theirs" if i == len(paths) - 1 else Path(path).stem), frame))
    labels = [label for label, _ in frames]
    for i, (label, frame) in enumerate(frames):  # two runs of one method: tell them apart by length or file
        if labels.count(label) > 1:
            steps = frame["iter"].dropna().unique() if "iter" in frame.columns else []
            frames[i] = (f"{label}@{int(steps[0])}" if len(steps) == 1 else f"{label}:{paths[i]}", frame)
    return compare_sources(frames)
