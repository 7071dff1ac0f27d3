"""Provenance: the kinds gaia knows, the header every artifact carries, and sha256 digests.

A header holds `kind` (what it is, e.g. `gaia/labels`), `schema_version` (of that kind's layout),
`gaia_version`, `command` (the argv that made it), `created` (UTC, ISO 8601) and `inputs` (path and sha256 of
each input file).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
import sys
from typing import Any, Mapping

from gaia_cli import __version__
from gaia_cli.errors import BadInput

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
