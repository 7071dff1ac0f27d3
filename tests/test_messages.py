"""Messages point the right way, and the conventions hold (issue 17, items 8 and 9).

Each case is one line on stderr that says what is really wrong, with the exit code of its class: 2 for bad
usage or input, 1 for a failure while running. In-process (`gaia_here`) wherever no torch run is needed.
"""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from conftest import assert_bad_input, gaia_here

# ------------------------------------------------------------------------------------ usage errors: one line


@pytest.mark.parametrize("args, fragments", [
    (["toy-data", "x", "--images", "abc"], ["toy-data:", "'--images'", "see 'gaia toy-data -h'"]),
    (["inspect", "--bogus", "x.json"], ["inspect:", "No such option: --bogus"]),
    (["space", "show", "tiny", "-o", "."], ["space show:", "is a directory"]),
    (["inspect"], ["inspect:", "Missing argument"]),
    (["no-such-command"], ["No such command 'no-such-command'", "see 'gaia -h'"]),
])
def test_a_usage_error_is_one_line_not_a_box(args, fragments):
    proc = gaia_here(*args)
    assert_bad_input(proc, *fragments)
    assert "╭" not in proc.stderr and "Usage:" not in proc.stderr


def test_help_version_and_bare_groups_behave_as_before():
    assert gaia_here("--help").returncode == 0
    assert gaia_here("space", "show", "--help").returncode == 0
    assert gaia_here("--version").stdout.startswith("gaia ")
    assert gaia_here().returncode == 2  # `gaia` alone prints the help and exits 2, as click does


# ------------------------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_honour_the_umask(tmp_path, umask):
    from gaia_cli.data.toy import make_toy_dataset

    old = os.umask(umask)
    try:
        proc = gaia_here("space", "show", "tiny", "-o", tmp_path / "space.json", "-q")
        make_toy_dataset(tmp_path / "toy", images=1, val_images=1, size=32, seed=0)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "space.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "toy").stat().st_mode) == 0o777 & ~umask


def test_with_v_the_last_line_does_not_ask_for_v(monkeypatch):
    from gaia_cli import console

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(console, "emit_json", boom)
    quiet = gaia_here("space", "show", "tiny")
    assert quiet.returncode == 1 and quiet.stderr.splitlines()[-1].endswith("(run with -v for the traceback)")
    loud = gaia_here("space", "show", "tiny", "-v")
    assert loud.returncode == 1 and "Traceback" in loud.stderr
    last = loud.stderr.strip().splitlines()[-1]
    assert last == "gaia: error: internal error: ZeroDivisionError: a bug", last


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_is_143_and_sigint_130(monkeypatch):
    import signal

    from gaia_cli import console

    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        monkeypatch.setattr(console, "emit_json", lambda *a, _s=sig, **k: os.kill(os.getpid(), _s))
        proc = gaia_here("space", "show", "tiny")
        assert proc.returncode == code, (sig, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1].startswith("gaia: error: interrupted")
    # main() gives the handlers it installed back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
