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
    # the study's figure stands right after its table, not in a list of figures at the end
    table_end = text.index("\\end{longtable}")
    assert text.index("sec4_3_structured_noise.png") > table_end
    assert text.index("sec4_3_structured_noise.png") < text.index("\\end{document}")
    assert text.count("\\includegraphics") == 1
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
