"""``lamproof check`` isolates each claim: ``sys.exit``, a crash or a loop costs only that claim.

A claim that called ``sys.exit`` used to end ``lamproof check`` with exit code 0 and hide the
other claims; a claim or claims file that looped was never stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _signals import default_sigint

from lamproof.claims import builtin_claims, check, check_all, claim
from lamproof.claims.isolation import check_isolated
from lamproof.cli import main
from lamproof.strategies import systems

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and POSIX signals")

#: A deadline generous enough for a few examples of a quick claim on a loaded machine; only the
#: looping claims below ever reach it, and they are checked with the short one.
GENEROUS, SHORT = 60.0, 1.0

CLAIMS = """
import os, sys
from lamproof.claims import claim
from lamproof.strategies import systems

def claim_exits(system, spec, solution):
    sys.exit(3)

def claim_holds(system, spec, solution):
    assert solution.optimal_loss >= -1e-9

def claim_ends_its_process(system, spec, solution):
    os._exit(7)

@claim(systems=systems(d_o=2, noise="isotropic"), statement="probes need d_o > 2")
def false_claim(system, spec, solution):
    assert system.d_o > 2, "d_o is 2"
"""

LOOPS = """
def claim_first(system, spec, solution):
    pass

def claim_loops(system, spec, solution):
    while True:
        pass

def claim_after_the_loop(system, spec, solution):
    pass
"""


def write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def by_name(results):
    return {r.name: r for r in results}


def test_sys_exit_inside_a_claim_is_that_claims_error_in_process():
    @claim(systems=systems(d_o=1))
    def exits(system, spec, solution):
        sys.exit(0)

    @claim(systems=systems(d_o=1))
    def holds(system, spec, solution):
        pass

    results = check_all([exits, holds], examples=3)
    assert [r.verdict for r in results] == ["error", "holds"]
    assert "sys.exit(0)" in results[0].error


def test_each_claim_of_a_file_is_isolated_and_results_come_back_intact(tmp_path):
    path = write(tmp_path, "claims.py", CLAIMS)
    seen = []
    results = check_isolated(path, examples=5, timeout=GENEROUS, on_result=seen.append)
    assert [r.name for r in results] == [
        "claim_exits",
        "claim_holds",
        "claim_ends_its_process",
        "false_claim",
    ]
    assert seen == results
    got = by_name(results)
    assert got["claim_exits"].verdict == "error" and "sys.exit(3)" in got["claim_exits"].error
    assert got["claim_holds"].verdict == "holds" and got["claim_holds"].examples == 5
    assert got["claim_ends_its_process"].verdict == "error"
    assert "exit code 7" in got["claim_ends_its_process"].error
    # the counterexample crossed the process boundary whole: the same as checking in this process
    false = got["false_claim"]
    assert false.verdict == "fails" and false.statement == "probes need d_o > 2"
    from lamproof.claims import load_claims

    (here,) = [c for c in load_claims(path) if getattr(c, "name", "") == "false_claim"]
    direct = check(here, examples=5)
    assert false.counterexample.solve_file == direct.counterexample.solve_file
    assert false.counterexample.latex == direct.counterexample.latex
    assert false.counterexample.system.d_o == 2 and false.counterexample.spec == direct.counterexample.spec


def test_a_looping_claim_times_out_and_the_next_claims_still_run(tmp_path):
    path = write(tmp_path, "loops.py", LOOPS)
    start = time.monotonic()
    results = check_isolated(path, examples=3, timeout=SHORT)
    assert time.monotonic() - start < 30
    assert [(r.name, r.verdict) for r in results] == [
        ("claim_first", "holds"),
        ("claim_loops", "error"),
        ("claim_after_the_loop", "holds"),
    ]
    assert "timeout" in results[1].error and results[1].seconds >= SHORT


def test_a_claims_file_whose_import_loops_or_exits_is_one_error(tmp_path):
    loops = write(tmp_path, "import_loops.py", "while True:\n    pass\n")
    (result,) = check_isolated(loops, timeout=SHORT)
    assert result.verdict == "error" and "timeout" in result.error and "import" in result.error
    exits = write(tmp_path, "import_exits.py", "import sys\nsys.exit(0)\n")
    (result,) = check_isolated(exits, timeout=GENEROUS)
    assert result.verdict == "error" and "SystemExit" in result.error


def test_builtin_claims_give_the_same_results_isolated(tmp_path):
    claims = builtin_claims()[:3]
    isolated = check_isolated(claims, examples=3, timeout=GENEROUS)
    direct = check_all(claims, examples=3)
    assert [(r.name, r.verdict, r.examples, r.calls) for r in isolated] == [
        (r.name, r.verdict, r.examples, r.calls) for r in direct
    ]


def test_cli_exit_code_and_timeout_option(tmp_path, capsys):
    path = write(tmp_path, "loops.py", LOOPS)
    assert main(["check", str(path), "--examples", "3", "--timeout", str(SHORT)]) == 1
    out = capsys.readouterr().out
    assert "claim_loops: error" in out and "timeout" in out and "claim_after_the_loop" in out
    fine = write(tmp_path, "fine.py", "def claim_fine(system, spec, solution):\n    pass\n")
    assert main(["check", str(fine), "--examples", "3"]) == 0
    for bad in ("0", "-1", "nan", "soon"):
        assert main(["check", str(fine), "--timeout", bad]) == 2
        assert capsys.readouterr().err.startswith("lamproof: error: argument --timeout")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["Ctrl-C", "SIGKILL"])
def test_ctrl_c_or_a_killed_parent_leaves_no_claim_running(tmp_path, sig):
    pid_file = tmp_path / "child.pid"
    path = write(
        tmp_path,
        "loops.py",
        f"""
        import os
        def claim_loops(system, spec, solution):
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            while True:
                pass
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "lamproof.cli", "check", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        child = int(pid_file.read_text())
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and err.strip() == "lamproof: interrupted", err
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the claim's process outlived lamproof check")
