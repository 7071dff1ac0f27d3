"""Inputs: what gaia reads, and how.

An input may be a path, `-` (stdin), or a manifest line `{"kind": ..., "path": ..., "sha256": ...}` (given
literally, on stdin, or in a file), which resolves to the file it names. JSON is parsed with errors that name
the file, and nesting is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from gaia_cli.artifacts.provenance import InputRef, sha256_bytes, sha256_file
from gaia_cli.errors import BadInput

MANIFEST_KEYS = {"kind", "path", "sha256"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_stdin_cache: bytes | None = None

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
