"""The paper's six simulation studies as sweep definitions (paper §4–§7; docs/theory.md §1.4).

A :class:`Study` is data only: the swept axes under the authors' column names, how the data are
generated, which representation each probe reads, which distribution probes are fitted on and
scored on, and the normalizations of the authors' logs. :mod:`lamproof.studies.evaluate` turns a
:class:`Config` (one point of a sweep) into a CSV row; nothing here computes anything.

Column names follow the authors' logs: ``do``, ``da``, ``dz``, ``db`` (noise dimension),
``sigma`` (noise scale), ``chi`` (policy correlation), ``kappa`` (augmentation scale ``s``),
``mask_ratio`` (fraction of transitions whose action label is used, the paper's "labeled
fraction").
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from lamproof.errors import InputError
from lamproof.lam import LAMSpec, effective_action_weight
from lamproof.systems import System, paper_system

#: Configuration columns, in the authors' order; a study uses the subset it sweeps or fixes.
CONFIG_COLUMNS = ("do", "da", "dz", "db", "sigma", "chi", "kappa", "mask_ratio")

#: Result columns of the authors' logs (``iter`` is the training step count; blank in closed form).
RESULT_COLUMNS = ("iter", "recon_loss", "act_mse", "obs_mse", "noi_mse")

#: Seed of the paper's random matrices (Φ, Ψ, P). Every closed-form number is invariant under a
#: rotation of the data except through Φ's overlap with the noise mean (§6) and with P (§5);
#: one fixed seed keeps every study on the same Φ, as ``paper_system`` draws Φ first.
DEFAULT_SEED = 0

#: Probe protocols: where a probe is fitted and where it (and recon_loss) is scored.
#:  "own"           fitted and scored on the study's own data;
#:  "noise_free"    fitted and scored on the noise-free transition of a system with the same Φ (§4.2);
#:  "random_action" fitted on the policy's data, scored on random actions (χ = 0, same Φ) (§5).
PROTOCOLS = ("own", "noise_free", "random_action")


def _grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    count = int(round((stop - start) / step))
    return tuple(round(start + i * step, 10) for i in range(count + 1))


@dataclass(frozen=True)
class Config:
    """One point of a sweep: the values of the study's configuration columns."""

    study: str
    values: Mapping[str, float]
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __getitem__(self, column: str):
        return self.values[column]

    def get(self, column: str, default=None):
        return self.values.get(column, default)

    def __reduce__(self):  # MappingProxyType does not pickle; worker processes need configs
        return (Config, (self.study, dict(self.values), self.seed))

    @property
    def key(self) -> str:
        """A file-name-safe identifier, stable across runs."""
        parts = [f"{name}{_fmt(self.values[name])}" for name in CONFIG_COLUMNS if name in self.values]
        return "_".join(parts + [f"seed{self.seed}"])


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Study:
    """A sweep and its measurement protocol.

    ``axes`` maps a configuration column to the tuple of values swept (a single value is a fixed
    setting); configurations are their product, keeping ``dz ≤ do`` (and ``da + db ≤ do`` for
    structured noise). ``probes`` lists ``(column, target, representation)``.
    """

    name: str  # "4.1"
    slug: str  # file stem, the authors' log name
    title: str
    noise: str  # paper_system's noise kind
    axes: Mapping[str, tuple]
    probes: tuple[tuple[str, str, str], ...]
    protocol: str = "own"  # see PROTOCOLS; recon_loss is measured where the probes are scored
    noise_scale: float = 1.0  # multiplies the noise probe's fraction of unexplained variance
    steps: int = 40_000  # the paper's training steps
    hue: str = "dz"  # figure: the column drawn as separate curves
    facet: str | None = None  # figure: the column drawn as separate panels
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "axes", MappingProxyType({k: tuple(v) for k, v in self.axes.items()}))

    def __reduce__(self):
        fields_ = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields_["axes"] = dict(self.axes)
        return (_rebuild_study, (fields_,))

    @property
    def columns(self) -> tuple[str, ...]:
        """Configuration columns written to the CSV, in the authors' order."""
        return tuple(c for c in CONFIG_COLUMNS if c in self.axes)

    @property
    def swept(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if len(self.axes[c]) > 1)

    def with_axes(self, **axes) -> Study:
        """The same protocol on other axes (e.g. a reduced sweep for a quick check)."""
        unknown = sorted(set(axes) - set(self.axes))
        if unknown:
            raise InputError(f"{unknown[0]}: not an axis of study {self.name} (axes: {', '.join(self.axes)})")
        merged = dict(self.axes)
        for name, values in axes.items():
            merged[name] = tuple(values) if isinstance(values, (list, tuple, range)) else (values,)
        return replace(self, axes=merged)

    def configs(self, seed: int = DEFAULT_SEED) -> list[Config]:
        names = self.columns
        out = []
        for values in itertools.product(*(self.axes[n] for n in names)):
            point = dict(zip(names, values, strict=True))
            if point["dz"] > point["do"]:
                continue
            if self.noise == "structured" and point["da"] + point["db"] > point["do"]:
                continue
            out.append(Config(self.name, point, seed))
        return out

    # -- what a configuration means -----------------------------------------------------------
    def system(self, config: Config, *, noise_free: bool = False, random_actions: bool = False) -> System:
        """The data of ``config``; ``noise_free``/``random_actions`` give the protocol's scoring data.

        ``paper_system`` draws Φ first from the seed, so all variants share the same Φ.
        """
        d_o, d_a, keywords = self.system_arguments(
            config, noise_free=noise_free, random_actions=random_actions
        )
        return paper_system(d_o, d_a, **dict(keywords))

    def system_arguments(
        self, config: Config, *, noise_free: bool = False, random_actions: bool = False
    ) -> tuple[int, int, tuple]:
        """``(d_o, d_a, keywords)`` of the ``paper_system`` call :meth:`system` makes (hashable):
        configurations with equal arguments have the same data, so a sweep can share one system."""
        noise = "none" if noise_free else self.noise
        keywords = (
            ("noise", noise),
            ("sigma", float(config.get("sigma", 0.0)) if noise != "none" else 0.0),
            ("noise_dim", int(config.get("db", 8)) if noise == "structured" else 8),
            ("chi", 0.0 if random_actions else float(config.get("chi", 0.0))),
            ("seed", config.seed),
        )
        return int(config["do"]), int(config["da"]), keywords

    def spec(self, config: Config) -> LAMSpec:
        """The LAM of ``config``: §6 sweeps ``kappa``; §7 weighs the action loss as the paper's batches do."""
        augmentation = float(config.get("kappa", 0.0))
        rho = float(config.get("mask_ratio", 0.0))
        weight = effective_action_weight(rho, int(config["do"]), int(config["da"])) if rho > 0 else 0.0
        return LAMSpec(int(config["dz"]), augmentation=augmentation, action_loss_weight=weight)

    def labeled_fraction(self, config: Config) -> float | None:
        rho = float(config.get("mask_ratio", 0.0))
        return rho if "mask_ratio" in config.values else None


def _rebuild_study(fields_: dict) -> Study:
    return Study(**fields_)


_CHANGE_PROBES = (
    ("act_mse", "action", "predicted_change"),
    ("obs_mse", "observation", "latent"),
    ("noi_mse", "noise", "latent"),
)
_LATENT_PROBES = (
    ("act_mse", "action", "latent"),
    ("obs_mse", "observation", "latent"),
    ("noi_mse", "noise", "latent"),
)

DZ_2_16 = tuple(range(2, 17))

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "4.1",
            "sec4_1_no_noise",
            "§4.1 no noise: the latent captures min(d_z, d_a) action directions",
            noise="none",
            axes={"do": (128,), "da": tuple(range(2, 17, 2)), "dz": tuple(range(1, 17)), "db": (1,)},
            probes=_CHANGE_PROBES,
            steps=20_000,
            hue="da",
            notes=("db = 1 as in the authors' logs: their noise source exists but is scaled by σ = 0.",),
        ),
        Study(
            "4.2",
            "sec4_2_isotropic_noise",
            "§4.2 isotropic noise never displaces the action",
            noise="isotropic",
            axes={"do": (128,), "da": (8,), "dz": tuple(range(2, 17, 2)), "sigma": _grid(0.0, 1.5, 0.1)},
            probes=_CHANGE_PROBES,
            protocol="noise_free",
            steps=10_000,
            hue="sigma",
            notes=(
                "trained with noise; probes and recon_loss on the noise-free data with the same Φ "
                "(the authors' logs: recon_loss 0.0507 at σ = 0.5, d_z = 2, i.e. 6/128 noise-free, "
                "not (6 + 0.25·126)/128 = 0.29 with noise).",
            ),
        ),
        Study(
            "4.3",
            "sec4_3_structured_noise",
            "§4.3 structured noise stronger than the action is captured first",
            noise="structured",
            axes={"do": (128,), "da": (8,), "dz": DZ_2_16, "db": (8,), "sigma": (0.5, 2.0)},
            probes=_CHANGE_PROBES,
            steps=40_000,
            hue="sigma",
        ),
        Study(
            "5",
            "sec5_policy_correlation",
            "§5 observation-dependent actions: the latent keeps only exploration",
            noise="none",
            axes={"do": (128,), "da": (8,), "dz": DZ_2_16, "db": (8,), "chi": _grid(0.0, 1.0, 0.1)},
            probes=_CHANGE_PROBES,
            protocol="random_action",
            steps=40_000,
            hue="chi",
            notes=(
                "probes fitted on the policy's data and scored on random actions (χ = 0, same Φ); recon_loss "
                "on random actions too (the authors' logs: 0.0594 at χ = 0.5, d_z = 2, i.e. 6(1 + χ²)/128 "
                "= 0.0586, not (1 − χ)²·6/128 = 0.0117 on the policy's data).",
            ),
        ),
        Study(
            "6",
            "sec6_augmentation",
            "§6 augmentation removes observation leakage (uniform noise, nonzero mean)",
            noise="uniform",
            axes={
                "do": (128,),
                "da": (8,),
                "dz": DZ_2_16,
                "db": (128,),
                "sigma": (0.0, 0.1, 0.5, 1.0),
                "kappa": (0.0, 0.01, 0.1, 0.5),
            },
            probes=_LATENT_PROBES,
            noise_scale=1.0 / 12.0,
            steps=40_000,
            hue="kappa",
            facet="sigma",
            notes=(
                "noi_mse is the authors' noise error: mean squared error of ε/σ per dimension, i.e. our "
                "fraction of unexplained variance times Var(ε/σ) = 1/12.",
            ),
        ),
        Study(
            "7",
            "sec7_action_prediction",
            "§7 auxiliary action prediction puts the action first",
            noise="structured",
            axes={
                "do": (128,),
                "da": (8,),
                "dz": DZ_2_16,
                "db": (8,),
                "sigma": (0.5, 1.0, 2.0),
                "kappa": (0.1,),
                "mask_ratio": (0.0, 0.01, 0.05, 0.1),
            },
            probes=_LATENT_PROBES,
            steps=40_000,
            hue="mask_ratio",
            facet="sigma",
            notes=(
                "action loss weight λ = (d_o/d_a)(1 − (1 − mask_ratio)^128): the paper averages it over "
                "the labeled samples of a batch and d_a, the reconstruction over the batch and d_o.",
            ),
        ),
    )
}

STUDY_NAMES = tuple(STUDIES)


#: Studies of lamproof's own beyond the paper's six (built from state-space systems, closed form only):
#: ``exo`` (issue 10, :mod:`lamproof.studies.exo`).
EXTRA_STUDY_NAMES = ("exo",)


def _extra(name: str):
    from lamproof.studies.exo import EXO_STUDY

    return {"exo": EXO_STUDY}[name]


def get_study(name: str) -> Study:
    """The study called ``name`` (``4.1 4.2 4.3 5 6 7``, or ``exo``); a leading ``§``/``sec`` is accepted."""
    if str(name).strip().lower() in EXTRA_STUDY_NAMES:
        return _extra(str(name).strip().lower())
    key = str(name).strip().removeprefix("§").removeprefix("sec").replace("_", ".")
    if key not in STUDIES:
        known = ", ".join(STUDY_NAMES + EXTRA_STUDY_NAMES)
        raise InputError(f"study: unknown study {name!r} (known: {known}, all)")
    return STUDIES[key]


def select(name: str, only: Mapping[str, object] | None = None) -> list[Study]:
    """``all`` (the paper's six, then ``exo``) or one study name, as a list; ``only`` keeps the
    configurations it names.

    ``only`` maps a configuration column to one value or a list of values (numbers, or their
    text as ``--only dz=4`` gives them). Each must be a value the study sweeps; a study without
    one of the columns is left out of ``all``.

    >>> [len(s.configs()) for s in select("4.2", {"dz": "4", "sigma": ["0.5", 1.0]})]
    [2]
    """
    if str(name).strip().lower() == "all":
        studies = list(STUDIES.values()) + [_extra(n) for n in EXTRA_STUDY_NAMES]
    else:
        studies = [get_study(name)]
    if not only:
        return studies
    columns = list(CONFIG_COLUMNS) + [c for s in studies for c in dict(s.axes) if c not in CONFIG_COLUMNS]
    for column in only:
        if column not in columns:
            raise InputError(
                f"--only: unknown column {column!r} (columns: {', '.join(dict.fromkeys(columns))})"
            )
    kept = [s for s in studies if all(column in dict(s.axes) for column in only)]
    if not kept:
        raise InputError(f"--only: no study of {name!r} has the columns {', '.join(only)}")
    return [
        s.with_axes(**{column: _swept_values(s, column, values) for column, values in only.items()})
        for s in kept
    ]


def _swept_values(study: Study, column: str, values) -> tuple:
    """``values`` (one or several, numbers or text) as members of ``study``'s axis ``column``."""
    axis = dict(study.axes)[column]
    chosen = []
    for value in values if isinstance(values, (list, tuple)) else [values]:
        if all(isinstance(v, str) for v in axis):  # a named axis (exo's fdm path)
            match = [v for v in axis if v == str(value)]
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"--only: {column}={value!r} is not a number") from None
            match = [v for v in axis if abs(float(v) - number) <= 1e-9 * max(1.0, abs(number))]
        if not match:
            swept = ", ".join(_fmt(v) for v in axis)
            raise InputError(
                f"--only: {column}={value} is not swept by study {study.name} ({column}: {swept})"
            )
        chosen.append(match[0])
    return tuple(dict.fromkeys(chosen))
