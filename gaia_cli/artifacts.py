"""Typed artifacts: the files that flow between gaia's commands.

Every artifact carries a header: `kind` (what it is, e.g. `gaia/labels`), `schema_version` (of that kind's
layout), `gaia_version`, `command` (the argv that made it), `created` (UTC, ISO 8601) and `inputs` (path and
sha256 of each input file). JSON artifacts keep the header keys at the top level beside their payload, so a
person can read and edit them. HDF5 artifacts keep it as a JSON string dataset `/meta/header` (attributes are
size-limited), one dataset per tensor under `/tensors/`, and any other metadata as JSON string datasets
under `/meta/`. Nothing is pickled; loading never runs code from a file.

Writes are atomic: a temp file in the destination folder, fsync, then rename. A killed command leaves either
the old file or the new one, never half of one. The temp file's name, `.NAME.PID-HOST.XXXXXXXX.tmp`, says
which process wrote it; the next write of NAME removes the ones whose process on this host is gone (a run
killed with SIGKILL cannot remove its own), never one of a live process.

Inputs may be a path, `-` (stdin), or a manifest line `{"kind": ..., "path": ..., "sha256": ...}` (given
literally, on stdin, or in a file), which resolves to the file it names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from gaia_cli import __version__
from gaia_cli.errors import BadInput, io_failure

# The kinds this gaia knows, with the newest schema version it writes and reads. A reader refuses a file
# whose schema_version is newer than the one listed here.
KINDS: dict[str, int] = {
    "gaia/labels": 1,
    "gaia/label-review": 1,
    "gaia/weights": 1,
    "gaia/space": 1,
    "gaia/arch": 1,
    "gaia/checkpoint": 1,
    "gaia/latency": 1,
    "gaia/latency-profile": 1,
    "gaia/arch-set": 1,
    "gaia/selection": 1,
    "gaia/features": 1,
    "gaia/montage-samples": 1,
    "gaia/pathfilter": 1,
    "gaia/ranking": 1,
}

HEADER_KEYS = ("kind", "schema_version", "gaia_version", "command", "created", "inputs")
MANIFEST_KEYS = {"kind", "path", "sha256"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_stdin_cache: bytes | None = None


# ------------------------------------------------------------------------------------------- provenance


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class InputRef:
    """An input file as recorded in a header: the path given (or '-') and the sha256 of its bytes."""

    path: str
    sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def header(kind: str, inputs: list[InputRef] | None = None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    return {
        "kind": kind,
        "schema_version": KINDS[kind],
        "gaia_version": __version__,
        "command": ["gaia", *sys.argv[1:]],
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": [ref.as_dict() for ref in (inputs or [])],
    }


def check_header(meta: Mapping[str, Any], expected: str | tuple[str, ...] | None, source: str) -> str:
    """Check a header's kind and schema version; return the kind. Raises BadInput naming `source`."""
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise BadInput("not a gaia artifact (it has no 'kind')", source)
    wanted = (expected,) if isinstance(expected, str) else expected
    if wanted and kind not in wanted:
        raise BadInput(f"is a {kind} artifact, expected {' or '.join(wanted)}", source)
    if kind not in KINDS:
        raise BadInput(f"unknown artifact kind {kind!r} (this gaia knows {', '.join(sorted(KINDS))})", source)
    version = meta.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadInput(f"{kind} artifact has no valid schema_version", source)
    if version > KINDS[kind]:
        raise BadInput(
            f"{kind} schema version {version} was written by a newer gaia "
            f"({meta.get('gaia_version', '?')}); this gaia {__version__} reads up to {KINDS[kind]}",
            source,
        )
    return kind


# ------------------------------------------------------------------------------------------ atomic writes


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    A symlink is written through (its target's folder must be writable); a FIFO or a character device
    (`/dev/null`) is written directly, so its folder need not be writable. A block device or a socket is
    refused: gaia writes files.
    """
    out = Path(path)
    try:
        st = os.stat(out)  # through symlinks
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BadInput(f"cannot use it as an output: {exc.strerror or exc}", out) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise BadInput("is a directory, expected an output file path", out)
        if _streamed(st):
            if not os.access(out, os.W_OK):
                raise BadInput("is not writable", out)
            return out
        if not stat.S_ISREG(st.st_mode):
            raise BadInput("is a block device or a socket, not a file gaia can write to", out)
    target = written_path(out)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"output folder {str(parent)!r} does not exist", out)
    if not os.access(parent, os.W_OK):
        raise BadInput(f"output folder {str(parent)!r} is not writable", out)
    return out


def _streamed(st: os.stat_result) -> bool:
    """A FIFO or a character device: written directly, never replaced."""
    return stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)


def written_path(out: str | os.PathLike) -> Path:
    """The file a write of `out` replaces: `out` itself, or through a symlink (also a dangling one) its target."""
    out = Path(out)
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what `path` names, through symlinks; None when it does not exist (or cannot be seen)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _host_tag() -> str:
    """This host's name as it goes into temp names: letters, digits and '-' only (no dots), at most 40."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _temp_owner(pid: int) -> str:
    """The middle part of a temp name: which process, on which host, wrote it."""
    return f"{pid}-{_host_tag()}"


# what follows `.NAME.` in a temp name made by temp_beside: owner, mkstemp's random part, `.tmp`. None of the
# parts holds a dot, so a temp of another output whose name starts with NAME never matches.
_TEMP_TAIL = re.compile(r"(\d+)-([A-Za-z0-9-]+)\.[A-Za-z0-9_]+\.tmp")


def _process_gone(pid: int) -> bool:
    """True only when no process `pid` runs here; anything unclear (no permission, odd pid) counts as alive."""
    if pid <= 0 or os.name == "nt":  # on Windows os.kill(pid, 0) would terminate the process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False
    return False


def remove_stale_temps(out: str | os.PathLike) -> list[Path]:
    """Remove the temp files and folders left beside `out` by writers of it that were killed; return them.

    Only names of the form `temp_beside` makes for this very name, written on this host by a process that no
    longer runs, are touched: a temp of a live writer, of another host (a shared folder) or of another output
    is kept.
    """
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    prefix, host = f".{out.name}.", _host_tag()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _TEMP_TAIL.fullmatch(entry.name[len(prefix):])
        if match is None or match.group(2) != host or not _process_gone(int(match.group(1))):
            continue
        path = folder / entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass  # another writer removed it first
        except OSError:
            continue  # cleaning up is best effort; the write itself goes on
        removed.append(path)
    return removed


def _umask() -> int:
    """This process's umask (from /proc where it is, which unlike os.umask changes nothing)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _honour_umask(path: Path, mode: int) -> Path:
    """mkstemp and mkdtemp make 0600 and 0700; an output gets what open() and mkdir() would give it."""
    os.chmod(path, mode & ~_umask())
    return path


def temp_beside(out: str | os.PathLike, folder: bool = False) -> Path:
    """Make an empty temp file (or folder) beside `out`, named for `out` and this process.

    Stale temps of `out` left by killed writers are removed first (see `remove_stale_temps`).
    """
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    remove_stale_temps(out)
    prefix = f".{out.name}.{_temp_owner(os.getpid())}."
    if folder:
        return _honour_umask(Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent)), 0o777)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
    os.close(fd)
    return _honour_umask(Path(tmp), 0o666)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """`_atomic_path`, with an OSError of the write itself (a full disk, a quota, an I/O error, in the block,
    fsync or rename) turned into one line naming `path` (RunFailure, exit 1). The temp is gone by then."""
    try:
        with _atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        if not _is_write_error(exc, path):
            raise
        raise io_failure(exc, path) from exc


def _is_write_error(exc: OSError, out: str | os.PathLike) -> bool:
    """Whether `exc` came from writing `out`: it names no file (a write or flush), `out`, or a temp of `out`."""
    if exc.filename is None:
        return True
    name, own = os.path.basename(os.fspath(exc.filename)), Path(out).name
    return os.path.abspath(exc.filename) == os.path.abspath(out) or \
        (name.startswith(f".{own}.") and name.endswith(".tmp"))


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success fsync it and rename it over `path`, else delete it.

    Through a symlink the target is replaced and the link kept (as `cp` does). A FIFO or a character device
    is never replaced: the finished temp file (in the temp folder) is copied into it, then deleted.
    """
    out = check_output_path(path)
    try:
        streamed = _streamed(os.stat(out))
    except OSError:
        streamed = False
    if streamed:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.{_temp_owner(os.getpid())}.", suffix=".tmp")
        os.close(fd)
        tmp_path = Path(name)
        try:
            yield tmp_path
            _stream_digests[os.path.abspath(out)] = _copy_into(tmp_path, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        return
    target = written_path(out)
    tmp_path = temp_beside(target)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(os.lstat(target).st_mode):  # it changed since the check: never replace it
                raise BadInput("is no longer a regular file; it was not replaced", out)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent if str(target.parent) else Path("."))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


# the sha256 of what was last written into a FIFO or device (it cannot be read back for the manifest)
_stream_digests: dict[str, str] = {}


def _copy_into(src: Path, out: Path) -> str:
    """Copy `src` into the FIFO or device `out` (opened without O_CREAT or O_TRUNC); return the bytes' sha256."""
    digest = hashlib.sha256()
    fd = os.open(out, os.O_WRONLY)
    try:
        with open(src, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temp file for writing; it replaces `path` only if the block finishes."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh


# ------------------------------------------------------------------------------------------ output locks


def lock_path(out: str | os.PathLike) -> Path | None:
    """The lock file of output `out`: `.NAME.lock` beside the file written (through symlinks), or None for
    a FIFO or a device (written directly; nothing may be created beside it)."""
    out = Path(out)
    try:
        if _streamed(os.stat(out)):
            return None
    except OSError:
        pass
    target = written_path(out)
    if target.name in ("", ".", ".."):  # a folder given as '.' or '..'
        target = Path(os.path.realpath(target))
    return target.with_name(f".{target.name}.lock") if target.name else None


def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("ascii", "replace").split()
        if text and text[0].isdigit():
            host = text[1] if len(text) > 1 else ""
            return f"pid {text[0]}" + (f" on {host}" if host and host != _host_tag() else "")
    return "a process that is starting"


@contextlib.contextmanager
def output_lock(out: str | os.PathLike) -> Iterator[Path | None]:
    """Hold the exclusive lock of output `out` for the block: one writer per output.

    An advisory `flock` on `.NAME.lock` beside the output, which holds the holder's pid and host. A second
    writer fails at once (BadInput naming the holder's pid). The kernel releases the lock when its process
    ends, however it ends, so a lock file left by a killed run never blocks; a clean exit removes it.
    Under torchrun only rank 0 writes, so only rank 0 locks; outputs in a FIFO or a device are not locked.
    """
    lock = lock_path(out)
    if lock is None or os.name == "nt" or int(os.environ.get("RANK", "0") or 0) > 0:
        yield None
        return
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: read-only is enough to see whether it is held
            fd = None
        except OSError as exc:
            raise BadInput(f"cannot create its lock file {str(lock)!r}: {exc.strerror or exc}", out) from None
        try:
            probe = fd if fd is not None else os.open(lock, os.O_RDONLY)
        except OSError as exc:
            raise BadInput(f"cannot create its lock file {str(lock)!r}: {exc.strerror or exc}", out) from None
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _lock_holder(probe)
            os.close(probe)
            raise BadInput(f"another gaia run ({holder}) is writing it; wait for it to end or write elsewhere",
                           out) from None
        if fd is None:  # a stale lock file we may not write: remove it (its holder is gone) and make ours
            try:
                os.unlink(lock)
            except OSError as exc:
                raise BadInput(f"cannot replace the stale lock file {str(lock)!r}: {exc.strerror or exc}",
                               out) from None
            finally:
                os.close(probe)
            continue
        # a holder that just ended removed the file we opened: lock the one now at that name instead
        if file_identity(lock) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # the holder's name is for messages; a full disk fails the write itself
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {_host_tag()}\n".encode(), 0)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it, so no one locks a removed file
        os.close(fd)


# ------------------------------------------------------------------------------------------------ inputs

# What gaia reads whole from stdin or a pipe (JSON: datasets, archs, label spaces; weights never come this
# way). A regular file is read at its size; a stream is cut off here instead of filling memory.
MAX_STREAM_BYTES = 2 * 2**30
# How deeply JSON may nest. gaia's own files and COCO's nest fewer than 10 levels; far deeper input
# would otherwise end in Python's RecursionError while parsing, or later while writing it back out.
MAX_JSON_DEPTH = 500


def _what_it_is(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "not a regular file"


def _stat_input(p: Path, pipes: bool = True) -> os.stat_result:
    """Stat an input (through links) and refuse what cannot be read as a file: a directory, a device, a
    socket (`/dev/zero` would be read forever). Pipes (`<(...)`) are allowed where `pipes`."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BadInput("no such file", p) from None
    except PermissionError:
        raise BadInput("cannot read it: permission denied", p) from None
    except OSError as exc:
        raise BadInput(f"cannot read it: {exc.strerror or exc}", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput("is a directory, expected a file", p)
    if stat.S_ISREG(st.st_mode) or (pipes and stat.S_ISFIFO(st.st_mode)):
        return st
    raise BadInput(f"is {_what_it_is(st)}, expected a file" + (" or a pipe" if pipes else ""), p)


def _read_stream(fh, name: str | Path) -> bytes:
    """All of a pipe, in chunks, up to MAX_STREAM_BYTES."""
    chunks, size = [], 0
    while chunk := fh.read(1 << 20):
        size += len(chunk)
        if size > MAX_STREAM_BYTES:
            raise BadInput(f"holds more than {MAX_STREAM_BYTES // 2**30} GiB, the most gaia reads from a pipe or "
                           "stdin (give it as a file)", name)
        chunks.append(chunk)
    return b"".join(chunks)


def _read_stdin() -> bytes:
    global _stdin_cache
    if _stdin_cache is None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise BadInput("'-' cannot be read under torchrun (stdin reaches one process only): give a file", "-")
        if sys.stdin is None:
            raise BadInput("'-' reads from stdin, but stdin is closed", "-")
        if sys.stdin.isatty():
            raise BadInput("'-' reads from stdin, but stdin is a terminal (pipe a file in)", "-")
        st = None
        with contextlib.suppress(AttributeError, OSError, ValueError):  # (no fd: tests swap stdin for a buffer)
            st = os.fstat(sys.stdin.fileno())
        if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            if not os.path.samestat(st, os.stat(os.devnull)):  # `< /dev/null` is just empty
                raise BadInput(f"is {_what_it_is(st)}, expected a pipe or a file", "<stdin>")
            _stdin_cache = b""
        else:
            _stdin_cache = _read_stream(sys.stdin.buffer, "<stdin>")
    return _stdin_cache


def _read_file(path: str | os.PathLike) -> bytes:
    p = Path(path)
    st = _stat_input(p)
    try:
        with open(p, "rb") as fh:
            return fh.read() if stat.S_ISREG(st.st_mode) else _read_stream(fh, p)
    except PermissionError:
        raise BadInput("cannot read it: permission denied", p) from None
    except OSError as exc:
        raise BadInput(f"cannot read it: {exc.strerror or exc}", p) from None


def _frames() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        frame, n = frame.f_back, n + 1
    return n


def loads_json(text: str | bytes) -> Any:
    """json.loads, with nesting deeper than MAX_JSON_DEPTH raising RecursionError at once.

    The C decoder counts each level against the recursion limit, which is lowered for the call to what this
    stack has used plus MAX_JSON_DEPTH (and a few frames for json's own Python code).
    """
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_frames() + MAX_JSON_DEPTH + 20)
    try:
        return json.loads(text)
    finally:
        sys.setrecursionlimit(old)


def _as_manifest(data: bytes | str) -> dict[str, Any] | None:
    """The manifest in `data` if it is exactly one manifest line, else None."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if not text.startswith("{") or "\n" in text or len(text) > 8192:
        return None
    try:
        obj = loads_json(text)
    except (ValueError, RecursionError):
        return None
    # a manifest may carry more (finetune adds its final metrics); these three make it one
    if isinstance(obj, dict) and MANIFEST_KEYS <= set(obj) and isinstance(obj.get("path"), str) \
            and isinstance(obj.get("sha256"), str) and len(obj["sha256"]) == 64:
        return obj
    return None


def _follow_manifest(manifest: dict[str, Any], source: str) -> Path:
    target = Path(manifest["path"])
    if not target.is_file():
        raise BadInput(f"the manifest names {str(target)!r}, which does not exist", source)
    if sha256_file(target) != manifest["sha256"]:
        raise BadInput(f"{str(target)!r} has changed since the manifest was written (sha256 differs)", source)
    return target


@dataclasses.dataclass
class Input:
    """One input, resolved: its bytes, a name for messages, and its real path when it is a file."""

    name: str
    data: bytes
    path: Path | None

    @property
    def ref(self) -> InputRef:
        return InputRef(str(self.path) if self.path else self.name, sha256_bytes(self.data))


def read_input(spec: str | os.PathLike) -> Input:
    """Resolve a path, '-' or a manifest line (literal, on stdin, or in a file) to the bytes it names.

    A regular file is read whole; a pipe or stdin up to MAX_STREAM_BYTES; a device, socket or directory is
    refused (exit 2).
    """
    spec = os.fspath(spec)
    literal = _as_manifest(spec)
    if literal is not None:
        target = _follow_manifest(literal, "manifest")
        return Input(str(target), _read_file(target), target)
    if spec == "-":
        data, name, path = _read_stdin(), "<stdin>", None
    else:
        data, name, path = _read_file(spec), spec, Path(spec)
    if data[:8] != HDF5_SIGNATURE:
        manifest = _as_manifest(data)
        if manifest is not None:
            target = _follow_manifest(manifest, name)
            return Input(str(target), _read_file(target), target)
    return Input(name, data, path)


def resolve_path(spec: str | os.PathLike) -> Path:
    """Like `read_input`, for inputs that must be a real file on disk (HDF5): return its path.

    A pipe may carry a manifest line naming the file; a pipe, device or socket is never the file itself.
    """
    spec = os.fspath(spec)
    literal = _as_manifest(spec)
    if literal is not None:
        return _follow_manifest(literal, "manifest")
    if spec == "-":
        manifest = _as_manifest(_read_stdin())
        if manifest is None:
            raise BadInput("stdin does not hold a manifest line naming a file", "-")
        return _follow_manifest(manifest, "<stdin>")
    p = Path(spec)
    st = _stat_input(p)
    with open(p, "rb") as fh:
        head = fh.read(8192)
    if head[:8] != HDF5_SIGNATURE:
        manifest = _as_manifest(head)
        if manifest is not None:
            return _follow_manifest(manifest, spec)
    if not stat.S_ISREG(st.st_mode):
        raise BadInput("is a pipe that holds no manifest line; an HDF5 input must be a file", p)
    return p


def parse_json(data: bytes, name: str) -> Any:
    """Decode JSON with errors that name the file and say what is wrong."""
    if not data.strip():
        raise BadInput("is empty, expected JSON", name)
    if data[:8] == HDF5_SIGNATURE:
        raise BadInput("is an HDF5 file, expected JSON", name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"is not UTF-8 text (byte {exc.start}), expected JSON", name) from None
    try:
        return loads_json(text)
    except RecursionError:
        raise BadInput(f"is nested too deeply (gaia reads JSON nested up to {MAX_JSON_DEPTH} levels)",
                       name) from None
    except json.JSONDecodeError as exc:
        # the text ends before the document does: the file was cut short
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        reason = "truncated JSON" if at_end else "invalid JSON"
        raise BadInput(f"{reason}: {exc.msg} at line {exc.lineno} column {exc.colno}", name) from None


# ------------------------------------------------------------------------------------------ JSON artifacts


@dataclasses.dataclass
class JsonArtifact:
    kind: str
    meta: dict[str, Any]  # header keys
    data: dict[str, Any]  # everything else
    source: Input


def read_json_artifact(spec: str | os.PathLike, kind: str | tuple[str, ...] | None = None) -> JsonArtifact:
    """Read and check a JSON artifact; `kind` may be one kind, several, or None for any known kind."""
    src = read_input(spec)
    obj = parse_json(src.data, src.name)
    if not isinstance(obj, dict):
        raise BadInput(f"expected a JSON object, found {type(obj).__name__}", src.name)
    found = check_header(obj, kind, src.name)
    meta = {k: obj[k] for k in HEADER_KEYS if k in obj}
    data = {k: v for k, v in obj.items() if k not in HEADER_KEYS}
    return JsonArtifact(found, meta, data, src)


def json_artifact(kind: str, payload: Mapping[str, Any], inputs: list[InputRef] | None = None) -> dict:
    """A JSON artifact: header keys first, then the payload."""
    clash = set(payload) & set(HEADER_KEYS)
    if clash:
        raise ValueError(f"payload uses header keys {sorted(clash)}")
    return {**header(kind, inputs), **payload}


# ------------------------------------------------------------------------------------------ HDF5 artifacts


def _h5py():
    import h5py

    return h5py


class _H5Sink(io.RawIOBase):
    """The file an HDF5 output is written through (h5py's fileobj driver).

    HDF5 reports a failed write (a full disk) only from destructors, as ignored RuntimeErrors by the hundred,
    and then crashes in close (a segmentation fault). Here the first OSError is kept and the writes after
    it are dropped, so HDF5 carries on and closes cleanly; `h5_writer` then raises the error.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.error: OSError | None = None
        self._fh = open(path, "w+b", buffering=0)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def readinto(self, buffer) -> int:
        return self._fh.readinto(buffer)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        end = self._fh.tell() + size
        if self.error is None:
            try:
                while view:
                    view = view[self._fh.write(view):]
                return size
            except OSError as exc:
                self._fail(exc)
        self._fh.seek(end)  # dropped: the file is discarded anyway
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as exc:
                self._fail(exc)
        return self._fh.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered; atomic_path fsyncs the finished file

    def _fail(self, exc: OSError) -> None:
        self.error = OSError(exc.errno, exc.strerror, str(self.path)) if exc.filename is None else exc

    def close(self) -> None:
        self._fh.close()
        super().close()


@contextlib.contextmanager
def h5_writer(path: str | os.PathLike) -> Iterator[Any]:
    """An h5py.File created at `path` (an atomic_path temp), closed properly however the block ends.

    A write that failed (ENOSPC) is raised as an OSError naming `path` once HDF5 has closed the file, in
    place of any error it caused in the block; atomic_path turns it into one line and removes the temp.
    """
    h5py = _h5py()
    sink = _H5Sink(Path(path))
    try:
        try:
            f = h5py.File(sink, "w")
        except BaseException:
            if sink.error is not None:
                raise sink.error from None
            raise
        f.gaia_sink = sink  # for check_h5_write
        try:
            yield f
        finally:
            f.close()
    except BaseException:
        sink.close()
        if sink.error is not None:
            raise sink.error from None
        raise
    sink.close()
    if sink.error is not None:
        raise sink.error


def check_h5_write(f) -> None:
    """Raise now if a write into `f` (from `h5_writer`) failed: a long writer stops early, not at the end."""
    sink = getattr(f, "gaia_sink", None)
    if sink is not None and sink.error is not None:
        raise sink.error


def manifest(kind: str, path: str | os.PathLike) -> dict[str, str]:
    p = Path(path).resolve()
    streamed = _stream_digests.get(os.path.abspath(path))
    if streamed is not None and not p.is_file():  # a FIFO or device: the bytes written, not read back
        return {"kind": kind, "path": str(p), "sha256": streamed}
    return {"kind": kind, "path": str(p), "sha256": sha256_file(p)}


def write_h5(
    path: str | os.PathLike,
    kind: str,
    tensors: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    inputs: list[InputRef] | None = None,
) -> dict[str, str]:
    """Write an HDF5 artifact atomically and return its manifest.

    `tensors` maps names (state-dict keys) to torch tensors or numpy arrays; each becomes one dataset.
    bfloat16 is stored as float32 with the original dtype kept in the dataset's `dtype` attribute.
    `meta` maps names to JSON-serialisable values, each stored as a JSON string dataset under /meta/.
    """
    import numpy as np

    meta = dict(meta or {})
    with atomic_path(path) as tmp:
        with h5_writer(tmp) as f:
            write_h5_meta(f, kind, meta, inputs)
            group = f.create_group("tensors")
            for name, value in tensors.items():
                original = None
                if hasattr(value, "detach"):  # a torch tensor
                    original = str(value.dtype).removeprefix("torch.")
                    value = value.detach().cpu()
                    if original == "bfloat16":
                        value = value.float()
                    value = value.numpy()
                arr = np.asarray(value, order="C")  # (ascontiguousarray would make a 0-d tensor 1-d)
                ds = group.create_dataset(name, data=arr)
                if original and original != str(arr.dtype):
                    ds.attrs["dtype"] = original
    return manifest(kind, path)


def write_h5_meta(f, kind: str, meta: Mapping[str, Any], inputs: list[InputRef] | None = None) -> None:
    """The kind attributes, the header and `meta` (JSON string datasets) into an open h5py file.

    For writers that stream their tensors (`extract-montage`): open the file on `atomic_path`'s temp path,
    call this, then add datasets under `/tensors/`.
    """
    h5py = _h5py()
    if "header" in meta:
        raise ValueError("'header' is reserved")
    f.attrs["kind"] = kind
    f.attrs["schema_version"] = KINDS[kind]
    strings = f.require_group("meta")
    for name, value in {"header": header(kind, inputs), **meta}.items():
        strings.create_dataset(name, data=json.dumps(value), dtype=h5py.string_dtype("utf-8"))


class H5Artifact:
    """A read-only HDF5 artifact. Use as a context manager; tensors are read on demand."""

    def __init__(self, spec: str | os.PathLike, kind: str | tuple[str, ...] | None = None):
        self.path = resolve_path(spec)
        h5py = _h5py()
        with open(self.path, "rb") as fh:
            if fh.read(8) != HDF5_SIGNATURE:
                raise BadInput("is not an HDF5 file", self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise BadInput(f"corrupt HDF5 file ({exc})", self.path) from None
        try:
            self.header = self.meta("header")
        except BadInput:
            self._file.close()
            raise
        if not isinstance(self.header, dict):
            self._file.close()
            raise BadInput("not a gaia artifact (its header is not an object)", self.path)
        try:
            self.kind = check_header(self.header, kind, str(self.path))
        except BadInput:
            self._file.close()
            raise

    def __enter__(self) -> "H5Artifact":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def meta_names(self) -> list[str]:
        return sorted(self._file["meta"].keys()) if "meta" in self._file else []

    def meta(self, name: str) -> Any:
        try:
            raw = self._file["meta"][name][()]
        except KeyError:
            raise BadInput(f"has no /meta/{name} (not a gaia artifact, or not this kind)", self.path) from None
        except OSError as exc:
            raise BadInput(f"corrupt HDF5 file ({exc})", self.path) from None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        try:
            return loads_json(text)
        except (ValueError, RecursionError):
            raise BadInput(f"/meta/{name} is not valid JSON (or nested too deeply)", self.path) from None

    def tensor_names(self) -> list[str]:
        """Every tensor's name; a name with '/' lives in nested groups (h5py's paths)."""
        if "tensors" not in self._file:
            return []
        h5py = _h5py()
        names: list[str] = []
        self._file["tensors"].visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        return names

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        group = self._file["tensors"] if "tensors" in self._file else {}
        return {name: tuple(group[name].shape) for name in self.tensor_names()}

    def tensors(self, prefix: str = "") -> dict[str, Any]:
        """Tensors whose names start with `prefix`, as torch tensors in their original dtypes."""
        import torch

        out = {}
        group = self._file["tensors"] if "tensors" in self._file else {}
        for name in self.tensor_names():
            if not name.startswith(prefix):
                continue
            ds = group[name]
            try:
                value = torch.from_numpy(ds[()]) if ds.shape != () else torch.tensor(ds[()])
            except OSError as exc:
                raise BadInput(f"corrupt tensor {name!r} ({exc})", self.path) from None
            dtype = ds.attrs.get("dtype")
            if dtype:
                value = value.to(getattr(torch, str(dtype)))
            out[name] = value
        return out

    def sha256(self) -> str:
        return sha256_file(self.path)

    @property
    def ref(self) -> InputRef:
        return InputRef(str(self.path), self.sha256())
