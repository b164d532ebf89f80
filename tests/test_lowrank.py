"""The low-rank path (:mod:`lamproof.numeric.lowrank`) against the dense path, wherever both run.

Paper-form systems of every noise kind, policy correlation and LAM variant, at sizes the dense
solver handles, are solved both ways: the loss, the spectrum, uniqueness, the notes and every
same-distribution probe (proved range, witnessed ends, ``identified``, ``bounds``, and the value
wherever it is identified) must agree. For probes fitted on one distribution and scored on
another the proved interval is an outer bound in both paths; the low-rank one is computed on the
reduced family, so it must lie inside the dense one and contain the same witnessed ends.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lamproof import LAMSpec, solve
from lamproof.numeric.lowrank import LowRankSystem, solve_lowrank
from lamproof.numeric.objective import population_objective
from lamproof.numeric.probes import probe_family, probe_member

RTOL = 1e-8  # the two paths solve the same problem in different coordinates: round-off apart


@st.composite
def cases(draw):
    noise = draw(st.sampled_from(["none", "isotropic", "structured", "uniform"]))
    d_a = draw(st.integers(1, 3))
    kw = {"noise": noise, "seed": draw(st.integers(0, 3))}
    if noise != "none":
        kw["sigma"] = draw(st.sampled_from([0.3, 1.0, 2.0]))
    if noise == "structured":
        kw["noise_dim"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        kw["chi"] = draw(st.sampled_from([0.3, 0.7]))
    spec = LAMSpec(draw(st.integers(1, 4)), draw(st.sampled_from(["learned", "identity"])),
                   draw(st.sampled_from(["free", "tied"])), draw(st.sampled_from([0.0, 0.2])),
                   draw(st.sampled_from([0.0, 0.0, 1.5])))
    protocol = draw(st.sampled_from(["own", "noise_free", "random_action"]))
    return draw(st.integers(36, 48)), d_a, kw, spec, protocol


def _protocol(d_o, d_a, kw, protocol):
    if protocol == "noise_free":
        clean = LowRankSystem.paper(d_o, d_a, **{k: v for k, v in kw.items() if k not in ("noise", "sigma", "noise_dim")})
        return clean, clean
    if protocol == "random_action" and kw.get("chi"):
        return None, LowRankSystem.paper(d_o, d_a, **{k: v for k, v in kw.items() if k != "chi"})
    return None, None


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= RTOL * max(1.0, abs(b))


@settings(max_examples=30, deadline=None)
@given(case=cases())
def test_the_low_rank_path_gives_the_dense_answers(case):
    d_o, d_a, kw, spec, protocol = case
    system = LowRankSystem.paper(d_o, d_a, **kw)
    dense = solve(system.dense(), spec)
    if dense.method != "closed-form":
        return
    low = solve_lowrank(system, spec)
    assert low.dropped > 0  # the reduction is not the whole space
    assert _close(low.optimal_loss, dense.optimal_loss) and _close(low.objective, dense.objective)
    assert np.allclose(low.innovation_eigenvalues, dense.innovation.eigenvalues, rtol=RTOL, atol=RTOL)
    assert low.unique == dense.unique and low.captured_dim == dense.innovation.rank
    assert set(dense.notes) <= set(low.notes)
    fit, score = _protocol(d_o, d_a, kw, protocol)
    dense_t = {None: None}
    for s in (fit, score):
        if s is not None and id(s) not in dense_t:
            dense_t[id(s)] = s.dense().transition()
    same = score is None or score is fit
    for representation in ("predicted_change", "latent"):
        mine = low.probe_family(representation, fit=fit, score=score)
        theirs = probe_family(dense, representation, fit=dense_t[id(fit) if fit is not None else None],
                              score=dense_t[id(score) if score is not None else None])
        for target, a in mine.items():
            b = theirs[target]
            assert _close(a.attained_min, b.attained_min) and _close(a.attained_max, b.attained_max), (target, a, b)
            if b.identified:
                assert _close(a.value, b.value)
            if same:
                assert _close(a.min, b.min) and _close(a.max, b.max), (representation, target, a, b)
                assert (a.identified, a.bounds) == (b.identified, b.bounds)
            elif a.min is not None:  # outer bounds: the reduced family's lie inside the dense ones
                assert b.min <= a.min + RTOL and (b.max is None or a.max <= b.max + RTOL)
                assert a.min <= a.attained_min + RTOL and a.attained_max <= a.max + RTOL


def test_witnesses_embed_to_optimal_members_of_the_full_system():
    system = LowRankSystem.paper(40, 2, noise="isotropic", sigma=0.5)
    spec = LAMSpec(3)
    low = solve_lowrank(system, spec)
    transition = system.dense().transition()
    for target, score in low.probe_family("latent").items():
        for end in ("min", "max"):
            member = score.witnesses[end].dense()
            assert population_objective(member, transition, spec).total == pytest.approx(low.objective, rel=1e-9)
            assert probe_member(member, target, "latent", transition) == pytest.approx(score.witness_scores[end], abs=1e-8)


def test_a_large_system_is_solved_without_dense_matrices():
    system = LowRankSystem.paper(50_000, 4, noise="structured", sigma=2.0, noise_dim=4)
    low = solve_lowrank(system, LAMSpec(6))
    assert low.basis.shape == (50_000, 8) and low.extra == 19
    assert low.optimal_loss == pytest.approx(4 * 1.0 + 0.0, rel=1e-9)  # σ² = 4 > 1: the noise first, two actions left
    action = low.probe("action", "predicted_change")
    assert action.identified and action.value == pytest.approx(0.5, abs=1e-9)


def test_probes_on_data_outside_the_solved_span_are_refused():
    system = LowRankSystem.paper(30, 2)
    other = LowRankSystem.paper(30, 2, seed=9)
    with pytest.raises(ValueError, match="^fit:"):
        solve_lowrank(system, LAMSpec(2)).probe("action", "latent", fit=other)
    assert solve_lowrank(system, LAMSpec(2), also=[other]).probe("action", "latent", fit=other).min is not None
