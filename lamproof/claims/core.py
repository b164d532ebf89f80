"""The claim API: a claim is a function ``claim(system, spec, solution)`` that asserts something.

    from lamproof.claims import claim, check
    from lamproof.strategies import systems, lam_specs

    @claim(systems=systems(noise="isotropic"), specs=lambda s: lam_specs(s.d_o),
           statement="The optimal loss is never negative.")
    def loss_nonnegative(system, spec, solution):
        assert solution.optimal_loss >= -1e-9

    result = check(loss_nonnegative, examples=200, seed=0)
    result.verdict            # "holds" | "fails" | "error"
    result.counterexample     # the shrunk (system, spec), its solve file and its LaTeX

Checking draws ``(system, spec)`` pairs with Hypothesis (seeded, no example database, so a seed
gives the same run every time), solves each with :func:`lamproof.solve` and calls the claim.
An ``AssertionError`` is a counterexample, which Hypothesis shrinks to a small, simple one; any
other exception makes the verdict ``"error"`` and is reported with the input that raised it.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException, InvalidArgument, Unsatisfiable

from lamproof.errors import IllConditioned, InputError
from lamproof.lam import LAMSpec
from lamproof.numeric.closed_form import solve
from lamproof.systems import System

EXPECTATIONS = ("true", "false")
VERDICTS = ("holds", "fails", "undecided", "error")

#: Default absolute tolerance of :func:`assert_close`: the closed form and its probes are exact
#: up to float64 round-off amplified by pseudo-inverses (~1e-12 on the systems the strategies
#: draw); 1e-7 is far above that and far below any effect a claim is about.
TOLERANCE = 1e-7


def assert_close(actual, expected, what: str = "value", *, tol: float = TOLERANCE) -> None:
    """``assert |actual − expected| <= tol`` (elementwise), with a message naming both numbers.

    ``tol`` defaults to :data:`TOLERANCE` (1e-7, absolute).

    >>> assert_close(0.5 + 1e-12, 0.5, "action probe")
    >>> assert_close(0.75, 0.5, "action probe")
    Traceback (most recent call last):
        ...
    AssertionError: action probe: got 0.75, expected 0.5 (tolerance 1e-07)
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape or not np.all(np.abs(a - e) <= tol):
        raise AssertionError(f"{what}: got {_short(a)}, expected {_short(e)} (tolerance {tol:g})")


class Undecided(Exception):
    """This example neither proves nor refutes the claim: raise it from a claim to say so.

    A claim is refuted only by an attained member (a concrete counterexample that ``lamproof solve``
    re-checks) and holds only when what it asserts is proved over the whole optimal family; an
    example where neither is shown makes the verdict ``"undecided"`` (and a solve that float64
    cannot decide, :class:`~lamproof.errors.IllConditioned`, counts as such an example).

    >>> from lamproof.strategies import systems
    >>> @claim(systems=systems(d_o=2, d_a=1))
    ... def never_settled(system, spec, solution):
    ...     raise Undecided("nothing here settles it")
    >>> check(never_settled, examples=3).verdict
    'undecided'
    """


def assert_family_within(
    score, low: float, high: float, what: str = "probe", *, tol: float = TOLERANCE
) -> None:
    """Every optimal member's score lies in ``[low, high]`` (up to ``tol``), for a :class:`~lamproof.ProbeScore`.

    Holds when the *proved* interval ``[score.min, score.max]`` lies inside; refuted
    (``AssertionError``, naming the member) when the canonical member or a witnessed member scores
    outside; :class:`Undecided` otherwise. Paper §4–§6: what an optimal latent carries is a range.

    >>> from lamproof import LAMSpec, paper_system, probe, solve
    >>> score = probe(solve(paper_system(8, 2), LAMSpec(d_z=1)), "observation", "latent")  # [0.875, 1]
    >>> assert_family_within(score, 0.8, 1.0, "observation probe")  # proved over the whole family
    >>> assert_family_within(score, 0.95, 1.0, "observation probe")
    Traceback (most recent call last):
    AssertionError: observation probe: the member witnessing the minimum (exact range) scores 0.875, expected within [0.95, 1] (tolerance 1e-07)
    """
    if score.value is None:
        raise AssertionError(f"{what}: undefined (the target has no variance)")
    witnessed = [("the canonical member", score.value)]
    for end in ("min", "max"):
        value = (score.witness_scores or {}).get(end)
        if value is not None:
            witnessed.append((f"the member witnessing the {end}imum ({score.bounds} range)", value))
    for who, value in witnessed:
        if value < low - tol or value > high + tol:
            wanted = f"{low:.6g}" if low == high else f"within [{low:.6g}, {high:.6g}]"
            raise AssertionError(f"{what}: {who} scores {value:.6g}, expected {wanted} (tolerance {tol:g})")
    if score.min is not None and score.max is not None and score.min >= low - tol and score.max <= high + tol:
        return
    proved = (
        "no proved range"
        if score.min is None
        else f"the proved range is [{score.min:.6g}, {_end(score.max)}]"
    )
    raise Undecided(f"{what}: every witnessed member agrees, but {proved} ({score.bounds})")


def assert_family(score, expected: float, what: str = "probe", *, tol: float = TOLERANCE) -> None:
    """Every optimal member scores ``expected`` (see :func:`assert_family_within`).

    >>> from lamproof import LAMSpec, paper_system, probe, solve
    >>> score = probe(solve(paper_system(8, 2), LAMSpec(d_z=1)), "action", "predicted_change")
    >>> assert_family(score, 0.5, "action probe")  # (d_a − d_z)/d_a for every member, paper §4.1
    """
    assert_family_within(score, expected, expected, what, tol=tol)


def assert_value(score, expected: float, what: str = "probe", *, tol: float = TOLERANCE) -> None:
    """The canonical member scores ``expected``: a statement about one member, refuted by it alone.

    >>> from lamproof import LAMSpec, paper_system, probe, solve
    >>> score = probe(solve(paper_system(8, 2), LAMSpec(d_z=1)), "observation", "latent")
    >>> assert_value(score, 1.0, "canonical latent")  # the leak-free member; the family reaches 0.875
    """
    if score.value is None:
        raise AssertionError(f"{what}: undefined (the target has no variance)")
    assert_close(score.value, expected, what, tol=tol)


def _end(value) -> str:
    return "∞" if value is None else f"{value:.6g}"


def _short(array: np.ndarray) -> str:
    if array.ndim == 0:
        return f"{float(array):.6g}"
    return np.array2string(array, precision=6, suppress_small=True, max_line_width=200)


# -- claims --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A claim and what it quantifies over.

    ``systems``: a strategy of :class:`lamproof.System` (default :func:`lamproof.strategies.systems`
    with any noise). ``specs``: a strategy of :class:`lamproof.LAMSpec`, or a function of the
    drawn system returning one (default ``lam_specs(system.d_o)``). ``expect``: ``"true"`` for
    a claim that should hold, ``"false"`` for a plausible statement that should be refuted.

    >>> from lamproof.claims import claim
    >>> @claim(expect="false")
    ... def latent_is_clean(system, spec, solution):
    ...     "The latent carries no observation."
    >>> latent_is_clean.name, latent_is_clean.expect, latent_is_clean.statement
    ('latent_is_clean', 'false', 'The latent carries no observation.')
    """

    function: Callable[[System, LAMSpec, Any], Any]
    name: str
    statement: str = ""
    expect: str = "true"
    systems: Any = None
    specs: Any = None
    source: str = ""
    note: str = ""

    def __call__(self, system, spec, solution):
        return self.function(system, spec, solution)

    @property
    def assumptions(self) -> str:
        return self.statement


def claim(
    function=None,
    *,
    systems=None,
    specs=None,
    expect: str = "true",
    name: str | None = None,
    statement: str | None = None,
    source: str = "",
    note: str = "",
):
    """Declare a claim: ``@claim`` or ``@claim(systems=..., specs=..., expect=..., name=..., statement=...)``.

    Returns a :class:`Claim` (still callable as the function). ``statement`` defaults to the
    function's docstring, ``name`` to its name.

    >>> from lamproof.claims import assert_close
    >>> @claim
    ... def loss_is_innovation_tail(system, spec, solution):  # paper §3; docs/theory.md §2
    ...     assert_close(solution.optimal_loss, sum(solution.innovation.eigenvalues[spec.d_z :]), "loss")
    >>> check(loss_is_innovation_tail, examples=10).verdict
    'holds'
    """
    if expect not in EXPECTATIONS:
        raise InputError(f"expect: must be 'true' or 'false', got {expect!r}")
    if systems is not None and not isinstance(systems, st.SearchStrategy):
        raise InvalidArgument(f"systems={systems!r} must be a Hypothesis strategy of Systems")
    if specs is not None and not (isinstance(specs, st.SearchStrategy) or callable(specs)):
        raise InvalidArgument(f"specs={specs!r} must be a strategy or a function of the system")

    def wrap(fn):
        if isinstance(fn, Claim):
            fn = fn.function
        if not callable(fn):
            raise TypeError(f"claim: expected a function, got {fn!r}")
        doc = inspect.cleandoc(fn.__doc__) if fn.__doc__ else ""
        return Claim(
            fn,
            name or fn.__name__,
            statement if statement is not None else doc,
            expect,
            systems,
            specs,
            source,
            note,
        )

    return wrap if function is None else wrap(function)


def as_claim(obj) -> Claim:
    """A :class:`Claim` from a claim or a plain function (default strategies, expected true).

    >>> def claim_loss_is_nonnegative(system, spec, solution):
    ...     assert solution.optimal_loss >= 0
    >>> as_claim(claim_loss_is_nonnegative).expect
    'true'
    """
    return obj if isinstance(obj, Claim) else claim(obj)


def signature_problem(function) -> str | None:
    """Why ``function`` cannot be called as ``function(system, spec, solution)`` (``None``: it can)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None, None)
    except TypeError:
        shown = f"{getattr(function, '__name__', 'claim')}{signature}"
        return f"wrong signature {shown}: a claim takes (system, spec, solution)"
    return None


# -- results -------------------------------------------------------------------------------------
@dataclass
class Counterexample:
    """The (shrunk) input that refuted a claim or made it raise.

    ``solve_file`` is a ``lamproof solve`` file (docs/cli.md) that reproduces it.

    >>> from lamproof import LAMSpec, System
    >>> ce = describe(System([[1.0]]), LAMSpec(d_z=1), "loss: got 1, expected 0")
    >>> ce.solve_file
    {'system': {'action_matrix': [[1.0]], 'obs_mean': [0.0], 'obs_cov': [[1.0]], 'dynamics': [[1.0]], 'policy_gain': [[0.0]], 'exploration_cov': [[1.0]], 'noise_mean': [0.0], 'noise_cov': [[0.0]], 'noise_distribution': 'gaussian'}, 'lam': {'d_z': 1, 'fdm_obs_path': 'learned', 'idm': 'free', 'augmentation': 0.0, 'action_loss_weight': 0.0, 'horizon': 1, 'context': 1}}
    """

    system: System
    spec: LAMSpec
    message: str
    solve_file: dict  # what `lamproof solve` accepts
    matrices: dict  # the system's fields that differ from the defaults, and the spec
    latex: str

    def as_dict(self) -> dict:
        return {
            "message": self.message,
            "matrices": self.matrices,
            "solve_file": self.solve_file,
            "latex": self.latex,
        }


@dataclass
class ClaimResult:
    """The outcome of :func:`check`. ``verdict`` is ``"holds"``, ``"fails"`` (with the shrunk
    ``counterexample``) or ``"error"`` (the claim raised, timed out or crashed: ``error`` says
    which); ``meets_expectation`` compares it with the claim's ``expect``.

    >>> from lamproof.claims import check
    >>> result = check(lambda system, spec, solution: None, examples=3)
    >>> result.verdict, result.meets_expectation, result.counterexample
    ('holds', True, None)
    """

    name: str
    statement: str
    expect: str
    verdict: str  # "holds" | "fails" | "undecided" | "error"
    examples: int  # examples tried (up to and including the first failure)
    calls: int  # claim evaluations, shrinking included
    seconds: float
    counterexample: Counterexample | None = None
    error: str | None = None  # the exception, for verdict "error"
    source: str = ""
    note: str = ""
    traceback: str | None = field(default=None, repr=False)

    @property
    def meets_expectation(self) -> bool:
        return (self.verdict == "holds" and self.expect == "true") or (
            self.verdict == "fails" and self.expect == "false"
        )

    def _repr_html_(self) -> str:  # Jupyter: verdict and counterexample (lamproof.display)
        from lamproof.display import claim_html

        return claim_html(self)

    def _repr_latex_(self) -> str | None:
        from lamproof.display import claim_latex

        return claim_latex(self)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "statement": self.statement,
            "source": self.source,
            "expect": self.expect,
            "verdict": self.verdict,
            "meets_expectation": self.meets_expectation,
            "examples": self.examples,
            "calls": self.calls,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "note": self.note,
            "counterexample": None if self.counterexample is None else self.counterexample.as_dict(),
        }


def error_result(
    name: str, message: str, *, statement: str = "", expect: str = "true", source: str = ""
) -> ClaimResult:
    """A result for a claim that could not be run at all (bad file, bad signature)."""
    return ClaimResult(name, statement, expect, "error", 0, 0, 0.0, error=message, source=source)


# -- presenting a counterexample -----------------------------------------------------------------
_DEFAULTS = {
    "obs_mean": lambda s: np.zeros(s.d_o),
    "obs_cov": lambda s: np.eye(s.d_o),
    "dynamics": lambda s: np.eye(s.d_o),
    "policy_gain": lambda s: np.zeros((s.d_a, s.d_o)),
    "exploration_cov": lambda s: np.eye(s.d_a),
    "noise_mean": lambda s: np.zeros(s.d_o),
    "noise_cov": lambda s: np.zeros((s.d_o, s.d_o)),
}
_SYMBOLS = {
    "action_matrix": "G",
    "obs_mean": r"\mu_o",
    "obs_cov": r"\Sigma_o",
    "dynamics": "F",
    "policy_gain": "K",
    "exploration_cov": r"\Sigma_e",
    "noise_mean": r"\mu_\varepsilon",
    "noise_cov": r"\Sigma_\varepsilon",
}


def _display_rational(x: float):
    """A number as LaTeX shows it in a counterexample: the nearest small rational (``0.1 → 1/10``),
    else a 6-digit float. Display only: exact arithmetic takes floats at their binary value
    (:func:`lamproof.control.exact_matrix`; docs/theory.md §17)."""
    import sympy

    value = sympy.nsimplify(float(x), rational=True, tolerance=1e-10)
    # keep the float when no small rational explains it (e.g. an irrational sigma)
    if isinstance(value, sympy.Rational) and value.q > 10_000:
        value = sympy.Float(float(x), 6)
    return value


def _latex_matrix(array: np.ndarray) -> str:
    import sympy

    rows = array.reshape(1, -1) if array.ndim == 1 else array
    matrix = sympy.Matrix([[_display_rational(x) for x in row] for row in rows])
    if array.ndim == 1:
        matrix = matrix.T
    return sympy.latex(matrix)


#: A state-space system's fields (:class:`lamproof.statespace.StateSpaceSystem`), their defaults and symbols.
_STATE_SPACE_DEFAULTS = {
    "observation": lambda s: np.eye(s.n) if s.n == s.d_o else None,
    "process_noise_mean": lambda s: np.zeros(s.n),
    "process_noise_cov": lambda s: np.zeros((s.n, s.n)),
    "observation_noise_cov": lambda s: np.zeros((s.d_o, s.d_o)),
    "policy_gain": lambda s: np.zeros((s.d_a, s.d_o)),
    "exploration_cov": lambda s: np.eye(s.d_a),
}
_STATE_SPACE_SYMBOLS = {
    "dynamics": "F",
    "action_matrix": "G",
    "observation": "H",
    "process_noise_mean": r"\mu_w",
    "process_noise_cov": r"\Sigma_w",
    "observation_noise_cov": r"\Sigma_v",
    "policy_gain": "K",
    "exploration_cov": r"\Sigma_e",
}


def _state_space_parts(system) -> tuple[dict, list[str]]:
    """The fields of a state-space counterexample that differ from the defaults, and their LaTeX."""
    matrices: dict = {}
    parts = []
    for name, symbol in _STATE_SPACE_SYMBOLS.items():
        value = getattr(system, name)
        default = _STATE_SPACE_DEFAULTS.get(name, lambda s: None)(system)
        if default is not None and np.array_equal(value, default):
            continue
        matrices[name] = value.tolist()
        parts.append(f"{symbol} = {_latex_matrix(value)}")
    if system.exogenous:
        matrices["exogenous"] = list(system.exogenous)
        parts.append(r"\text{exogenous } " + ", ".join(f"s_{{{i + 1}}}" for i in system.exogenous))
    if not system.stationary:
        matrices["initial"] = {"mean": system.initial_mean.tolist(), "cov": system.initial_cov.tolist()}
        parts.append(rf"s_0 \sim ({_latex_matrix(system.initial_mean)}, {_latex_matrix(system.initial_cov)})")
    return matrices, parts


def describe(system, spec: LAMSpec, message: str) -> Counterexample:
    """The :class:`Counterexample` of ``system`` (a System or a StateSpaceSystem) and ``spec`` with the
    failure ``message``: the fields that differ from the defaults (as lists and as LaTeX) and a solve
    file (docs/cli.md).

    >>> from lamproof import LAMSpec, System
    >>> ce = describe(System([[1.0]], noise_cov=[[0.5]]), LAMSpec(d_z=1), "boom")
    >>> sorted(ce.matrices), ce.message
    (['action_matrix', 'lam', 'noise_cov'], 'boom')
    """
    from lamproof.api import spec_to_dict

    matrices: dict = {}
    parts = []
    if not isinstance(system, System):  # a state-space system
        matrices, parts = _state_space_parts(system)
    for name in ("action_matrix", *_DEFAULTS) if isinstance(system, System) else ():
        value = getattr(system, name)
        if name != "action_matrix" and np.array_equal(value, _DEFAULTS[name](system)):
            continue
        matrices[name] = value.tolist()
        parts.append(f"{_SYMBOLS[name]} = {_latex_matrix(value)}")
    if isinstance(system, System) and system.noise_distribution != "gaussian":
        matrices["noise_distribution"] = system.noise_distribution
        parts.append(r"\varepsilon \text{ " + system.noise_distribution + "}")
    matrices["lam"] = spec.to_dict()
    lam = [f"d_z = {spec.d_z}"]
    if spec.fdm_obs_path != "learned":
        lam.append(r"A = I")
    if spec.idm != "free":
        lam.append(r"D = -C")
    if spec.augmentation:
        lam.append(f"s = {sympy_text(spec.augmentation)}")
    if spec.action_loss_weight:
        lam.append(rf"\lambda = {sympy_text(spec.action_loss_weight)}")
    if spec.horizon != 1:
        lam.append(f"k = {spec.horizon}")
    if spec.context != 1:
        lam.append(f"T = {spec.context}")
    latex = ",\\quad ".join(parts + lam)
    return Counterexample(system, spec, message, spec_to_dict(system, spec), matrices, latex)


def sympy_text(x: float) -> str:
    import sympy

    return sympy.latex(_display_rational(x))


# -- checking --------------------------------------------------------------------------------------
class ClaimExit(Exception):
    """``SystemExit`` raised inside a claim, reported as that claim's error."""


def _message(error: BaseException) -> str:
    text = str(error).strip()
    kind = type(error).__name__
    if isinstance(error, AssertionError):
        return text or "assertion failed"
    return f"{kind}: {text}" if text else kind


#: Shrinking a counterexample stops after this many seconds (Hypothesis's own limit is 300 s) and
#: reports the smallest one found so far: a failure that depends on particular numbers (round-off
#: in a solver, say) may not shrink to simple matrices, and the run must still end in time.
SHRINK_SECONDS = 20.0


def check(
    obj, *, examples: int = 100, seed: int = 0, shrink: bool = True, shrink_seconds: float = SHRINK_SECONDS
) -> ClaimResult:
    """Check one claim over ``examples`` random ``(system, spec)`` pairs; never raises for a bad claim.

    ``shrink=False`` reports the first counterexample found without minimizing it (faster);
    shrinking stops after ``shrink_seconds``.

    Contract: Hypothesis draws ``(system, spec)`` from the claim's strategies (docs/theory.md
    §19), solves each exactly (:func:`lamproof.solve`) and calls the claim; the first failure is
    shrunk to a small counterexample.

    >>> from lamproof import probe
    >>> from lamproof.strategies import systems
    >>> @claim(systems=systems(noise="isotropic"))
    ... def latent_is_clean(system, spec, solution):  # false: observation leakage is free (paper insight 3)
    ...     assert probe(solution, "observation", "latent").min >= 1 - 1e-9, "leakage"
    >>> result = check(latent_is_clean, examples=20)
    >>> result.verdict, result.counterexample.system.d_o
    ('fails', 1)
    """
    from lamproof.strategies import problems

    c = as_claim(obj)
    start = time.perf_counter()
    problem = signature_problem(c.function)
    if problem:
        return error_result(c.name, problem, statement=c.statement, expect=c.expect, source=c.source)
    try:
        strategy = problems(c.systems if c.systems is not None else _default_systems(), c.specs)
    except HypothesisException as error:
        return error_result(
            c.name, f"bad strategy: {error}", statement=c.statement, expect=c.expect, source=c.source
        )

    state = {
        "calls": 0,
        "first_failure": None,
        "last": None,
        "failed_at": None,
        "undecided": None,
        "undecided_count": 0,
    }

    def run(problem):
        state["calls"] += 1
        system, spec = problem
        try:
            try:
                solution = solve(system, spec)
                c.function(system, spec, solution)
            except SystemExit as stop:  # an error of this claim, not the end of the whole check
                raise ClaimExit(f"sys.exit({stop.code!r}) called inside the claim") from None
            except (Undecided, IllConditioned) as why:  # neither proved nor refuted here: keep looking
                state["undecided_count"] += 1
                if state["undecided"] is None:
                    state["undecided"] = (system, spec, _message(why))
                return
        except Exception as error:
            state["last"] = (system, spec, error, traceback.format_exc())
            if state["first_failure"] is None:
                state["first_failure"] = state["calls"]
                state["failed_at"] = time.perf_counter()
            raise

    test = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate),
    )(hypothesis_seed(seed)(given(strategy)(run)))

    verdict, counterexample, error_text, trace = "holds", None, None, None
    from hypothesis.internal.conjecture import (
        engine,  # the shrink time limit lives here
    )

    saved_limit = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    try:
        if saved_limit is not None:
            engine.MAX_SHRINKING_SECONDS = shrink_seconds
        test()
    except Unsatisfiable:
        verdict, error_text = "error", "no example satisfied the claim's assumptions (hypothesis.assume)"
    except InvalidArgument as error:
        verdict, error_text = "error", f"bad strategy: {error}"
    except Exception as error:  # the shrunk failure, re-raised by Hypothesis
        last = state["last"]
        raised = error
        if last is not None:
            system, spec, raised, trace = last
            counterexample = describe(system, spec, _message(raised))
        if isinstance(raised, AssertionError):
            verdict = "fails"
        else:
            verdict, error_text = "error", _message(raised)
            trace = trace or traceback.format_exc()
    finally:
        if saved_limit is not None:
            engine.MAX_SHRINKING_SECONDS = saved_limit
    if verdict == "holds" and state["undecided"] is not None:
        system, spec, message = state["undecided"]
        verdict, counterexample = "undecided", describe(system, spec, message)
        error_text = f"{state['undecided_count']} example(s) neither proved nor refuted; the first: {message}"
    note = c.note
    if state["failed_at"] is not None and time.perf_counter() - state["failed_at"] >= shrink_seconds:
        note = (note + " " if note else "") + (
            f"(shrinking stopped after {shrink_seconds:g} s: the counterexample may not be minimal)"
        )
    calls = state["calls"]
    tried = calls if state["first_failure"] is None else state["first_failure"]
    return ClaimResult(
        c.name,
        c.statement,
        c.expect,
        verdict,
        tried,
        calls,
        time.perf_counter() - start,
        counterexample,
        error_text,
        c.source,
        note,
        trace,
    )


def _default_systems():
    from lamproof.strategies import systems

    return systems(noise="any")


def check_all(
    claims, *, examples: int = 100, seed: int = 0, shrink: bool = True, on_result=None
) -> list[ClaimResult]:
    """Check claims in order (``ClaimResult`` entries, e.g. load errors, are passed through).

    >>> results = check_all([lambda system, spec, solution: None], examples=2)
    >>> [r.verdict for r in results]
    ['holds']
    """
    results = []
    for item in claims:
        result = (
            item
            if isinstance(item, ClaimResult)
            else check(item, examples=examples, seed=seed, shrink=shrink)
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
