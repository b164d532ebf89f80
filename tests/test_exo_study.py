"""The exo study's computed columns (the probe columns wait on solve() for windows)."""

import pytest

from lamproof.exogenous import exogenous_loading_range
from lamproof.studies.exo import EXO_COLUMNS, WAITING_ON_SOLVE, exo_system, exo_table


def test_small_sweep_has_consistent_columns():
    df = exo_table({"sigma_eta": (0.5, 2.0), "persistence": (0.5,), "horizon": (1,), "context": (1, 3),
                    "dz": (2, 4)})
    assert len(df) == 2 * 2 * 2 * 2 and set(EXO_COLUMNS) <= set(df.columns)
    assert ((df.loading_min <= df.loading + 1e-12) & (df.loading <= df.loading_max + 1e-12)).all()
    # A = I reads o' − o_t: nothing about it depends on the context
    fixed = df[df.fdm == "identity"].set_index(["sigma_eta", "dz", "context"])
    for column in ("loading", "consistency", "margin"):
        assert fixed[column].xs(1, level="context").to_numpy() == pytest.approx(
            fixed[column].xs(3, level="context").to_numpy(), abs=1e-12)
    # the exogenous noise lives in other directions than the actions: actions first at d_z = d_a means loading 0
    first = df[(df.action_first == True) & (df.dz == 2)]  # noqa: E712  (a column of Python bools)
    assert len(first) and (first.loading.abs() < 1e-12).all()
    assert not set(WAITING_ON_SOLVE) & set(df.columns)


def test_noise_free_observation_matches_the_two_direction_loading_of_D13():
    """All four directions captured, no observation noise: loading σ_η²/(g²σ_a² + X) per pair (D13)."""
    for sigma, e in ((0.5, 0.0), (1.5, 0.9)):
        t = exo_system(sigma, e, obs_noise=0.0).transition()
        learned = exogenous_loading_range(t, 4, "learned").value
        identity = exogenous_loading_range(t, 4, "identity").value
        assert learned == pytest.approx(sigma**2 / (1 + sigma**2), rel=1e-12)
        assert identity == pytest.approx(sigma**2 / (1 + 2 * sigma**2 / (1 + e)), rel=1e-12)
