"""Shared fixtures: run `gaia` as a user would (a subprocess), and a toy dataset made once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_gaia(*args, input: bytes | str | None = None, cwd=None, env=None, timeout=600):
    """Run `python -m gaia_cli ARGS`; returns CompletedProcess with text stdout/stderr."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run([sys.executable, "-m", "gaia_cli", *map(str, args)], input=input,
                          capture_output=True, cwd=cwd, env=full_env, timeout=timeout)
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def assert_bad_input(proc, *fragments: str) -> None:
    """Exit 2, one line on stderr that contains every fragment, no traceback, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert proc.stdout == ""


@pytest.fixture(scope="session")
def toy(tmp_path_factory) -> Path:
    """A small toy dataset (24 train, 8 val images of 96 px), made once."""
    out = tmp_path_factory.mktemp("toy") / "toy"
    proc = run_gaia("toy-data", out, "--images", 24, "--val-images", 8, "--size", 96, "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def write_json(tmp_path):
    def write(name: str, obj) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(obj))
        return path

    return write


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Word-vector conversions go to a cache of this session's own, never the user's."""
    os.environ["GAIA_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def glove():
    from gaia_cli.labels.vectors import load_vectors

    return load_vectors()
