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

The package, one module per concern, each importing only those listed before it:

- `provenance`: the kinds, headers, sha256 digests (`InputRef`);
- `atomic`: output paths, temp files, atomic writes, the manifest of a written output;
- `locks`: one writer per output (`output_lock`);
- `inputs`: `read_input`, `resolve_path`, manifests, stdin, bounded JSON;
- `jsonfile`: JSON artifacts;
- `h5file`: HDF5 artifacts (`H5Artifact`, `write_h5`).

Every name is re-exported here, so `from gaia_cli.artifacts import ...` finds it. A test that patches a
module-level value or a builtin the code looks up at call time patches the submodule that holds it
(`artifacts.inputs.MAX_STREAM_BYTES`, `artifacts.inputs._stdin_cache`, `artifacts.atomic.open`).
"""

from gaia_cli.errors import BadInput, io_failure
from gaia_cli.artifacts.provenance import (HEADER_KEYS, KINDS, InputRef, check_header, header, sha256_bytes,
                                           sha256_file)
from gaia_cli.artifacts.atomic import (_TEMP_TAIL, _atomic_path, _copy_into, _fsync_dir, _honour_umask, _host_tag,
                                       _is_write_error, _process_gone, _stream_digests, _streamed, _temp_owner,
                                       _umask, atomic_path, atomic_write, check_output_path, file_identity,
                                       manifest, remove_stale_temps, temp_beside, written_path)
from gaia_cli.artifacts.locks import _lock_holder, lock_path, output_lock
from gaia_cli.artifacts.inputs import (HDF5_SIGNATURE, MANIFEST_KEYS, MAX_JSON_DEPTH, MAX_STREAM_BYTES, Input,
                                       _as_manifest, _follow_manifest, _frames, _read_file, _read_stdin,
                                       _read_stream, _stat_input, _what_it_is, loads_json, parse_json, read_input,
                                       resolve_path)
from gaia_cli.artifacts.jsonfile import JsonArtifact, json_artifact, read_json_artifact
from gaia_cli.artifacts.h5file import H5Artifact, _H5Sink, _h5py, check_h5_write, h5_writer, write_h5, write_h5_meta

__all__ = [
    "BadInput", "io_failure",
    "HEADER_KEYS", "KINDS", "InputRef", "check_header", "header", "sha256_bytes", "sha256_file",
    "atomic_path", "atomic_write", "check_output_path", "file_identity", "manifest", "remove_stale_temps",
    "temp_beside", "written_path",
    "lock_path", "output_lock",
    "HDF5_SIGNATURE", "MANIFEST_KEYS", "MAX_JSON_DEPTH", "MAX_STREAM_BYTES", "Input", "loads_json", "parse_json",
    "read_input", "resolve_path",
    "JsonArtifact", "json_artifact", "read_json_artifact",
    "H5Artifact", "check_h5_write", "h5_writer", "write_h5", "write_h5_meta",
]
