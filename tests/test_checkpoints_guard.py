"""A new training run never destroys an interrupted run's checkpoint (train-supernet, finetune, pretrain).

Without --resume, a leftover OUTPUT.ckpt.h5 (finetune: also OUTPUT.head.ckpt.h5) is refused before any work,
naming it and its step; --restart discards it; --resume and --restart together are refused. The inputs
here need not exist: the guard runs before any is read.
"""

from __future__ import annotations

import pytest

from conftest import assert_bad_input, gaia_here

# command -> its arguments before -o (inputs that do not exist: the guard comes first)
COMMANDS = {
    "train-supernet": ["train-supernet", "--data", "{d}/missing.json"],
    "finetune": ["finetune", "--weights", "{d}/missing.h5", "--data", "{d}/missing.json"],
    "pretrain": ["pretrain", "{d}/missing.h5"],
}
# (command, the leftover checkpoint's name beside out.h5)
CASES = [("train-supernet", "out.ckpt.h5"), ("finetune", "out.ckpt.h5"), ("finetune", "out.head.ckpt.h5"),
         ("pretrain", "out.ckpt.h5")]


def _args(command, tmp_path, *extra):
    return [a.format(d=tmp_path) for a in COMMANDS[command]] + ["-o", tmp_path / "out.h5", *extra]


def _checkpoint(path, step: int = 7):
    from gaia_cli.artifacts import write_h5

    write_h5(path, "gaia/checkpoint", {"model/w": [1.0, 2.0]}, {"state": {"position": {"iteration": step}}})
    return path.read_bytes()


@pytest.mark.parametrize("command,name", CASES)
def test_a_leftover_checkpoint_is_refused_and_kept(command, name, tmp_path):
    before = _checkpoint(tmp_path / name)
    proc = gaia_here(*_args(command, tmp_path))
    assert_bad_input(proc, name, "step 7", "--resume", "--restart")
    assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("command,name", CASES)
def test_an_unreadable_checkpoint_is_refused_and_kept(command, name, tmp_path):
    (tmp_path / name).write_bytes(b"half a checkpoint")
    proc = gaia_here(*_args(command, tmp_path))
    assert_bad_input(proc, name, "cannot be read", "--restart")
    assert (tmp_path / name).read_bytes() == b"half a checkpoint"


@pytest.mark.parametrize("command,name", CASES)
def test_restart_discards_it_and_goes_on(command, name, tmp_path):
    _checkpoint(tmp_path / name)
    proc = gaia_here(*_args(command, tmp_path, "--restart"))
    # past the guard, the run goes on to read its inputs, which this test leaves out
    assert proc.returncode == 2 and "missing" in proc.stderr.splitlines()[-1], proc.stderr
    assert f"discarded the interrupted run's checkpoint {tmp_path / name} (step 7)" in proc.stderr
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_resume_and_restart_together_are_refused(command, tmp_path):
    before = _checkpoint(tmp_path / "out.ckpt.h5")
    assert_bad_input(gaia_here(*_args(command, tmp_path, "--resume", "--restart")), "--resume", "--restart")
    assert (tmp_path / "out.ckpt.h5").read_bytes() == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_where_the_checkpoint_goes_is_never_removed(command, tmp_path):
    (tmp_path / "out.ckpt.h5").mkdir()
    assert_bad_input(gaia_here(*_args(command, tmp_path, "--restart")), "out.ckpt.h5")
    assert (tmp_path / "out.ckpt.h5").is_dir()


def test_restart_trains_afresh_over_a_leftover_checkpoint(toy, tmp_path):
    from gaia_cli.artifacts import H5Artifact

    _checkpoint(tmp_path / "s.ckpt.h5", step=7)
    proc = gaia_here("train-supernet", "--data", toy / "train.json", "--space", "tiny", "--device", "cpu",
                     "--workers", "0", "--batch-size", "2", "--epochs", "1", "--stop-after", "1", "--restart",
                     "-o", tmp_path / "s.h5")
    assert proc.returncode == 0, proc.stderr
    with H5Artifact(tmp_path / "s.ckpt.h5", "gaia/checkpoint") as art:
        assert art.meta("state")["position"]["iteration"] == 1


def test_help_documents_restart():
    for command in COMMANDS:
        assert "--restart" in gaia_here(command, "--help").stdout
