"""Stochastic training of the linear LAM in pure NumPy, following the authors' protocol.

The second independent route to the optimum (next to :mod:`lamproof.numeric.population`): it
never uses the closed form, it only sees samples. What it reproduces from the paper's code:

- fresh minibatches each step (default 128) from ``system.transition(spec.horizon).sample``
  (with ``spec.context = T > 1``, windows of ``T`` frames: a System or a StateSpaceSystem);
- bias-free linear layers with PyTorch's ``nn.Linear`` initialisation, U(±1/sqrt(fan_in)):
  the IDM is one layer on ``[o, o']`` (fan_in 2·d_o; tied: ``z = C(o − o')``, fan_in d_o), the
  FDM one layer on ``[o, z]`` (identity path: ``ô' = o + B z``), the action head ``â = H z``;
- Adam with PyTorch's defaults and its exact update formula;
- loss ``nn.MSELoss`` (mean over batch and over d_o), augmentation with one shared
  ``κ₁`` on both IDM inputs and ``κ₂`` on the FDM input, shifted back on its output.

Action head, ``labeled_fraction=None``: every sample is labeled and the action term is
``(λ/d_o)·mean_batch ‖a − Hz‖²``, so the expected loss is (population objective)/d_o.
``labeled_fraction=ρ``: the paper's §7 masking, each sample labeled with probability ρ and the
action loss the mean over labeled samples and over the action coordinates (skipped when a batch
holds none); in expectation that is ``λ = effective_action_weight(ρ, d_o, k·d_a, batch_size)``.

Batches are drawn ``sample_block`` steps at a time (one large ``sample`` call is an order of
magnitude cheaper than many small ones); the undrawn rest of a block is part of the checkpoint,
so a resumed run is bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from lamproof.errors import InputError
from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.numeric.objective import LAMParameters
from lamproof.systems import System

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
SAMPLE_BLOCK = 32


class Trainer:
    """A linear LAM trained by Adam on fresh minibatches; checkpointable with :meth:`state`.

    All randomness (initialisation, data, augmentation, label masks) comes from one
    ``np.random.default_rng(seed)``, drawn in a fixed order, so a run is a function of its seed.
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
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.labeled_fraction = None if labeled_fraction is None else float(labeled_fraction)
        self.sample_block = int(sample_block)
        if self.batch_size < 1 or self.sample_block < 1:
            raise InputError("batch_size: must be at least 1")
        if self.labeled_fraction is not None and not 0.0 <= self.labeled_fraction <= 1.0:
            raise InputError(f"labeled_fraction: must be in [0, 1], got {labeled_fraction}")
        # one frame: System.transition(k), as before; a context window: the window of T frames
        self.transition = system.transition(spec.horizon) if spec.context == 1 \
            else system.transition(spec.horizon, spec.context)
        self.rng = np.random.default_rng(seed)
        self.step_count = 0
        self.last_loss = float("nan")
        self._layout()
        self._init_parameters()
        self._allocate()
        self._block: dict[str, np.ndarray] | None = None
        self._position = 0

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
        """Shapes and fan-ins of the layers, in the order of the flat parameter vector."""
        d_o, d_z, spec = self.system.d_o, self.spec.d_z, self.spec
        d_c = self.transition.d_c  # the FDM's and IDM's first input: T frames
        self.d_o, self.d_c, self.d_z = d_o, d_c, d_z
        self.d_act = self.system.d_a * spec.horizon
        self.tied = spec.idm == "tied"
        self.learn_A = spec.fdm_obs_path == "learned"
        layers = [("idm", (d_z, d_o) if self.tied else (d_z, d_c + d_o))]
        layers.append(("fdm", (d_o, d_c + d_z) if self.learn_A else (d_o, d_z)))
        if self.has_head:
            layers.append(("head", (self.d_act, d_z)))
        self._layers = layers
        self.size = sum(r * c for _, (r, c) in layers)

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, (rows, cols) in self._layers:
            out[name] = flat[start:start + rows * cols].reshape(rows, cols)
            start += rows * cols
        return out

    def _init_parameters(self) -> None:
        """``nn.Linear``'s default: kaiming-uniform, i.e. U(±1/sqrt(fan_in)), layer by layer."""
        self.theta = np.empty(self.size)
        self.p = self._views(self.theta)
        for name, (_, fan_in) in self._layers:
            bound = 1.0 / np.sqrt(fan_in)
            self.p[name][...] = self.rng.uniform(-bound, bound, size=self.p[name].shape)
        self.adam_m = np.zeros(self.size)
        self.adam_v = np.zeros(self.size)

    def _allocate(self) -> None:
        """Work buffers, so that a step allocates as little as possible."""
        n, d_o, d_c, d_z = self.batch_size, self.d_o, self.d_c, self.d_z
        self.grad = np.zeros(self.size)
        self.g = self._views(self.grad)
        self._idm_in = np.empty((n, d_o if self.tied else d_c + d_o))
        self._fdm_in = np.empty((n, d_c + d_z)) if self.learn_A else None
        self._pred = np.empty((n, d_o))
        self._dz = np.empty((n, d_z))
        self._z = np.empty((n, d_z))
        self._tmp = np.empty(self.size)
        self._tmp2 = np.empty(self.size)

    # -- data ---------------------------------------------------------------------------------
    def _draw_block(self) -> None:
        """``sample_block`` batches of data, shifts and label masks, in one go."""
        rows = self.batch_size * self.sample_block
        data = self.transition.sample(rows, self.rng, ("obs", "next_obs", "action"))
        block = {"obs": data["obs"], "next_obs": data["next_obs"], "action": data["action"]}
        s = self.spec.augmentation
        # A tied IDM cancels κ₁ and an identity FDM path cancels κ₂ exactly: they are not drawn.
        if s > 0 and not self.tied:
            block["kappa1"] = s * self.rng.standard_normal((rows, self.d_o))
        if s > 0 and self.learn_A:
            block["kappa2"] = s * self.rng.standard_normal((rows, self.d_o))
        if self.has_head and self.labeled_fraction is not None:
            block["labeled"] = (self.rng.random(rows) < self.labeled_fraction).astype(np.float64)
        self._block = block
        self._position = 0

    def _next_batch(self) -> dict[str, np.ndarray]:
        if self._block is None or self._position >= self.sample_block:
            self._draw_block()
        lo = self._position * self.batch_size
        self._position += 1
        return {name: array[lo:lo + self.batch_size] for name, array in self._block.items()}

    # -- one step -----------------------------------------------------------------------------
    def _loss_and_gradient(self, batch: dict[str, np.ndarray]) -> float:
        """Forward pass, loss, and manual backprop into ``self.grad``."""
        n, d_o, d_c = self.batch_size, self.d_o, self.d_c
        frames = d_c // d_o  # a shift κ moves every frame of the context
        p, g = self.p, self.g
        o, o_next = batch["obs"], batch["next_obs"]
        o_now = o if frames == 1 else o[:, d_c - d_o:]
        x = self._idm_in
        if self.tied:
            np.subtract(o_now, o_next, out=x)
        elif "kappa1" in batch:
            shift = batch["kappa1"] if frames == 1 else np.tile(batch["kappa1"], frames)
            np.add(o, shift, out=x[:, :d_c])
            np.add(o_next, batch["kappa1"], out=x[:, d_c:])
        else:
            x[:, :d_c] = o
            x[:, d_c:] = o_next
        if self.learn_A:
            y = self._fdm_in
            z = y[:, d_c:]
            np.matmul(x, p["idm"].T, out=z)
            if "kappa2" in batch:
                shift = batch["kappa2"] if frames == 1 else np.tile(batch["kappa2"], frames)
                np.add(o, shift, out=y[:, :d_c])
            else:
                y[:, :d_c] = o
            np.matmul(y, p["fdm"].T, out=self._pred)
            if "kappa2" in batch:
                self._pred -= batch["kappa2"]
            B = p["fdm"][:, d_c:]
        else:
            z = np.matmul(x, p["idm"].T, out=self._z)
            np.matmul(z, p["fdm"].T, out=self._pred)
            self._pred += o_now
            B = p["fdm"]
        error = self._pred
        error -= o_next
        loss = float(np.vdot(error, error)) / (n * d_o)
        error *= 2.0 / (n * d_o)  # now ∂loss/∂ô'
        if self.learn_A:
            np.matmul(error.T, y, out=g["fdm"])
        else:
            np.matmul(error.T, z, out=g["fdm"])
        dz = np.matmul(error, B, out=self._dz)
        if self.has_head:
            H = p["head"]
            residual = z @ H.T
            residual -= batch["action"]
            if self.labeled_fraction is None:
                loss += self.spec.action_loss_weight / d_o * float(np.vdot(residual, residual)) / n
                coef = 2.0 * self.spec.action_loss_weight / (d_o * n)
                residual *= coef
            else:
                labeled = batch["labeled"]
                count = float(labeled.sum())
                if count > 0:
                    residual *= labeled[:, None]
                    loss += float(np.vdot(residual, residual)) / (count * self.d_act)
                    residual *= 2.0 / (count * self.d_act)
                else:
                    residual[...] = 0.0
            np.matmul(residual.T, z, out=g["head"])
            dz += residual @ H
        np.matmul(dz.T, x, out=g["idm"])
        return loss

    def _adam(self) -> None:
        """PyTorch's Adam update (single-tensor path), on the flat parameter vector."""
        beta1, beta2 = ADAM_BETAS
        t = self.step_count + 1
        m, v, grad, tmp, tmp2 = self.adam_m, self.adam_v, self.grad, self._tmp, self._tmp2
        # exp_avg.lerp_(grad, 1 − β1)
        np.subtract(grad, m, out=tmp)
        tmp *= 1.0 - beta1
        m += tmp
        # exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2)
        v *= beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp
        step_size = self.lr / (1.0 - beta1**t)
        bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
        # denom = sqrt(v)/sqrt(bc2) + eps; param.addcdiv_(m, denom, value=−step_size)
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += ADAM_EPS
        np.divide(m, tmp, out=tmp2)
        tmp2 *= step_size
        self.theta -= tmp2

    def step(self) -> float:
        """One Adam step on a fresh minibatch; returns the minibatch loss before the update."""
        self.last_loss = self._loss_and_gradient(self._next_batch())
        self._adam()
        self.step_count += 1
        return self.last_loss

    def run(self, steps: int, progress: Callable[[int, int, float], None] | None = None) -> Trainer:
        """Take ``steps`` steps; ``progress(step_done, total, loss)`` is called about 100 times."""
        steps = int(steps)
        every = max(1, steps // 100)
        for i in range(steps):
            loss = self.step()
            if progress is not None and ((i + 1) % every == 0 or i + 1 == steps):
                progress(i + 1, steps, loss)
        return self

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
        """Everything a resumed run needs, as arrays (``np.savez(path, **trainer.state())``)."""
        out = {
            "theta": self.theta.copy(),
            "adam_m": self.adam_m.copy(),
            "adam_v": self.adam_v.copy(),
            "step_count": np.array(self.step_count),
            "rng_state": np.array(json.dumps(self.rng.bit_generator.state)),
            "config": np.array(json.dumps({
                "batch_size": self.batch_size, "lr": self.lr,
                "labeled_fraction": self.labeled_fraction, "sample_block": self.sample_block,
            })),
            "block_position": np.array(-1 if self._block is None else self._position),
        }
        if self._block is not None:
            for name, array in self._block.items():
                out[f"block_{name}"] = array.copy()
        return out

    @classmethod
    def from_state(cls, system: System, spec: LAMSpec, state, **overrides) -> Trainer:
        """Resume from :meth:`state` (or the ``np.load`` of its savez); ``overrides`` change e.g. ``lr``.

        ``seed`` may be passed like the constructor's (a caller resuming with the arguments it
        started with); it is ignored, since the saved generator state replaces it.
        """
        config = json.loads(str(np.asarray(state["config"])))
        overrides.pop("seed", None)
        config.update(overrides)
        trainer = cls(system, spec, seed=0, **config)
        theta = np.asarray(state["theta"], dtype=np.float64)
        if theta.shape != trainer.theta.shape:
            raise InputError(f"state: {theta.size} parameters do not fit this system and spec ({trainer.size})")
        trainer.theta[...] = theta
        trainer.adam_m[...] = state["adam_m"]
        trainer.adam_v[...] = state["adam_v"]
        trainer.step_count = int(state["step_count"])
        trainer.rng.bit_generator.state = json.loads(str(np.asarray(state["rng_state"])))
        position = int(state["block_position"])
        if position >= 0:
            prefix = "block_"
            names = [key[len(prefix):] for key in state.keys() if key.startswith(prefix) and key != "block_position"]
            trainer._block = {name: np.array(state[prefix + name], dtype=np.float64) for name in names}
            trainer._position = position
        return trainer


def train(system: System, spec: LAMSpec, steps: int, **kwargs) -> Trainer:
    """Build a :class:`Trainer` (keyword arguments as its constructor's, plus ``progress``) and run it."""
    progress = kwargs.pop("progress", None)
    return Trainer(system, spec, **kwargs).run(steps, progress=progress)
