"""Stochastic training of the linear LAM in pure NumPy, following the authors' protocol.

The second independent route to the optimum (next to :mod:`lamproof.numeric.population`): it
never uses the closed form, it only sees samples. What it reproduces from the paper's code:

- fresh minibatches each step (default 128) from ``system.transition(spec.horizon).sample``
  (with ``spec.context = T > 1``, windows of ``T`` frames: a System or a StateSpaceSystem);
- bias-free linear layers with PyTorch's ``nn.Linear`` initialisation, U(±1/sqrt(fan_in)):
  the IDM is one layer on ``[o, o']`` (fan_in 2·d_o; tied: ``z = C(o − o')``, fan_in d_o), the
  FDM one layer on ``[o, z]`` (identity path: ``ô' = o + B z``), the action head ``â = H z``;
- Adam with PyTorch's defaults and its update formula;
- loss ``nn.MSELoss`` (mean over batch and over d_o), augmentation with one shared
  ``κ₁`` on both IDM inputs and ``κ₂`` on the FDM input, shifted back on its output.

Action head, ``labeled_fraction=None``: every sample is labeled and the action term is
``(λ/d_o)·mean_batch ‖a − Hz‖²``, so the expected loss is (population objective)/d_o.
``labeled_fraction=ρ``: the paper's §7 masking, each sample labeled with probability ρ and the
action loss the mean over labeled samples and over the action coordinates (skipped when a batch
holds none); in expectation that is ``λ = effective_action_weight(ρ, d_o, k·d_a, batch_size)``.

**Random streams.** The initial weights come from ``default_rng(seed)`` (so population dynamics
can start where the trainer starts); minibatches, augmentation shifts and label masks each from
their own stream spawned from ``seed`` (``SeedSequence(seed, spawn_key=(1,))``, ``(2,)``,
``(3,)``). A stream's draws do not depend on the LAM, so trainers with the same seed on the same
system see the same minibatches whatever their ``d_z``, augmentation scale or labeled fraction
(common random numbers across a sweep), and :func:`train_together` draws them once for all.

**Batches of LAMs.** :func:`train_together` trains several independent trainers as one NumPy
computation: their weights are stacked, every product runs once per member with the same shapes
as alone (stacked ``matmul`` calls BLAS slice by slice), every other operation is elementwise,
and shared minibatches and their second moments are computed once. Each trainer keeps its own
streams and checkpoint, and its results are bitwise equal to training it alone
(``tests/test_trainer_batch.py``). To stack, latents are padded with zero units up to a multiple of
:data:`LATENT_BUCKET`, alone as in a batch; a zero unit has zero gradient and stays zero.

**One step** (learned FDM path): with ``u = [y, z]`` the FDM input (``y = obs + κ₂``), ``t`` the
target and ``F = [A, B]``, the gradient ``F (uᵀu) − tᵀu`` is formed from minibatch second moments
instead of the prediction error: one ``d_o × (d_c + d_z)²`` product per member, where forming
the error and back-propagating it costs two. ``uᵀu`` shares its ``yᵀy`` block across members.

Batches are drawn ``sample_block`` steps at a time (one large ``sample`` call is an order of
magnitude cheaper than many small ones); a checkpoint records the streams at the start of the
current block and the position in it, and a resumed run redraws the block, so it is bitwise
identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lamproof.errors import InputError
from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.numeric import kernels
from lamproof.numeric.objective import LAMParameters
from lamproof.systems import System

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
SAMPLE_BLOCK = 32

#: Latents are padded with zero units to a multiple of this, so that the LAMs of a d_z sweep stack
#: into few groups of equal shapes (alone exactly as in a batch). Larger buckets mean fewer NumPy
#: calls per step and more wasted products on zero units: 4 is the measured optimum at d_o = 128.
LATENT_BUCKET = 4

#: Spawn keys of the random streams besides the initialisation (``default_rng(seed)``).
STREAMS = {"data": 1, "augmentation": 2, "labels": 3}


def padded_width(d_z: int) -> int:
    """The latent width a LAM with ``d_z`` units is trained at (zero units beyond ``d_z``)."""
    return LATENT_BUCKET * math.ceil(d_z / LATENT_BUCKET)


@dataclass(frozen=True)
class _Layout:
    """Shapes of one LAM variant; LAMs with equal layouts stack."""

    d_o: int
    d_c: int
    d_x: int
    d_act: int
    width: int
    learned: bool
    tied: bool
    head: bool
    masked: bool

    @property
    def layers(self) -> list[tuple[str, tuple[int, int]]]:
        out = [("idm", (self.width, self.d_x))]
        out.append(("fdm", (self.d_o, self.d_c + self.width) if self.learned else (self.d_o, self.width)))
        if self.head:
            out.append(("head", (self.d_act, self.width)))
        return out

    @property
    def size(self) -> int:
        return sum(r * c for _, (r, c) in self.layers)

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views of a flat ``(..., size)`` array as the padded layers ``(..., rows, cols)``."""
        out, start = {}, 0
        for name, (rows, cols) in self.layers:
            out[name] = flat[..., start : start + rows * cols].reshape(flat.shape[:-1] + (rows, cols))
            start += rows * cols
        return out


def _fingerprint(transition) -> str:
    """Equal for transitions that sample alike from equal generator states (content of a System;
    the object itself for anything else)."""
    system = transition.system
    parts = [type(transition).__name__, str(transition.horizon), str(getattr(transition, "context", 1))]
    if type(system) is System:
        digest = hashlib.sha1()
        for array in system._arrays():
            digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(str(array.shape).encode())
        parts += [system.noise_distribution, digest.hexdigest()]
    else:
        parts.append(f"id{id(system)}")
    return "/".join(parts)


class Trainer:
    """A linear LAM trained by Adam on fresh minibatches; checkpointable with :meth:`state`.

    A run is a function of its seed (see the module docstring for the streams). ``p`` and ``g``
    are writable views of the weights and the last gradient, layer by layer (``idm``, ``fdm``,
    ``head``), without the padding.
    """

    def __init__(
        self,
        system: System,
        spec: LAMSpec,
        *,
        seed: int = 0,
        batch_size: int = 128,
        lr: float = 1e-3,
        labeled_fraction: float | None = None,
        sample_block: int = SAMPLE_BLOCK,
    ):
        spec.check_for(system.d_o)
        self.system, self.spec = system, spec
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.labeled_fraction = None if labeled_fraction is None else float(labeled_fraction)
        self.sample_block = int(sample_block)
        if self.batch_size < 1 or self.sample_block < 1:
            raise InputError("batch_size: must be at least 1")
        if self.labeled_fraction is not None and not 0.0 <= self.labeled_fraction <= 1.0:
            raise InputError(f"labeled_fraction: must be in [0, 1], got {labeled_fraction}")
        # one frame: System.transition(k), as before; a context window: the window of T frames
        self.transition = (
            system.transition(spec.horizon)
            if spec.context == 1
            else system.transition(spec.horizon, spec.context)
        )
        self.rng = np.random.default_rng(self.seed)  # the initialisation
        kinds = (
            ["data"]
            + (["augmentation"] if spec.augmentation > 0 else [])
            + (["labels"] if self.has_head and self.labeled_fraction is not None else [])
        )
        self.streams = {
            kind: np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(STREAMS[kind],)))
            for kind in kinds
        }
        self.step_count = 0
        self.last_loss = float("nan")
        self._layout()
        self._init_parameters()
        self._block: dict | None = None
        self._block_start: dict[str, str] | None = None  # stream states the current block was drawn from
        self._position = 0
        self._fingerprint = _fingerprint(self.transition)

    # -- construction ------------------------------------------------------------------------
    @property
    def has_head(self) -> bool:
        """An action head exists with a positive ``λ`` or with a labeled fraction (§7 masking)."""
        return self.spec.action_loss_weight > 0 or self.labeled_fraction is not None

    @property
    def action_weight(self) -> float:
        """The ``λ`` that this trainer's loss puts on ``E‖a − Hz‖²`` in expectation."""
        if self.labeled_fraction is None:
            return self.spec.action_loss_weight
        d_act = self.system.d_a * self.spec.horizon
        return effective_action_weight(self.labeled_fraction, self.system.d_o, d_act, self.batch_size)

    def _layout(self) -> None:
        d_o, d_z, spec = self.system.d_o, self.spec.d_z, self.spec
        d_c = self.transition.d_c  # the FDM's and IDM's first input: T frames
        self.d_o, self.d_c, self.d_z = d_o, d_c, d_z
        self.d_act = self.system.d_a * spec.horizon
        self.tied = spec.idm == "tied"
        self.learn_A = spec.fdm_obs_path == "learned"
        self.layout = _Layout(
            d_o,
            d_c,
            d_o if self.tied else d_c + d_o,
            self.d_act,
            padded_width(d_z),
            self.learn_A,
            self.tied,
            self.has_head,
            self.has_head and self.labeled_fraction is not None,
        )
        self.size = self.layout.size

    def _real(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the real (unpadded) layers of a flat vector."""
        full, d_z, d_c = self.layout.views(flat), self.d_z, self.d_c
        out = {
            "idm": full["idm"][:d_z],
            "fdm": full["fdm"][:, : d_c + d_z] if self.learn_A else full["fdm"][:, :d_z],
        }
        if self.has_head:
            out["head"] = full["head"][:, :d_z]
        return out

    def _init_parameters(self) -> None:
        """``nn.Linear``'s default: kaiming-uniform, i.e. U(±1/sqrt(fan_in)), layer by layer."""
        self.theta = np.zeros(self.size)
        self.p = self._real(self.theta)
        for array in self.p.values():
            bound = 1.0 / np.sqrt(array.shape[1])
            array[...] = self.rng.uniform(-bound, bound, size=array.shape)
        self.adam_m = np.zeros(self.size)
        self.adam_v = np.zeros(self.size)
        self.grad = np.zeros(self.size)
        self.g = self._real(self.grad)

    # -- data ---------------------------------------------------------------------------------
    def _states(self) -> dict[str, str]:
        return {kind: json.dumps(rng.bit_generator.state) for kind, rng in self.streams.items()}

    def _share_key(self) -> tuple:
        """Trainers with equal keys draw equal blocks now and at every later step."""
        start = self._block_start if self._block is not None else self._states()
        position = self._position if self._block is not None else -1
        return (self._fingerprint, self.batch_size, self.sample_block, tuple(sorted(start.items())), position)

    def _draw(self, cache: dict | None = None) -> None:
        """A new block of ``sample_block`` batches from every stream; ``cache`` shares the draws of
        trainers whose streams are in the same state (keyed by that state)."""
        cache = {} if cache is None else cache
        rows = self.batch_size * self.sample_block
        start = self._states()
        block = {}
        for kind, rng in self.streams.items():
            key = (kind, self._fingerprint if kind == "data" else self.d_o, rows, start[kind])
            if key not in cache:
                if kind == "data":
                    data = self.transition.sample(rows, rng, ("obs", "next_obs", "action"), sources=False)
                    drawn = {name: data[name] for name in ("obs", "next_obs", "action")}
                elif kind == "augmentation":
                    drawn = {
                        "kappa1": rng.standard_normal((rows, self.d_o)),
                        "kappa2": rng.standard_normal((rows, self.d_o)),
                    }
                else:
                    drawn = {"uniform": rng.random(rows)}
                cache[key] = (drawn, rng.bit_generator.state)
            drawn, after = cache[key]
            rng.bit_generator.state = after
            block[kind] = drawn
        self._block, self._block_start, self._position = block, start, 0

    def _next_batch(self) -> dict[str, np.ndarray]:
        """The next minibatch: raw rows of every stream (shifts and label draws unscaled)."""
        if self._block is None or self._position >= self.sample_block:
            self._draw()
        batch = _rows(self._block, self._position, self.batch_size)
        self._position += 1
        return batch

    # -- one step -----------------------------------------------------------------------------
    def _loss_and_gradient(self, batch: dict[str, np.ndarray]) -> float:
        """Loss of ``batch`` and its gradient into ``self.grad`` (the step's own arithmetic)."""
        stack = _Stack([self], self.theta[None], self.adam_m[None], self.adam_v[None], self.grad[None])
        inputs = _inputs(batch, self.layout, self.spec.augmentation, self.batch_size)
        losses = stack.gradient(inputs, need_loss=True)
        return float(losses[0])

    def step(self) -> float:
        """One Adam step on a fresh minibatch; returns the minibatch loss before the update."""
        train_together([self], 1)
        return self.last_loss

    def run(self, steps: int, progress: Callable[[int, int, float], None] | None = None) -> Trainer:
        """Take ``steps`` steps; ``progress(step_done, total, loss)`` is called about 100 times."""
        callback = None if progress is None else (lambda done, total: progress(done, total, self.last_loss))
        train_together([self], steps, callback)
        return self

    @staticmethod
    def train_together(
        trainers: Sequence[Trainer], steps: int, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """:func:`train_together`: several trainers as one computation (the runner's seam: a
        trainer class without it is run one trainer after the other)."""
        train_together(trainers, steps, progress)

    # -- results ------------------------------------------------------------------------------
    @property
    def params(self) -> LAMParameters:
        """The current weights as :class:`LAMParameters` (copies)."""
        d_o, d_c, p = self.d_o, self.d_c, self.p
        if self.tied:  # z = C₀(o_t − o'): D = −C₀, C = C₀ E
            C = p["idm"].copy()
            D = -C
            if d_c != d_o:
                C = C @ self.transition.frame_selector
        else:
            C, D = p["idm"][:, :d_c].copy(), p["idm"][:, d_c:].copy()
        if self.learn_A:
            A, B = p["fdm"][:, :d_c].copy(), p["fdm"][:, d_c:].copy()
        else:
            A, B = (np.eye(d_o) if d_c == d_o else self.transition.frame_selector), p["fdm"].copy()
        H = p["head"].copy() if self.has_head else None
        return LAMParameters(A=A, B=B, C=C, D=D, H=H)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Everything a resumed run needs, as arrays (``np.savez(path, **trainer.state())``).

        The current block is not stored: the streams' states at its start are, and a resumed
        trainer redraws it.
        """
        drawn = self._block is not None
        return {
            "theta": self.theta.copy(),
            "adam_m": self.adam_m.copy(),
            "adam_v": self.adam_v.copy(),
            "step_count": np.array(self.step_count),
            "streams": np.array(json.dumps(self._block_start if drawn else self._states())),
            "config": np.array(
                json.dumps(
                    {
                        "batch_size": self.batch_size,
                        "lr": self.lr,
                        "labeled_fraction": self.labeled_fraction,
                        "sample_block": self.sample_block,
                    }
                )
            ),
            "block_position": np.array(self._position if drawn else -1),
        }

    @classmethod
    def from_state(cls, system: System, spec: LAMSpec, state, **overrides) -> Trainer:
        """Resume from :meth:`state` (or the ``np.load`` of its savez); ``overrides`` change e.g. ``lr``.

        ``seed`` may be passed like the constructor's (a caller resuming with the arguments it
        started with); it is ignored, since the saved stream states replace it.
        """
        config = json.loads(str(np.asarray(state["config"])))
        overrides.pop("seed", None)
        config.update(overrides)
        trainer = cls(system, spec, seed=0, **config)
        theta = np.asarray(state["theta"], dtype=np.float64)
        if theta.shape != trainer.theta.shape:
            raise InputError(
                f"state: {theta.size} parameters do not fit this system and spec ({trainer.size})"
            )
        trainer.theta[...] = theta
        trainer.adam_m[...] = state["adam_m"]
        trainer.adam_v[...] = state["adam_v"]
        trainer.step_count = int(state["step_count"])
        streams = json.loads(str(np.asarray(state["streams"])))
        if set(streams) != set(trainer.streams):
            raise InputError(
                f"state: streams {sorted(streams)} do not fit this spec ({sorted(trainer.streams)})"
            )
        for kind, text in streams.items():
            trainer.streams[kind].bit_generator.state = json.loads(text)
        position = int(state["block_position"])
        if position >= 0:
            trainer._draw()
            trainer._position = position
        return trainer


def train(system: System, spec: LAMSpec, steps: int, **kwargs) -> Trainer:
    """Build a :class:`Trainer` (keyword arguments as its constructor's, plus ``progress``) and run it."""
    progress = kwargs.pop("progress", None)
    return Trainer(system, spec, **kwargs).run(steps, progress=progress)


# -- several LAMs as one computation ------------------------------------------------------------
def train_together(
    trainers: Sequence[Trainer], steps: int, progress: Callable[[int, int], None] | None = None
) -> None:
    """Take ``steps`` steps of every trainer, as one computation; each ends bitwise where it would alone.

    Trainers whose layout, augmentation scale, step count, learning rate and stream states agree
    are stacked; stacks that see the same minibatch share its inputs and second moments.
    ``progress(step_done, total)`` is called about 100 times, with each trainer's ``last_loss``
    set to its loss at that step.
    """
    steps = int(steps)
    if steps <= 0 or not trainers:
        return
    groups: dict[tuple, list[Trainer]] = {}
    for trainer in trainers:
        key = (
            trainer.layout,
            trainer.spec.augmentation,
            trainer.step_count,
            trainer.lr,
            trainer._share_key(),
        )
        groups.setdefault(key, []).append(trainer)
    stacks = [_Stack.gather(members) for members in groups.values()]
    every = max(1, steps // 100)
    try:
        for i in range(steps):
            report = progress is not None and ((i + 1) % every == 0 or i + 1 == steps)
            need_loss = report or i + 1 == steps
            draws: dict = {}
            inputs: dict = {}
            for stack in stacks:
                stack.step(draws, inputs, need_loss)
            if report:
                progress(i + 1, steps)
    finally:
        for stack in stacks:
            stack.scatter()


def _rows(block: dict, position: int, n: int) -> dict[str, np.ndarray]:
    lo = position * n
    out = {}
    for drawn in block.values():
        out.update({name: array[lo : lo + n] for name, array in drawn.items()})
    return out


def _inputs(batch: dict[str, np.ndarray], layout: _Layout, s: float, n: int) -> dict:
    """What every LAM of one layout and augmentation scale ``s`` reads from a minibatch.

    ``x`` the IDM's input, ``t`` the FDM's target (what ``B z`` and ``A y`` must add up to), and for a
    learned FDM path its input ``y`` with ``c·yᵀy`` and ``c·tᵀy`` (``c = 2/(n·d_o)``, MSELoss's
    gradient scale).
    """
    d_o, d_c = layout.d_o, layout.d_c
    frames = d_c // d_o
    obs, nxt = batch["obs"], batch["next_obs"]
    o_now = obs if frames == 1 else obs[:, d_c - d_o :]
    tile = (lambda k: k) if frames == 1 else (lambda k: np.tile(k, frames))
    out = {"action": batch["action"], "uniform": batch.get("uniform"), "c": 2.0 / (n * d_o)}
    k1 = s * batch["kappa1"] if s > 0 else None
    k2 = s * batch["kappa2"] if s > 0 else None
    if layout.tied:  # κ₁ cancels
        x = o_now - nxt
    elif s > 0:
        x = np.hstack([obs + tile(k1), nxt + k1])
    else:
        x = np.hstack([obs, nxt])
    out["x"] = x
    if layout.learned:
        y = obs + tile(k2) if s > 0 else obs
        t = nxt + k2 if s > 0 else nxt
        c = out["c"]
        syy = y.T @ y
        syy *= c
        sty = t.T @ y
        sty *= c
        out.update(y=y, t=t, yt=x if (s == 0 and not layout.tied) else np.hstack([y, t]), syy=syy, sty=sty)
    else:  # κ₂ cancels: ô' − o' = B z − (o' − o_t)
        out["t"] = nxt - o_now
    return out


class _Stack:
    """Trainers of one layout (and augmentation scale, step count, rate, streams): stacked weights
    ``(G, size)`` and the work buffers of one step."""

    def __init__(self, members: list[Trainer], theta, m, v, grad):
        self.members = members
        lead = members[0]
        self.layout, self.lead = lead.layout, lead
        self.s = lead.spec.augmentation
        self.theta, self.m, self.v, self.grad = theta, m, v, grad
        self.p, self.g = self.layout.views(theta), self.layout.views(grad)
        self.lam = np.array([t.spec.action_loss_weight for t in members])[:, None, None]
        self.rho = np.array([t.labeled_fraction or 0.0 for t in members])[:, None]
        G, L, n = len(members), self.layout, lead.batch_size
        w = L.width
        self.z = np.empty((G, n, w))
        self.dz = np.empty((G, n, w))
        self.nw = np.empty((G, n, w))
        if L.learned:
            self.suu = np.empty((G, L.d_c + w, L.d_c + w))
            self.zyt = np.empty((G, w, L.d_c + L.d_o))
            self.fb = np.empty((G, L.d_c + w, w))
            self.w_yt = np.empty((G, L.d_c + L.d_o, w))
        else:
            self.error = np.empty((G, n, L.d_o))
        if L.head:
            self.residual = np.empty((G, n, L.d_act))

    @classmethod
    def gather(cls, members: list[Trainer]) -> _Stack:
        if len(members) == 1:  # views: nothing to copy back
            t = members[0]
            return cls(members, t.theta[None], t.adam_m[None], t.adam_v[None], t.grad[None])
        stack = lambda name: np.stack([getattr(t, name) for t in members])  # noqa: E731
        return cls(members, stack("theta"), stack("adam_m"), stack("adam_v"), stack("grad"))

    def scatter(self) -> None:
        """Write the stacked weights back into the members (a no-op for a single member)."""
        lead = self.lead
        for i, t in enumerate(self.members):
            if self.theta.base is not t.theta:
                t.theta[...] = self.theta[i]
                t.adam_m[...] = self.m[i]
                t.adam_v[...] = self.v[i]
                t.grad[...] = self.grad[i]
            t.step_count = lead.step_count
            if t is not lead:
                t._block, t._block_start, t._position = (
                    lead._block,
                    dict(lead._block_start or {}),
                    lead._position,
                )
                for kind, rng in t.streams.items():
                    rng.bit_generator.state = lead.streams[kind].bit_generator.state

    # -- a step -----------------------------------------------------------------------------
    def step(self, draws: dict, inputs: dict, need_loss: bool) -> None:
        lead = self.lead
        if lead._block is None or lead._position >= lead.sample_block:
            lead._draw(draws)
        key = (
            tuple(id(b) for b in lead._block.values()),
            lead._position,
            self.s,
            self.layout.tied,
            self.layout.learned,
            self.layout.d_c,
        )
        if key not in inputs:
            inputs[key] = _inputs(
                _rows(lead._block, lead._position, lead.batch_size), self.layout, self.s, lead.batch_size
            )
        lead._position += 1
        losses = self.gradient(inputs[key], need_loss)
        self.adam(lead.step_count + 1, lead.lr)
        lead.step_count += 1
        if need_loss:
            for t, loss in zip(self.members, losses, strict=True):
                t.last_loss = float(loss)

    def gradient(self, inp: dict, need_loss: bool) -> np.ndarray | None:
        """Every member's gradient into ``self.grad``; the minibatch losses if ``need_loss``."""
        L, p, g = self.layout, self.p, self.g
        x, t, c = inp["x"], inp["t"], inp["c"]
        n = x.shape[0]
        C, F = p["idm"], p["fdm"]
        z = np.matmul(x, C.transpose(0, 2, 1), out=self.z)
        zT = z.transpose(0, 2, 1)
        dz = self.dz
        losses = None
        if L.learned:
            d_c = L.d_c
            yt, suu, gF = inp["yt"], self.suu, g["fdm"]
            A, B = F[:, :, :d_c], F[:, :, d_c:]
            # F (uᵀu) − tᵀu with u = [y, z], all scaled by c: the gradient of [A, B]
            zyt = np.matmul(zT, yt, out=self.zyt)  # [zᵀy, zᵀt]
            zyt *= c
            suu[:, :d_c, :d_c] = inp["syy"]
            suu[:, d_c:, :d_c] = zyt[:, :, :d_c]
            suu[:, :d_c, d_c:] = zyt[:, :, :d_c].transpose(0, 2, 1)
            np.matmul(zT, z, out=suu[:, d_c:, d_c:])
            suu[:, d_c:, d_c:] *= c
            np.matmul(F, suu, out=gF)
            gF[:, :, :d_c] -= inp["sty"]
            szt = zyt[:, :, d_c:]
            gF[:, :, d_c:] -= szt.transpose(0, 2, 1)
            if need_loss:  # ‖e‖²·c = ⟨F, grad⟩ − ⟨A, c tᵀy⟩ − ⟨B, c tᵀz⟩ + c‖t‖²
                tt = c * float(np.vdot(inp["t"], inp["t"]))
                losses = np.array(
                    [
                        (
                            float(np.vdot(F[i], gF[i]))
                            - float(np.vdot(A[i], inp["sty"]))
                            - float(np.vdot(B[i], szt[i].T))
                            + tt
                        )
                        / 2.0
                        for i in range(len(self.members))
                    ]
                )
            # ∂/∂z of the reconstruction: c·(u Fᵀ − t) B = c·([y, t] [AᵀB; −B] + z BᵀB)
            fb, w_yt = self.fb, self.w_yt
            np.matmul(F.transpose(0, 2, 1), B, out=fb)
            w_yt[:, :d_c] = fb[:, :d_c]
            np.negative(B, out=w_yt[:, d_c:])
            np.matmul(yt, w_yt, out=dz)
            dz += np.matmul(z, fb[:, d_c:], out=self.nw)
            dz *= c
        else:
            B = F
            error = np.matmul(z, B.transpose(0, 2, 1), out=self.error)
            error -= t
            if need_loss:
                losses = np.array([float(np.vdot(e, e)) / (n * L.d_o) for e in error])
            error *= c
            np.matmul(error.transpose(0, 2, 1), z, out=g["fdm"])
            np.matmul(error, B, out=dz)
        if L.head:
            H = p["head"]
            r = np.matmul(z, H.transpose(0, 2, 1), out=self.residual)
            r -= inp["action"]
            if L.masked:
                labeled = (inp["uniform"][None, :] < self.rho).astype(np.float64)  # (G, n)
                r *= labeled[:, :, None]
                count = labeled.sum(axis=1)
                denom = np.where(count > 0, count * L.d_act, 1.0)
                if need_loss:
                    losses += np.array([float(np.vdot(ri, ri)) for ri in r]) / denom
                coef = np.where(count > 0, 2.0 / denom, 0.0)[:, None, None]
            else:
                if need_loss:
                    losses += self.lam[:, 0, 0] / L.d_o * np.array([float(np.vdot(ri, ri)) for ri in r]) / n
                coef = 2.0 * self.lam / (L.d_o * n)
            r *= coef
            np.matmul(r.transpose(0, 2, 1), z, out=g["head"])
            dz += np.matmul(r, H, out=self.nw)
        np.matmul(dz.transpose(0, 2, 1), x, out=g["idm"])
        return losses

    def adam(self, t: int, lr: float) -> None:
        """PyTorch's Adam update (single-tensor path), on the stacked flat parameters (contiguous: views)."""
        flat = [a.reshape(-1) for a in (self.theta, self.grad, self.m, self.v)]
        kernels.adam_step(*flat, t, lr, ADAM_BETAS, ADAM_EPS)
