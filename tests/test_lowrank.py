"""The low-rank path (:mod:`lamproof.numeric.lowrank`) against the dense path, wherever both run.

Paper-form systems of every noise kind, policy correlation and LAM variant, at d_o = 8–40 where
the dense solver runs, are solved both ways: the loss, the spectrum, the eigengap, uniqueness, the
notes, the capture conditions and every same-distribution probe (proved range, witnessed ends,
``identified``, ``bounds``, ``approached``, and the value wherever it is identified) must agree.
For probes fitted on one distribution and scored on another the proved interval is an outer
bound in both paths; the low-rank one is computed on the reduced family, so it must lie inside
the dense one, and each path's witnessed members must lie inside the other's proved interval.
The solve-file and command-line routes are checked against the dense solve JSON too.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamproof import LAMSpec, solve
from lamproof.api import solution_to_dict, solve_file
from lamproof.conditions import capture_conditions
from lamproof.errors import InputError
from lamproof.numeric.lowrank import LowRankSolution, LowRankSystem, solve_lowrank
from lamproof.numeric.objective import population_objective
from lamproof.numeric.probes import probe_family, probe_member
from lamproof.systems import paper_system

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
    spec = LAMSpec(
        draw(st.integers(1, 4)),
        draw(st.sampled_from(["learned", "identity"])),
        draw(st.sampled_from(["free", "tied"])),
        draw(st.sampled_from([0.0, 0.2])),
        draw(st.sampled_from([0.0, 0.0, 1.5])),
    )
    protocol = draw(st.sampled_from(["own", "noise_free", "random_action"]))
    return draw(st.integers(8, 40)), d_a, kw, spec, protocol


def _protocol(system: LowRankSystem, protocol: str):
    """``(fit, score)`` data of a probe protocol: the same system without noise (§4.2's noise-free
    probes), or without its policy (§5's random actions)."""
    if protocol == "noise_free":
        clean = system.replace(noise_scale=0.0, noise_factor=None, noise_mean=None)
        return clean, clean
    if protocol == "random_action" and system.policy_gain is not None:
        return None, system.replace(policy_gain=None, exploration_cov=None)
    return None, None


def _words(reason: str) -> str:
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", reason)


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
    low = solve(system, spec)
    assert isinstance(low, LowRankSolution) and low.dropped >= 0
    assert _close(low.optimal_loss, dense.optimal_loss) and _close(low.objective, dense.objective)
    assert np.allclose(low.innovation_eigenvalues, dense.innovation.eigenvalues, rtol=RTOL, atol=RTOL)
    assert low.unique == dense.unique and low.captured_dim == dense.captured.shape[1]
    assert _close(low.eigengap, dense.eigengap)
    assert set(dense.notes) <= set(low.notes)
    theirs = capture_conditions(dense)
    for name, mine in low.conditions().items():  # reasons quote margins: compared as numbers
        assert mine.holds == theirs[name].holds and _words(mine.reason) == _words(theirs[name].reason), name
        assert _close(mine.margin, theirs[name].margin), name
    fit, score = _protocol(system, protocol)
    dense_t = {None: None}
    for s in (fit, score):
        if s is not None and id(s) not in dense_t:
            dense_t[id(s)] = s.dense().transition()
    same = score is None or score is fit
    for representation in ("predicted_change", "latent"):
        mine = low.probe_family(representation, fit=fit, score=score)
        theirs = probe_family(
            dense,
            representation,
            fit=dense_t[id(fit) if fit is not None else None],
            score=dense_t[id(score) if score is not None else None],
        )
        for target, a in mine.items():
            b = theirs[target]
            if b.identified:
                assert _close(a.value, b.value)
            if same:
                assert _close(a.min, b.min) and _close(a.max, b.max), (representation, target, a, b)
                assert _close(a.attained_min, b.attained_min) and _close(a.attained_max, b.attained_max), (
                    target,
                    a,
                    b,
                )
                assert (a.identified, a.bounds, a.approached) == (b.identified, b.bounds, b.approached)
            elif a.min is not None:
                # outer bounds, and witnesses found by a search whose tie-breaking in the isotropic
                # directions differs: the reduced family's proved interval lies inside the dense
                # one, and each path's witnessed members lie inside the other's proved interval
                assert b.min <= a.min + RTOL and (
                    b.max is None or (a.max is not None and a.max <= b.max + RTOL)
                )
                for x, y in ((a, b), (b, a)):
                    assert y.min - RTOL <= x.attained_min and (
                        y.max is None or x.attained_max <= y.max + RTOL
                    )


def test_witnesses_embed_to_optimal_members_of_the_full_system():
    system = LowRankSystem.paper(40, 2, noise="isotropic", sigma=0.5)
    spec = LAMSpec(3)
    low = solve_lowrank(system, spec)
    transition = system.dense().transition()
    for target, score in low.probe_family("latent").items():
        for end in ("min", "max"):
            member = score.witnesses[end].dense()
            assert population_objective(member, transition, spec).total == pytest.approx(
                low.objective, rel=1e-9
            )
            assert probe_member(member, target, "latent", transition) == pytest.approx(
                score.witness_scores[end], abs=1e-8
            )


def test_a_large_system_is_solved_without_dense_matrices():
    system = LowRankSystem.paper(100_000, 4, noise="structured", sigma=2.0, noise_dim=4)
    low = solve_lowrank(system, LAMSpec(6))
    assert low.basis.shape == (100_000, 8) and low.extra == 19
    assert low.optimal_loss == pytest.approx(
        2.0, rel=1e-9
    )  # σ² = 4 > 1: the 4 noise directions first, 2 of 4 unit actions left
    action = low.probe("action", "predicted_change")
    assert action.identified and action.value == pytest.approx(0.5, abs=1e-9)


def test_probes_on_data_outside_the_solved_span_are_refused():
    system = LowRankSystem.paper(30, 2)
    other = LowRankSystem.paper(30, 2, seed=9)
    with pytest.raises(InputError, match="^fit:"):
        solve_lowrank(system, LAMSpec(2)).probe("action", "latent", fit=other)
    assert (
        solve_lowrank(system, LAMSpec(2), also=[other]).probe("action", "latent", fit=other).min is not None
    )


def test_the_dense_form_is_paper_system():
    kw = {"noise": "structured", "sigma": 0.7, "noise_dim": 2, "chi": 0.4, "seed": 3}
    mine, theirs = LowRankSystem.paper(12, 3, **kw).dense(), paper_system(12, 3, **kw)
    for name in (
        "action_matrix",
        "obs_cov",
        "obs_mean",
        "policy_gain",
        "exploration_cov",
        "noise_cov",
        "noise_mean",
    ):
        assert np.allclose(getattr(mine, name), getattr(theirs, name), rtol=0, atol=1e-15), name


def test_a_paper_system_table_gives_the_dense_solve_json(tmp_path):
    """The solve-file route: a ``paper_system`` table answers what the same system's dense ``system``
    table answers (but ``maps``, left out, and one note more)."""
    kw = {"noise": "isotropic", "sigma": 1.0}  # σ = 1: a tie between the noise and the spare latent
    path = tmp_path / "paper.toml"
    path.write_text('[paper_system]\nd_o = 30\nd_a = 2\nnoise = "isotropic"\nsigma = 1.0\n[lam]\nd_z = 4\n')
    mine = solve_file(path)
    theirs = solution_to_dict(solve(paper_system(30, 2, **kw), LAMSpec(4)))
    assert mine["maps"] is None
    assert mine["notes"][: len(theirs["notes"])] == theirs["notes"]
    for key in ("method", "unique", "captured_dim"):
        assert mine[key] == theirs[key], key
    for name, condition in theirs["conditions"].items():
        got = mine["conditions"][name]
        assert (got["holds"], got["reason"]) == (condition["holds"], condition["reason"]), name
        assert _close(got["margin"], condition["margin"]), name
    for key in ("optimal_loss", "objective", "eigengap"):
        assert mine[key] == pytest.approx(theirs[key], rel=RTOL)
    assert mine["innovation_eigenvalues"] == pytest.approx(
        theirs["innovation_eigenvalues"], rel=RTOL, abs=RTOL
    )
    for rep, scores in theirs["probes"].items():
        for target, score in scores.items():
            got = mine["probes"][rep][target]
            assert (got["bounds"], got["identified"], got["approached"]) == (
                score["bounds"],
                score["identified"],
                score["approached"],
            )
            for key in ("min", "max"):
                assert got[key] == pytest.approx(score[key], rel=RTOL, abs=RTOL), (rep, target, key)
            assert got["attained"] == pytest.approx(score["attained"], rel=RTOL, abs=RTOL)


@pytest.mark.parametrize(
    "table, field",
    [
        ("d_o = 0\nd_a = 1", "paper_system.d_o"),
        ("d_o = 10_000_000\nd_a = 1", "paper_system.d_o"),
        ("d_o = 100\nd_a = 200", "paper_system.d_a"),
        ('d_o = 100\nd_a = 2\nnoise = "pink"', "paper_system.noise"),
        ('d_o = 100\nd_a = 2\nseed = "x"', "paper_system.seed"),
        ("d_o = 100\nd_a = 2\ncolour = 1", "paper_system.colour"),
        ("d_a = 2", "paper_system.d_o"),
        ('d_o = 100_000\nd_a = 2000\nnoise = "structured"\nnoise_dim = 2000', "paper_system.d_o"),
    ],
)
def test_bad_paper_system_tables_name_the_field(tmp_path, table, field):
    path = tmp_path / "bad.toml"
    path.write_text(f"[paper_system]\n{table}\n[lam]\nd_z = 1\n")
    with pytest.raises(InputError, match=f"^{field}:"):
        solve_file(path)


def test_a_spec_the_reduction_cannot_serve_is_refused():
    with pytest.raises(InputError, match="^lam.horizon:"):
        solve(LowRankSystem.paper(50, 2), LAMSpec(1, horizon=2))
    with pytest.raises(InputError, match="^fit:"):
        solve(LowRankSystem.paper(50, 2), LAMSpec(1)).probe(
            "action", "latent", fit=paper_system(50, 2).transition()
        )


def test_lamproof_solve_reads_a_paper_system_table_of_any_size(tmp_path):
    """The command line: d_o = 100 000 answered (exit 0, maps null), a bad field refused in one line (exit 2)."""
    import json
    import subprocess
    import sys

    def run(text: str):
        path = tmp_path / "p.toml"
        path.write_text(text)
        return subprocess.run(
            [sys.executable, "-m", "lamproof.cli", "solve", str(path)], capture_output=True, text=True
        )

    done = run('[paper_system]\nd_o = 100000\nd_a = 4\nnoise = "isotropic"\nsigma = 0.5\n[lam]\nd_z = 4\n')
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["maps"] is None and len(out["innovation_eigenvalues"]) == 100_000
    assert out["optimal_loss"] == pytest.approx((100_000 - 4) * 0.25, rel=1e-12)  # the uncaptured noise
    assert out["probes"]["predicted_change"]["action"]["value"] == pytest.approx(0.2, abs=1e-9)  # σ²/(1 + σ²)
    bad = run("[paper_system]\nd_o = 100000\nd_a = 4\nsigma = -1\n[lam]\nd_z = 4\n")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "paper_system.sigma:" in bad.stderr


def test_lamproof_dynamics_refuses_a_paper_system_table():
    from lamproof.api import dynamics_from_dict

    with pytest.raises(InputError, match="^paper_system:"):
        dynamics_from_dict({"paper_system": {"d_o": 10, "d_a": 2}, "lam": {"d_z": 1}})
