"""Outputs are created with the user's umask (``0o666 & ~umask``), not ``mkstemp``'s private 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from lamproof.studies import get_study, runner
from lamproof.studies.outputs import write_text_atomic


@pytest.fixture(params=[0o027, 0o002])
def umask(request):
    saved = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_csv_latex_figure_and_checkpoints_respect_the_umask(tmp_path, umask):
    pytest.importorskip("matplotlib")
    study = get_study("4.1").with_axes(do=4, da=2, dz=[1, 2])
    (result,) = runner.run_closed_form([study], workers=1)
    written = runner.write_study(result, tmp_path, plot=True)
    assert sorted(p.suffix for p in written) == [".csv", ".png", ".tex"]
    checkpoint = tmp_path / "state.npz"
    runner._save_state(checkpoint, {"theta": np.zeros(3)}, 10)
    finished = tmp_path / "row.json"
    write_text_atomic(finished, "{}")
    expected = 0o666 & ~umask
    assert {p.name: mode(p) for p in [*written, checkpoint, finished]} == {
        p.name: expected for p in [*written, checkpoint, finished]
    }
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
