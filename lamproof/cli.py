"""``lamproof``: the command-line front end. Parsing, calling and printing; no mathematics.

Exit codes: 0 holds, 1 a check or claim failed, 2 bad input or usage, 3 internal error.

Bad input is an :class:`~lamproof.errors.InputError` (or a usage error): exactly one line on
stderr, ``lamproof: error: <field>: …`` (``file: …`` for the file itself), exit code 2. Any other
exception is a bug in lamproof, never passed off as bad input: its traceback is printed, then
``lamproof: internal error: …``, exit code 3. Ctrl-C prints ``lamproof: interrupted``, exit 130;
a closed stdout (``lamproof … | head``) ends quietly with 141, as a shell's SIGPIPE would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from lamproof.errors import InputError

#: Exit code of an exception that is neither bad input nor usage: a bug in lamproof.
INTERNAL_ERROR = 3


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, never the usage block
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


# -- solve ---------------------------------------------------------------------------------------
def _cmd_solve(args) -> int:
    from lamproof.api import solve_file

    result = solve_file(args.file)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(_solve_text(result))
    return 0


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _probe_span(s: dict) -> str:
    """``  proved [a, b]  attained [c, d]  (outer)`` for a range, nothing for an identified probe."""
    if s["identified"] or s["value"] is None:
        return ""
    low, high = s.get("attained", [None, None])
    approached = s.get("approached", [])
    attained = (
        f"{'~' if 'min' in approached else ''}{_fmt(low)}, {'~' if 'max' in approached else ''}{_fmt(high)}"
    )
    proved = f"[{_fmt(s['min'])}, {_fmt(s['max']) if s['max'] is not None else '∞'}]"
    if s["bounds"] == "exact":
        ends = " and ".join(approached)
        return f"  {proved} (exact{f'; the {ends} only approached' if ends else ''})"
    return f"  proved {proved}  attained [{attained}]  ({s['bounds']})"


def _solve_text(result: dict) -> str:
    eig = result["innovation_eigenvalues"]
    shown = ", ".join(_fmt(v) for v in eig[:8]) + (", …" if len(eig) > 8 else "")
    lines = [
        f"method          {result['method']}",
        f"optimal loss    {_fmt(result['optimal_loss'])}   (objective {_fmt(result['objective'])})",
        f"innovation eig  {shown}",
        f"eigengap        {_fmt(result['eigengap'])}   unique prediction: {_fmt(result['unique'])}",
        f"captured dims   {result['captured_dim']}",
        "probes: fraction of variance unexplained by the canonical member; over the optimal family,",
        "  proved [min, max] and the extremes members attain (~ where only approached)",
    ]
    for rep, scores in result["probes"].items():
        for target, s in scores.items():
            lines.append(f"  {rep:17s} {target:12s} {_fmt(s['value'])}{_probe_span(s)}")
    for key, label in (
        ("exogenous_loading", "exogenous loading "),
        ("latent_consistency", "latent consistency"),
    ):
        if key in result:  # declared exogenous coordinates: ranges over the family, proved and attained
            lines.append(f"{label}  {_fmt(result[key]['value'])}{_probe_span(result[key])}")
    for name, cond in result.get("conditions", {}).items():
        lines.append(
            f"condition {name}: {_fmt(cond.get('holds'))} (margin {_fmt(cond.get('margin'))}) {cond.get('reason', '')}"
        )
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)


# -- dynamics ------------------------------------------------------------------------------------
def _cmd_dynamics(args) -> int:
    from lamproof.api import dynamics_file
    from lamproof.trajectory import plot, text_table

    if args.plot:
        from lamproof.studies.outputs import have_matplotlib

        if not have_matplotlib():
            raise UsageError("--plot: matplotlib is not installed (pip install 'lamproof[plot]')")
    report = dynamics_file(args.file)
    if args.plot:
        try:
            plot(report, args.plot)
        except OSError as error:
            raise UsageError(f"--plot: cannot write {args.plot!r} ({error.strerror or error})") from None
    print(json.dumps(report, indent=2) if args.format == "json" else text_table(report))
    return 0


# -- verify / latex / report (symbolic derivations) ----------------------------------------------
def _cmd_verify(args) -> int:
    from lamproof import derivations

    names = [derivations.resolve(n) for n in args.names] or list(derivations.NAMES)  # bad name: exit 2
    header = f"{'derivation':<12} {'checks':>6} {'examples':>8} {'worst error':>12} {'time':>7}  status"
    print(header)
    print("-" * len(header))
    failed = 0
    for name in names:
        report = derivations.get(name).verify(examples=args.examples, exact=args.exact)
        status = "ok" if report.passed else f"FAILED ({report.failure_count})"
        print(
            f"{report.name:<12} {report.checks_run:>6} {report.examples:>8} {report.worst_error:>12.2e} "
            f"{report.seconds:>6.1f}s  {status}",
            flush=True,
        )
        for failure in report.failures:
            print(f"    {failure}")
        failed += not report.passed
    print(
        f"{len(names) - failed} of {len(names)} derivations verified"
        + (" (with exact checks)" if args.exact else "")
    )
    return 1 if failed else 0


def _cmd_latex(args) -> int:
    from lamproof import derivations

    if args.all == bool(args.name):
        raise UsageError("latex: give either a derivation NAME or --all")
    if args.out is not None:
        for path in derivations.write_folder(args.out, [args.name] if args.name else None):
            print(path)
        return 0
    if args.all:
        raise UsageError("--all: give --out DIR for the folder of documents")
    print(derivations.shipped_tex(args.name), end="")
    return 0


def _cmd_report(args) -> int:
    from lamproof.report import CompileError, compile_pdf, write_report

    tex = write_report(args.out, studies=args.studies)
    print(tex)
    if args.pdf:
        try:
            print(compile_pdf(tex))
        except CompileError as error:
            print(f"lamproof: pdflatex failed: {error}", file=sys.stderr)
            return 1
    return 0


# -- reproduce (the paper's studies) -------------------------------------------------------------
def _cmd_reproduce(args) -> int:
    from lamproof.studies import reproduce

    only: dict[str, list[str]] = {}
    for item in args.only:
        column, equals, value = item.partition("=")
        if not equals or not column.strip() or not value.strip():
            raise UsageError(f"--only: expected COLUMN=VALUE, got {item!r}")
        only.setdefault(column.strip(), []).append(value.strip())
    report = reproduce(
        args.study,
        out=args.out,
        mode=args.mode,
        force=args.force,
        steps=args.steps,
        plot=not args.no_plot,
        stream=sys.stderr,
        only=only or None,
    )
    print(report.summary())
    return 0


def _cmd_compare(args) -> int:
    from lamproof.studies import compare_files, format_comparison
    from lamproof.studies.compare import compare_many, format_sources

    if len(args.files) < 2:
        raise UsageError("compare: give at least two CSV files (OURS… THEIRS)")
    *ours, theirs = args.files
    for path in ours:
        table, info = compare_files(path, theirs)
        if len(ours) > 1:
            print(f"== {path} vs {theirs}")
        print(format_comparison(table, info))
    if len(ours) > 1 or args.rows:
        merged, pairs, info = compare_many(args.files)
        print()
        print(format_sources(merged, pairs, info, rows=args.rows))
    return 0


# -- check (claims) ------------------------------------------------------------------------------
def _cmd_check(args) -> int:
    from pathlib import Path

    from lamproof.claims import builtin_claims, render_json, render_text
    from lamproof.claims.isolation import DEFAULT_TIMEOUT, check_isolated

    if args.builtin == bool(args.file):
        raise UsageError("check: give either a claims file (FILE.py) or --builtin")
    if args.builtin:
        source, examples = builtin_claims(), args.examples or 50
    else:
        if not Path(args.file).is_file():
            raise UsageError(f"file: no such file {args.file!r}")
        source, examples = args.file, args.examples or 100
    progress = sys.stderr.isatty() and args.format == "text"
    # each claim (and the file's import) runs in a child process with args.timeout seconds
    results = check_isolated(
        source,
        examples=examples,
        seed=args.seed,
        timeout=args.timeout or DEFAULT_TIMEOUT,
        on_result=(lambda r: print(f"  {r.name}: {r.verdict}", file=sys.stderr)) if progress else None,
    )
    if not results:
        raise UsageError(f"file: no claims in {args.file!r} (decorate with @claim or name functions claim_*)")
    render = render_json if args.format == "json" else render_text
    print(render(results, builtin=args.builtin))
    # A claim fails when it does not do what it declares: undecorated claims expect to hold,
    # a claim marked expect="false" is a counterexample search that must find one.
    return 0 if all(r.meets_expectation for r in results) else 1


def _version() -> str:
    from lamproof import __version__

    return f"lamproof {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lamproof",
        description=__doc__.splitlines()[0],
        epilog="Exit codes: 0 holds, 1 a check or claim failed, 2 bad input or usage, "
        "3 internal error, 130 interrupted, 141 stdout closed. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    fmt_help = "json (default, the keys of docs/cli.md) or a text summary"

    p = sub.add_parser("solve", help="solve a system + LAM file (JSON or TOML) and print JSON")
    p.add_argument("file", help="solve file: [system] (or [state_space]) and [lam] tables, .json or .toml")
    p.add_argument("--format", choices=("json", "text"), default="json", help=fmt_help)
    p.set_defaults(handler=_cmd_solve)

    p = sub.add_parser("dynamics", help="population learning dynamics of a system + LAM + [dynamics] file")
    p.add_argument("file", help="a solve file with an optional [dynamics] table (optimizer, lr, steps, …)")
    p.add_argument("--format", choices=("json", "text"), default="json", help=fmt_help)
    p.add_argument("--plot", metavar="OUT.png", default=None, help="draw loss and probes against steps")
    p.set_defaults(handler=_cmd_dynamics)

    p = sub.add_parser("verify", help="run the derivations' checks")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="derivations to check (D1 … D15, or slugs); default all"
    )
    p.add_argument(
        "--examples",
        type=_positive_int,
        default=None,
        help="Hypothesis examples per derivation (default: each derivation's own)",
    )
    p.add_argument("--exact", action="store_true", help="also check in exact rational arithmetic")
    p.set_defaults(handler=_cmd_verify)

    p = sub.add_parser("latex", help="print one derivation's LaTeX, or write every derivation to a folder")
    p.add_argument("name", nargs="?", metavar="NAME", help="a derivation (D1 … D15, or its slug)")
    p.add_argument("--all", action="store_true", help="every derivation (needs --out)")
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write one .tex and one .md per derivation and an index README.md into DIR",
    )
    p.set_defaults(handler=_cmd_latex)

    p = sub.add_parser("report", help="assemble every derivation (and study tables) into one LaTeX document")
    p.add_argument(
        "--out", required=True, metavar="REPORT.tex", help="the .tex file to write (its folder must exist)"
    )
    p.add_argument("--pdf", action="store_true", help="also compile it with pdflatex")
    p.add_argument(
        "--studies",
        default=None,
        metavar="DIR",
        help="a reproduce --out folder: each study's table with its figure beside it",
    )
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("reproduce", help="reproduce the paper's simulation studies")
    p.add_argument("study", help="4.1 4.2 4.3 5 6 7, exo (exogenous state, issue 10) or all")
    p.add_argument(
        "--mode",
        choices=("closed-form", "trained", "dynamics", "both"),
        default="closed-form",
        help="closed-form (default): the exact optimum; trained: the stochastic trainer; "
        "dynamics: population Adam from the trainer's initial point, at the paper's step "
        "counts; both: closed-form and trained",
    )
    p.add_argument(
        "--out", default="out", metavar="DIR", help="folder for the CSVs, tables and figures (default out)"
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--steps", type=_positive_int, default=None, help="training steps (default: the paper's)")
    p.add_argument("--no-plot", action="store_true", help="write no figures")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only the configurations with this value (repeatable; several values of one "
        "column are all kept), e.g. --only dz=4 --only sigma=0.5",
    )
    p.set_defaults(handler=_cmd_reproduce)

    p = sub.add_parser(
        "compare",
        help="score reproduction CSVs (closed form, dynamics, trained) against one in "
        "the authors' format, and set them side by side",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="OURS… THEIRS",
        help="one or more reproductions, then the reference (e.g. the authors' log)",
    )
    p.add_argument("--rows", action="store_true", help="also print every matched configuration side by side")
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser("check", help="check claims about LAMs across random systems")
    p.add_argument(
        "file", nargs="?", metavar="FILE.py", help="a Python file of @claim functions (or claim_* functions)"
    )
    p.add_argument("--builtin", action="store_true", help="check the registry of the paper's claims")
    p.add_argument(
        "--examples",
        type=_positive_int,
        default=None,
        help="Hypothesis examples per claim (default 100; 50 with --builtin)",
    )
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0: reproducible)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON")
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop a claim (or the file's import) after this long and report a timeout (default 60)",
    )
    p.set_defaults(handler=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from lamproof._blas import single_threaded_blas

        with single_threaded_blas():  # small matrices: BLAS threads only contend (see _blas)
            return args.handler(args)
    except (UsageError, InputError) as error:
        message = " ".join(str(error).split())
        print(f"lamproof: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --version and --help print and stop here
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        print("lamproof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`lamproof … | head`): not a bug
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except Exception as error:  # a bug, not bad input: show where it happened
        traceback.print_exc()
        message = " ".join(f"{type(error).__name__}: {error}".split())
        print(f"lamproof: internal error (a bug in lamproof, not bad input): {message}", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
