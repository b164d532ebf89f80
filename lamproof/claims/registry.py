"""The registry of the paper's claims (insights 1–7 of Zhang et al. 2025) and the general results of docs/theory.md,
then the state-space claims of :mod:`lamproof.claims.exogenous` (issue 10).

Each headline insight is split into precise statements with their assumptions written into the
strategies they quantify over. Every check compares two independently obtained quantities: the
solver's numbers (optimal loss, innovation spectrum, probe scores of the solved optimum, the
objective of a hand-built member) against what the statement predicts, computed here from the
system's own parameters (never from the solver's intermediate results). Plausible statements
that are false are registered with ``expect="false"``; ``lamproof check --builtin`` reports the
counterexample the tool finds for each.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lamproof.claims.core import TOLERANCE, assert_close, assert_family, claim
from lamproof.claims.exogenous import STATE_SPACE_CLAIMS
from lamproof.lam import effective_action_weight
from lamproof.numeric.objective import LAMParameters, population_objective
from lamproof.numeric.probes import probe, probe_error
from lamproof.numeric.tolerances import DECISION_RTOL
from lamproof.strategies import _floats, lam_specs, systems

#: Probe scores over a family ("sampled" ranges, pseudo-inverses of rank-deficient moments) are
#: accurate to ~1e-10; 1e-6 keeps the checks far from round-off and far below any effect.
PROBE_TOL = 1e-6

REGISTRY = []


def _register(**kwargs):
    def wrap(fn):
        c = claim(**kwargs)(fn)
        REGISTRY.append(c)
        return c

    return wrap


# -- what the statements predict, from the system's parameters alone ---------------------------------
def _moments(system):
    """``(S_oo, S_o'o, S_o'o')`` of one step, from ``o' = F_cl o + G e + ε`` by hand."""
    Fc, G = system.closed_loop, system.action_matrix
    mu_o, mu_n = system.obs_mean, system.noise_mean
    S_oo = system.obs_cov + np.outer(mu_o, mu_o)
    S_po = Fc @ S_oo + np.outer(mu_n, mu_o)
    S_pp = (
        Fc @ S_oo @ Fc.T
        + np.outer(Fc @ mu_o, mu_n)
        + np.outer(mu_n, Fc @ mu_o)
        + G @ system.exploration_cov @ G.T
        + system.noise_cov
        + np.outer(mu_n, mu_n)
    )
    return S_oo, S_po, S_pp


def _innovation_moment(system) -> np.ndarray:
    """``S_r = S_o'o' − L S_oo'`` with ``L = S_o'o S_oo⁺`` (docs/theory.md §2, R1)."""
    S_oo, S_po, S_pp = _moments(system)
    L = S_po @ np.linalg.pinv(S_oo, rcond=1e-10, hermitian=True)
    return S_pp - L @ S_po.T


def _descending(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.eigvalsh((matrix + matrix.T) / 2))[::-1]


def _tail(matrix: np.ndarray, d_z: int) -> float:
    return float(np.sum(np.clip(_descending(matrix)[d_z:], 0.0, None)))


def _scale(matrix: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(matrix), initial=0.0)))


def _chi(system) -> float:
    """The paper policy's ``χ``, read back from ``Σ_e = (1 − χ)² I``."""
    return 1.0 - float(np.sqrt(system.exploration_cov[0, 0]))


def _noise_sigma_and_dim(system) -> tuple[float, int]:
    values = _descending(system.noise_cov)
    top = values[0]
    return float(np.sqrt(max(top, 0.0))), int(np.sum(values > 1e-9 * max(top, 1.0)))


def _rank(matrix: np.ndarray) -> int:
    values = _descending(matrix)
    return int(np.sum(values > 1e-9 * max(values[0], 1e-300)))


# -- strategies of the paper's settings ---------------------------------------------------------------
MAX_DIM = 6
SIGMA_AWAY_FROM_ONE = st.one_of(_floats(0.25, 0.9), _floats(1.1, 3.0))


@st.composite
def structured_systems(draw, sigma=SIGMA_AWAY_FROM_ONE, max_dim: int = MAX_DIM):
    """Paper §4.3: ``G``, ``Ψ`` orthonormal with orthogonal column spaces, ``Σ_e = I``, ``ε = σΨb``."""
    d_a = draw(st.integers(1, max_dim - 1))
    d_b = draw(st.integers(1, max_dim - d_a))
    d_o = draw(st.integers(d_a + d_b, max_dim))
    return draw(systems(d_o=d_o, d_a=d_a, noise="structured", noise_dim=d_b, sigma=sigma))


def _specs(**kwargs):
    return lambda system: lam_specs(system.d_o, **kwargs)


def _captured_action_dims(d_a: int, d_b: int, d_z: int, action_first: bool) -> tuple[int, int]:
    """How many action and noise directions a top-``d_z`` eigenspace holds when one block wins."""
    if action_first:
        k_a = min(d_a, d_z)
        return k_a, min(d_b, d_z - k_a)
    k_b = min(d_b, d_z)
    return min(d_a, d_z - k_b), k_b


# =====================================================================================================
# Insight 1 — the linear LAM is PCA (paper §4.1; docs/theory.md §2)
# =====================================================================================================
@_register(
    name="1a.pca-of-frame-difference",
    source="paper insight 1, §4.1; docs/theory.md §2",
    systems=systems(action="integer", exploration="psd", noise=["none", "isotropic", "structured"]),
    specs=_specs(idm="any", fdm_obs_path="any"),
    statement="With o, a, ε independent and zero-mean (K = 0, F = I), every LAM variant (free or tied IDM, "
    "learned or identity FDM path) has optimal loss Σ_{i>d_z} λ_i(Cov(o' − o)), and where "
    "λ_{d_z} > λ_{d_z+1} its prediction uses exactly the top-d_z principal directions of o' − o "
    "(M₂ is their orthogonal projector).",
)
def pca_of_frame_difference(system, spec, solution):
    G = system.action_matrix
    cov_change = G @ system.exploration_cov @ G.T + system.noise_cov  # Cov(o' − o), by hand
    assert_close(
        solution.optimal_loss,
        _tail(cov_change, spec.d_z),
        "optimal loss vs eigenvalue tail",
        tol=TOLERANCE * _scale(cov_change),
    )
    values, vectors = np.linalg.eigh(cov_change)
    values, vectors = values[::-1], vectors[:, ::-1]
    d_z, scale = spec.d_z, _scale(cov_change)
    gap = values[d_z - 1] - values[d_z] if d_z < len(values) else np.inf
    if gap > 1e-6 * scale and values[d_z - 1] > 1e-6 * scale:
        top = vectors[:, :d_z]
        assert_close(
            solution.parameters.next_obs_map,
            top @ top.T,
            "M₂ vs projector on the top principal directions",
            tol=1e-6,
        )


@_register(
    name="1b.full-capture-without-noise",
    source="paper insight 1, §4.1",
    systems=systems(exploration="psd"),
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o)),
    statement="No noise, o and a independent, G of full column rank (orthonormal), any exploration covariance, "
    "d_z ≥ d_a: the predicted change ô' − o of every optimal LAM recovers the action exactly "
    "(action probe error 0 over the whole optimal family).",
)
def full_capture(system, spec, solution):
    score = probe(solution, "action", "predicted_change")
    assert_family(score, 0.0, "action probe of ô' − o", tol=PROBE_TOL)


@_register(
    name="1c.partial-capture-fraction",
    source="paper insight 1, §4.1 (act_mse ≈ max(0, (d_a − d_z)/d_a))",
    systems=systems(),
    statement="No noise, G orthonormal, unit isotropic action (Σ_e = I), K = 0: the action probe error of "
    "ô' − o is max(0, d_a − d_z)/d_a for every optimal LAM — the latent captures min(d_z, d_a)/d_a "
    "of the action.",
)
def partial_capture(system, spec, solution):
    expected = max(0, system.d_a - spec.d_z) / system.d_a
    score = probe(solution, "action", "predicted_change")
    assert_family(score, expected, "action probe of ô' − o", tol=PROBE_TOL)


@_register(
    name="1d.partial-capture-any-exploration",
    expect="false",
    source="paper insight 1, read without its assumption of isotropic actions",
    systems=systems(exploration="psd"),
    statement="No noise, G orthonormal, any exploration covariance Σ_e: the latent captures exactly d_z/d_a of "
    "the action (action probe error of ô' − o is max(0, d_a − d_z)/d_a).",
    note="False when Σ_e is not isotropic: PCA captures the top-d_z action directions, so the error is "
    "1 − (sum of the top d_z eigenvalues of Σ_e)/tr Σ_e, below (d_a − d_z)/d_a (claim 1e).",
)
def partial_capture_any_exploration(system, spec, solution):
    expected = max(0, system.d_a - spec.d_z) / system.d_a
    assert_close(
        probe(solution, "action", "predicted_change").value, expected, "action probe of ô' − o", tol=PROBE_TOL
    )


@_register(
    name="1e.captured-fraction-is-top-eigenvalues",
    source="paper insight 1, generalized to any exploration covariance",
    systems=systems(exploration="psd"),
    statement="No noise, G orthonormal, any Σ_e: the action probe error of ô' − o of the optimal LAM is "
    "1 − Σ_{i≤d_z} λ_i(Σ_e) / tr Σ_e (where the choice is unique).",
)
def captured_fraction(system, spec, solution):
    values = _descending(system.exploration_cov)
    expected = 1.0 - float(np.sum(values[: spec.d_z])) / float(np.sum(values))
    assert_close(
        probe(solution, "action", "predicted_change").value,
        max(expected, 0.0),
        "action probe of ô' − o",
        tol=PROBE_TOL,
    )


# =====================================================================================================
# Insight 2 — noise competes by variance (paper §4.2, §4.3)
# =====================================================================================================
@_register(
    name="2a.isotropic-noise-never-displaces",
    source="paper insight 2, §4.2 (act_mse 0.75, 0.5, 0.25, 0 at d_z = 2, 4, 6, 8 for every σ)",
    systems=systems(noise="isotropic", sigma=(0.0, 3.0)),
    statement="Isotropic noise σ²I (any σ), G orthonormal, Σ_e = I: a LAM trained with the noise, probed on "
    "noise-free data, has action probe error max(0, d_a − d_z)/d_a for ô' − o — the noise never "
    "displaces an action direction.",
)
def isotropic_never_displaces(system, spec, solution):
    clean = system.replace(noise_cov=np.zeros_like(system.noise_cov)).transition(spec.horizon)
    score = probe(solution, "action", "predicted_change", fit=clean, score=clean)
    expected = max(0, system.d_a - spec.d_z) / system.d_a
    assert_family(score, expected, "noise-free action probe of ô' − o", tol=PROBE_TOL)


@_register(
    name="2b.isotropic-noise-contaminates",
    source="paper insight 2, §4.2",
    systems=systems(noise="isotropic", sigma=(0.0, 3.0)),
    statement="Isotropic noise σ²I, G orthonormal, Σ_e = I, probed on the noisy data: with k = min(d_z, d_a) "
    "captured action directions, the action probe error of ô' − o is (d_a − k + k·σ²/(1 + σ²))/d_a.",
)
def isotropic_contaminates(system, spec, solution):
    sigma2 = float(system.noise_cov[0, 0])
    k = min(spec.d_z, system.d_a)
    expected = (system.d_a - k + k * sigma2 / (1.0 + sigma2)) / system.d_a
    score = probe(solution, "action", "predicted_change")
    assert_family(score, expected, "action probe of ô' − o", tol=PROBE_TOL)


@_register(
    name="2c.structured-noise-wins-by-variance",
    source="paper insight 2, §4.3; docs/theory.md §5 (captured first iff σ² > 1)",
    systems=structured_systems(),
    statement="Structured noise σ²ΨΨᵀ (d_b directions orthogonal to the orthonormal G, σ² ≠ 1), Σ_e = I: the "
    "optimum captures the noise directions before the action iff σ² > 1; the action and noise probe "
    "errors of ô' − o are (d_a − k_a)/d_a and (d_b − k_b)/d_b for the directions (k_a, k_b) that fill "
    "d_z in that order.",
)
def structured_wins(system, spec, solution):
    sigma, d_b = _noise_sigma_and_dim(system)
    k_a, k_b = _captured_action_dims(system.d_a, d_b, spec.d_z, action_first=sigma**2 < 1.0)
    assert_close(
        probe(solution, "action", "predicted_change").value,
        (system.d_a - k_a) / system.d_a,
        "action probe of ô' − o",
        tol=PROBE_TOL,
    )
    assert_close(
        probe(solution, "noise", "predicted_change").value,
        (d_b - k_b) / d_b,
        "noise probe of ô' − o",
        tol=PROBE_TOL,
    )


@_register(
    name="2d.noise-never-displaces-actions",
    expect="false",
    source="insight 2's isotropic statement, over-generalized to any noise",
    systems=systems(noise=["isotropic", "structured"], sigma=(0.5, 2.0)),
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o)),
    statement="For any Gaussian noise, G orthonormal, Σ_e = I and d_z ≥ d_a, ô' − o recovers the action on "
    "noise-free data (noise never displaces action directions).",
    note="False for structured noise whose variance per direction reaches the action's: for σ² > 1 it takes "
    "latent directions first (claim 2c); at σ² = 1 the tie lets an optimal LAM capture the noise instead.",
)
def noise_never_displaces(system, spec, solution):
    clean = system.replace(noise_cov=np.zeros_like(system.noise_cov)).transition(spec.horizon)
    assert_close(
        probe(solution, "action", "predicted_change", fit=clean, score=clean).value,
        0.0,
        "noise-free action probe of ô' − o",
        tol=PROBE_TOL,
    )


# =====================================================================================================
# Insight 3 — overparameterization leaks the observation (docs/theory.md §3, R2)
# =====================================================================================================
def _leaky_member(solution, spec):
    """The canonical optimum with ``z₀ += o₀`` and the FDM's ``A`` cancelling it: ``A ← A − B N``."""
    p = solution.parameters
    N = np.zeros((spec.d_z, solution.system.d_o))
    N[0, 0] = 1.0
    return LAMParameters(p.A - p.B @ N, p.B, p.C + N, p.D, p.H)


@_register(
    name="3a.leakage-is-free",
    source="paper insight 3; docs/theory.md §3",
    systems=systems(noise="any", obs_cov="psd", means=None),
    statement="Learned FDM path, free IDM, no augmentation, no action head: the member z + N o, A − B N of an "
    "optimal LAM (here N = e₁e₁ᵀ) has the same objective and the same prediction, and its latent "
    "carries observation information whenever o₁ varies (observation probe error < 1).",
)
def leakage_is_free(system, spec, solution):
    leaky = _leaky_member(solution, spec)
    value = population_objective(leaky, solution.transition, spec)
    assert_close(
        value.total,
        solution.objective,
        "objective of the leaky member vs the optimum",
        tol=TOLERANCE * max(1.0, abs(solution.objective)),
    )
    assert_close(
        leaky.predicted_change_map,
        solution.parameters.predicted_change_map,
        "prediction of the leaky member",
        tol=1e-9,
    )
    if system.obs_cov[0, 0] > 1e-9:
        error = probe_error(leaky.latent_map, "observation", solution.transition)
        assert error < 1 - 1e-9, f"the leaky latent's observation probe error is {error:.6g}, expected < 1"


@_register(
    name="3b.latent-carries-no-observation",
    expect="false",
    source="a plausible reading of 'the latent encodes the change'; refuted by docs/theory.md §3 (R2)",
    systems=systems(noise="any"),
    statement="An optimal LAM's latent carries no observation information: the latent observation probe error "
    "is 1 for every optimal LAM.",
    note="False because of leakage: z + N o with A − B N is equally optimal, so the observation probe range "
    "over the optimal family reaches below 1 (claim 3a); only augmentation pins it (claim 5a).",
)
def latent_carries_no_observation(system, spec, solution):
    score = probe(solution, "observation", "latent")
    assert_family(score, 1.0, "latent observation probe", tol=PROBE_TOL)


@_register(
    name="3c.latent-recovers-action",
    expect="false",
    source="insight 1 read for the latent z instead of the predicted change",
    systems=systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o)),
    statement="No noise, G orthonormal, d_z ≥ d_a: every optimal LAM's latent z linearly recovers the action "
    "(latent action probe error 0 over the optimal family).",
    note="False: leaked observation can swamp the action in z at no cost, so the latent action probe is not "
    "identified; the paper probes the action from ô' − o, which is (claim 1b).",
)
def latent_recovers_action(system, spec, solution):
    score = probe(solution, "action", "latent")
    assert_family(score, 0.0, "latent action probe", tol=PROBE_TOL)


# =====================================================================================================
# Insight 4 — the data-generating policy (paper §5; docs/theory.md §6)
# =====================================================================================================
POLICY_SYSTEMS = systems(feedback=True, chi=(0.0, 0.9))


@_register(
    name="4a.policy-latent-keeps-unpredictable-part",
    source="paper insight 4, §5; docs/theory.md §6",
    systems=POLICY_SYSTEMS,
    statement="Policy a = (1 − χ) e + χ P o (P orthonormal rows, χ < 1), G orthonormal, no noise: the "
    "innovation has d_a eigenvalues (1 − χ)² and the rest 0, the optimal loss is "
    "(d_a − min(d_z, d_a))(1 − χ)², and for d_z ≥ d_a the canonical latent's action probe error on "
    "the policy's data is χ²/((1 − χ)² + χ²): it keeps only the unpredictable part of the action.",
)
def policy_keeps_unpredictable(system, spec, solution):
    chi, d_a, d_z = _chi(system), system.d_a, spec.d_z
    expected = np.zeros(system.d_o)
    expected[:d_a] = (1 - chi) ** 2
    assert_close(solution.innovation.eigenvalues, expected, "innovation eigenvalues", tol=1e-9)
    assert_close(solution.optimal_loss, (d_a - min(d_z, d_a)) * (1 - chi) ** 2, "optimal loss", tol=1e-9)
    if d_z >= d_a:
        assert_close(
            probe(solution, "action", "latent").value,
            chi**2 / ((1 - chi) ** 2 + chi**2),
            "canonical latent action probe",
            tol=PROBE_TOL,
        )


@_register(
    name="4b.policy-transfer-error",
    source="paper insight 4, §5; docs/theory.md §6, R5 (((d_a − d_z)/d_a)(1 + χ²))",
    systems=POLICY_SYSTEMS,
    statement="Policy a = (1 − χ) e + χ P o, o ~ N(0, I), G orthonormal, no noise: an action probe of ô' − o "
    "fitted on the policy's data and scored on random actions (χ = 0) has error "
    "((d_a − d_z)/d_a)(1 + χ²) for d_z < d_a and 0 for d_z ≥ d_a — worse than on random-action "
    "data whenever χ > 0 and d_z < d_a.",
)
def policy_transfer(system, spec, solution):
    chi, d_a, d_z = _chi(system), system.d_a, spec.d_z
    random_actions = system.replace(
        policy_gain=np.zeros_like(system.policy_gain), exploration_cov=np.eye(d_a)
    ).transition(spec.horizon)
    score = probe(solution, "action", "predicted_change", fit=solution.transition, score=random_actions)
    expected = (d_a - d_z) / d_a * (1 + chi**2) if d_z < d_a else 0.0
    assert_family(score, expected, "transferred action probe of ô' − o", tol=PROBE_TOL)


@_register(
    name="4c.policy-latent-carries-whole-action",
    expect="false",
    source="a plausible reading of insight 1 for policy data",
    systems=POLICY_SYSTEMS,
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o)),
    statement="Policy a = (1 − χ) e + χ P o, no noise, d_z ≥ d_a: the canonical optimal latent recovers the "
    "action on the policy's own data (latent action probe error 0).",
    note="False for χ > 0: the FDM predicts χ P o from o, so the latent keeps only (1 − χ) e (claim 4a).",
)
def policy_whole_action(system, spec, solution):
    assert_close(
        probe(solution, "action", "latent").value, 0.0, "canonical latent action probe", tol=PROBE_TOL
    )


# =====================================================================================================
# Insight 5 — data augmentation (paper §6; docs/theory.md §4)
# =====================================================================================================
def _aug_specs_within_rank(system):
    G = system.action_matrix
    S_r = G @ system.exploration_cov @ G.T + system.noise_cov + np.outer(system.noise_mean, system.noise_mean)
    return lam_specs(system.d_o, d_z=st.integers(1, _rank(S_r)), augmentation=(0.05, 1.0))


@_register(
    name="5a.augmentation-removes-leakage",
    source="paper insight 5, §6; docs/theory.md §4",
    systems=systems(noise=["none", "isotropic", "uniform"], sigma=(0.1, 1.0)),
    specs=_aug_specs_within_rank,
    statement="L = I (K = 0, F = I, E[o] = 0; noise Gaussian or the paper's uniform noise with mean σ/2), "
    "augmentation s > 0, d_z ≤ rank S_r (no spare latent dimension): every optimal latent carries no "
    "observation information (observation probe error 1 over the family), and a leaking member "
    "z + N o, A − B N pays a positive penalty.",
)
def augmentation_removes_leakage(system, spec, solution):
    score = probe(solution, "observation", "latent")
    assert_family(score, 1.0, "latent observation probe", tol=PROBE_TOL)
    leaky = _leaky_member(solution, spec)
    extra = population_objective(leaky, solution.transition, spec).total - solution.objective
    assert extra > 1e-9, f"the leaking member's objective exceeds the optimum by only {extra:.3g}"


@_register(
    name="5b.augmentation-removes-leakage-any-dz",
    expect="false",
    source="paper insight 5, read for every latent size",
    systems=systems(noise=["none", "uniform"], sigma=(0.1, 1.0)),
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o), augmentation=(0.05, 1.0)),
    statement="L = I (no noise, or the paper's uniform noise), augmentation s > 0, d_z ≥ d_a: every optimal "
    "latent carries no observation information.",
    note="False when d_z > rank S_r (e.g. no noise and d_z > d_a): the spare latent dimensions are ignored by "
    "B, cost nothing under augmentation, and may carry o.",
)
def augmentation_any_dz(system, spec, solution):
    score = probe(solution, "observation", "latent")
    assert_family(score, 1.0, "latent observation probe", tol=PROBE_TOL)


AUG_POLICY_SYSTEMS = systems(feedback=True, chi=(0.1, 0.9))


@_register(
    name="5c.augmentation-with-feedback-keeps-whole-action",
    source="docs/theory.md §4, R3 (L ≠ I, d_z ≥ d_a)",
    systems=AUG_POLICY_SYSTEMS,
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o), augmentation=(0.05, 1.0)),
    statement="Policy feedback a = (1 − χ) e + χ P o (so L ≠ I), no noise, augmentation s > 0, d_z ≥ d_a: the "
    "optimum reconstructs perfectly and its latent carries the whole action K o + e (latent action "
    "probe error 0 over the family), not only the unpredictable part.",
)
def augmentation_feedback_whole_action(system, spec, solution):
    assert_close(solution.objective, 0.0, "objective (reconstruction + penalty)", tol=1e-9)
    score = probe(solution, "action", "latent")
    assert_family(score, 0.0, "latent action probe", tol=PROBE_TOL)


@_register(
    name="5d.augmentation-with-feedback-removes-leakage",
    expect="false",
    source="paper insight 5, read for policy data (L ≠ I)",
    systems=AUG_POLICY_SYSTEMS,
    specs=lambda s: lam_specs(s.d_o, d_z=st.integers(s.d_a, s.d_o), augmentation=(0.05, 1.0)),
    statement="With policy feedback (L ≠ I), augmentation still yields a latent without observation "
    "information (latent observation probe error 1).",
    note="False: z = D(o' − o) = D G (χ P o + (1 − χ) e) carries χ P o — the action's observation-dependent "
    "part is observation information (claim 5c).",
)
def augmentation_feedback_no_obs(system, spec, solution):
    score = probe(solution, "observation", "latent")
    assert_family(score, 1.0, "latent observation probe", tol=PROBE_TOL)


# =====================================================================================================
# Insight 6 — data cleaning
# =====================================================================================================
@_register(
    name="6a.cleaning-restores-actions",
    source="paper insight 6",
    systems=structured_systems(sigma=_floats(1.1, 3.0)),
    statement="Structured noise σ²ΨΨᵀ ⊥ G with σ² > 1, Σ_e = I: the optimum first fills d_z with the d_b noise "
    "directions (action probe error of ô' − o is (d_a − min(d_a, max(0, d_z − d_b)))/d_a); cleaning the "
    "noise to ε → c ε with c²σ² < 1 (here cσ = 1/2) brings the action back: error "
    "(d_a − min(d_a, d_z))/d_a.",
)
def cleaning_restores(system, spec, solution):
    from lamproof.numeric.closed_form import solve

    sigma, d_b = _noise_sigma_and_dim(system)
    d_a, d_z = system.d_a, spec.d_z
    before = probe(solution, "action", "predicted_change").value
    k_noisy, _ = _captured_action_dims(d_a, d_b, d_z, action_first=False)
    assert_close(before, (d_a - k_noisy) / d_a, "action probe before cleaning", tol=PROBE_TOL)
    c = 0.5 / sigma
    cleaned = solve(system.replace(noise_cov=c**2 * system.noise_cov), spec)
    after = probe(cleaned, "action", "predicted_change").value
    assert_close(after, (d_a - min(d_a, d_z)) / d_a, "action probe after cleaning", tol=PROBE_TOL)


# =====================================================================================================
# Insight 7 — auxiliary action prediction (paper §7; docs/theory.md §8)
# =====================================================================================================
def _away_from_threshold(system):
    sigma, _ = _noise_sigma_and_dim(system)
    weights = _floats(0.0, 12.0).filter(lambda lam: abs(1.0 + lam - sigma**2) > 0.05)
    return lam_specs(system.d_o, action_loss_weight=weights)


@_register(
    name="7a.action-weight-threshold",
    source="paper insight 7, §7; docs/theory.md §8, R4 (actions first iff 1 + λ > σ²)",
    systems=structured_systems(sigma=_floats(0.25, 3.0)),
    specs=_away_from_threshold,
    statement="Structured noise σ²ΨΨᵀ ⊥ G (orthonormal), Σ_e = I, action head with weight λ: the latent takes "
    "the action directions first iff 1 + λ > σ²; the canonical latent's action probe error is "
    "(d_a − k_a)/d_a with k_a action directions filling d_z in that order.",
)
def action_weight_threshold(system, spec, solution):
    sigma, d_b = _noise_sigma_and_dim(system)
    k_a, _ = _captured_action_dims(
        system.d_a, d_b, spec.d_z, action_first=1 + spec.action_loss_weight > sigma**2
    )
    assert_close(
        probe(solution, "action", "latent").value,
        (system.d_a - k_a) / system.d_a,
        "latent action probe",
        tol=PROBE_TOL,
    )


@st.composite
def _paper_ratio_systems(draw):
    d_o = 16
    d_b = draw(st.integers(1, d_o - 1))
    return draw(
        systems(d_o=d_o, d_a=1, noise="structured", noise_dim=d_b, sigma=st.sampled_from([0.5, 1.0, 2.0]))
    )


@_register(
    name="7b.one-percent-labels-suffice",
    source="paper insight 7, §7 (labeled fraction 1 %, σ ∈ {0.5, 1, 2}, d_o/d_a = 16)",
    systems=_paper_ratio_systems(),
    specs=lambda s: lam_specs(s.d_o, d_z=1, action_loss_weight=effective_action_weight(0.01, s.d_o, s.d_a)),
    statement="With the paper's §7 loss weighting (λ = (d_o/d_a)(1 − 0.99¹²⁸) for 1 % labels) and the paper's "
    "ratio d_o/d_a = 16, structured noise σ ≤ 2: the latent captures the action first (d_z = d_a: "
    "latent action probe error 0).",
)
def one_percent_paper_ratio(system, spec, solution):
    assert_close(probe(solution, "action", "latent").value, 0.0, "latent action probe", tol=PROBE_TOL)


@_register(
    name="7c.one-percent-labels-suffice-any-ratio",
    expect="false",
    source="paper insight 7, read for any d_o/d_a",
    systems=structured_systems(sigma=st.just(2.0)),
    specs=lambda s: lam_specs(
        s.d_o, d_z=s.d_a, action_loss_weight=effective_action_weight(0.01, s.d_o, s.d_a)
    ),
    statement="With the paper's §7 weighting and 1 % labels, structured noise σ = 2 never beats the action, "
    "whatever d_o/d_a (d_z = d_a: latent action probe error 0).",
    note="False when d_o/d_a is small: the effective weight λ = (d_o/d_a)(1 − 0.99¹²⁸) ≈ 0.72 d_o/d_a falls "
    "below σ² − 1 = 3 for d_o/d_a < 4.1, and the noise is captured first (claim 7a).",
)
def one_percent_any_ratio(system, spec, solution):
    assert_close(probe(solution, "action", "latent").value, 0.0, "latent action probe", tol=PROBE_TOL)


# =====================================================================================================
# docs/theory.md §2 (R1) in general, non-uniqueness, and §9 (R6, multi-step)
# =====================================================================================================
@_register(
    name="R1.loss-is-innovation-tail",
    source="docs/theory.md §2, R1 (general linear-Gaussian system)",
    systems=systems(noise="any", feedback=None, dynamics=None, means=None, obs_cov="psd", policy="general"),
    statement="For any system (feedback, dynamics, means, singular covariances), learned FDM path and free IDM: "
    "the optimal loss is Σ_{i>d_z} λ_i(S_r), S_r = S_o'o' − L S_oo', L = S_o'o S_oo⁺, all second "
    "moments (not covariances).",
)
def loss_is_innovation_tail(system, spec, solution):
    S_r = _innovation_moment(system)
    assert_close(
        solution.optimal_loss, _tail(S_r, spec.d_z), "optimal loss vs tail of S_r", tol=1e-7 * _scale(S_r)
    )


@_register(
    name="R1.pca-of-covariance-with-means",
    expect="false",
    source="insight 1 read with covariances, in the paper's §6 setting of noise with a mean",
    systems=systems(noise=["isotropic", "uniform"], means=True, sigma=(0.5, 1.0)),
    statement="With nonzero means, the optimal loss is still the eigenvalue tail of the covariance "
    "Cov(o' − o) = G Σ_e Gᵀ + Σ_ε.",
    note="False: the LAM has no bias terms, so its optimum is PCA of second moments; a mean adds μμᵀ terms "
    "(claim R1.loss-is-innovation-tail).",
)
def pca_of_covariance_with_means(system, spec, solution):
    G = system.action_matrix
    cov_change = G @ system.exploration_cov @ G.T + system.noise_cov
    assert_close(
        solution.optimal_loss,
        _tail(cov_change, spec.d_z),
        "optimal loss vs tail of Cov(o' − o)",
        tol=1e-7 * _scale(cov_change),
    )


@_register(
    name="R1.unique-iff-eigengap",
    source="docs/theory.md §2, R1 (unique iff λ_{d_z} > λ_{d_z+1} or the tail is zero)",
    systems=systems(noise=["none", "isotropic", "structured"], sigma=st.sampled_from([0.5, 1.0, 2.0])),
    statement="G orthonormal, Σ_e = I, K = 0, F = I: if λ_{d_z}(S_r) > λ_{d_z+1}(S_r) (or λ_{d_z} = 0), every "
    "optimal member has the same prediction M₂; if they tie (and are nonzero), optimal members with "
    "different M₂ exist. All sampled members attain the optimal objective.",
)
def unique_iff_eigengap(system, spec, solution):
    G = system.action_matrix
    values = _descending(G @ G.T + system.noise_cov)
    d_z, scale = spec.d_z, _scale(G @ G.T + system.noise_cov)
    tied = (
        d_z < len(values)
        and values[d_z - 1] > DECISION_RTOL * scale
        and values[d_z - 1] - values[d_z] <= DECISION_RTOL * scale
    )
    rng = np.random.default_rng(0)
    spread = 0.0
    for _ in range(4):
        member = solution.sample_member(rng)
        value = population_objective(member, solution.transition, spec).total
        assert_close(
            value,
            solution.objective,
            "objective of a sampled optimal member",
            tol=1e-7 * max(1.0, solution.objective),
        )
        spread = max(spread, float(np.max(np.abs(member.next_obs_map - solution.parameters.next_obs_map))))
    if tied:
        assert spread > 1e-6, f"eigenvalues tie at d_z = {d_z} but every sampled member has the same M₂"
    else:
        assert spread <= 1e-8, f"no tie at d_z = {d_z} but sampled members differ in M₂ by {spread:.3g}"


@_register(
    name="R6.k-step-innovation-is-gramian",
    source="docs/theory.md §9, R6 (k-step LAM; controllability Gramian)",
    systems=systems(
        feedback=True,
        dynamics=True,
        policy="general",
        noise=["none", "isotropic", "structured"],
        sigma=(0.25, 1.0),
    ),
    specs=_specs(horizon=st.integers(1, 3)),
    statement="Zero means, o ~ N(0, I), any F, K, Σ_e, Σ_ε, horizon k: the innovation of the k-step LAM has the "
    "eigenvalues of W_k = Σ_{j<k} F_clʲ (G Σ_e Gᵀ + Σ_ε) (F_clʲ)ᵀ and the optimal loss is their tail "
    "beyond d_z.",
)
def k_step_gramian(system, spec, solution):
    Fc, G = system.closed_loop, system.action_matrix
    step = G @ system.exploration_cov @ G.T + system.noise_cov
    W, power = np.zeros_like(step), np.eye(system.d_o)
    for _ in range(spec.horizon):
        W += power @ step @ power.T
        power = Fc @ power
    tol = 1e-7 * _scale(W)
    assert_close(
        np.clip(solution.innovation.eigenvalues, 0, None),
        np.clip(_descending(W), 0, None),
        "innovation eigenvalues vs W_k",
        tol=tol,
    )
    assert_close(solution.optimal_loss, _tail(W, spec.d_z), "optimal loss vs tail of W_k", tol=tol)


# =====================================================================================================
# Issue 10 — hidden and exogenous state, context windows, multi-step inverse models
# (lamproof.claims.exogenous: Efroni et al., AC-State, Levine et al., Lee et al., read linearly)
# =====================================================================================================
REGISTRY.extend(STATE_SPACE_CLAIMS)
