"""`lamproof report --studies`: derivations plus a reproduction's tables and figures, compiled."""

import shutil

import pytest

from lamproof.cli import main


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_report_with_study_tables_compiles(tmp_path):
    studies = tmp_path / "out"
    assert main(["reproduce", "4.3", "--out", str(studies)]) == 0
    report = tmp_path / "report.tex"
    assert main(["report", "--out", str(report), "--pdf", "--studies", str(studies)]) == 0
    text = report.read_text()
    assert "longtable" in text and "sec4_3_structured_noise" in text
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
