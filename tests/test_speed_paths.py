"""The fast paths of issue 13 give the answers of the paths they shortcut.

Two routes for every shortcut: the shared path (one transition for all the configurations of a
system, one eigendecomposition for every ``d``) against the same computation from scratch (a
fresh system per configuration, a subset ``eigh`` per ``d``); the Cholesky regression against
the SVD one; the Ky Fan gains from subset eigendecompositions of ``y yᵀ`` against the full SVD.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamproof import LAMSpec, all_probes, paper_system, solve
from lamproof._blas import single_threaded_blas
from lamproof.numeric import closed_form, probes
from lamproof.numeric.linalg import Spectrum, top_eigenspace
from lamproof.strategies import orthonormal_matrices
from lamproof.studies import evaluate as ev
from lamproof.studies import get_study
from lamproof.studies.definitions import Config

#: Shared and fresh routes do the same arithmetic except the eigenvector solver (one full
#: ``eigh`` against a subset ``eigh``): projectors agree to round-off of the spectrum's scale,
#: amplified by at most 1/gap; the factors below have gaps ≥ 0.1 of the scale.
PROJECTOR_RTOL = 1e-10

#: A study row computed twice: every number equal to round-off (the CSVs of `reproduce all`
#: agreed to 3.4e-15 before and after sharing).
ROW_RTOL = 1e-12


@pytest.fixture(autouse=True)
def _single_thread():
    with single_threaded_blas():
        yield


@st.composite
def spectra(draw):
    """A factor ``V = Q diag(σ) R`` with a chosen spectrum: distinct levels, ties, and zeros."""
    n = draw(st.integers(2, 7))
    levels = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), min_size=n, max_size=n))
    Q = draw(orthonormal_matrices(n, n))
    R = draw(orthonormal_matrices(n + 2, n + 2))[:n]
    return Q @ np.diag(levels) @ R, sorted(levels, reverse=True)


@given(spectra(), st.data())
def test_shared_spectrum_gives_the_same_top_eigenspace_for_every_d(drawn, data):
    V, levels = drawn
    shared = Spectrum(V)
    for d in range(1, V.shape[0] + 1):
        fresh = top_eigenspace(V, d)
        reused = top_eigenspace(V, d, spectrum=shared)  # d = 1: subset eigh, later: the full one
        assert (reused.rank, reused.tie_start, reused.tie_stop) == (
            fresh.rank,
            fresh.tie_start,
            fresh.tie_stop,
        )
        np.testing.assert_array_equal(reused.eigenvalues, fresh.eigenvalues)
        if fresh.tied:  # a tie's basis comes from the same subset solver: identical
            np.testing.assert_array_equal(reused.vectors, fresh.vectors)
        else:
            P, P0 = reused.captured @ reused.captured.T, fresh.captured @ fresh.captured.T
            np.testing.assert_allclose(P, P0, atol=PROJECTOR_RTOL * max(1.0, levels[0] ** 2))
        # the independent route: the captured variance is the sum of the top levels²
        captured = float(np.sum(np.linalg.norm(reused.captured.T @ V, axis=1) ** 2))
        assert math.isclose(captured, sum(x * x for x in levels[: reused.rank]), rel_tol=1e-9, abs_tol=1e-9)


def _row(study, config) -> dict:
    row, _ = ev.closed_form_row(study, config)
    return row


def _same_rows(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            if math.isnan(x):
                assert math.isnan(y), key
            else:
                assert math.isclose(x, y, rel_tol=ROW_RTOL, abs_tol=ROW_RTOL), (key, x, y)
        else:
            assert x == y, (key, x, y)


@pytest.mark.parametrize(
    "name, fixed",
    [
        ("4.3", {"sigma": 2.0}),  # structured noise above the action: ties inside each block
        ("7", {"sigma": 1.0, "kappa": 0.1}),  # action = noise variance: a 16-fold tie; action heads on it
    ],
)
def test_a_sweep_over_dz_and_the_head_reads_one_transition_and_matches_fresh_solves(name, fixed):
    study = get_study(name)
    configs = [
        c
        for c in study.configs()
        if all(c[k] == v for k, v in fixed.items())
        and c["dz"] in (2, 3, 8, 9)
        and c.get("mask_ratio", 0.0) in (0.0, 0.05)
    ]
    assert len(configs) >= 4
    ev._shared_transition.cache_clear()
    shared = [_row(study, c) for c in configs]
    transitions = {id(ev.shared_transition(study, c, 1)) for c in configs}
    assert len(transitions) == 1  # one system for the whole d_z (and action-weight) sweep
    for config, row in zip(configs, shared, strict=True):
        ev._shared_transition.cache_clear()  # a fresh system: nothing reused from the sweep
        _same_rows(_row(study, config), row)


def test_configurations_with_other_data_get_other_transitions():
    study = get_study("4.2")
    a = Config("4.2", {"do": 128, "da": 8, "dz": 2, "sigma": 0.5})
    b = Config("4.2", {"do": 128, "da": 8, "dz": 4, "sigma": 0.5})
    c = Config("4.2", {"do": 128, "da": 8, "dz": 2, "sigma": 0.6})
    assert ev.shared_transition(study, a, 1) is ev.shared_transition(study, b, 1)
    assert ev.shared_transition(study, a, 1) is not ev.shared_transition(study, c, 1)
    # the noise-free reference data of §4.2 does not depend on σ: one transition for the sweep
    assert ev.shared_transition(study, a, 1, noise_free=True) is ev.shared_transition(
        study, c, 1, noise_free=True
    )


def _flat(result: dict) -> dict:
    return {
        (rep, t, k): v
        for rep, scores in result.items()
        for t, score in scores.items()
        for k, v in score.as_dict().items()
    }


@pytest.mark.parametrize(
    "d_z, lam, system",
    [
        (3, {}, {"noise": "isotropic", "sigma": 0.5}),  # leakage family
        (2, {}, {"noise": "isotropic", "sigma": 0.5}),  # a tie inside the action block
        (3, {"augmentation": 0.1}, {"noise": "uniform", "sigma": 0.5, "noise_dim": 12}),
        (4, {}, {"noise": "structured", "sigma": 2.0, "noise_dim": 2}),
        (3, {"action_loss_weight": 1.0}, {"noise": "isotropic", "sigma": 0.5}),
    ],
)
def test_probe_gram_paths_match_the_svd_routes(monkeypatch, d_z, lam, system):
    sys_ = paper_system(12, 4, seed=1, **system)
    spec = LAMSpec(d_z, **lam)
    monkeypatch.setattr(probes, "KYFAN_GRAM_ROWS", 10**9)
    monkeypatch.setattr(probes, "SPACE_GRAM_ROWS", 10**9)
    monkeypatch.setattr(probes, "SPARSE_DENSITY", -1.0)  # every product dense
    monkeypatch.setattr(probes, "SELECTOR_ROWS", 10**9)
    monkeypatch.setattr(probes, "_FACTORS", {})
    probes.forget_probe_errors()
    by_svd = _flat(all_probes(solve(sys_, spec)))
    monkeypatch.setattr(probes, "KYFAN_GRAM_ROWS", 1)  # every Ky Fan problem through y yᵀ
    monkeypatch.setattr(probes, "SPACE_GRAM_ROWS", 1)  # every feature space tried as low rank first
    monkeypatch.setattr(probes, "SKETCH_ROWS", 1)  # ... through the sketch first
    monkeypatch.setattr(probes, "SPARSE_DENSITY", 1.0)  # every factor multiplied as sparse
    monkeypatch.setattr(probes, "SELECTOR_ROWS", 1)
    monkeypatch.setattr(probes, "_FACTORS", {})
    probes.forget_probe_errors()  # else the memory would answer with the first route's numbers
    by_gram = _flat(all_probes(solve(sys_, spec)))
    assert by_svd.keys() == by_gram.keys()
    for key, a in by_svd.items():
        b = by_gram[key]
        if isinstance(a, list):
            assert [x is None for x in a] == [y is None for y in b], key
            np.testing.assert_allclose(
                [x for x in a if x is not None],
                [y for y in b if y is not None],
                atol=ROW_RTOL,
                err_msg=str(key),
            )
        elif isinstance(a, float):
            assert math.isclose(a, b, abs_tol=ROW_RTOL), (key, a, b)
        else:
            assert a == b, (key, a, b)


@given(st.integers(0, 2**31 - 1), st.integers(2, 9), st.integers(1, 3))
def test_cholesky_regression_matches_the_svd_route(seed, d_o, d_a):
    sys_ = paper_system(d_o, min(d_a, d_o), noise="isotropic", sigma=0.3, seed=seed)
    X = sys_.transition().factor(("obs", "next_obs"))
    X_c, X_p = X[:d_o], X[d_o:]
    fast = closed_form._regression_fast(X_c, X_p)
    assert fast is not None  # o_t is well conditioned here: the fast path is taken
    slow = closed_form._regression(X_c, X_p, closed_form.row_space(X_c).basis)
    np.testing.assert_allclose(fast, slow, atol=1e-12 * max(1.0, float(np.max(np.abs(slow)))))
    # and a rank-deficient obs leaves it to the SVD route (a rank to decide)
    assert closed_form._regression_fast(np.vstack([X_c, X_c[:1]]), X_p) is None


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.sampled_from([0.0, 1e-17, 1e-10, 1e-7]))
def test_low_rank_space_decides_like_the_svd_or_declines(seed, rank, weak):
    """Strong directions plus a weak one: round-off (1e-17) is dropped as the SVD drops it; a weak
    but real (1e-7) or undecidable (1e-10) direction makes the shortcut decline, never misread."""
    rng = np.random.default_rng(seed)
    m, n = 12, 20
    F = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n)) / np.sqrt(n)
    F += weak * np.outer(rng.standard_normal(m), rng.standard_normal(n)) / np.sqrt(m * n)
    basis = probes._low_rank_space(F)
    _, s, vt = np.linalg.svd(F, full_matrices=False)
    if weak >= 1e-10:
        assert basis is None
        return
    assert basis is not None and basis.shape[1] == rank == int(np.sum(s >= 1e-9))
    np.testing.assert_allclose(basis @ basis.T, vt[:rank].T @ vt[:rank], atol=1e-12)


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.sampled_from([0.0, 1e-17, 1e-10, 1e-7]))
def test_sketched_space_decides_like_the_svd_or_declines(seed, rank, weak):
    """The sketch's certificate: round-off is dropped as the SVD drops it; a weak but real or
    undecidable direction, or more strong directions than the sketch holds, make it decline."""
    rng = np.random.default_rng(seed)
    m, n = 16, 24  # sketch of min(SKETCH_COLUMNS, m // 2) = 8 columns
    F = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n)) / np.sqrt(n)
    F += weak * np.outer(rng.standard_normal(m), rng.standard_normal(n)) / np.sqrt(m * n)
    basis = probes._sketched_space(F, F @ F.T)
    _, s, vt = np.linalg.svd(F, full_matrices=False)
    if weak >= 1e-10:
        assert basis is None
    else:
        assert basis is not None and basis.shape[1] == rank == int(np.sum(s >= 1e-9))
        np.testing.assert_allclose(basis @ basis.T, vt[:rank].T @ vt[:rank], atol=1e-12)
    wide = rng.standard_normal((m, 9)) @ rng.standard_normal((9, n))  # rank 9 > 8 columns
    assert probes._sketched_space(wide, wide @ wide.T) is None


@given(st.integers(0, 2**31 - 1), st.booleans(), st.booleans())
def test_products_read_off_sparse_factors_and_selector_rows_equal_the_dense_product(seed, sparse, absolute):
    rng = np.random.default_rng(seed)
    m, k, n = 40, 30, 33
    X = rng.standard_normal((k, n))
    if sparse:
        X[rng.random((k, n)) > 0.03] = 0.0
    rows = rng.standard_normal((m, k))
    rows[10:] = 0.0
    rows[np.arange(10, m - 3), rng.integers(0, k, m - 13)] = rng.standard_normal(m - 13)  # one nonzero
    if absolute:
        rows = np.abs(rows)
    dense = rows @ (np.abs(X) if absolute else X)
    got = probes._times(rows, X, absolute=absolute)
    assert probes._factor(X).sparse == sparse
    size = np.abs(rows) @ np.abs(X)
    assert np.all(np.abs(got - dense) <= 1e-14 * size)
    T = X[:7]
    np.testing.assert_allclose(probes._times_t(got, T), got @ T.T, rtol=0, atol=1e-13 * np.max(np.abs(got)))


def test_repeated_probe_errors_are_recalled_only_for_equal_features():
    system = paper_system(6, 2, noise="isotropic", sigma=0.5, seed=3)
    t = system.transition()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 12))
    probes.forget_probe_errors()
    first = probes.probe_errors(features, t)
    assert probes.probe_errors(features.copy(), t) == first  # recalled
    # the caller changes its array in place into another map with the same entries (and sums):
    # the memory kept its own copy, so this is computed, not recalled
    features[0, [0, 1]] = features[0, [1, 0]]
    got = probes.probe_errors(features, t)
    probes.forget_probe_errors()
    assert got == probes.probe_errors(features, t) != first


@given(st.integers(0, 2**31 - 1), st.integers(0, 4), st.integers(1, 3))
def test_extreme_gains_through_the_gram_matrix_and_the_padding_match_the_svd(seed, extra, k_min):
    """Rows beyond the columns pad the gains with exact zeros; the padding vectors (one LU solve)
    carry no gain, and the sums agree with the full SVD's."""
    rng = np.random.default_rng(seed)
    d = 10
    y = rng.standard_normal((d + extra, d))
    k_max = 4
    by_svd = probes._extreme_gains(y, k_min, k_max)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(probes, "KYFAN_GRAM_ROWS", 1)
        by_gram = probes._extreme_gains(y, k_min, k_max)
    np.testing.assert_allclose(by_gram[0], by_svd[0], atol=1e-12 * float(np.sum(y**2)))
    for U in (by_gram[1], by_gram[2]):
        np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-12)
    # each end's vectors attain its sum (Ky Fan: the sum of their gains)
    assert math.isclose(float(np.sum((y.T @ by_gram[1]) ** 2)), by_gram[0][0], rel_tol=1e-10)
    assert math.isclose(
        float(np.sum((y.T @ by_gram[2]) ** 2)), by_gram[0][1], abs_tol=1e-10 * float(np.sum(y**2))
    )
    padding = probes._padding_vectors(y, k_min)
    assert (padding is not None) == (extra >= k_min)
    singular = y.copy()
    singular[:d, 0] = 0.0  # y₁ singular: declined, the eigendecomposition decides
    assert (
        probes._padding_vectors(np.vstack([singular[:d], rng.standard_normal((k_min, d))]), k_min) is None
        or extra < 0
    )
