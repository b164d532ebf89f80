"""lamproof: derive, evaluate and verify the linear theory of latent action models."""

from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.numeric.closed_form import Solution, solve
from lamproof.numeric.probes import all_probes, probe
from lamproof.systems import System, paper_system

__all__ = ["LAMSpec", "Solution", "System", "all_probes", "effective_action_weight", "paper_system", "probe", "solve"]
__version__ = "0.1.0"
