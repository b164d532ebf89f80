"""lamproof: derive, evaluate and verify the linear theory of latent action models."""

from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.systems import System, paper_system

__all__ = ["LAMSpec", "System", "effective_action_weight", "paper_system"]
__version__ = "0.1.0"
