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


def gaia_here(*args, input: str | None = None):
    """Run gaia in this process (no interpreter start-up, no torch import): for quick failures.

    Returns an object like `run_gaia`'s, from main()'s exit code and what it wrote to stdout and stderr.
    """
    import contextlib
    import io
    import types

    from gaia_cli import artifacts, console
    from gaia_cli.cli.app import main

    console.reset()
    artifacts.inputs._stdin_cache = None
    out, err = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()))
    code = 0
    old_stdin = sys.stdin
    sys.stdin = stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = old_stdin
        console.reset()
        artifacts.inputs._stdin_cache = None
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


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


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """64 training and 16 validation images at 96 px: enough for a tiny detector to learn something."""
    out = tmp_path_factory.mktemp("shapes") / "toy"
    proc = run_gaia("toy-data", out, "--images", 64, "--val-images", 16, "--size", 96, "--seed", 11, "-q")
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
