"""Timing of `lamproof check` (issue 5's speed targets).

    python benchmarks/bench_claims.py              # the two targets + the builtin registry at 50 examples
    python benchmarks/bench_claims.py --registry 0 # only the two targets

Targets: a claim over 200 examples with d_o ≤ 16 in ≤ 10 s; a false claim's shrunk
counterexample in ≤ 30 s. Times are wall-clock on this machine, one process, seed 0.
"""

from __future__ import annotations

import argparse
import time

from lamproof import probe
from lamproof.claims import builtin_claims, check, claim
from lamproof.strategies import dimensions, lam_specs, systems

LARGE = systems(d_o=dimensions(1, 16), noise="any", feedback=None, means=None)


@claim(systems=LARGE, specs=lambda s: lam_specs(s.d_o, idm="any", fdm_obs_path="any"))
def loss_within_total_variance(system, spec, solution):
    """True: the optimal loss never exceeds E‖o' − o‖², the loss of predicting no change (A = I, B = 0)."""
    change = solution.transition.stacked("next_obs") - solution.transition.stacked("obs")
    assert solution.optimal_loss <= float(solution.transition.second_moment(change).trace()) + 1e-8


@claim(systems=LARGE, expect="false")
def latent_has_no_observation(system, spec, solution):
    """False (leakage): every optimal latent carries no observation information."""
    assert probe(solution, "observation", "latent").min >= 1 - 1e-6


@claim(
    systems=systems(d_o=dimensions(1, 16), noise=["isotropic", "structured"], sigma=(0.5, 2.0)),
    specs=lambda s: lam_specs(s.d_o, d_z=s.d_a),
    expect="false",
)
def noise_never_displaces(system, spec, solution):
    """False (structured noise with σ² ≥ 1): d_z = d_a captures the whole action on noise-free data."""
    clean = system.replace(noise_cov=0 * system.noise_cov).transition()
    assert probe(solution, "action", "predicted_change", fit=clean, score=clean).value <= 1e-6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--registry", type=int, default=50, help="examples per builtin claim (0: skip)")
    args = parser.parse_args()
    print(f"{'claim':38s} {'verdict':7s} {'examples':>8s} {'calls':>6s} {'seconds':>8s}  counterexample")
    for c in (loss_within_total_variance, latent_has_no_observation, noise_never_displaces):
        r = check(c, examples=args.examples, seed=0)
        ce = r.counterexample
        where = "" if ce is None else f"d_o={ce.system.d_o} d_a={ce.system.d_a} d_z={ce.spec.d_z}"
        print(
            f"{r.name:38s} {r.verdict:7s} {r.examples:8d} {r.calls:6d} {r.seconds:8.2f}  {where}", flush=True
        )
    if args.registry:
        start = time.perf_counter()
        results = [check(c, examples=args.registry, seed=0) for c in builtin_claims()]
        met = sum(r.meets_expectation for r in results)
        slowest = max(results, key=lambda r: r.seconds)
        print(
            f"builtin registry: {len(results)} claims x {args.registry} examples in "
            f"{time.perf_counter() - start:.1f} s; {met}/{len(results)} meet their expectation; "
            f"slowest {slowest.name} {slowest.seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
