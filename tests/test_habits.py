"""The repository's own habits: the browsable derivations/ folder is fresh, the CLI documents every
option, prints its version and selects configurations, and no file cites a document outside it."""

import argparse
import re
import subprocess
from pathlib import Path

import pytest

import lamproof
from lamproof import derivations
from lamproof.cli import build_parser, main
from lamproof.studies.definitions import select

ROOT = Path(__file__).resolve().parents[1]


def test_derivations_folder_is_fresh():
    """derivations/ is what `lamproof latex --all --out derivations/` writes now, and nothing else."""
    folder = ROOT / "derivations"
    expected = derivations.folder_files()
    present = {p.name for p in folder.iterdir() if p.is_file()}
    assert present == set(expected), "run `lamproof latex --all --out derivations/`"
    stale = [name for name, text in expected.items() if (folder / name).read_text(encoding="utf-8") != text]
    assert not stale, f"stale: {stale}; run `lamproof latex --all --out derivations/`"


def test_latex_all_writes_a_folder(tmp_path, capsys):
    assert main(["latex", "--all", "--out", str(tmp_path / "d")]) == 0
    written = capsys.readouterr().out.split()
    assert len(written) == 2 * len(derivations.NAMES) + 1
    assert (tmp_path / "d" / "README.md").read_text(encoding="utf-8").count("| D") == len(derivations.NAMES)
    assert main(["latex", "--all"]) == 2 and "--out" in capsys.readouterr().err
    assert main(["latex"]) == 2


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser.prog, action


def test_every_cli_option_has_help():
    missing = [f"{prog} {action.dest}" for prog, action in _actions(build_parser()) if not action.help]
    assert not missing


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lamproof {lamproof.__version__}"


def test_only_selects_configurations():
    (study,) = select("4.2", {"dz": ["4", "8"], "sigma": "0.5"})
    assert sorted(c["dz"] for c in study.configs()) == [4, 8]
    assert {c["sigma"] for c in study.configs()} == {0.5}
    # `all` keeps the studies that sweep the named column
    assert [s.name for s in select("all", {"chi": "0.5"})] == ["5"]


@pytest.mark.parametrize(
    "only, field",
    [
        ({"dz": "3"}, "dz=3 is not swept"),
        ({"sigma": "x"}, "not a number"),
        ({"nope": "1"}, "unknown column"),
        ({"chi": "0.5"}, "no study"),
    ],
)
def test_only_refuses_what_it_cannot_select(only, field):
    with pytest.raises(ValueError, match=field):
        select("4.2", only)


def test_reproduce_only_runs_one_configuration(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["reproduce", "4.2", "--only", "dz=4", "--only", "sigma=0.5", "--out", str(out), "--no-plot"])
        == 0
    )
    rows = (out / "sec4_2_isotropic_noise.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) == 2  # header and the one configuration
    assert main(["reproduce", "4.2", "--only", "dz", "--out", str(out)]) == 2
    assert "COLUMN=VALUE" in capsys.readouterr().err


def test_no_file_cites_a_document_outside_the_repository():
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    # spelled in pieces, so that this file does not cite them itself
    outside = ("math" + ".md", "architecture" + ".md", ".." + "/shared")
    pattern = re.compile("|".join(re.escape(name) for name in outside))
    offenders = []
    for name in tracked.stdout.splitlines():
        path = ROOT / name
        if path.suffix in {".py", ".md", ".toml", ".tex", ".txt", ".ipynb"} and path.is_file():
            if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(name)
    assert not offenders
