"""The journal of a ranking: one JSON line per finished candidate and stage, appended as it finishes.

The first line is the run's header (`{"journal": "gaia/ranking", "key": {...}}`: the supernet, the data,
the candidates and the settings); each further line a record `{"stage", "id", "arch", "metrics",
"seconds"}`. A record is one `write` of a whole line, then fsync: a run killed during a write leaves at most
a last line without its newline, which a reader ignores (a resumed run rewrites the journal, atomically,
without it). So a record is either
whole or absent, never read half-written. `--resume` skips what the journal holds; `--merge` joins the
journals of several shards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gaia_cli.artifacts import atomic_write
from gaia_cli.errors import BadInput, io_failure

MARK = "gaia/ranking"
STAGES = ("direct", "finetuned", "reference")


def journal_path(output: str | os.PathLike) -> Path:
    """OUTPUT.journal.jsonl, beside the ranking."""
    out = Path(output)
    return out.with_name(out.name + ".journal.jsonl")


def journal_for(output: str | os.PathLike | None) -> Path | None:
    """The journal of a run writing `output`: none for stdout, a FIFO or a device (nothing is made beside them)."""
    import stat

    if output is None or os.fspath(output) == "-":
        return None
    try:
        mode = os.stat(output).st_mode
    except OSError:
        return journal_path(output)
    return None if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) else journal_path(output)


def work_folder(output: str | os.PathLike) -> Path:
    """OUTPUT.work/, beside the ranking: the candidates' fine-tuning files (their checkpoints, for --resume)."""
    out = Path(output)
    return out.with_name(out.name + ".work")


def read(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the header's key, the whole records) of a journal; a last line cut short is left out."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput("no such journal", path) from None
    except IsADirectoryError:
        raise BadInput("is a folder, expected a ranking journal", path) from None
    lines = data.split(b"\n")
    whole = lines[:-1]  # what follows the last newline was cut short (or is empty)
    if not whole:
        raise BadInput("is not a ranking journal (no header line)", path)
    try:
        head = json.loads(whole[0])
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("journal") != MARK or not isinstance(head.get("key"), dict):
        raise BadInput("is not a ranking journal (its first line is not a gaia/ranking journal header)", path)
    records = []
    for number, line in enumerate(whole[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise BadInput(f"line {number} is not a JSON record; the journal is damaged", path) from None
        if not (isinstance(rec, dict) and rec.get("stage") in STAGES and isinstance(rec.get("id"), int)):
            raise BadInput(f"line {number} is not a ranking record", path)
        records.append(rec)
    return head["key"], records


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two run keys."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


class Journal:
    """An open journal: `append(record)` adds one whole line and syncs it to disk."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, path: Path, key: dict[str, Any], records: list[dict[str, Any]] = ()) -> "Journal":
        """A new journal holding `key` and `records` (written atomically: it appears whole or not at all)."""
        with atomic_write(path) as fh:
            fh.write(_line({"journal": MARK, "key": key}))
            for rec in records:
                fh.write(_line(rec))
        return cls(path)

    def append(self, record: dict[str, Any]) -> None:
        line = _line(record).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise io_failure(exc, self.path) from exc


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n"
