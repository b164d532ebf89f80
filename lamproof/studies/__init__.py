"""The paper's six simulation studies (Zhang et al. 2025, §4.1–§7) as sweep definitions.

    from lamproof.studies import reproduce, get_study, run_closed_form, compare_files

    report = reproduce("4.2", out="out", mode="closed-form")   # CSV + LaTeX + PNG per study
    [result] = run_closed_form([get_study("4.3").with_axes(dz=[2, 8, 16])])
    result.frame                                              # the authors' columns, + ranges

- :mod:`.definitions` — each study's sweep and protocol (data only);
- :mod:`.evaluate` — one configuration → one row (closed form, or given parameters);
- :mod:`.runner` — sweeps (parallel closed form, resumable training) and the output files;
- :mod:`.outputs` — CSV / LaTeX / figure writers (atomic);
- :mod:`.compare` — a reproduction against a CSV in the authors' format.
"""

from lamproof.studies.definitions import (
    CONFIG_COLUMNS,
    STUDIES,
    STUDY_NAMES,
    Config,
    Study,
    get_study,
    select,
)
from lamproof.studies.evaluate import closed_form_row, score_parameters

# The runner and the comparison need pandas; worker processes import only what they evaluate
# with, so these load on first use.
_LAZY = {
    "compare_files": "compare",
    "compare_tables": "compare",
    "format_comparison": "compare",
    "AUTHORS_SECONDS_PER_CONFIG": "runner",
    "ReproduceReport": "runner",
    "StudyResult": "runner",
    "TrainingSettings": "runner",
    "reproduce": "runner",
    "run_closed_form": "runner",
    "run_trained": "runner",
    "train_config": "runner",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"lamproof.studies.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lamproof.studies' has no attribute {name!r}")


__all__ = [
    "AUTHORS_SECONDS_PER_CONFIG",
    "CONFIG_COLUMNS",
    "STUDIES",
    "STUDY_NAMES",
    "Config",
    "ReproduceReport",
    "Study",
    "StudyResult",
    "TrainingSettings",
    "closed_form_row",
    "compare_files",
    "compare_tables",
    "format_comparison",
    "get_study",
    "reproduce",
    "run_closed_form",
    "run_trained",
    "score_parameters",
    "select",
    "train_config",
]
