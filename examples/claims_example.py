"""A worked example of `lamproof check`: two claims about the optimal linear LAM.

Run it unchanged:

    lamproof check examples/claims_example.py              # a table, then the counterexample
    lamproof check examples/claims_example.py --examples 300 --seed 1 --format json

A claim is a function of (system, spec, solution) that asserts something. `system` is a
lamproof.System (o' = F o + G a + ε, a = K o + e), `spec` a lamproof.LAMSpec (d_z, variants),
and `solution` the exact optimum lamproof.solve(system, spec) (parameters, optimal_loss,
innovation spectrum; lamproof.probe reads probe scores over the whole optimal family).
`@claim(...)` declares what the claim quantifies over; undecorated top-level functions named
claim_* are checked too, over the default strategies.
"""

from hypothesis import strategies as st

from lamproof import probe
from lamproof.claims import assert_close, claim
from lamproof.strategies import lam_specs, systems


# A true claim (the paper's §4.2 finding): isotropic noise of any size never displaces an action
# direction. Trained with noise N(0, σ² I) and probed on noise-free data, the predicted change
# ô' − o recovers min(d_z, d_a) of the d_a unit-variance action directions.
@claim(
    systems=systems(noise="isotropic", sigma=(0.0, 3.0)),  # G orthonormal, Σ_e = I, d_o ≤ 6
    specs=lambda system: lam_specs(system.d_o),  # any latent size 1..d_o
    statement="Isotropic noise never displaces actions: noise-free action probe error of ô' − o "
    "is max(0, d_a − d_z)/d_a for every σ.",
)
def isotropic_noise_never_displaces_actions(system, spec, solution):
    noise_free = system.replace(noise_cov=0 * system.noise_cov).transition()
    score = probe(solution, "action", "predicted_change", fit=noise_free, score=noise_free)
    assert_close(score.value, max(0, system.d_a - spec.d_z) / system.d_a, "noise-free action probe")


# A plausible but false claim: "a bigger latent can only help, so with d_z ≥ d_a the latent z
# itself recovers the action". lamproof finds the smallest counterexample: because the FDM's A
# can cancel anything z carries about o, observation can ride in z at no cost, and some optimal
# latents do not recover the action at all (the paper probes ô' − o, which does).
@claim(
    systems=systems(noise=["none", "isotropic"]),
    specs=lambda system: lam_specs(system.d_o, d_z=st.integers(system.d_a, system.d_o)),
    expect="false",
)
def latent_recovers_action(system, spec, solution):
    """Every optimal LAM with d_z ≥ d_a has a latent z from which the action is linearly recoverable."""
    score = probe(solution, "action", "latent")  # a range over the whole optimal family
    assert score.max <= 1e-6, f"latent action probe error ranges over [{score.min:.3g}, {score.max:.3g}]"
