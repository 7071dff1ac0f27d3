"""The command line's contracts: help, light startup, streams, pipes, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, assert_bad_input, run_gaia

HEAVY = ("torch", "torchvision", "gensim", "h5py", "pycocotools")


def _imported(stderr: str) -> set[str]:
    """Top-level module names in `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_help_lists_every_command_with_an_example():
    proc = run_gaia("--help")
    assert proc.returncode == 0
    for command in ("inspect", "toy-data"):
        assert command in proc.stdout
        assert f"gaia {command} " in proc.stdout.split("Examples")[1]


def test_each_command_help_has_an_example():
    for command in ("inspect", "toy-data"):
        proc = run_gaia(command, "--help")
        assert proc.returncode == 0
        assert "Examples" in proc.stdout and f"gaia {command}" in proc.stdout


def test_version():
    proc = run_gaia("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("gaia ")


def test_help_imports_no_heavy_module():
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gaia_cli", "--help"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    assert not _imported(proc.stderr) & set(HEAVY), _imported(proc.stderr) & set(HEAVY)
    # the check itself must be able to fail: a command that does import torch shows up
    loaded = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch"],
                            capture_output=True, text=True)
    assert "torch" in _imported(loaded.stderr)


def test_completion_imports_no_heavy_module_and_completes():
    env = {**os.environ, "_GAIA_COMPLETE": "complete_bash", "COMP_WORDS": "gaia ins", "COMP_CWORD": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gaia_cli"], capture_output=True,
                          text=True, env=env)
    assert "inspect" in proc.stdout
    assert "toy-data" not in proc.stdout
    assert not _imported(proc.stderr) & set(HEAVY)


def test_command_modules_do_not_import_the_app_and_each_declares_its_command():
    # the app imports the command modules and registers what they declare; none of them imports the app
    modules = sorted(p.stem for p in (REPO / "gaia_cli" / "cli").glob("*.py")
                     if p.stem not in {"__init__", "__main__", "app", "commands", "docgen", "options"})
    script = (
        "import importlib, json, sys\n"
        "from gaia_cli.cli.commands import declared\n"
        f"names = {{m: [s.name for s, _ in declared(importlib.import_module('gaia_cli.cli.' + m))] for m in {modules!r}}}\n"
        "print(json.dumps({'app': 'gaia_cli.cli.app' in sys.modules, 'names': names}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["app"] is False
    import typer

    from gaia_cli.cli.app import app

    registered = set(typer.main.get_command(app).commands)
    declared_names = {name for names in found["names"].values() for name in names}
    assert declared_names | {"space"} == registered
    assert all(found["names"][m] for m in modules if m != "space_cmd"), found["names"]


def test_usage_error_exits_2():
    proc = run_gaia("inspect", "--no-such-option", "x")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "no-such-option" in proc.stderr


def test_unknown_command_exits_2():
    assert run_gaia("no-such-command").returncode == 2


def test_toy_data_and_inspect_chain_through_a_pipe(toy):
    # the summary on stdout is data: its path feeds the next command
    summary = json.loads(run_gaia("toy-data", toy.parent / "again", "--images", 4, "-q").stdout)
    train = summary["train"]["annotations"]
    piped = run_gaia("inspect", "-", input=open(train, "rb").read(), cwd=toy.parent / "again")
    assert piped.returncode == 0, piped.stderr
    direct = json.loads(run_gaia("inspect", train).stdout)
    assert json.loads(piped.stdout)["images"] == direct["images"] == 4


def test_stdout_is_only_data(toy):
    proc = run_gaia("inspect", "-v", toy / "train.json")
    assert proc.returncode == 0
    json.loads(proc.stdout)  # nothing but the JSON document
    assert "circle" in proc.stderr  # the -v table went to stderr


def test_quiet_silences_info(toy, tmp_path):
    proc = run_gaia("toy-data", tmp_path / "q", "--images", 2, "-q")
    assert proc.returncode == 0 and proc.stderr == ""
    loud = run_gaia("toy-data", tmp_path / "l", "--images", 2)
    assert "wrote" in loud.stderr


def test_broken_pipe_exits_quietly(write_json):
    # a summary larger than a pipe buffer, read by `head`
    categories = [{"id": i, "name": f"category number {i}"} for i in range(1, 4001)]
    big = write_json("big.json", {"kind": "gaia/labels", "schema_version": 1, "categories": categories})
    proc = subprocess.run(f"{sys.executable} -m gaia_cli inspect {big} | head -c 100", shell=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert len(proc.stdout) == 100
    assert proc.stderr == "", proc.stderr
    status = subprocess.run(f"set -o pipefail; {sys.executable} -m gaia_cli inspect {big} | head -c 1 >/dev/null",
                            shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert status.returncode == 0, status.stderr


def test_internal_error_is_one_line_and_traceback_with_v(toy, monkeypatch, capsys):
    from gaia_cli import describe
    from gaia_cli.cli import app as app_module

    def boom(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(describe, "describe", boom)
    for argv, traceback_expected in ((["inspect", str(toy / "val.json")], False),
                                     (["inspect", "-v", str(toy / "val.json")], True)):
        try:
            app_module.main(argv)
        except SystemExit as exc:
            assert exc.code == 1
        err = capsys.readouterr().err
        assert "internal error: ZeroDivisionError: boom" in err
        assert ("Traceback" in err) == traceback_expected


def test_bad_input_traceback_only_with_v(tmp_path):
    missing = tmp_path / "nope.json"
    assert_bad_input(run_gaia("inspect", missing), str(missing), "no such file")
    loud = run_gaia("inspect", "-v", missing)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
