"""What every derivation shares: its results' type, the check recorder, the one ``verify`` body,
the Hypothesis runner, the report, LaTeX.

A derivation's ``derive()`` returns a frozen :class:`Derived` (its SymPy results as named fields).
Its ``verify()`` is made by :func:`verifier`: it compares the *lambdified* symbolic result with an
*independent* numeric route (the population minimizer, probes of its parameters, or the
closed-form solver where that is the other route) on systems drawn by Hypothesis, and returns a
:class:`VerificationReport`. The checker records every comparison, never stops at the first
failure, and keeps the worst error, so a report says how close the two routes came.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from lamproof.errors import InputError

#: Failures kept in a report (the count is always exact).
MAX_FAILURES_SHOWN = 10

#: The population minimizer reaches the exact objective to ~1e-9 relative (its own setting);
#: objective values are compared at 1e-7 relative, which leaves two orders of margin.
OBJECTIVE_RTOL = 1e-7
#: Probe scores depend on the minimizer's *parameters*, which an objective accurate to ε fixes
#: only to ~√ε (the objective is flat to second order at the minimum): 1e-4 absolute, in units
#: of the score (a fraction of variance), far below any difference a formula could make.
PROBE_ATOL = 1e-4
#: Exact-arithmetic checks allow no error at all.
EXACT = 0


@dataclass(frozen=True)
class Derived:
    """What a derivation's ``derive()`` returns: its SymPy steps and results as named fields.

    Each derivation subclasses it (``Results``) with its own fields. Frozen because ``derive()`` is
    cached: no caller can change the derivation another caller reads. A mutation test swaps one
    result (:meth:`replace`) and hands the copy to ``verify(results=…)``, which must then fail.
    """

    def replace(self, **changes) -> Derived:
        """A copy with the named results changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass
class VerificationReport:
    """The outcome of one derivation's ``verify()``."""

    name: str
    title: str
    checks: list[str]  # the names of the checks, in order
    checks_run: int  # comparisons made
    examples: int  # systems drawn
    worst_error: float  # the largest error over all comparisons (0.0 when all were exact)
    seconds: float
    passed: bool
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    exact: bool = False

    def _repr_html_(self) -> str:  # Jupyter (lamproof.display)
        from lamproof.display import report_html

        return report_html(self)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "checks": self.checks,
            "checks_run": self.checks_run,
            "examples": self.examples,
            "worst_error": self.worst_error,
            "seconds": self.seconds,
            "passed": self.passed,
            "failures": self.failures,
            "failure_count": self.failure_count,
            "exact": self.exact,
        }


class Checker:
    """Records comparisons between a formula and an independent route."""

    def __init__(self, name: str, title: str):
        self.name, self.title = name, title
        self.check_names: list[str] = []
        self.runs = 0
        self.examples = 0
        self.worst = 0.0
        self.failures: list[str] = []
        self.failure_count = 0
        self.started = time.perf_counter()

    def _record(self, check: str, error: float, ok: bool, context: str) -> None:
        if check not in self.check_names:
            self.check_names.append(check)
        self.runs += 1
        if np.isfinite(error):
            self.worst = max(self.worst, float(error))
        else:
            self.worst = float("inf")
        if not ok:
            self.failure_count += 1
            if len(self.failures) < MAX_FAILURES_SHOWN:
                self.failures.append(f"{check}: {context}")

    def close(
        self,
        check: str,
        formula,
        independent,
        *,
        rtol: float | None = None,
        atol: float | None = None,
        context: str = "",
    ) -> None:
        """``|formula − independent|`` within ``atol`` (absolute) or ``rtol·max(1, |independent|)``."""
        f, g = float(formula), float(independent)
        if atol is not None:
            error = abs(f - g)
            ok = error <= atol
        else:
            error = abs(f - g) / max(1.0, abs(g))
            ok = error <= (OBJECTIVE_RTOL if rtol is None else rtol)
        ok = ok and np.isfinite(f) and np.isfinite(g)
        self._record(check, error, ok, f"formula {f:.10g} vs independent {g:.10g} ({context})")

    def equal(self, check: str, formula, computed, *, context: str = "") -> None:
        """Exact equality of two SymPy values (zero tolerance)."""
        difference = sympy.nsimplify(sympy.simplify(sympy.sympify(formula) - sympy.sympify(computed)))
        ok = difference == 0
        error = 0.0 if ok else abs(float(difference))
        self._record(check, error, ok, f"formula {formula} vs exact {computed} ({context})")

    def sampled(self, check: str, estimate, exact, *, atol: float, context: str = "") -> None:
        """A Monte Carlo estimate within ``atol·max(1, |exact|)`` of the exact value.

        Passes or fails like :meth:`close`, but its error (statistical, ~1/√n) is not folded into
        ``worst_error``, which reports how closely the deterministic routes agree.
        """
        f, g = float(estimate), float(exact)
        error = abs(f - g) / max(1.0, abs(g))
        ok = bool(np.isfinite(f) and np.isfinite(g) and error <= atol)
        self._record(
            check, 0.0, ok, f"sampled {f:.6g} vs exact {g:.6g}, error {error:.3g} > {atol:g} ({context})"
        )

    def holds(self, check: str, ok: bool, *, error: float = 0.0, context: str = "") -> None:
        self._record(check, error, bool(ok), context or "does not hold")

    def report(self, exact: bool = False) -> VerificationReport:
        return VerificationReport(
            self.name,
            self.title,
            list(self.check_names),
            self.runs,
            self.examples,
            self.worst,
            time.perf_counter() - self.started,
            self.failure_count == 0 and self.runs > 0,
            list(self.failures),
            self.failure_count,
            exact,
        )


#: A feature direction of a solver's representation whose variance on a *shifted* transition
#: (another policy, noise-free data) is below this fraction of the representation's variance on
#: the data it was trained on is round-off of an exact zero (the minimizer's parameters carry
#: ~1e-5 relative error); a scale-free probe would otherwise amplify it to O(1).
SHIFTED_RTOL = 1e-7


def significant_features(features: np.ndarray, trained, shifted) -> np.ndarray:
    """The combinations of ``features`` that do not vanish on ``shifted`` (rows of a new map)."""
    observed = shifted.stacked("obs", "next_obs")
    reference = float(np.max(np.linalg.eigvalsh(trained.cov(features @ trained.stacked("obs", "next_obs")))))
    values, vectors = np.linalg.eigh(shifted.cov(features @ observed))
    keep = values > SHIFTED_RTOL * max(reference, 1e-300)
    return vectors[:, keep].T @ features


_LAMBDIFIED: dict = {}


def evaluate(expr, values: dict) -> float:
    """A scalar formula at ``values`` (``{symbol: number}``), through a cached ``sympy.lambdify``."""
    symbols = tuple(sorted(values, key=str))
    key = (expr, symbols)
    f = _LAMBDIFIED.get(key)
    if f is None:
        f = _LAMBDIFIED[key] = sympy.lambdify(symbols, expr, modules="math")
    return float(f(*(values[s] for s in symbols)))


def run_examples(strategy, body: Callable, *, examples: int, seed: int, checker: Checker) -> None:
    """Run ``body(case)`` on ``examples`` cases drawn by Hypothesis from ``strategy``.

    Reproducible (``@seed``, no example database), generation only: ``body`` records into the
    checker instead of raising, so every example runs and the worst error is kept. An
    exception inside ``body`` is recorded as a failure of the check ``"runs"``. ``examples`` is a
    positive integer (checked by :func:`verify`, the boundary).
    """

    def guarded(case):
        checker.examples += 1
        try:
            body(case)
        except Exception as error:  # a crash is a failed check, reported with the case
            checker.holds(
                "runs", False, error=float("inf"), context=f"{type(error).__name__}: {error} on {case!r}"
            )

    runner = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(hypothesis_seed(seed)(given(strategy)(guarded)))
    # The systems are tiny (d_o ≤ 6): threaded OpenBLAS gains nothing on them and, on a busy
    # machine, its spinning threads made `lamproof verify` ~10x slower (60 s instead of 7 s).
    from lamproof._blas import single_threaded_blas

    with single_threaded_blas():
        runner()


#: A numeric check: a function returning the Hypothesis cases, the body
#: ``check(case, results, checker)`` that compares the formula with the independent route on one
#: case, and how many cases per ``examples``.
NumericCheck = tuple[Callable[[], st.SearchStrategy], Callable, int]


def verifier(
    name: str,
    title: str,
    derive: Callable[[], Derived],
    *,
    default_examples: int,
    doc: str,
    fixed: Callable | None = None,
    numeric: Sequence[NumericCheck] = (),
    exact_case: Callable | None = None,
    exact_examples: int = 3,
) -> Callable[..., VerificationReport]:
    """A derivation's ``verify(examples=None, seed=0, exact=False, results=None)``: the one body every
    derivation shares, given its checks.

    - ``fixed(results, checker)``: the checks on no drawn system (symbolic identities, fixed
      instances);
    - each ``(cases, check, per_example)`` of ``numeric``: ``check(case, results, checker)`` on
      ``per_example * examples`` cases drawn by Hypothesis from ``cases()`` (:func:`run_examples`,
      seed ``seed``);
    - with ``exact``, ``exact_case(rng, results, checker)`` on ``min(examples, exact_examples)``
      rational systems from ``numpy.random.default_rng(seed)``, with zero tolerance.

    ``results`` is ``derive()`` or a changed copy (``derive().replace(…)``, a mutation test), and is
    what every check reads, so a wrong formula anywhere shows as a failure. ``examples`` defaults
    to ``default_examples``; anything but a positive integer is an :class:`InputError`.
    """

    def verify(
        examples: int | None = None, seed: int = 0, exact: bool = False, results: Derived | None = None
    ) -> VerificationReport:
        examples = default_examples if examples is None else examples
        if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
            raise InputError(f"examples: expected a positive integer, got {examples!r}")
        results = derive() if results is None else results
        checker = Checker(name, title)
        if fixed is not None:
            fixed(results, checker)
        for cases, check, per_example in numeric:
            run_examples(
                cases(),
                lambda case, check=check: check(case, results, checker),
                examples=per_example * examples,
                seed=seed,
                checker=checker,
            )
        if exact and exact_case is not None:
            rng = np.random.default_rng(seed)
            for _ in range(min(examples, exact_examples)):
                exact_case(rng, results, checker)
        return checker.report(exact)

    verify.__doc__ = doc
    verify.__module__ = getattr(derive, "__module__", __name__)
    return verify


def generator_seeds() -> st.SearchStrategy[int]:
    """Seeds for NumPy Generators that build each system's matrices."""
    return st.integers(min_value=0, max_value=2**31 - 1)


# -- LaTeX -----------------------------------------------------------------------------------------
def tex(expr) -> str:
    return sympy.latex(expr)


def display(*lines: str) -> str:
    """A display block of one or more aligned lines (``&`` marks the alignment)."""
    body = " \\\\\n".join(lines)
    return "\\begin{align*}\n" + body + "\n\\end{align*}\n"


def broken(lhs: str, expr, per_line: int = 2, rel: str = "=") -> str:
    """``lhs rel expr`` on several aligned lines, ``per_line`` top-level terms each."""
    terms = list(sympy.Add.make_args(expr)) if not isinstance(expr, sympy.MatAdd) else list(expr.args)
    if len(terms) <= per_line:
        return f"{lhs} &{rel} {tex(expr)}"
    chunks = [terms[i : i + per_line] for i in range(0, len(terms), per_line)]
    lines = []
    for i, chunk in enumerate(chunks):
        text = " + ".join(tex(t) for t in chunk).replace("+ -", "- ")
        lines.append((f"{lhs} &{rel} " if i == 0 else "&\\quad + ") + text)
    return " \\\\\n".join(lines)


def section(
    name: str,
    title: str,
    *,
    statement: str,
    assumptions: list[str],
    steps: list[str],
    result: str,
    check: str,
) -> str:
    """One derivation as a LaTeX section (an appendix of the report)."""
    items = "\n".join(f"  \\item {a}" for a in assumptions)
    step_text = "\n".join(steps)
    return (
        f"% Generated by lamproof.derivations ({name}); regenerate with\n"
        f"% `python -m lamproof.derivations --write`. Do not edit by hand.\n"
        f"\\section{{{name}: {title}}}\n\\label{{sec:{name.lower()}}}\n\n"
        f"\\paragraph{{Statement.}} {statement}\n\n"
        f"\\paragraph{{Assumptions.}}\n\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n\n"
        f"\\paragraph{{Derivation.}}\n{step_text}\n\n"
        f"\\paragraph{{Result.}} {result}\n\n"
        f"\\paragraph{{Check.}} {check}\n"
    )
