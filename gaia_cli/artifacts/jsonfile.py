"""JSON artifacts: the header keys at the top level beside the payload, so a person can read and edit them."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from gaia_cli.artifacts.inputs import Input, parse_json, read_input
from gaia_cli.artifacts.provenance import HEADER_KEYS, InputRef, check_header, header
from gaia_cli.errors import BadInput

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
