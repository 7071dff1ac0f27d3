"""Completions and man pages are generated from the CLI; the checked-in copies must match it."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_generated_docs_are_up_to_date(tmp_path):
    from gaia_cli.cli import docgen

    for path, text in docgen.generated(REPO).items():
        assert path.is_file(), f"{path} is missing: run `make docs`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make docs`"
    for folder in ("completions", "man"):
        expected = {p.name for p in docgen.generated(REPO) if p.parent.name == folder}
        assert {p.name for p in (REPO / folder).iterdir()} == expected


def test_docgen_writes_every_page(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gaia_cli.cli.docgen", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import typer

    from gaia_cli.cli.app import app

    pages = sorted(p.name for p in (tmp_path / "man").iterdir())
    commands = typer.main.get_command(app).commands
    assert {"inspect", "toy-data", "unify-labels", "space"} <= set(commands)
    expected = ["gaia.1", *(f"gaia-{name}.1" for name in commands)]
    expected += [f"gaia-space-{name}.1" for name in commands["space"].commands]
    assert pages == sorted(expected)
    assert sorted(p.name for p in (tmp_path / "completions").iterdir()) == ["_gaia", "gaia.bash", "gaia.fish"]
    page = (tmp_path / "man" / "gaia-toy-data.1").read_text()
    assert page.startswith(".TH GAIA-TOY-DATA 1") and ".SH EXAMPLES" in page and "\\fB--seed\\fR" in page
    assert "_GAIA_COMPLETE" in (tmp_path / "completions" / "gaia.bash").read_text()
