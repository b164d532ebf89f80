"""Answers do not depend on coordinates or units (issue: sound verdicts).

Three changes of description that leave the problem the same:

- an orthogonal change of observation basis ``o → Q o`` (``Σ_o → QΣ_oQᵀ``, ``F → QFQᵀ``,
  ``G → QG``, ``K → KQᵀ``, noise ``→ Q·``);
- a permutation with sign flips of the action coordinates ``a → Π a`` (``G → GΠᵀ``,
  ``Σ_e → ΠΣ_eΠᵀ``, ``K → ΠK``);
- a change of units scaling every second moment by ``c`` (observations and actions by ``√c``).

Each must leave the probes' proved ranges, ``bounds`` and ``identified``, every identified value,
``unique`` and the capture conditions' verdicts unchanged, and scale losses by ``c``. (The value of
a probe that is not identified, and the witnessed extremes of an ``outer`` range, belong to
particular members; where a tie is symmetric no coordinate-free rule singles one member out, so
those may differ between descriptions, always inside the same proved range.) The systems include
ties (orthonormal actions with isotropic noise), drift (``F ≠ I``), means and policies. ``Q`` and
``Π`` are exact in float64 (signed permutations) or rational orthogonal (Cayley), so the two
descriptions are the same problem up to the round-off of one matrix product.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lamproof import all_probes, solve
from lamproof.conditions import capture_conditions
from lamproof.errors import IllConditioned
from lamproof.numeric.closed_form import NoClosedForm
from lamproof.strategies import cayley, lam_specs, problems, systems
from lamproof.systems import System

#: Probe scores are fractions; two descriptions of one problem agree to round-off amplified by
#: the conditioning of the small random systems (~1e-12); 1e-7 is far from any real difference.
SCORE_ATOL = 1e-7
#: Losses agree relative to their scale.
LOSS_RTOL = 1e-7


def _rotated(system: System, Q: np.ndarray) -> System:
    return System(
        Q @ system.action_matrix,
        obs_mean=Q @ system.obs_mean,
        obs_cov=Q @ system.obs_cov @ Q.T,
        dynamics=Q @ system.dynamics @ Q.T,
        policy_gain=system.policy_gain @ Q.T,
        exploration_cov=system.exploration_cov,
        noise_mean=Q @ system.noise_mean,
        noise_cov=Q @ system.noise_cov @ Q.T,
        noise_distribution=system.noise_distribution,
    )


def _actions_permuted(system: System, Pi: np.ndarray) -> System:
    return system.replace(
        action_matrix=system.action_matrix @ Pi.T,
        exploration_cov=Pi @ system.exploration_cov @ Pi.T,
        policy_gain=Pi @ system.policy_gain,
    )


def _scaled(system: System, c: float) -> System:
    r = np.sqrt(c)
    return System(
        system.action_matrix,
        obs_mean=r * system.obs_mean,
        obs_cov=c * system.obs_cov,
        dynamics=system.dynamics,
        policy_gain=system.policy_gain,
        exploration_cov=c * system.exploration_cov,
        noise_mean=r * system.noise_mean,
        noise_cov=c * system.noise_cov,
        noise_distribution=system.noise_distribution,
    )


def _answer(system, spec):
    """What must not change: the probes (value, proved and witnessed range, identified, bounds),
    uniqueness and the conditions' verdicts; and the losses, which scale."""
    try:
        sol = solve(system, spec, allow_numeric=False)
    except (NoClosedForm, IllConditioned) as why:
        return type(why).__name__, None
    probes = {
        (rep, target): score for rep, scores in all_probes(sol).items() for target, score in scores.items()
    }
    conditions = {name: c.holds for name, c in capture_conditions(sol).items()}
    return (sol.unique, probes, conditions), (sol.optimal_loss, sol.objective)


def _same(a, b, scale: float = 1.0):
    (kind_a, losses_a), (kind_b, losses_b) = a, b
    if isinstance(kind_a, str) or isinstance(kind_b, str):
        assert kind_a == kind_b, f"one description is refused ({kind_a}), the other not ({kind_b})"
        return
    unique_a, probes_a, cond_a = kind_a
    unique_b, probes_b, cond_b = kind_b
    assert unique_a == unique_b
    assert cond_a == cond_b
    for key, sa in probes_a.items():
        sb = probes_b[key]
        assert (sa.bounds, sa.identified) == (sb.bounds, sb.identified), (key, sa, sb)
        fields = ["min", "max"]
        if sa.identified:
            fields.append("value")
        if sa.bounds == "exact":
            fields += ["attained_min", "attained_max"]
        for field in fields:
            x, y = getattr(sa, field), getattr(sb, field)
            assert (x is None) == (y is None), (key, field, sa, sb)
            if x is not None:
                assert x == pytest.approx(y, abs=SCORE_ATOL), (key, field, sa, sb)
    for x, y in zip(losses_a, losses_b, strict=True):
        assert y == pytest.approx(scale * x, rel=LOSS_RTOL, abs=LOSS_RTOL * scale * 1e-3)


rich_systems = systems(
    d_o=st.integers(1, 4),
    noise=["none", "isotropic", "structured"],
    feedback=None,
    dynamics=None,
    means=None,
    sigma=st.sampled_from([0.5, 1.0, 2.0]),
)
specs = lambda s: lam_specs(s.d_o, fdm_obs_path="any", idm="any")  # noqa: E731


@st.composite
def orthogonal(draw, n):
    """An exact signed permutation or a rational orthogonal (Cayley) matrix."""
    if draw(st.booleans()):
        perm = draw(st.permutations(range(n)))
        signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
        return np.eye(n)[:, perm] * np.array(signs)
    S = np.zeros((n, n))
    S[np.triu_indices(n, 1)] = draw(
        st.lists(st.integers(-2, 2), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2)
    )
    return cayley(S - S.T)


@settings(max_examples=25)
@given(problems(rich_systems, specs), st.data())
def test_orthogonal_change_of_observation_basis(problem, data):
    system, spec = problem
    Q = data.draw(orthogonal(system.d_o))
    _same(_answer(system, spec), _answer(_rotated(system, Q), spec))


@settings(max_examples=20)
@given(problems(rich_systems, specs), st.data())
def test_permutation_and_sign_flip_of_actions(problem, data):
    system, spec = problem
    perm = data.draw(st.permutations(range(system.d_a)))
    signs = np.array(
        data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=system.d_a, max_size=system.d_a))
    )
    Pi = np.eye(system.d_a)[perm] * signs[:, None]
    _same(_answer(system, spec), _answer(_actions_permuted(system, Pi), spec))


@settings(max_examples=25)
@given(problems(rich_systems, specs), st.floats(-10, 10))
def test_change_of_units(problem, exponent):
    system, spec = problem
    c = 10.0**exponent
    before = _answer(system, spec)
    assume(not isinstance(before[0], str))
    _same(before, _answer(_scaled(system, c), spec), scale=c)


@pytest.mark.parametrize("c", [1e-10, 1e-5, 1e5, 1e10])
def test_change_of_units_on_the_papers_tie(c):
    """§4.2 at d_z = 2 (a tie among eight action directions, isotropic noise) in other units."""
    from lamproof import LAMSpec, paper_system

    system, spec = paper_system(12, 4, noise="isotropic", sigma=0.5, seed=1), LAMSpec(2)
    _same(_answer(system, spec), _answer(_scaled(system, c), spec), scale=c)
