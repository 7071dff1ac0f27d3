"""I/O failures and unbounded reads are clean errors (issue 17, items 5 and 6).

A full disk (an injected ENOSPC), a stdout that is closed, full or cannot encode the data: one line naming
the file (or `<stdout>`) and the system's reason, exit 1, no temp files left, earlier outputs intact. An input
that would be read forever (a device), or JSON nested too deeply: one line, exit 2. In-process (`gaia_here`)
where no torch run is needed; each case takes well under a second.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import threading
import types

import pytest

from conftest import assert_bad_input, gaia_here, run_gaia
from gaia_cli import artifacts
from gaia_cli.errors import RunFailure

# ------------------------------------------------------------------------------------------ unbounded reads


def test_a_device_is_refused_not_read_forever():
    assert_bad_input(gaia_here("inspect", "/dev/zero"), "/dev/zero", "character device")


def test_a_directory_is_refused(tmp_path):
    assert_bad_input(gaia_here("inspect", tmp_path), "is a directory")


def test_an_hdf5_input_must_be_a_file():
    with pytest.raises(artifacts.BadInput, match="character device"):
        artifacts.resolve_path("/dev/zero")


def test_a_fifo_is_read(tmp_path):
    fifo = tmp_path / "arch.fifo"
    os.mkfifo(fifo)
    text = json.dumps({"kind": "gaia/arch", "schema_version": 1, "depths": [1]})

    def feed():
        with open(fifo, "w") as fh:
            fh.write(text)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        src = artifacts.read_input(fifo)
    finally:
        writer.join(timeout=10)
    assert src.data == text.encode()


def test_a_pipe_is_read_up_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts.inputs, "MAX_STREAM_BYTES", 1000)
    assert_bad_input(gaia_here("inspect", "-", input="[" + "0," * 1000 + "0]"), "<stdin>", "more than")
    assert gaia_here("inspect", "-", input="[0]").returncode == 2  # small: read, then "neither ..."


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_200000_deep_is_bad_input(tmp_path, opening):
    closing = "]" if opening == "[" else "}"
    deep = tmp_path / "deep.json"
    deep.write_text(opening * 200_000 + "0" + closing * 200_000)
    assert_bad_input(gaia_here("inspect", deep), "deep.json", "nested too deeply")
    assert_bad_input(gaia_here("bench-latency", deep, "--predict", "--device", "v100"), "deep.json", "nested too deeply")
    # a manifest-shaped first line is not followed, nor a crash
    line = '{"a":' * 1500 + "0" + "}" * 1500
    assert artifacts._as_manifest(line) is None


def test_json_nested_up_to_the_cap_is_read():
    depth = artifacts.MAX_JSON_DEPTH
    obj = artifacts.parse_json(("[" * depth + "]" * depth).encode(), "x")
    for _ in range(depth - 1):
        obj = obj[0]
    assert obj == []


def test_an_empty_stdin_says_so():
    assert_bad_input(gaia_here("bench-latency", "-", "--predict", "--device", "v100"), "<stdin>", "is empty")


# -------------------------------------------------------------------------------------------- a full disk

ENOSPC = os.strerror(errno.ENOSPC)


def _assert_io_failure(proc, *fragments: str) -> None:
    """Exit 1, one line on stderr naming what failed and why, no traceback, no 'internal error'."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gaia: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


class _Full(io.RawIOBase):
    """A file on a disk with `room` bytes left: a short write, then ENOSPC, as write(2) does."""

    def __init__(self, raw, room: int):
        super().__init__()
        self._raw, self.room = raw, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.room <= 0:
            raise OSError(errno.ENOSPC, ENOSPC)
        view = view[:self.room]
        self.room -= len(view)
        return self._raw.write(view)

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._raw.seek(pos, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer) -> int:
        return self._raw.readinto(buffer)

    def truncate(self, size=None) -> int:
        return self._raw.truncate(size)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()
        super().close()


def _fill_disk(monkeypatch, where: str, room: int = 100) -> None:
    """Writes of outputs fail with ENOSPC after `room` bytes: in a JSON output's temp file (`text`), an HDF5
    output's (`hdf5`), or when the finished temp is synced (`fsync`, as NFS and quotas report it)."""
    if where == "text":
        real_open = open

        def full_open(file, mode="r", *args, encoding=None, **kwargs):
            if "w" not in mode or not str(file).endswith(".tmp"):
                return real_open(file, mode, *args, encoding=encoding, **kwargs)
            buffered = io.BufferedWriter(_Full(io.FileIO(file, "w"), room))
            return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=encoding or "utf-8")

        monkeypatch.setattr(artifacts.atomic, "open", full_open, raising=False)
    elif where == "fsync":
        def fsync(fd):
            raise OSError(errno.ENOSPC, ENOSPC)

        monkeypatch.setattr(os, "fsync", fsync)
    elif where == "hdf5":
        real_init = artifacts._H5Sink.__init__

        def init(self, path):
            real_init(self, path)
            self._fh = _Full(self._fh, room)

        monkeypatch.setattr(artifacts._H5Sink, "__init__", init)
    else:
        raise ValueError(where)


@pytest.mark.parametrize("where", ["text", "fsync"])
def test_a_full_disk_while_writing_json_is_one_line_and_keeps_the_old_output(tmp_path, monkeypatch, where):
    out = tmp_path / "space.json"
    out.write_text("the earlier output\n")
    _fill_disk(monkeypatch, where)
    proc = gaia_here("space", "show", "ar50to101", "-o", out, "-q")
    _assert_io_failure(proc, str(out), "cannot write it", ENOSPC)
    assert out.read_text() == "the earlier output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.json"]  # no temp, no lock file left


@pytest.mark.parametrize("room", [0, 2000, 60_000])
def test_a_full_disk_while_writing_hdf5_is_one_line_and_leaves_no_temp(tmp_path, monkeypatch, room):
    """Before: 126 h5py tracebacks, then a segmentation fault (exit 139)."""
    import numpy as np

    out = tmp_path / "w.h5"
    out.write_bytes(b"the earlier output")
    _fill_disk(monkeypatch, "hdf5", room)
    with pytest.raises(RunFailure, match=ENOSPC) as failure:
        artifacts.write_h5(out, "gaia/weights", {f"t{i}": np.ones((64, 64), np.float32) for i in range(20)},
                           {"role": "supernet"})
    assert failure.value.path == str(out) and "cannot write it" in str(failure.value)
    assert out.read_bytes() == b"the earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]


def test_a_full_disk_during_extract_montage(toy, tmp_path, monkeypatch):
    out = tmp_path / "samples.h5"
    out.write_bytes(b"the earlier output")
    _fill_disk(monkeypatch, "hdf5", 4000)
    proc = gaia_here("extract-montage", "--data", toy / "train.json", "-o", out, "--workers", "0", "-q")
    _assert_io_failure(proc, str(out), "cannot write it", ENOSPC)
    assert proc.stdout == ""
    assert out.read_bytes() == b"the earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.h5"]


def test_a_failed_hdf5_write_is_seen_before_the_file_closes(tmp_path, monkeypatch):
    """A long writer (extract-montage, per image) asks `check_h5_write` and stops early."""
    import numpy as np

    _fill_disk(monkeypatch, "hdf5", 0)
    tmp = tmp_path / ".w.h5.1-host.abc.tmp"
    seen = []
    with pytest.raises(OSError) as failure:
        with artifacts.h5_writer(tmp) as f:
            artifacts.check_h5_write(f)  # nothing failed yet
            f.create_dataset("big", data=np.ones(1 << 20, np.float32))  # past HDF5's caches: written now
            try:
                artifacts.check_h5_write(f)
            except OSError as exc:
                seen.append(exc)
                raise
    assert seen and seen[0] is failure.value  # raised inside the block, then again as it closed
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(tmp)


def test_a_full_disk_while_making_toy_data(tmp_path, monkeypatch):
    from gaia_cli.data import toy as toy_module

    real = toy_module._split

    def split(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(errno.ENOSPC, ENOSPC)  # as PIL's save or write_text raise it

    monkeypatch.setattr(toy_module, "_split", split)
    proc = gaia_here("toy-data", tmp_path / "toy", "--images", "2", "--size", "32")
    _assert_io_failure(proc, str(tmp_path / "toy"), ENOSPC)
    assert list(tmp_path.iterdir()) == []


def test_an_oserror_with_no_file_is_still_one_line(monkeypatch):
    from gaia_cli import console

    def emit(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(console, "emit_json", emit)
    _assert_io_failure(gaia_here("space", "show", "tiny", "-q"), os.strerror(errno.EIO))


# ------------------------------------------------------------------------------------------------ stdout


def _gaia_with_stdout(args, stdout, env=None, close_stdout=False):
    """Run gaia (a light command: no torch) with stdout as given; return (code, stderr)."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "gaia_cli", *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, env=full_env, timeout=120,
                          preexec_fn=(lambda: os.close(1)) if close_stdout else None)
    return types.SimpleNamespace(returncode=proc.returncode, stderr=proc.stderr.decode(), stdout="")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        proc = _gaia_with_stdout(["space", "show", "tiny", "-q"], full)
    _assert_io_failure(proc, "<stdout>", ENOSPC)


def test_a_closed_stdout_is_one_line(tmp_path):
    proc = _gaia_with_stdout(["space", "show", "tiny", "-q"], None, close_stdout=True)
    _assert_io_failure(proc, "<stdout>", "closed")
    # with -o, stdout is not needed, and a closed fd 1 is never taken by the output's temp file
    out = tmp_path / "space.json"
    proc = _gaia_with_stdout(["space", "show", "tiny", "-q", "-o", out], None, close_stdout=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["kind"] == "gaia/space"


def test_an_ascii_stdout_gets_json_escapes_not_an_error(tmp_path):
    art = tmp_path / "arch-é.json"
    art.write_text(json.dumps({"kind": "gaia/arch", "schema_version": 1, "command": ["gaia", "façade ☃"]}),
                   encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "gaia_cli", "inspect", str(art)], capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "ascii", "NO_COLOR": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.isascii() and b"\\u00e9" in proc.stdout
    assert json.loads(proc.stdout)["command"] == ["gaia", "façade ☃"]  # the same data


def test_text_that_stdout_cannot_encode_is_one_line(monkeypatch):
    from gaia_cli import console

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    with pytest.raises(RunFailure, match="encoding") as failure:
        console.write_stdout("gaia façade\n")
    assert failure.value.path == "<stdout>"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stderr_keeps_the_exit_code(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "gaia_cli", "inspect", str(tmp_path / "missing.json")],
                              stdout=subprocess.PIPE, stderr=full, timeout=120)
    assert proc.returncode == 2


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 64 KiB tmpfs (root only, where mounting is allowed; skipped elsewhere): a disk that really fills up."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_really_full_filesystem_no_segfault(toy, tiny_filesystem):
    """The crash of the issue, on a real full disk: exit 1 and one line, not 126 tracebacks and exit 139."""
    out = tiny_filesystem / "samples.h5"
    proc = run_gaia("extract-montage", "--data", toy / "train.json", "-o", out, "--workers", "0", "-q")
    _assert_io_failure(proc, str(out), ENOSPC)
    assert list(tiny_filesystem.iterdir()) == []
