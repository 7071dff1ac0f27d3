"""Nothing lost: an output never replaces an input; links, FIFOs and devices are written through, never
replaced; one writer per output. Every case runs in this process (gaia_here) and is refused, or done,
before any training or measuring starts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, assert_bad_input, gaia_here


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (hidden ones too): a file's sha256, a link's target, or 'dir'."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                found[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def _manifest(path: Path, kind: str) -> str:
    return json.dumps({"kind": kind, "path": str(path.resolve()),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})


@pytest.fixture
def world(tmp_path, toy, monkeypatch):
    """A working folder holding one file of each kind a command reads (their contents do not matter: every
    case is refused before a file is parsed), a copy of the toy dataset, and links."""
    shutil.copytree(toy, tmp_path / "toy")
    shutil.copy(toy / "train.json", tmp_path / "d.json")
    shutil.copy(toy / "val.json", tmp_path / "v.json")
    shutil.copy(toy / "train.json", tmp_path / "m.split.json")
    shutil.copy(toy / "train" / "000001.png", tmp_path / "i.png")
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n weights")
    (tmp_path / "samples.h5").write_bytes(b"\x89HDF\r\n\x1a\n samples")
    (tmp_path / "m.ckpt.h5").write_bytes(b"\x89HDF\r\n\x1a\n checkpoint")
    for name, kind in (("s.json", "gaia/space"), ("a.json", "gaia/arch"), ("l.json", "gaia/labels"),
                       ("r.json", "gaia/label-review"), ("p.json", "gaia/latency-profile")):
        (tmp_path / name).write_text(json.dumps({"kind": kind, "schema_version": 1}) + "\n")
    (tmp_path / "samples.manifest").write_text(_manifest(tmp_path / "samples.h5", "gaia/montage-samples") + "\n")
    (tmp_path / "link.json").symlink_to("s.json")
    os.link(tmp_path / "s.json", tmp_path / "hard.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


SAMPLES_ON_STDIN = "@samples-manifest"

# (case, command line, what the one line says, inputs that must stay byte-identical). Every row: exit 2.
CASES = [
    ("train-supernet -o is --data", ["train-supernet", "--data", "d.json", "--space", "tiny", "-o", "d.json"],
     ["-o d.json is the input --data d.json"], ["d.json"]),
    ("train-supernet checkpoint is --data", ["train-supernet", "--data", "m.ckpt.h5", "-o", "m.h5"],
     ["the checkpoint m.ckpt.h5 is the input --data m.ckpt.h5"], ["m.ckpt.h5"]),
    ("train-supernet -o is --init", ["train-supernet", "--data", "d.json", "--init", "w.h5", "-o", "w.h5"],
     ["-o w.h5 is the input --init w.h5"], ["w.h5"]),
    ("train-supernet -o is --labels", ["train-supernet", "--data", "d.json", "--labels", "l.json", "-o", "l.json"],
     ["-o l.json is the input --labels l.json"], ["l.json"]),
    ("train-supernet -o an image of --images",
     ["train-supernet", "--data", "d.json", "--images", "toy", "-o", "toy/train/000002.png"],
     ["-o toy/train/000002.png is an image in the input folder --images toy"], ["toy/train/000002.png"]),
    ("finetune -o is --weights", ["finetune", "--weights", "w.h5", "--data", "d.json", "-o", "w.h5"],
     ["-o w.h5 is the input --weights w.h5"], ["w.h5"]),
    ("finetune --split-out is --data",
     ["finetune", "--weights", "w.h5", "--data", "d.json", "--percent", "10", "--split-out", "d.json", "-o", "m.h5"],
     ["--split-out d.json is the input --data d.json"], ["d.json"]),
    ("finetune default split is --data",
     ["finetune", "--weights", "w.h5", "--data", "m.split.json", "--percent", "10", "-o", "m.h5"],
     ["the split m.split.json is the input --data m.split.json"], ["m.split.json"]),
    ("finetune -o is --val", ["finetune", "--weights", "w.h5", "--data", "d.json", "--val", "v.json", "-o", "v.json"],
     ["-o v.json is the input --val v.json"], ["v.json"]),
    ("eval -o is --data", ["eval", "--weights", "w.h5", "--data", "v.json", "-o", "v.json"],
     ["-o v.json is the input --data v.json"], ["v.json"]),
    ("eval -o an image the dataset lists", ["eval", "--weights", "w.h5", "--data", "toy/val.json", "-o", "toy/val/000001.png"],
     ["-o toy/val/000001.png is an image of the input --data toy/val.json"], ["toy/val/000001.png"]),
    ("predict -o is an image", ["predict", "w.h5", "i.png", "-o", "i.png"],
     ["-o i.png is the input i.png"], ["i.png"]),
    ("predict --draw is the image folder", ["predict", "w.h5", "toy/train", "--draw", "toy/train"],
     ["--draw toy/train is the input toy/train"], ["toy/train/000001.png"]),
    ("predict --draw inside the image folder", ["predict", "w.h5", "toy", "--draw", "toy/drawn"],
     ["--draw toy/drawn lies inside the input folder toy"], ["toy/train/000001.png"]),
    ("predict --draw holds an input image", ["predict", "w.h5", "i.png", "--draw", "."],
     ["--draw . holds the input image i.png"], ["i.png"]),
    ("unify-labels -o is a source", ["unify-labels", "coco", "d.json", "-o", "d.json"],
     ["-o d.json is the input d.json"], ["d.json"]),
    ("unify-labels -o is a NAME=SOURCE", ["unify-labels", "coco", "mine=d.json", "-o", "d.json"],
     ["-o d.json is the input d.json"], ["d.json"]),
    ("unify-labels --review is --decisions", ["unify-labels", "voc", "coco", "--decisions", "r.json", "--review", "r.json"],
     ["--review r.json is the input --decisions r.json"], ["r.json"]),
    ("unify-labels --review and -o", ["unify-labels", "coco", "voc", "--review", "r.json", "-o", "r.json"],
     ["-o r.json and --review r.json name the same file"], ["r.json"]),
    ("unify-labels --apply -o is the dataset", ["unify-labels", "--apply", "l.json", "d.json", "-o", "d.json"],
     ["-o d.json is the input d.json"], ["d.json"]),
    ("unify-labels --apply -o is the labels", ["unify-labels", "--apply", "l.json", "d.json", "-o", "l.json"],
     ["-o l.json is the input --apply l.json"], ["l.json"]),
    ("unify-labels --base -o is the base", ["unify-labels", "--base", "l.json", "kitti", "-o", "l.json"],
     ["-o l.json is the input --base l.json"], ["l.json"]),
    ("search -o is --space", ["search", "--flops", "5", "--space", "s.json", "-o", "s.json"],
     ["-o s.json is the input --space s.json"], ["s.json"]),
    ("search -o is the --device profile", ["search", "--latency", "25", "--device", "p.json", "-o", "p.json"],
     ["-o p.json is the input --device p.json"], ["p.json"]),
    ("bench-latency --predict -o is the arch", ["bench-latency", "--predict", "--device", "v100", "a.json", "-o", "a.json"],
     ["-o a.json is the input a.json"], ["a.json"]),
    ("space show -o is the space", ["space", "show", "s.json", "-o", "s.json"],
     ["-o s.json is the input s.json"], ["s.json"]),
    ("space show -o a symlink to the space", ["space", "show", "s.json", "-o", "link.json"],
     ["-o link.json is the input s.json"], ["s.json"]),
    ("space show -o a hard link of the space", ["space", "show", "s.json", "-o", "hard.json"],
     ["-o hard.json is the input s.json"], ["s.json"]),
    ("extract-montage -o is --data", ["extract-montage", "--data", "d.json", "-o", "d.json"],
     ["-o d.json is the input --data d.json"], ["d.json"]),
    ("extract-montage --preview-out is --data",
     ["extract-montage", "--data", "d.json", "-o", "x.h5", "--preview", "2", "--preview-out", "d.json"],
     ["--preview-out d.json is the input --data d.json"], ["d.json"]),
    ("extract-montage --preview-out and -o", ["extract-montage", "--data", "d.json", "-o", "p.png", "--preview", "2",
                                              "--preview-out", "p.png"],
     ["-o p.png and --preview-out p.png name the same file"], ["d.json"]),
    ("pretrain -o is the samples", ["pretrain", "samples.h5", "-o", "samples.h5"],
     ["-o samples.h5 is the input samples.h5"], ["samples.h5"]),
    ("pretrain -o is the file a manifest file names", ["pretrain", "samples.manifest", "-o", "samples.h5"],
     ["-o samples.h5 is the input", "samples.h5"], ["samples.h5", "samples.manifest"]),
    ("pretrain -o is the file a manifest on stdin names", ["pretrain", "-", "-o", "samples.h5", SAMPLES_ON_STDIN],
     ["-o samples.h5 is the input", "samples.h5"], ["samples.h5"]),
    ("pretrain -o is --arch", ["pretrain", "samples.h5", "--arch", "a.json", "-o", "a.json"],
     ["-o a.json is the input --arch a.json"], ["a.json"]),
]


@pytest.mark.parametrize("case,argv,says,kept", CASES, ids=[c[0] for c in CASES])
def test_an_output_never_replaces_an_input(world, case, argv, says, kept):
    stdin = None
    if SAMPLES_ON_STDIN in argv:
        argv = [a for a in argv if a != SAMPLES_ON_STDIN]
        stdin = _manifest(world / "samples.h5", "gaia/montage-samples") + "\n"
    before = _snapshot(world)
    proc = gaia_here(*argv, input=stdin)
    assert_bad_input(proc, *says, "never replaces an input" if "same file" not in says[0] else "same file")
    assert _snapshot(world) == before  # inputs byte-identical, nothing created (no temp, no lock file)
    for name in kept:
        assert (world / name).exists()


def test_every_command_with_an_output_declares_its_files():
    """The guard covers every command: each output option of every command is declared as an output."""
    import typer

    from gaia_cli.cli.app import app
    from gaia_cli.cli.commands import declared_files

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, prefix + name + " ")
            else:
                yield prefix + name, cmd

    def chain(func):  # the callback and the functions it wraps
        while func is not None:
            yield func
            func = getattr(func, "__wrapped__", None)

    outputs = {"output", "review", "split_out", "draw", "preview_out"}
    seen = set()
    for name, cmd in walk(typer.main.get_command(app)):
        roles = next((declared_files(f) for f in chain(cmd.callback) if declared_files(f)), None)
        written = {p.name for p in cmd.params} & outputs
        if written or name == "toy-data":
            assert roles is not None, name
            assert any(getattr(f, "__gaia_guarded__", False) for f in chain(cmd.callback)), name
            assert written <= set(roles.outputs) | set(roles.output_folders), name
            seen.add(name)
    assert seen == {"train-supernet", "finetune", "eval", "predict", "unify-labels", "search", "bench-latency",
                    "space show", "extract-montage", "pretrain", "toy-data", "select-data",
                    "fit-pathfilter", "prune", "rank", "export"}


def test_outputs_into_a_dataset_image_folder(world):
    """Into a dataset's image folder: a new file, or one the dataset does not list, is fine; an image it lists
    is not (checked with the guard directly: the commands would go on to work)."""
    from gaia_cli.cli.commands import Files, guard
    from gaia_cli.errors import BadInput

    roles = Files(inputs=("data",), datasets=("data",), outputs=("output",))
    (world / "toy" / "train" / "notes.png").write_bytes(b"not listed")
    for fine in ("toy/train/new.json", "toy/train/metrics.json", "toy/train/notes.png"):
        with guard(roles, {"data": "toy/train.json", "output": Path(fine)}, {"data": "--data", "output": "-o"}):
            pass
    with pytest.raises(BadInput, match="is an image of the input --data toy/train.json"):
        with guard(roles, {"data": "toy/train.json", "output": Path("toy/train/000003.png")},
                   {"data": "--data", "output": "-o"}):
            pass
    assert not list(world.glob("**/.*.lock"))


# ---------------------------------------------------------------------------- links, FIFOs and devices


def _space_kind(data: bytes) -> str:
    return json.loads(data)["kind"]


def test_a_symlink_output_is_written_through(world):
    target = world / "target.json"
    target.write_text("old\n")
    (world / "out.json").symlink_to("target.json")
    proc = gaia_here("space", "show", "tiny", "-o", "out.json")
    assert proc.returncode == 0, proc.stderr
    assert (world / "out.json").is_symlink() and os.readlink(world / "out.json") == "target.json"
    assert _space_kind(target.read_bytes()) == "gaia/space"
    (world / "dangling.json").symlink_to("made.json")  # cp creates a dangling link's target
    assert gaia_here("space", "show", "tiny", "-o", "dangling.json").returncode == 0
    assert (world / "dangling.json").is_symlink() and _space_kind((world / "made.json").read_bytes()) == "gaia/space"
    assert not [p for p in world.iterdir() if p.name.startswith((".out.json", ".target.json", ".made.json"))]


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read():
        with open(path, "rb") as fh:
            into.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_fifo_output_receives_the_bytes_and_stays_a_fifo(world):
    fifo = world / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    proc = gaia_here("space", "show", "tiny", "-o", fifo)
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert got and _space_kind(got[0]) == "gaia/space"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in world.iterdir() if p.name.startswith(".out")) == []


def test_an_hdf5_output_into_a_fifo_has_the_manifest_of_its_bytes(world):
    from gaia_cli.artifacts import HDF5_SIGNATURE, write_h5

    fifo = world / "w.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    found = write_h5(fifo, "gaia/weights", {"w": [1.0, 2.0]}, {"role": "model"})
    reader.join(timeout=30)
    assert got[0][:8] == HDF5_SIGNATURE and found["sha256"] == hashlib.sha256(got[0]).hexdigest()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_null_output_stays_a_character_device():
    proc = gaia_here("space", "show", "tiny", "-o", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_socket_output_is_refused(world):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("out.sock")
        assert_bad_input(gaia_here("space", "show", "tiny", "-o", "out.sock"), "out.sock", "socket")
        assert stat.S_ISSOCK(os.lstat("out.sock").st_mode)
    finally:
        sock.close()


# ---------------------------------------------------------------------------------- one writer per output


HOLD = """
import sys, time
from gaia_cli.artifacts import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _wait_for_pid(lock: Path, pid: int, timeout: float = 60) -> None:
    """Poll until the lock file names `pid` (the holder has its lock): no sleep as synchronisation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().split()[:1] == [str(pid)]:
            return
        time.sleep(0.01)
    raise AssertionError(f"{lock} never named pid {pid}")


def _holder(path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, env=env)


@pytest.mark.parametrize("argv,out", [
    (["space", "show", "tiny", "-o", "out.json"], "out.json"),
    (["train-supernet", "--data", "d.json", "--space", "tiny", "-o", "m.h5"], "m.h5"),
    (["pretrain", "samples.h5", "-o", "m.h5"], "m.h5"),
    (["finetune", "--weights", "w.h5", "--data", "d.json", "-o", "m.h5"], "m.h5"),
    (["toy-data", "fresh"], "fresh"),
], ids=["space-show", "train-supernet", "pretrain", "finetune", "toy-data"])
def test_a_second_writer_is_refused_naming_the_holder(world, argv, out):
    holder = _holder(world / out)
    try:
        _wait_for_pid(world / f".{out}.lock", holder.pid)
        before = _snapshot(world)
        assert_bad_input(gaia_here(*argv), out, f"another gaia run (pid {holder.pid}) is writing it")
        assert _snapshot(world) == before
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's lock file is left behind, but its lock went with it: the next run is not blocked
    assert (world / f".{out}.lock").is_file()
    if argv[0] == "space":
        proc = gaia_here(*argv)
        assert proc.returncode == 0, proc.stderr
        assert not (world / f".{out}.lock").exists()  # a clean exit removes it


def test_a_running_gaia_holds_its_outputs_lock(world):
    """A real gaia run (waiting for its stdin) holds its -o's lock; a second run on the same -o exits 2 at
    once naming it, and the first one's lock file goes when it ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "gaia_cli", "bench-latency", "--predict", "--device", "v100", "-",
                              "-o", "lat.json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:
        _wait_for_pid(world / ".lat.json.lock", first.pid)
        assert_bad_input(gaia_here("space", "show", "tiny", "-o", "lat.json"), f"(pid {first.pid})")
        arch = json.loads(gaia_here("space", "sample", "tiny", "--rule", "max").stdout)
        first.communicate(json.dumps(arch).encode(), timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, first.stderr
    assert json.loads((world / "lat.json").read_text())
    assert not (world / ".lat.json.lock").exists()


def test_the_lock_goes_when_the_command_fails(world):
    assert gaia_here("space", "show", "no-such-space", "-o", "out.json").returncode == 2
    assert not [p for p in world.iterdir() if p.name.startswith(".out.json")]
