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

    # as from an interactive shell: a test runner started in the background inherits SIGINT ignored, which
    # gaia keeps ignored (the next test)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            monkeypatch.setattr(console, "emit_json", lambda *a, _s=sig, **k: os.kill(os.getpid(), _s))
            proc = gaia_here("space", "show", "tiny")
            assert proc.returncode == code, (sig, proc.stderr)
            assert proc.stderr.strip().splitlines()[-1].startswith("gaia: error: interrupted")
        # main() gives the handlers it installed back
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_ignored_by_the_parent_stays_ignored(monkeypatch):
    import signal

    from gaia_cli import console

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `gaia ... &` in a script
    try:
        monkeypatch.setattr(console, "emit_json", lambda *a, **k: os.kill(os.getpid(), signal.SIGINT))
        assert gaia_here("space", "show", "tiny").returncode == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# ------------------------------------------------------------------------------ messages that point the right way


def test_a_coco_folder_does_not_hide_the_builtin_coco(tmp_path, monkeypatch, capsys):
    from gaia_cli.labels.sources import parse_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "coco").mkdir()
    source = parse_source("coco")
    assert source.origin == "builtin:coco" and len(source.categories) == 80
    (tmp_path / "coco").rmdir()
    (tmp_path / "coco").write_text("person\nbicycle\n")
    from_file = parse_source("coco")  # a file of that name is read, with a warning that says how to get the other
    assert [c["name"] for c in from_file.categories] == ["person", "bicycle"]
    assert "builtin:coco" in capsys.readouterr().err
    assert parse_source("builtin:coco").origin == "builtin:coco"


@pytest.mark.parametrize("content, fragment", [
    (b'{"kind": "gaia/arch", "schema_version": 1}', "is a JSON file"),
    (b"hello", "neither HDF5 nor a torch .pth file"),
    (b"PK\x03\x04 a broken zip", "not a torch state dict"),
])
def test_init_with_the_wrong_file_is_one_line(tmp_path, content, fragment):
    from gaia_cli.errors import BadInput
    from gaia_cli.nn.io import init_backbone

    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=fragment) as failure:
        init_backbone(None, path)  # refused before the model is touched
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_an_empty_vectors_file_says_so(tmp_path, content):
    from gaia_cli.errors import BadInput
    from gaia_cli.labels.vectors import load_vectors

    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    for fmt in ("auto", "glove", "word2vec-text"):
        with pytest.raises(BadInput, match="is empty"):
            load_vectors(path, fmt)


def _coco(tmp_path, boxes, corrupt=False):
    from PIL import Image

    images = [{"id": i, "file_name": f"{i}.png", "width": 40, "height": 30} for i in (1, 2)]
    for im in images:
        if corrupt:
            (tmp_path / im["file_name"]).write_bytes(b"not a png")
        else:
            Image.new("RGB", (40, 30)).save(tmp_path / im["file_name"])
    annotations = [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(boxes, start=1)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "thing"}]}))
    return path


def test_corrupt_images_are_not_called_missing(tmp_path):
    path = _coco(tmp_path, [[0, 0, 4, 4]], corrupt=True)
    proc = gaia_here("inspect", "--check-images", path)
    assert_bad_input(proc, "none of its 2 images", "2 could not be decoded (first: 1.png)")
    assert "not found" not in proc.stderr and "--images" not in proc.stderr


def test_a_box_outside_its_image_is_not_called_zero_area(tmp_path):
    from gaia_cli.data.coco import load_coco

    data = load_coco(_coco(tmp_path, [[0, 0, 4, 4], [1e9, 1e9, 10, 10], [0, 0, 1e9, 1e9], [2, 2, 0, 3]]))
    assert data.report.counts == {"boxes_outside": 1, "boxes_clipped": 1, "boxes_degenerate": 1}
    assert "wholly outside" in data.report.summary()


def test_an_error_from_a_dataloader_worker_is_its_own_last_line():
    from gaia_cli.cli.app import _one_line

    message = ("Caught BadInput in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\n    g()\n'
               "gaia_cli.errors.BadInput: t.json: cannot read image 'a.png' (cannot identify image file)\n")
    assert _one_line(message) == "t.json: cannot read image 'a.png' (cannot identify image file)"
    assert _one_line("one line") == "one line"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A static model of the tiny space (untrained): enough for predict's checks of its inputs."""
    import numpy as np

    from gaia_cli.nn.detector import build_static
    from gaia_cli.nn.io import save_detector
    from gaia_cli.space.arch import preset
    from gaia_cli.space.sampling import sample

    space = preset("tiny")
    arch = sample(space, "uniform", np.random.default_rng(0))
    path = tmp_path_factory.mktemp("model") / "model.h5"
    save_detector(path, build_static(arch, 3, space.detector), ["a", "b"],
                  {"arch": arch.as_dict(), "detector": space.detector})
    return path, arch


def test_predict_coco_given_an_arch_says_what_it_is(tmp_path, tiny_model):
    from PIL import Image

    model, arch = tiny_model
    Image.new("RGB", (64, 48)).save(tmp_path / "1.png")
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"kind": "gaia/arch", "schema_version": 1, **arch.as_dict()}))
    proc = gaia_here("predict", model, tmp_path / "1.png", "--coco", arch_file, "--device", "cpu")
    assert_bad_input(proc, str(arch_file), "is a gaia/arch artifact", "--coco takes the COCO annotations")
    assert "not listed" not in proc.stderr
