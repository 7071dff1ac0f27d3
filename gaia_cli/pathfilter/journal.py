"""The measurement journal of `fit-pathfilter`: JSON lines, one measured path a line, appended atomically.

The first line is a header that names what the measurements depend on (the supernet, the data, the space,
the plan of paths); a journal whose header differs is refused rather than mixed. Each measurement is
written as one line in a single write, flushed and synced, so a killed run loses at most the path it was
measuring; a line cut short by a kill is dropped when the journal is opened again. A run that finds its
journal continues where it stopped. The lines are what `--measurements` reads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from gaia_cli.artifacts import read_input
from gaia_cli.errors import BadInput, io_failure
from gaia_cli.space.arch import Arch, SearchSpace

HEADER = "gaia/pathfilter-journal"


class Journal:
    def __init__(self, path: Path, key: dict[str, Any]):
        self.path = Path(path)
        self.key = key
        self.records: list[dict[str, Any]] = []

    def open(self) -> list[dict[str, Any]]:
        """The measurements already made (none for a new journal, whose header is written now)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._append({"journal": HEADER, "key": self.key})
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut short by a kill: drop it
            try:
                with open(self.path, "r+b") as fh:
                    fh.truncate(end)
            except OSError as exc:
                raise io_failure(exc, self.path) from None
            data = data[:end]
        lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("journal") != HEADER:
            raise BadInput("is not a fit-pathfilter journal (give another --journal, or remove it)", self.path)
        if json.dumps(head.get("key"), sort_keys=True) != json.dumps(self.key, sort_keys=True):
            raise BadInput("this journal was made for other weights, data, space or paths (give another "
                           "--journal, or remove it to start over)", self.path)
        self.records = [json.loads(ln) for ln in lines[1:]]
        return list(self.records)

    def append(self, record: dict[str, Any]) -> None:
        self._append(record)
        self.records.append(record)

    def _append(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise io_failure(exc, self.path) from None


def read_measurements(specs: list[str], space: SearchSpace) -> tuple[list[dict[str, Any]], list]:
    """Rows {"arch": Arch, "loss": float, "ap": float | None} from JSON-lines files (journals too), each
    arch checked against `space`; and the files' refs."""
    rows, refs = [], []
    for spec in specs:
        src = read_input(spec)
        refs.append(src.ref)
        for number, line in enumerate(src.data.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{src.name} line {number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"line {number} is not JSON ({exc.msg})", src.name) from None
            if isinstance(obj, dict) and obj.get("journal") == HEADER:
                continue
            if not isinstance(obj, dict) or "arch" not in obj or "loss" not in obj:
                raise BadInput(f"line {number}: expected {{\"arch\": ..., \"loss\": ..., \"ap\": ...}}", src.name)
            arch = Arch.from_dict(obj["arch"], where)
            if not space.contains(arch):
                try:
                    space.check(arch, where)
                except BadInput as exc:
                    raise BadInput(f"measurements of another space: {exc.message}", src.name) from None
            loss, ap = obj["loss"], obj.get("ap")
            if not _finite(loss):
                raise BadInput(f"line {number}: 'loss' must be a finite number (got {loss!r})", src.name)
            if ap is not None and not _finite(ap):
                raise BadInput(f"line {number}: 'ap' must be a number or null (got {ap!r})", src.name)
            rows.append({"arch": arch, "loss": float(loss), "ap": None if ap is None else float(ap)})
    return rows, refs


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
