"""I/O failures and unbounded reads are clean errors (issue 17, items 5 and 6).

A full disk (an injected ENOSPC), a stdout that is closed, full or cannot encode the data: one line naming
the file (or `<stdout>`) and the system's reason, exit 1, no temp files left, earlier outputs intact. An input
that would be read forever (a device), or JSON nested too deeply: one line, exit 2. In-process (`gaia_here`)
where no torch run is needed; each case takes well under a second.
"""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest

from conftest import assert_bad_input, gaia_here
from gaia_cli import artifacts

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
    monkeypatch.setattr(artifacts, "MAX_STREAM_BYTES", 1000)
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
