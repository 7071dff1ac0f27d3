"""Output locks: one writer per output, an advisory `flock` on `.NAME.lock` beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from gaia_cli.artifacts.atomic import _host_tag, _streamed, file_identity, written_path
from gaia_cli.errors import BadInput

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
