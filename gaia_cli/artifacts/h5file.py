"""HDF5 artifacts: the header as a JSON string dataset `/meta/header` (attributes are size-limited), one
dataset per tensor under `/tensors/`, and any other metadata as JSON string datasets under `/meta/`. Nothing
is pickled; loading never runs code from a file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from gaia_cli.artifacts.atomic import atomic_path, manifest
from gaia_cli.artifacts.inputs import HDF5_SIGNATURE, loads_json, resolve_path
from gaia_cli.artifacts.provenance import KINDS, InputRef, check_header, header, sha256_file
from gaia_cli.errors import BadInput

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
