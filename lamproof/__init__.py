"""lamproof: derive, evaluate and verify the linear theory of latent action models.

The model and every result are in docs/theory.md; the paper is Zhang et al., *What Do Latent
Action Models Actually Learn?* (NeurIPS 2025). The loop in four names: a :class:`System`, a
:class:`LAMSpec`, :func:`solve` for the optimum and :func:`probe` for what it holds.

>>> from lamproof import LAMSpec, paper_system, probe, solve
>>> solution = solve(paper_system(16, 4), LAMSpec(d_z=2))
>>> round(probe(solution, "action", "predicted_change").value, 12)  # (d_a − d_z)/d_a, paper §4.1
0.5
"""

# The public names load on first use (PEP 562): ``lamproof --help``, ``lamproof compare`` and the
# exception types do not pay for NumPy, SciPy and the solver.
_EXPORTS = {
    "LAMSpec": "lamproof.lam",
    "effective_action_weight": "lamproof.lam",
    "Solution": "lamproof.numeric.closed_form",
    "solve": "lamproof.numeric.closed_form",
    "LowRankSystem": "lamproof.numeric.lowrank",
    "all_probes": "lamproof.numeric.probes",
    "probe": "lamproof.numeric.probes",
    "System": "lamproof.systems",
    "paper_system": "lamproof.systems",
}

__all__ = [
    "LAMSpec",
    "LowRankSystem",
    "Solution",
    "System",
    "all_probes",
    "effective_action_weight",
    "paper_system",
    "probe",
    "solve",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lamproof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
