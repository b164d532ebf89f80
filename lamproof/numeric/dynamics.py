"""Population learning dynamics: the trainer's optimizers on the exact expected gradient.

The stochastic trainer (:mod:`lamproof.numeric.trainer`) minimizes a minibatch estimate of
``ℓ(θ) = J(θ) / d_o``, where ``J`` is the exact population objective
(:func:`lamproof.numeric.objective.population_objective`: reconstruction, augmentation penalty
and ``λ`` times the action loss). This module runs the same optimizers on the *exact* gradient
of ``ℓ``, computed from the system's second moments, so that a trajectory is a deterministic
function of the initial point:

- ``gd``:   ``θ ← θ − lr ∇ℓ(θ)``;
- ``flow``: ``dθ/dt = −∇ℓ(θ)`` integrated by :func:`scipy.integrate.solve_ivp`; step ``n`` is
  time ``t = n·lr`` (where ``gd`` with that ``lr`` would be);
- ``adam``: PyTorch's Adam (default betas and eps) with the exact gradient in place of the
  minibatch gradient.

It never uses the closed form: the closed form is what these trajectories are compared with.

Gradients. With ``x = [o; o']``, ``S = E[x xᵀ]`` in blocks ``S₁₁ = S_oo``, ``S₁₂ = S_{oo'}``,
``S₂₂ = S_{o'o'}``, and ``Y₁ = C S₁₁ + D S₂₁``, ``Y₂ = C S₁₂ + D S₂₂`` (so ``[Y₁, Y₂] = W S``
with ``W = [C, D]``), ``Z = W S Wᵀ``, the reconstruction ``tr(R S Rᵀ)`` with
``R = [A + BC, BD − I]`` has

    ∂/∂A = 2 (A S₁₁ + B Y₁ − S₂₁)                   ∂/∂B = 2 (A Y₁ᵀ + B Z − Y₂ᵀ)
    ∂/∂C = 2 (BᵀA S₁₁ + BᵀB Y₁ − Bᵀ S₂₁)            ∂/∂D = 2 (BᵀA S₁₂ + BᵀB Y₂ − Bᵀ S₂₂)

(``A = I`` on the identity path; tied: ``D = −C`` and ``∂/∂C`` is the difference). Each moment
block is stored as ``αI + U Vᵀ`` (:class:`StructuredBlock`): in the paper's systems it is the
identity plus a low-rank part, so a step costs three ``d_o × d_o × d_z`` products and
``O(d_o²)`` element-wise work instead of ``O(d_o³)``. The augmentation penalty
``s²‖B(C + D)‖² + s²‖A − I‖² (+ λs²‖H(C + D)‖²)`` and the action loss ``λ E‖a − H W x‖²`` add
terms in ``d_z``-sized matrices only.

Batches. Configurations that share a system and a LAM variant and differ in ``d_z``, ``s`` or
``λ`` are integrated together: latent sizes are padded with zero units, which stay exactly zero
under every optimizer here (a zero unit has zero gradient, and Adam's update of a zero gradient
from zero moments is ``0/(0 + eps) = 0``), and ``s²``, ``λ`` act per configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import blas

from lamproof._validation import as_choice, as_int, as_matrix, as_real
from lamproof.errors import InputError
from lamproof.lam import LAMSpec
from lamproof.numeric import kernels
from lamproof.numeric.objective import OBSERVED, LAMParameters
from lamproof.numeric.tolerances import ROUNDOFF_RTOL
from lamproof.numeric.trainer import ADAM_BETAS, ADAM_EPS, Trainer
from lamproof.systems import System, Transition

OPTIMIZERS = ("gd", "flow", "adam")
INITS = ("torch", "small")
DYNAMICS_FIELDS = ("optimizer", "lr", "steps", "record", "init", "seed", "scale", "epsilon")

#: The largest ``steps`` accepted: 10⁷ population-Adam steps at d_o = 128 take about half an
#: hour; anything beyond is a typo or a job for another tool.
MAX_STEPS = 10_000_000

#: Default number of recorded steps (log-spaced, plus 0 and the last).
DEFAULT_RECORDS = 30

#: A moment block ``M`` is stored as ``αI + U Vᵀ`` when its residual ``M − αI`` has numerical
#: rank at most this fraction of its size; otherwise densely. Below that the factored products
#: are cheaper than a dense one.
LOW_RANK_FRACTION = 0.5

#: Below this ``d_o`` a dense product with ``S`` costs less than the structured one's extra calls.
DENSE_BELOW = 32

#: Eigenvalues within this fraction of the block's scale count as one (finding the identity part α).
TIE_RTOL = 1e-9

#: ``flow``: solve_ivp's relative and absolute tolerances. The parameters are O(0.1–1); 1e-9
#: absolute error is far below anything a probe or loss reported to 4 digits can show.
FLOW_RTOL = 1e-8
FLOW_ATOL = 1e-9


# -- the [dynamics] table ------------------------------------------------------------------------
@dataclass(frozen=True)
class DynamicsSettings:
    """How to run the dynamics: optimizer, learning rate, length, recorded steps, initial point.

    ``init`` is ``"torch"`` (``nn.Linear``'s default, the very draws of the trainer with the same
    ``seed``), ``"small"`` (i.i.d. ``N(0, scale²)`` entries from ``seed``) or a mapping of explicit
    matrices ``{"A", "B", "C", "D", "H"}`` (checked against the system by :func:`initial_parameters`).
    ``record`` lists the steps to keep, sorted, within ``[0, steps]``; by default about
    ``DEFAULT_RECORDS`` log-spaced steps, always 0 and ``steps``. ``epsilon`` is the tolerance of
    the predictions (steps to come within ``epsilon`` of the optimum).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    steps: int = 10_000
    record: tuple[int, ...] | None = None
    init: str | Mapping = "torch"
    seed: int = 0
    scale: float = 1e-3
    epsilon: float = 0.01

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "optimizer", as_choice(self.optimizer, "optimizer", OPTIMIZERS))
        lr = as_real(self.lr, "lr")
        if lr <= 0:
            raise InputError(f"lr: must be > 0, got {self.lr!r}")
        set_(self, "lr", lr)
        set_(self, "steps", as_int(self.steps, "steps", minimum=1, maximum=MAX_STEPS))
        set_(self, "seed", as_int(self.seed, "seed", minimum=0))
        scale = as_real(self.scale, "scale")
        if scale <= 0:
            raise InputError(f"scale: must be > 0, got {self.scale!r}")
        set_(self, "scale", scale)
        epsilon = as_real(self.epsilon, "epsilon")
        if not 0 < epsilon < 1:
            raise InputError(f"epsilon: must be in (0, 1), got {self.epsilon!r}")
        set_(self, "epsilon", epsilon)
        if isinstance(self.init, str):
            set_(self, "init", as_choice(self.init, "init", INITS))
        elif isinstance(self.init, Mapping):
            unknown = sorted(set(self.init) - set("ABCDH"))
            if unknown:
                raise InputError(f"init.{unknown[0]}: unknown matrix (known: A, B, C, D, H)")
            set_(self, "init", {k: as_matrix(v, f"init.{k}", (None, None)) for k, v in self.init.items()})
        else:
            raise InputError(f"init: must be 'torch', 'small' or a table of matrices, got {self.init!r}")
        if self.record is not None:
            if isinstance(self.record, (str, bytes)) or not isinstance(self.record, Sequence):
                raise InputError(f"record: expected a list of steps, got {self.record!r}")
            steps = [as_int(s, f"record[{i}]", minimum=0) for i, s in enumerate(self.record)]
            if not steps:
                raise InputError("record: must list at least one step")
            if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
                raise InputError(f"record: must be strictly increasing, got {list(self.record)}")
            if steps[-1] > self.steps:
                raise InputError(f"record: step {steps[-1]} lies past steps = {self.steps}")
            set_(self, "record", tuple(steps))

    @property
    def records(self) -> tuple[int, ...]:
        """The recorded steps: ``record``, or about ``DEFAULT_RECORDS`` log-spaced ones with 0 and ``steps``."""
        if self.record is not None:
            return self.record
        return log_steps(self.steps, DEFAULT_RECORDS)

    @classmethod
    def from_dict(cls, table: Mapping, prefix: str = "dynamics.") -> DynamicsSettings:
        if not isinstance(table, Mapping):
            raise InputError(f"{prefix.rstrip('.')}: expected a table of fields")
        unknown = sorted(set(table) - set(DYNAMICS_FIELDS))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(DYNAMICS_FIELDS)})")
        try:
            return cls(**table)
        except InputError as error:
            raise InputError(f"{prefix}{error}") from None

    def to_dict(self) -> dict:
        init = self.init if isinstance(self.init, str) else {k: v.tolist() for k, v in self.init.items()}
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "steps": self.steps,
            "record": list(self.records),
            "init": init,
            "seed": self.seed,
            "scale": self.scale,
            "epsilon": self.epsilon,
        }


def log_steps(steps: int, count: int) -> tuple[int, ...]:
    """0 and about ``count − 1`` distinct integer steps log-spaced from 1 to ``steps`` (both included)."""
    grid = np.unique(np.round(np.geomspace(1, steps, max(2, count - 1))).astype(int))
    return (0,) + tuple(int(s) for s in grid)


# -- initial points ------------------------------------------------------------------------------
def initial_parameters(
    system: System, spec: LAMSpec, settings: DynamicsSettings, *, head: bool | None = None
) -> LAMParameters:
    """The initial point of ``settings.init`` for ``spec`` on ``system``.

    ``torch``: the stochastic trainer's own initialisation with ``settings.seed`` (read from a
    :class:`~lamproof.numeric.trainer.Trainer`, so the two start at the same point by
    construction); ``head`` (default: ``λ > 0``) says whether an action head exists, as the
    trainer's ``labeled_fraction`` does. ``small``: i.i.d. ``N(0, scale²)`` entries, layer by
    layer in the trainer's order (IDM, FDM, head). Explicit: the given matrices, shapes checked.

    With a context window of ``T`` frames (``d_c = T·d_o``, frame selector ``E``) ``A`` and ``C``
    have ``d_c`` columns, the identity path is ``A = E`` and a tied IDM is ``D = −C₀``, ``C = C₀E``
    (the free ``C₀`` is ``d_z × d_o``: given as ``−D``, drawn as ``C₀``).
    """
    d_o, d_z = system.d_o, spec.d_z
    d_act = system.d_a * spec.horizon
    head = spec.action_loss_weight > 0 if head is None else head
    learned, tied = spec.fdm_obs_path == "learned", spec.idm == "tied"
    init = settings.init
    if init == "torch":
        trainer = Trainer(system, spec, seed=settings.seed, labeled_fraction=0.0 if head else None)
        p = trainer.params
        return LAMParameters(p.A, p.B, p.C, p.D, p.H if head else None)
    E = np.eye(d_o) if spec.context == 1 else system.transition(spec.horizon, spec.context).frame_selector
    d_c = E.shape[1]
    if init == "small":
        rng = np.random.default_rng(settings.seed)
        draw = lambda *shape: settings.scale * rng.standard_normal(shape)  # noqa: E731
        C = draw(d_z, d_o if tied else d_c)
        D = -C if tied else draw(d_z, d_o)
        C = C @ E if tied and d_c != d_o else C
        A = draw(d_o, d_c) if learned else E.copy()
        B = draw(d_o, d_z)
        H = draw(d_act, d_z) if head else None
        return LAMParameters(A, B, C, D, H)
    return _explicit(init, E, d_z, d_act, learned=learned, tied=tied, head=head)


def _explicit(
    given: Mapping, E: np.ndarray, d_z: int, d_act: int, *, learned: bool, tied: bool, head: bool
) -> LAMParameters:
    prefix = "init."
    d_o, d_c = E.shape
    shapes = {"A": (d_o, d_c), "B": (d_o, d_z), "C": (d_z, d_c), "D": (d_z, d_o), "H": (d_act, d_z)}
    for name, matrix in given.items():
        if matrix.shape != shapes[name]:
            raise InputError(f"{prefix}{name}: expected shape {shapes[name]}, got {matrix.shape}")
    if not learned and "A" in given:
        raise InputError(f"{prefix}A: the identity FDM path has no A (A = {'I' if d_c == d_o else 'E'})")
    if learned and "A" not in given:
        raise InputError(f"{prefix}A: required with a learned FDM path")
    if not head and "H" in given:
        raise InputError(f"{prefix}H: there is no action head (action_loss_weight = 0)")
    if head and "H" not in given:
        raise InputError(f"{prefix}H: required with an action head (action_loss_weight > 0)")
    for name in ("B",):
        if name not in given:
            raise InputError(f"{prefix}{name}: required")
    if tied:
        if "C" not in given and "D" not in given:
            raise InputError(f"{prefix}C: required (tied IDM: give C, or D = −C)")
        if d_c != d_o and "D" not in given:
            raise InputError(f"{prefix}D: required (tied IDM on a context window: D = −C₀, C = C₀E)")
        D = given["D"] if "D" in given else -given["C"]
        C = -D @ E if d_c != d_o else -D
        if "C" in given and not np.array_equal(given["C"], C):
            raise InputError(f"{prefix}C: a tied IDM needs {'C = −D' if d_c == d_o else 'C = −D·E'}")
    else:
        for name in ("C", "D"):
            if name not in given:
                raise InputError(f"{prefix}{name}: required")
        C, D = given["C"], given["D"]
    A = given["A"] if learned else E
    return LAMParameters(A.copy(), given["B"].copy(), C.copy(), D.copy(), given["H"].copy() if head else None)


# -- structured moments --------------------------------------------------------------------------
class StructuredBlock:
    """A ``d × d`` block of a moment, ``M = αI + U Vᵀ`` with ``U``, ``V`` of rank ``r`` (or dense).

    ``α`` is the eigenvalue of ``(M + Mᵀ)/2`` repeated at least ``d/2`` times (else 0) and ``r`` the
    numerical rank of ``M − αI``; a block whose ``r`` exceeds ``LOW_RANK_FRACTION·d`` is kept dense.
    """

    def __init__(self, M: np.ndarray):
        self.dense = np.array(M, dtype=np.float64)
        d = M.shape[0]
        scale = max(1.0, float(np.linalg.norm(M, 2)))
        alpha = _identity_part(M, scale)
        U, sv, Vt = np.linalg.svd(M - alpha * np.eye(d))
        rank = int(np.sum(sv > ROUNDOFF_RTOL * scale))  # the rest of M − αI is round-off
        if rank <= LOW_RANK_FRACTION * d:
            self.alpha, self.rank = alpha, rank
            self.U, self.V = U[:, :rank] * sv[:rank], Vt[:rank].T.copy()
        else:
            self.alpha, self.rank, self.U, self.V = 0.0, d, None, None

    @property
    def low_rank(self) -> bool:
        return self.U is not None

    @property
    def scalar(self) -> bool:
        """``M = αI`` exactly (to round-off)."""
        return self.U is not None and self.rank == 0


def _identity_part(M: np.ndarray, scale: float) -> float:
    """The most repeated eigenvalue of ``(M + Mᵀ)/2`` when it holds at least half of them, else 0."""
    values = np.sort(np.linalg.eigvalsh((M + M.T) / 2))
    d = len(values)
    best, best_count, start = 0.0, 0, 0
    for i in range(1, d + 1):
        if i == d or values[i] - values[start] > TIE_RTOL * scale:
            if i - start > best_count:
                best, best_count = float(np.mean(values[start:i])), i - start
            start = i
    return best if best_count * 2 >= d else 0.0


class StructuredMoment:
    """The second moment ``S = E[x xᵀ]`` of ``x = [o; o']`` as ``K ⊗ I + U Vᵀ`` (``K`` is 2 × 2).

    ``K`` holds the identity parts of the four blocks and ``U Vᵀ`` the (low-rank) rest, so that
    :meth:`right` computes ``X S`` for a stack of ``m × 2d_o`` matrices in ``O(m·d_o·(1 + rank))``.
    The blocks ``S₁₁ = S_oo`` and ``S₂₁ = S_{o'o}`` are kept as :class:`StructuredBlock` too, for
    the products with the ``d_o × d_o`` matrix ``A``.
    """

    def __init__(self, S: np.ndarray):
        d = S.shape[0] // 2
        self.d = d
        self.dense = S
        self.S11, self.S21 = StructuredBlock(S[:d, :d]), StructuredBlock(S[d:, :d])
        alphas = [
            [StructuredBlock(S[:d, :d]).alpha, StructuredBlock(S[:d, d:]).alpha],
            [0.0, StructuredBlock(S[d:, d:]).alpha],
        ]
        alphas[1][0] = alphas[0][1]
        self.K = np.array(alphas)
        residual = S - np.kron(self.K, np.eye(d))
        residual = (residual + residual.T) / 2
        values, vectors = np.linalg.eigh(residual)
        scale = max(1.0, float(np.max(np.abs(np.linalg.eigvalsh(S)))))
        keep = np.abs(values) > ROUNDOFF_RTOL * scale
        self.rank = int(np.sum(keep))
        if self.rank <= LOW_RANK_FRACTION * 2 * d and d > DENSE_BELOW:
            self.U, self.V = vectors[:, keep] * values[keep], vectors[:, keep].copy()
            self._Ut, self._Vt = np.ascontiguousarray(self.U.T), np.ascontiguousarray(self.V.T)
        else:
            self.U = self.V = None

    def right(
        self, X: np.ndarray, rows: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``X S`` for a C-contiguous stack ``X`` of shape ``(n, m, 2d)`` (into ``out`` when given).

        ``rows[i]`` (optional) says how many rows of ``X[i]`` are live: the rest are padding, and
        their rows of the result are zero (``X``'s padding rows must be zero on the dense path).
        """
        if self.U is None:
            return np.matmul(X, self.dense, out=out)
        result = np.empty(X.shape) if out is None else out
        if not (result.flags.c_contiguous and X.flags.c_contiguous):
            raise ValueError("X, out: StructuredMoment.right needs C-contiguous arrays")
        if rows is None:
            rows = np.full(X.shape[0], X.shape[1], dtype=np.int64)
        kernels.structured_right(self.K, self._Ut, self._Vt, X, rows, result)
        return result


@dataclass(frozen=True)
class Moments:
    """The moments the gradient needs, structured once per transition."""

    S: StructuredMoment
    S_xa: np.ndarray  # E[x aᵀ], (2 d_o, d_act)

    @classmethod
    def of(cls, transition: Transition) -> Moments:
        return transition.memo(
            "dynamics_moments",
            lambda: cls(
                StructuredMoment(transition.second_moment(OBSERVED)),
                transition.second_moment(OBSERVED, "action"),
            ),
        )


# -- the batched gradient ------------------------------------------------------------------------
class Engine:
    """The exact gradient of ``J/d_o`` for a batch of LAMs that share a system and a variant.

    The batch's parameters live in one flat vector :attr:`theta`, block by block (``A`` of every
    member, then ``B``, the IDM ``W = [C, D]`` (tied: ``C``), then ``H``), so that element-wise
    work and BLAS calls run once over the whole batch; :meth:`gradient` writes ``∇(J/d_o)`` at
    :attr:`theta` into :attr:`grad`.

    With ``Y = W S = [Y₁, Y₂]``, ``Z = Y Wᵀ`` and ``g = 2/d_o``:

        ∂/∂A = g (A S₁₁ + B Y₁ − S₂₁)          ∂/∂W = g ([BᵀA, −Bᵀ] S + BᵀB Y)
        ∂/∂B = g (A Y₁ᵀ + B Z − Y₂ᵀ)           (identity path: A = I)

    plus the augmentation penalty and the action head.
    """

    def __init__(self, transition: Transition, specs: Sequence[LAMSpec], *, head: bool | None = None):
        if not specs:
            raise InputError("specs: need at least one LAM")
        first = specs[0]
        for spec in specs:
            if (spec.fdm_obs_path, spec.idm, spec.horizon) != (first.fdm_obs_path, first.idm, first.horizon):
                raise InputError("specs: a batch must share fdm_obs_path, idm and horizon")
            spec.check_for(transition.system.d_o)
        if transition.horizon != first.horizon:
            raise InputError(
                f"transition: horizon {transition.horizon} differs from the LAM's {first.horizon}"
            )
        self.transition, self.specs = transition, list(specs)
        self.moments = Moments.of(transition)
        self.d_o = d = transition.system.d_o
        self.d_act = transition.system.d_a * first.horizon
        self.n = n = len(specs)
        self.d_zs = [s.d_z for s in specs]
        self.d_z = z = max(self.d_zs)
        self.learned = first.fdm_obs_path == "learned"
        self.tied = first.idm == "tied"
        weights = np.array([s.action_loss_weight for s in specs])
        self.head = bool(np.any(weights > 0)) if head is None else bool(head)
        self.s2 = np.array([s.augmentation**2 for s in specs]).reshape(n, 1, 1)
        self.lam = weights.reshape(n, 1, 1)
        self.any_s2 = bool(np.any(self.s2 > 0))
        blocks = []
        if self.learned:
            blocks.append(("A", (n, d, d)))
        blocks.append(("B", (n, d, z)))
        blocks.append(("C", (n, z, d)) if self.tied else ("W", (n, z, 2 * d)))
        if self.head:
            blocks.append(("H", (n, self.d_act, z)))
        self.blocks, self.slices, start = blocks, {}, 0
        for name, shape in blocks:
            size = shape[0] * shape[1] * shape[2]
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start
        self.scale = g = 2.0 / d  # ∂(J/d_o) = (2/d_o)·(the halves in the docstring)
        self.theta = np.zeros(self.size)
        self.grad = np.zeros(self.size)
        self.p, self.q = self.views(self.theta), self.views(self.grad)
        self._left = np.zeros((n, z, 2 * d))  # [BᵀA, −Bᵀ] scaled by g
        self._gW = self.q["W"] if not self.tied else np.zeros((n, z, 2 * d))
        S = self.moments.S
        # the parts of ∂/∂A without products: (g α + 2s²/d_o) A (α = 0 unless S₁₁ = αI, else the
        # product A S₁₁ is formed), and the constant −g S₂₁ − (2s²/d_o) I (its diagonal alone when S₂₁ = βI)
        alpha = S.S11.alpha if S.S11.scalar else 0.0
        self._A_coef = g * alpha + (2.0 / d) * self.s2.reshape(n)
        self._minus_diag = -(2.0 / d) * self.s2.reshape(n)
        self._fused = self.learned and S.S11.scalar and z <= kernels.FUSED_MAX_LATENT
        self._zs = np.array(self.d_zs, dtype=np.int64)
        if S.S21.scalar:
            self._minus_diag -= g * S.S21.alpha
            self._minus_S21 = np.zeros((0, 0))
        else:
            self._minus_S21 = -g * S.S21.dense
        if self.head:
            self._S_xa = self.moments.S_xa
            self._S_ax = np.ascontiguousarray(self._S_xa.T)
        # work arrays of the latent side (see :func:`kernels.latent_products`)
        self._latent = z <= kernels.FUSED_MAX_LATENT
        self._augment = self.any_s2 and not self.tied
        self._c2 = (2.0 / d) * self.s2.reshape(n)
        self._Y = np.zeros((n, z, 2 * d))
        self._Z, self._UUt, self._Q = (np.zeros((n, z, z)) for _ in range(3))
        self._U = np.zeros((n, z, d))
        self._no_head = np.zeros((0, 0, 0))
        self._cH = (2.0 / d) * self.lam.reshape(n)  # the head's c = 2λ/d_o, and c·s²
        self._cHs2 = self._cH * self.s2.reshape(n)

    # -- packing ------------------------------------------------------------------------------
    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[self.slices[name]].reshape(shape) for name, shape in self.blocks}

    def pack(self, params: Sequence[LAMParameters]) -> np.ndarray:
        """One flat vector from the members' parameters (latent sizes padded with zeros)."""
        flat = np.zeros(self.size)
        v, d = self.views(flat), self.d_o
        for i, (p, z) in enumerate(zip(params, self.d_zs, strict=True)):
            if self.learned:
                v["A"][i] = p.A
            v["B"][i, :, :z] = p.B
            if self.tied:
                v["C"][i, :z] = p.C
            else:
                v["W"][i, :z, :d] = p.C
                v["W"][i, :z, d:] = p.D
            if self.head and p.H is not None:
                v["H"][i, :, :z] = p.H
        return flat

    def unpack(self, flat: np.ndarray) -> list[LAMParameters]:
        v, d = self.views(flat), self.d_o
        out = []
        for i, (spec, z) in enumerate(zip(self.specs, self.d_zs, strict=True)):
            A = v["A"][i].copy() if self.learned else np.eye(d)
            B = v["B"][i, :, :z].copy()
            if self.tied:
                C = v["C"][i, :z].copy()
                D = -C
            else:
                C, D = v["W"][i, :z, :d].copy(), v["W"][i, :z, d:].copy()
            H = v["H"][i, :, :z].copy() if self.head and spec.action_loss_weight > 0 else None
            out.append(LAMParameters(A, B, C, D, H))
        return out

    # -- the gradient -------------------------------------------------------------------------
    def gradient(self) -> np.ndarray:
        """``∇(J/d_o)`` at :attr:`theta`, written into :attr:`grad` (returned)."""
        S, g, d, zs = self.moments.S, self.scale, self.d_o, self._zs
        p, q = self.p, self.q
        B = p["B"]
        W = np.concatenate([p["C"], -p["C"]], axis=2) if self.tied else p["W"]
        Y = S.right(W, zs, out=self._Y)  # [Y₁, Y₂] = W S
        left = self._left
        # ∂/∂A = g B Y₁ + (g α + 2s²/d_o) A − g S₂₁ − (2s²/d_o) I  (+ g A S₁₁ unless S₁₁ = αI),
        # with g BᵀA into the left factor [g BᵀA, −g Bᵀ] of ∂/∂W and g (A Y₁ᵀ − Y₂ᵀ) into ∂/∂B
        if self._fused:
            kernels.learned_path_products(
                p["A"], B, Y, zs, g, self._A_coef, self._minus_S21, self._minus_diag, q["A"], left, q["B"]
            )
        else:
            gY1 = g * Y[:, :, :d]
            if self.learned:
                A, gA = p["A"], q["A"]
                np.matmul(B, gY1, out=gA)
                if not S.S11.scalar:
                    gA += (g * A) @ S.S11.dense
                kernels.add_scaled_plus_constant(gA, A, self._A_coef, self._minus_S21, self._minus_diag)
                np.matmul(g * B.transpose(0, 2, 1), A, out=left[:, :, :d])
                np.matmul(A, gY1.transpose(0, 2, 1), out=q["B"])
            else:
                np.multiply(B.transpose(0, 2, 1), g, out=left[:, :, :d])
                q["B"][...] = gY1.transpose(0, 2, 1)
            q["B"] -= g * Y[:, :, d:].transpose(0, 2, 1)
        if self._latent:
            self._latent_side_compiled(W, Y)
        else:
            self._latent_side(W, Y)
        if self.tied:
            np.subtract(self._gW[:, :, :d], self._gW[:, :, d:], out=q["C"])
        return self.grad

    def _head_terms(self):
        """The action head's coefficient ``c = 2λ/d_o``, ``H``, ``Hᵀ`` and ``HᵀH``."""
        H = self.p["H"]
        Ht = H.transpose(0, 2, 1)
        return (2.0 / self.d_o) * self.lam, H, Ht, Ht @ H

    def _latent_side_compiled(self, W: np.ndarray, Y: np.ndarray) -> None:
        """:meth:`_latent_side` by :func:`kernels.latent_products` and :func:`kernels.head_products`
        (small latents)."""
        S, g, zs, p, q = self.moments.S, self.scale, self._zs, self.p, self.q
        Z, UUt, Q, U = self._Z, self._UUt, self._Q, self._U
        H = p["H"] if self.head else self._no_head
        kernels.latent_products(
            p["B"],
            W,
            Y,
            zs,
            g,
            self._augment,
            self._c2,
            H,
            self._cH,
            self._cHs2,
            self._left,
            q["B"],
            Z,
            UUt,
            Q,
            U,
        )
        gW = S.right(self._left, zs, out=self._gW)
        if self.head:
            kernels.head_products(
                H, W, Z, UUt, self._S_ax, zs, self._cH, self._cHs2, self._augment, q["H"], gW
            )
        if self._augment:
            kernels.add_to_halves(Q, U, zs, gW)

    def _latent_side(self, W: np.ndarray, Y: np.ndarray) -> None:
        """∂/∂B's products with ``Z = Y Wᵀ``, ∂/∂W and ∂/∂H, once :attr:`_left` holds its first half.

        ∂/∂W = ([g BᵀA, −g Bᵀ] + P W) S (− c Hᵀ S_xaᵀ) with P = g BᵀB (+ c HᵀH): one product with S.
        """
        S, g, d, p, q = self.moments.S, self.scale, self.d_o, self.p, self.q
        B, left = p["B"], self._left
        Bt = B.transpose(0, 2, 1)
        np.multiply(Bt, -g, out=left[:, :, d:])
        BtB = Bt @ B
        gZ = g * (Y @ W.transpose(0, 2, 1))
        P = g * BtB
        if self.head:  # λ E‖a − H W x‖² / d_o
            c, H, Ht, HtH = self._head_terms()
            P += c * HtH
            np.multiply(c, H @ (gZ / g) - (W @ self._S_xa).transpose(0, 2, 1), out=q["H"])
        left += P @ W
        gW = S.right(left, out=self._gW)
        if self.head:
            gW -= (c * Ht) @ self._S_ax
        if self._augment:  # s²‖B(C + D)‖²/d_o, and λ s²‖H(C + D)‖²/d_o: the head reads
            U = W[:, :, :d] + W[:, :, d:]  # the augmented latent (a tied IDM has C + D = 0)
            c2 = self._c2.reshape(-1, 1, 1)
            UUt = U @ U.transpose(0, 2, 1)
            q["B"] += B @ (gZ + c2 * UUt)
            Q = c2 * BtB
            if self.head:
                q["H"] += (c * self.s2) * (H @ UUt)
                Q += (c * self.s2) * HtH
            gU = Q @ U
            gW[:, :, :d] += gU
            gW[:, :, d:] += gU
        else:
            q["B"] += B @ gZ


class WindowEngine:
    """The exact gradient of ``J/d_o`` for LAMs on a context window or a state-space transition.

    The first input is the stack ``obs`` of ``T`` frames (``d_c = T·d_o``): ``A`` is ``d_o × d_c``
    (``A = E``, the frame selector, on the identity path), ``C`` is ``d_z × d_c``, and a tied IDM
    reads ``o' − E·obs`` through a free ``C₀`` (``D = −C₀``, ``C = C₀E``). The moments are those of
    a window, with no identity-plus-low-rank structure to exploit, so each member's gradient is
    :func:`lamproof.numeric.population.objective_and_gradient` (dense products, the population
    minimizer's own analytic gradient; no closed form) divided by ``d_o``. Members are laid out
    one after the other in :attr:`theta`; the interface is :class:`Engine`'s.
    """

    def __init__(self, transition: Transition, specs: Sequence[LAMSpec], *, head: bool | None = None):
        from lamproof.numeric.population import _Problem

        if not specs:
            raise InputError("specs: need at least one LAM")
        self.transition, self.specs = transition, list(specs)
        self.d_o, self.d_c, self.n = transition.d_o, transition.d_c, len(specs)
        for spec in specs:
            spec.check_for(self.d_o)
            if spec.horizon != transition.horizon or spec.context != transition.context:
                raise InputError(
                    f"transition: horizon {transition.horizon} and context {transition.context} differ from "
                    f"the LAM's {spec.horizon} and {spec.context}"
                )
        weights = [s.action_loss_weight for s in specs]
        if head is not None and bool(head) != any(w > 0 for w in weights):
            raise InputError("head: on a window an action head exists exactly when action_loss_weight > 0")
        self.head = any(w > 0 for w in weights)
        self._problems = [_Problem(transition, spec) for spec in specs]
        self._members, start = [], 0
        for problem in self._problems:
            self._members.append(slice(start, start + problem.size))
            start += problem.size
        self.size = start
        self.theta = np.zeros(self.size)
        self.grad = np.zeros(self.size)

    def pack(self, params: Sequence[LAMParameters]) -> np.ndarray:
        """One flat vector: per member its ``A`` (learned path), ``B``, ``C`` (tied: ``C₀ = −D``), ``D``, ``H``."""
        flat = np.zeros(self.size)
        for problem, where, p in zip(self._problems, self._members, params, strict=True):
            parts = {"A": p.A, "B": p.B, "C": -p.D if problem.tied else p.C, "D": p.D, "H": p.H}
            flat[where] = np.concatenate([parts[name].ravel() for name, _, _ in problem.layout])
        return flat

    def unpack(self, flat: np.ndarray) -> list[LAMParameters]:
        return [
            problem.parameters(flat[where])
            for problem, where in zip(self._problems, self._members, strict=True)
        ]

    def gradient(self) -> np.ndarray:
        """``∇(J/d_o)`` at :attr:`theta`, written into :attr:`grad` (returned)."""
        for problem, where in zip(self._problems, self._members, strict=True):
            _, gradient = problem.value_and_gradient(self.theta[where])
            np.multiply(gradient, 1.0 / self.d_o, out=self.grad[where])
        return self.grad


def engine_for(transition: Transition, specs: Sequence[LAMSpec], *, head: bool | None = None):
    """:class:`Engine` (structured moments, compiled kernels) for one frame of a :class:`System`;
    :class:`WindowEngine` for a context window or a state-space transition."""
    if type(transition) is Transition and transition.d_c == transition.d_o:
        return Engine(transition, specs, head=head)
    return WindowEngine(transition, specs, head=head)


# -- optimizers ----------------------------------------------------------------------------------
@dataclass
class BatchTrajectory:
    """Parameters of every member of a batch at the recorded steps."""

    steps: tuple[int, ...]
    params: list[list[LAMParameters]]  # params[k][i]: member i at steps[k]
    seconds: float = 0.0


def _adam(
    engine: Engine,
    lr: float,
    steps: int,
    keep: Callable[[int, np.ndarray], None],
    progress: Callable[[int, int], None] | None,
) -> None:
    """PyTorch's Adam (``torch.optim.Adam`` defaults) with the exact gradient: the trainer's update
    (:func:`lamproof.numeric.kernels.adam_step`, one pass over the parameters)."""
    theta, grad = engine.theta, engine.grad
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    keep(0, theta)
    every = max(1, steps // 100)
    for t in range(1, steps + 1):
        engine.gradient()
        kernels.adam_step(theta, grad, m, v, t, lr, ADAM_BETAS, ADAM_EPS)
        keep(t, theta)
        if progress is not None and (t % every == 0 or t == steps):
            progress(t, steps)


def _gd(engine: Engine, lr: float, steps: int, keep, progress) -> None:
    theta, grad = engine.theta, engine.grad
    keep(0, theta)
    every = max(1, steps // 100)
    for t in range(1, steps + 1):
        engine.gradient()
        blas.daxpy(grad, theta, a=-lr)
        keep(t, theta)
        if progress is not None and (t % every == 0 or t == steps):
            progress(t, steps)


def _flow(engine: Engine, lr: float, records: tuple[int, ...], keep, progress) -> None:
    theta, horizon = engine.theta.copy(), records[-1] * lr

    def rhs(t, y):
        engine.theta[...] = y
        grad = engine.gradient()
        if progress is not None and horizon > 0:
            progress(min(records[-1], int(t / lr)), records[-1])
        return -grad

    times = np.array(records, dtype=float) * lr
    if horizon == 0:
        keep(0, theta)
        return
    result = solve_ivp(rhs, (0.0, horizon), theta, t_eval=times, rtol=FLOW_RTOL, atol=FLOW_ATOL)
    if not result.success:  # pragma: no cover - solve_ivp fails only on non-finite gradients
        raise InputError(f"dynamics.lr: gradient flow failed ({result.message})")
    for step, column in zip(records, result.y.T, strict=True):
        keep(step, column)


def run_batch(
    transition: Transition,
    specs: Sequence[LAMSpec],
    initial: Sequence[LAMParameters],
    settings: DynamicsSettings,
    *,
    records: Sequence[int] | None = None,
    head: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BatchTrajectory:
    """Run ``settings.optimizer`` from ``initial`` for every member of ``specs`` (one system).

    Returns the members' parameters at ``records`` (default ``settings.records``).
    """
    import time

    start = time.perf_counter()
    engine = engine_for(transition, specs, head=head)
    records = tuple(settings.records if records is None else records)
    engine.theta[...] = engine.pack(initial)
    wanted = set(records)
    kept: dict[int, list[LAMParameters]] = {}

    def keep(step: int, flat: np.ndarray) -> None:
        if step in wanted:
            kept[step] = engine.unpack(flat)

    last = records[-1]
    if settings.optimizer == "adam":
        _adam(engine, settings.lr, last, keep, progress)
    elif settings.optimizer == "gd":
        _gd(engine, settings.lr, last, keep, progress)
    else:
        _flow(engine, settings.lr, records, keep, progress)
    return BatchTrajectory(records, [kept[s] for s in records], time.perf_counter() - start)


@dataclass
class Trajectory:
    """One LAM's parameters at the recorded steps."""

    system: System
    spec: LAMSpec
    settings: DynamicsSettings
    steps: tuple[int, ...]
    params: list[LAMParameters]
    seconds: float = 0.0
    transition: Transition = field(repr=False, default=None)


def population_dynamics(
    system: System,
    spec: LAMSpec,
    settings: DynamicsSettings | None = None,
    *,
    records: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Trajectory:
    """The trajectory of one LAM under ``settings`` (default: the paper's Adam, torch init, seed 0)."""
    settings = DynamicsSettings() if settings is None else settings
    spec.check_for(system.d_o)
    transition = system.transition(spec.horizon, spec.context)
    start = initial_parameters(system, spec, settings)
    batch = run_batch(transition, [spec], [start], settings, records=records, progress=progress)
    return Trajectory(
        system, spec, settings, batch.steps, [ps[0] for ps in batch.params], batch.seconds, transition
    )
