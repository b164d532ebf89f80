"""lamproof: derive, evaluate and verify the linear theory of latent action models.

The model and every result are in docs/theory.md; the paper is Zhang et al., *What Do Latent
Action Models Actually Learn?* (NeurIPS 2025). The loop in four names: a :class:`System`, a
:class:`LAMSpec`, :func:`solve` for the optimum and :func:`probe` for what it holds.

>>> from lamproof import LAMSpec, paper_system, probe, solve
>>> solution = solve(paper_system(16, 4), LAMSpec(d_z=2))
>>> round(probe(solution, "action", "predicted_change").value, 12)   # (d_a − d_z)/d_a, paper §4.1
0.5
"""

from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.numeric.closed_form import Solution, solve
from lamproof.numeric.lowrank import LowRankSystem
from lamproof.numeric.probes import all_probes, probe
from lamproof.systems import System, paper_system

__all__ = ["LAMSpec", "LowRankSystem", "Solution", "System", "all_probes", "effective_action_weight", "paper_system",
           "probe", "solve"]
__version__ = "0.1.0"
