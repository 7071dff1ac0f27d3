"""Typed artifacts: headers, kinds, schema versions, atomic writes, HDF5 tensors, manifests, stdin."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from gaia_cli import artifacts
from gaia_cli.artifacts import H5Artifact, atomic_write, json_artifact, read_json_artifact, write_h5
from gaia_cli.errors import BadInput

from conftest import assert_bad_input, run_gaia


def _labels(**extra):
    return json_artifact("gaia/labels", {"categories": [{"id": 1, "name": "cat"}], "datasets": [], **extra})


def test_json_artifact_carries_a_full_header(tmp_path):
    art = _labels()
    for key in artifacts.HEADER_KEYS:
        assert key in art
    assert art["kind"] == "gaia/labels" and art["schema_version"] == artifacts.KINDS["gaia/labels"]
    assert art["created"].endswith("+00:00")  # UTC
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(art))
    back = read_json_artifact(path, "gaia/labels")
    assert back.data["categories"] == [{"id": 1, "name": "cat"}]
    assert back.source.ref.sha256 == artifacts.sha256_file(path)


def test_reader_refuses_wrong_kind(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(json_artifact("gaia/weights", {})))
    with pytest.raises(BadInput, match="is a gaia/weights artifact, expected gaia/labels"):
        read_json_artifact(path, "gaia/labels")


def test_reader_refuses_newer_schema_and_missing_kind(tmp_path):
    newer = {**_labels(), "schema_version": artifacts.KINDS["gaia/labels"] + 1}
    path = tmp_path / "new.json"
    path.write_text(json.dumps(newer))
    with pytest.raises(BadInput, match="newer gaia"):
        read_json_artifact(path, "gaia/labels")
    assert_bad_input(run_gaia("inspect", path), str(path), "newer gaia")
    plain = tmp_path / "plain.json"
    plain.write_text("[1, 2]")
    assert_bad_input(run_gaia("inspect", plain), str(plain), "neither a gaia artifact")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"kind": "gaia/nonsense", "schema_version": 1}))
    assert_bad_input(run_gaia("inspect", unknown), "unknown artifact kind")


@pytest.mark.parametrize("content,message", [
    (b'{"kind": "gaia/labels", "schema_ver', "truncated JSON"),
    (b'{"kind": "gaia/labels",, }', "invalid JSON"),
    (b'\xff\xfe{"kind": 1}', "not UTF-8"),
    (b"", "is empty"),
])
def test_malformed_json_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert_bad_input(run_gaia("inspect", path), str(path), message)


def test_directory_where_a_file_is_expected(tmp_path):
    assert_bad_input(run_gaia("inspect", tmp_path), "is a directory")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("stop")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_output_folder_must_exist(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "out.json"):
            pass
    assert_bad_input(run_gaia("toy-data", tmp_path / "missing" / "toy"), "does not exist")


def test_a_killed_writer_leaves_no_partial_file(tmp_path):
    target = tmp_path / "weights.h5"
    target.write_bytes(b"previous")
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from gaia_cli.artifacts import atomic_write
        with atomic_write({str(target)!r}, "wb") as fh:
            fh.write(b"x" * 1_000_000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_write_removes_temp_files_of_dead_writers_only(tmp_path):
    target = tmp_path / "out.json"
    # a writer killed with SIGKILL cannot clean up: its temp file, named for its pid, stays behind
    script = textwrap.dedent(f"""
        import os, signal
        from gaia_cli.artifacts import atomic_write
        with atomic_write({str(target)!r}) as fh:
            fh.write("half")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.Popen([sys.executable, "-c", script])
    assert killed.wait() == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".out.json.{killed.pid}-") and left[0].endswith(".tmp")

    owner = artifacts._temp_owner
    dead = tmp_path / f".out.json.{owner(_dead_pid())}.abcd1234.tmp"
    dead_folder = tmp_path / f".out.json.{owner(_dead_pid())}.efgh5678.tmp"
    live = tmp_path / f".out.json.{owner(os.getpid())}.ijkl9012.tmp"
    elsewhere = tmp_path / f".out.json.{_dead_pid()}-some-other-host.mnop3456.tmp"  # a shared folder
    old_style = tmp_path / ".out.json.qrst7890.tmp"  # no owner in the name: unknown, kept
    other_output = tmp_path / f".out.json.1.json.{owner(_dead_pid())}.uvwx1234.tmp"  # belongs to out.json.1.json
    for path in (dead, live, elsewhere, old_style, other_output):
        path.write_text("x")
    dead_folder.mkdir()
    (dead_folder / "inside").write_text("x")

    with atomic_write(target) as fh:
        fh.write("{}")
    assert target.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (target, live, elsewhere, old_style, other_output))


def test_toy_data_removes_the_temp_folder_of_a_killed_run(tmp_path):
    from gaia_cli.data.toy import make_toy_dataset

    stale = tmp_path / f".toy.{artifacts._temp_owner(_dead_pid())}.abcd1234.tmp"
    stale.mkdir()
    (stale / "train").mkdir()
    (stale / "train" / "0.png").write_bytes(b"x")
    make_toy_dataset(tmp_path / "toy", images=1, size=32, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_sigterm_during_toy_data_cleans_up(tmp_path):
    out = tmp_path / "toy"
    env = {**os.environ, "NO_COLOR": "1"}
    # far more images than it can write before the signal comes, on any machine (it never writes them all)
    proc = subprocess.Popen([sys.executable, "-m", "gaia_cli", "toy-data", str(out), "--images", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # wait (however long start-up takes) until it is writing images, then stop it
    import time

    hang = time.monotonic() + 600  # a guard against a hang, like run_gaia's, not a speed limit
    while proc.poll() is None and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        if time.monotonic() > hang:
            proc.kill()
            pytest.fail("toy-data made no temp folder in 10 minutes")
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(0.2)  # into the loop over images
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=600)  # a hang guard
    assert proc.returncode == 143, stderr  # 128 + SIGTERM, as shells report it
    assert stdout == b""
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temp folder went too


def test_h5_round_trip_one_dataset_per_tensor(tmp_path):
    tensors = {"backbone.conv1.weight": torch.randn(4, 3, 3, 3), "fc.bias": torch.arange(5.0),
               "half": torch.randn(3).bfloat16(), "steps": torch.tensor(7)}
    meta = {"role": "supernet", "log": [{"step": i, "loss": 1.0 / (i + 1)} for i in range(2000)]}
    manifest = write_h5(tmp_path / "w.h5", "gaia/weights", tensors, meta)
    assert manifest == {"kind": "gaia/weights", "path": str((tmp_path / "w.h5").resolve()),
                        "sha256": artifacts.sha256_file(tmp_path / "w.h5")}
    import h5py

    with h5py.File(tmp_path / "w.h5") as f:
        assert sorted(f["tensors"]) == sorted(tensors)
        assert f["meta"]["log"].dtype.kind == "O"  # a JSON string dataset, not an attribute
    with H5Artifact(tmp_path / "w.h5", "gaia/weights") as art:
        back = art.tensors()
        assert art.meta("log") == meta["log"]
        assert art.header["kind"] == "gaia/weights"
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype
        assert torch.equal(back[name], value)


def test_h5_reader_refuses_wrong_kind_corrupt_and_non_hdf5(tmp_path):
    write_h5(tmp_path / "w.h5", "gaia/weights", {"a": np.zeros(3)})
    with pytest.raises(BadInput, match="expected gaia/labels"):
        H5Artifact(tmp_path / "w.h5", "gaia/labels")
    whole = (tmp_path / "w.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[: len(whole) // 3])
    assert_bad_input(run_gaia("inspect", tmp_path / "cut.h5"), "cut.h5", "corrupt HDF5")
    (tmp_path / "fake.h5").write_bytes(artifacts.HDF5_SIGNATURE + os.urandom(4000))
    assert_bad_input(run_gaia("inspect", tmp_path / "fake.h5"), "corrupt HDF5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(BadInput, match="not an HDF5 file"):
        H5Artifact(tmp_path / "text.h5")


def test_manifest_line_resolves_to_its_file(tmp_path):
    manifest = write_h5(tmp_path / "w.h5", "gaia/weights", {"a": np.ones((2, 3), dtype=np.float32)})
    line = json.dumps(manifest)
    (tmp_path / "w.manifest").write_text(line + "\n")
    from_stdin = run_gaia("inspect", "-", input=line + "\n")
    from_file = run_gaia("inspect", tmp_path / "w.manifest")
    literal = run_gaia("inspect", line)
    for proc in (from_stdin, from_file, literal):
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["kind"] == "gaia/weights" and summary["parameters"] == 6
    assert artifacts.resolve_path(line) == tmp_path / "w.h5"
    # a manifest whose file changed since is refused
    write_h5(tmp_path / "w.h5", "gaia/weights", {"a": np.zeros(4)})
    assert_bad_input(run_gaia("inspect", "-", input=line), "has changed since")


def test_stdin_json_artifact(tmp_path):
    proc = run_gaia("inspect", "-", input=json.dumps(_labels()))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["summary"] == {"categories": 1, "datasets": {}}
