"""Atomic writes: a temp file in the destination folder, fsync, then rename.

A killed command leaves either the old file or the new one, never half of one. The temp file's name,
`.NAME.PID-HOST.XXXXXXXX.tmp`, says which process wrote it; the next write of NAME removes the ones whose
process on this host is gone (a run killed with SIGKILL cannot remove its own), never one of a live process.
A FIFO or a character device is written directly, never replaced. `manifest` names a written output.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from gaia_cli.artifacts.provenance import sha256_file
from gaia_cli.errors import BadInput, io_failure

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


def manifest(kind: str, path: str | os.PathLike) -> dict[str, str]:
    p = Path(path).resolve()
    streamed = _stream_digests.get(os.path.abspath(path))
    if streamed is not None and not p.is_file():  # a FIFO or device: the bytes written, not read back
        return {"kind": kind, "path": str(p), "sha256": streamed}
    return {"kind": kind, "path": str(p), "sha256": sha256_file(p)}
