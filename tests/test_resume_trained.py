"""``lamproof reproduce --mode trained`` resumes after Ctrl-C or a kill, to a bit-identical CSV.

Uses the real :class:`lamproof.numeric.trainer.Trainer` (the stand-in of test_studies_trained
never saw that resuming passed ``seed`` twice). A reduced §4.3 sweep is trained in a subprocess,
which is interrupted by SIGINT or killed by SIGKILL after its first checkpoint, in the middle of
the next chunk; the rerun must resume from that checkpoint and write the same CSV, byte for byte,
as an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _signals import default_sigint

from lamproof.cli import main
from lamproof.studies import definitions, runner

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: Two configurations of 2500 steps, trained together: chunks of 1000 (runner.CHECKPOINT_EVERY), 1000 and 500.
STEPS = 2500
CSV = "sec4_3_structured_noise_trained.csv"


def small_study():
    return definitions.get_study("4.3").with_axes(do=8, da=2, db=2, dz=[1, 3], sigma=[2.0])


def reproduce_args(out) -> list[str]:
    return ["reproduce", "4.3", "--mode", "trained", "--steps", str(STEPS), "--out", str(out), "--no-plot"]


#: The subprocess: the same small study, and a marker file written after each checkpoint. Once the
#: first checkpoint exists, each progress report (100 per chunk) waits 10 ms, so the next chunk
#: lasts over a second and the signal surely lands inside it. Waiting changes no number.
SCRIPT = """
import sys, time
from pathlib import Path
from lamproof.studies import definitions, runner
definitions.STUDIES["4.3"] = definitions.get_study("4.3").with_axes(do=8, da=2, db=2, dz=[1, 3], sigma=[2.0])
marker = Path(sys.argv[1])
save, update = runner._save_state, runner.ProgressBar.update
def save_and_mark(path, state, steps_done):
    save(path, state, steps_done)
    marker.write_text(str(steps_done))
def slow_update(self, *args, **kwargs):
    if marker.exists():
        time.sleep(0.01)
    return update(self, *args, **kwargs)
runner._save_state, runner.ProgressBar.update = save_and_mark, slow_update
from lamproof.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setitem(runner.select.__globals__["STUDIES"], "4.3", small_study())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(runner.select.__globals__["STUDIES"], "4.3", small_study())
        assert main(reproduce_args(out)) == 0
    return (out / CSV).read_bytes()


def interrupt(out, sig) -> subprocess.CompletedProcess:
    marker = out.parent / f"{out.name}.checkpointed"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker), *reproduce_args(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        time.sleep(0.2)  # into the second chunk
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_trained_run_resumes_to_the_same_csv(tmp_path, capsys, small, uninterrupted, sig):
    out = tmp_path / "out"
    killed = interrupt(out, sig)
    if sig == signal.SIGINT:
        assert killed.returncode == 130 and killed.stderr.rstrip().endswith("lamproof: interrupted"), (
            killed.stderr
        )
        assert "Traceback" not in killed.stderr
    else:
        assert killed.returncode == -signal.SIGKILL
    assert not (out / CSV).exists()
    checkpoints = out / runner.CHECKPOINT_DIR / small_study().slug
    # both configurations share a system, so they train together: both in progress, none finished
    assert sorted(p.suffix for p in checkpoints.iterdir()) == [".npz", ".npz"]

    assert main(reproduce_args(out)) == 0
    err = capsys.readouterr().err
    assert "resumed at step 1000" in err, err  # resumed from the checkpoint, not restarted
    assert (out / CSV).read_bytes() == uninterrupted


#: Three d_z sweeps (σ = 0.5, 1, 2), so that two worker processes have a third group queued.
POOL_SCRIPT = """
import sys
from lamproof.studies import definitions
definitions.STUDIES["4.3"] = definitions.get_study("4.3").with_axes(do=8, da=2, db=2, dz=[1, 3],
                                                                   sigma=[0.5, 1.0, 2.0])
from lamproof.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(runner.default_workers() < 2, reason="needs two worker processes")
def test_ctrl_c_stops_the_worker_pool_at_once(tmp_path):
    """Ctrl-C (SIGINT to the terminal's whole process group) ends a pooled trained run within
    seconds, its checkpoints kept; the pool must not go on to train the queued groups."""
    out = tmp_path / "out"
    args = ["reproduce", "4.3", "--mode", "trained", "--steps", "1000000", "--out", str(out), "--no-plot"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", POOL_SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(f"{runner.CHECKPOINT_DIR}/*/*.npz")):
            assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)  # a queued group alone would take minutes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and stderr.rstrip().endswith("lamproof: interrupted"), stderr
    assert list(out.glob(f"{runner.CHECKPOINT_DIR}/*/*.npz"))
