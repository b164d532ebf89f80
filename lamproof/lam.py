"""The linear latent action model and its variants (docs/theory.md §1.2).

    IDM  z  = C o + D o'                      (tied: D = −C, so z = D (o' − o))
    FDM  ô' = A o + B z                       (identity observation path: A = I)
    loss E‖ô' − o'‖²  +  s² (augmentation)  +  λ E‖a − H z‖² (auxiliary action head)

No bias terms anywhere. ``horizon = k`` predicts ``o_k`` from ``o_0`` and one latent, and the
action head predicts the ``k`` actions ``a_0 … a_{k-1}``.

``context = T`` makes the first input the stack ``obs = [o_{t−T+1}; …; o_t]`` (``d_c = T·d_o``):
``z = C·obs + D o_{t+k}``, ``ô_{t+k} = A·obs + B z``; the identity path is ``A = E`` (copies
``o_t``), the tied IDM ``z = D(o_{t+k} − E·obs)`` (``C = −D E``), and augmentation shifts every
frame and ``o_{t+k}`` by one ``κ₁`` and every frame by one ``κ₂``, adding
``s²‖B(C S + D)‖²_F + s²‖A S − I‖²_F`` (``E``, ``S``: :class:`lamproof.systems.Transition`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from lamproof._validation import (
    MAX_ACTION_WEIGHT,
    MAX_HORIZON,
    MAX_MAGNITUDE,
    as_choice,
    as_int,
    as_real,
    show,
)
from lamproof.errors import InputError

FDM_OBS_PATHS = ("learned", "identity")
IDM_KINDS = ("free", "tied")
PAPER_BATCH_SIZE = 128

#: Bounds on the window a LAM reads (the horizon's own bound, ``MAX_HORIZON``, lives with the other
#: input bounds in :mod:`lamproof._validation`). A ``k``-step window of ``T`` frames builds its
#: source maps with O((T + k)²) products of ``n × n`` matrices, and its context has a
#: ``d_c × d_c`` covariance (``d_c = T·d_o``) that the solver factors in O(d_c³):
#: ``context ≤ MAX_CONTEXT`` keeps the first in the thousands of products; for ``T > 1``,
#: :meth:`LAMSpec.check_for` bounds ``d_c ≤ MAX_CONTEXT_DIM`` (a 4096² factorization takes a few
#: seconds) and the window's stacked frames ``(T + k)·d_o ≤ MAX_WINDOW_DIM``.
MAX_CONTEXT = 32
MAX_CONTEXT_DIM = 4096
MAX_WINDOW_DIM = 8192


@dataclass(frozen=True)
class LAMSpec:
    """What is learned, and with which objective.

    ``d_z`` latent size (checked against ``d_o`` by :meth:`check_for`); ``fdm_obs_path`` whether
    the FDM learns ``A`` or fixes it to the identity; ``idm`` free ``(C, D)`` or tied ``D = −C``;
    ``augmentation`` the scale ``s`` of the shared Gaussian shifts ``κ₁, κ₂ ~ N(0, s² I)``;
    ``action_loss_weight`` ``λ`` of the auxiliary action loss; ``horizon`` ``k``. Bounds:
    ``s ≤`` :data:`~lamproof._validation.MAX_MAGNITUDE`, ``λ ≤`` ``MAX_ACTION_WEIGHT``,
    ``k ≤`` ``MAX_HORIZON``; ``context`` ``T``, the frames up to and including ``o_t`` that the IDM and
    FDM read, ``T ≤`` ``MAX_CONTEXT`` (reasons beside the constants).

    Contract: ``z = C o + D o'``, ``ô' = A o + B z`` (``A = I`` for ``fdm_obs_path="identity"``,
    ``D = −C`` for ``idm="tied"``), objective ``E‖ô' − o'‖²`` plus the augmentation penalty and
    ``λ E‖a − Hz‖²`` (paper §2, §6, §7; docs/theory.md §1.2). Every field is validated here, once.

    >>> spec = LAMSpec(d_z=2, idm="tied", augmentation=0.1)
    >>> spec.d_z, spec.fdm_obs_path, spec.idm, spec.horizon
    (2, 'learned', 'tied', 1)
    >>> LAMSpec(d_z=0)
    Traceback (most recent call last):
        ...
    lamproof.errors.InputError: d_z: must be >= 1, got 0
    """

    d_z: int
    fdm_obs_path: str = "learned"
    idm: str = "free"
    augmentation: float = 0.0
    action_loss_weight: float = 0.0
    horizon: int = 1
    context: int = 1

    def __post_init__(self):
        object.__setattr__(self, "d_z", as_int(self.d_z, "d_z", minimum=1))
        object.__setattr__(self, "fdm_obs_path", as_choice(self.fdm_obs_path, "fdm_obs_path", FDM_OBS_PATHS))
        object.__setattr__(self, "idm", as_choice(self.idm, "idm", IDM_KINDS))
        object.__setattr__(
            self,
            "augmentation",
            as_real(self.augmentation, "augmentation", minimum=0.0, maximum=MAX_MAGNITUDE),
        )
        object.__setattr__(
            self,
            "action_loss_weight",
            as_real(self.action_loss_weight, "action_loss_weight", minimum=0.0, maximum=MAX_ACTION_WEIGHT),
        )
        object.__setattr__(self, "horizon", as_int(self.horizon, "horizon", minimum=1, maximum=MAX_HORIZON))
        object.__setattr__(self, "context", as_int(self.context, "context", minimum=1, maximum=MAX_CONTEXT))

    def check_for(self, d_o: int) -> LAMSpec:
        """Refuse a latent larger than the observation (``d_z`` in ``[1, d_o]``) and a context
        window (``T > 1``) beyond :data:`MAX_CONTEXT_DIM` or :data:`MAX_WINDOW_DIM`."""
        if self.d_z > d_o:
            raise InputError(f"d_z: must be in [1, d_o] = [1, {d_o}], got {show(self.d_z)}")
        if self.context > 1 and self.context * d_o > MAX_CONTEXT_DIM:
            raise InputError(
                f"context: context·d_o = {self.context}·{d_o} exceeds {MAX_CONTEXT_DIM} "
                "(the context covariance is inverted)"
            )
        if self.context > 1 and (self.context + self.horizon) * d_o > MAX_WINDOW_DIM:
            raise InputError(
                f"horizon: (context + horizon)·d_o = ({self.context} + {self.horizon})·{d_o} "
                f"exceeds {MAX_WINDOW_DIM} (the window's source maps)"
            )
        return self

    @classmethod
    def from_dict(cls, table: Mapping, prefix: str = "lam.") -> LAMSpec:
        if not isinstance(table, Mapping):
            raise InputError(f"{prefix.rstrip('.')}: expected a table of fields")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(known)})")
        if "d_z" not in table:
            raise InputError(f"{prefix}d_z: required field is missing")
        try:
            return cls(**table)
        except InputError as error:
            raise InputError(f"{prefix}{error}") from None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def effective_action_weight(
    labeled_fraction: float, d_o: int, d_a: int, batch_size: int = PAPER_BATCH_SIZE
) -> float:
    """The weight ``λ`` that the paper's §7 loss puts on ``E‖a − Hz‖²`` relative to ``E‖ô' − o'‖²``.

    The paper averages the reconstruction loss over the batch and ``d_o`` and the action loss over
    the labeled samples of the batch and ``d_a``; the action term is present only in batches that
    hold a labeled sample. In expectation that is ``λ = (d_o / d_a)·(1 − (1 − ρ)^batch)``.

    Formula: ``λ = (d_o/d_a)(1 − (1 − ρ)^{n_B})`` (paper §7; docs/theory.md §1.2, §8).

    >>> round(effective_action_weight(0.01, 128, 8), 1)  # 1 % labels in the paper's setting
    11.6
    """
    rho = as_real(labeled_fraction, "labeled_fraction", minimum=0.0, maximum=1.0)
    d_o = as_int(d_o, "d_o", minimum=1)
    d_a = as_int(d_a, "d_a", minimum=1)
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    return (d_o / d_a) * (1.0 - (1.0 - rho) ** batch_size)
