"""The one place that writes: data to stdout, everything for people to stderr.

Commands never call `print`. They hand data to `emit_*` (stdout, or `-o FILE`) and messages to `info`,
`warn`, `error`; progress bars come from `progress()` and draw on stderr only. Verbosity is process-wide
state set by the shared `-q/-v` options. rich honours `NO_COLOR` by itself.

A stdout that cannot take the data (closed, on a full disk) is a failure of the run: one line naming
`<stdout>` and the system's reason, exit 1. A reader that went away (`| head`) is not: the run ends quietly.
JSON goes out with `\\u` escapes when stdout's encoding cannot hold all of Unicode (`PYTHONIOENCODING=ascii`):
the same data, still valid JSON. A stderr that cannot be written is ignored: there is nowhere left to say so.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import sys
from typing import Any, Iterator

from gaia_cli.artifacts import atomic_write
from gaia_cli.errors import RunFailure, io_failure

_state = {"verbose": 0, "quiet": False}
_stderr_console = None


class StdoutClosed(Exception):
    """stdout's reader went away (`gaia ... | head`): stop quietly."""


def set_verbosity(verbose: int | None = None, quiet: bool | None = None) -> None:
    if verbose is not None:
        _state["verbose"] = max(_state["verbose"], int(verbose))
    if quiet is not None:
        _state["quiet"] = _state["quiet"] or bool(quiet)


def reset() -> None:
    """Back to the defaults (for running several commands in one process, as tests do)."""
    _state.update(verbose=0, quiet=False)


def verbose() -> int:
    return _state["verbose"]


def quiet() -> bool:
    return _state["quiet"]


def err():
    """The rich console bound to stderr (created on first use; rich is not needed for `--help`)."""
    global _stderr_console
    if _stderr_console is None:
        from rich.console import Console

        _stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _stderr_console


# ----------------------------------------------------------------------------------------------- stdout


STDOUT = "<stdout>"  # how messages name stdout


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's final flush of what is left cannot fail again."""
    with contextlib.suppress(Exception):
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


def write_stdout(text: str) -> None:
    """Write data to stdout: a closed pipe raises StdoutClosed, any other failure a one-line RunFailure."""
    out = sys.stdout
    if out is None:  # fd 1 was closed when gaia started (`gaia ... >&-`)
        raise RunFailure("cannot write it: stdout is closed", STDOUT)
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise StdoutClosed() from None
    except UnicodeEncodeError as exc:  # nothing of this text was written: it is encoded before writing
        bad = exc.object[exc.start:exc.end]
        raise RunFailure(f"cannot write it: its encoding ({exc.encoding}) has no {bad!r} "
                         "(set PYTHONIOENCODING=utf-8)", STDOUT) from None
    except OSError as exc:  # a full disk behind `> file`, /dev/full, an I/O error
        _silence_stdout()
        raise io_failure(exc, STDOUT) from exc


def _stdout_is_unicode() -> bool:
    """Whether stdout's encoding holds every character (else JSON is written with \\u escapes)."""
    encoding = getattr(sys.stdout, "encoding", None)
    if not encoding:
        return True
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name.startswith("utf") or name == "gb18030"


def dumps(obj: Any, pretty: bool = True, ascii_only: bool = False) -> str:
    return json.dumps(obj, indent=1 if pretty else None, ensure_ascii=ascii_only, sort_keys=False)


def emit_json(obj: Any, output: str | os.PathLike | None = None, pretty: bool = True) -> None:
    """Write a JSON document to `output` (atomically) or, when it is None or '-', to stdout."""
    if output is None or os.fspath(output) == "-":
        write_stdout(dumps(obj, pretty, ascii_only=not _stdout_is_unicode()) + "\n")
        return

    text = dumps(obj, pretty) + "\n"
    with atomic_write(output, "w") as fh:
        fh.write(text)
    info(f"wrote {output}")


def emit_line(obj: Any) -> None:
    """One compact JSON line on stdout (manifests, JSON-lines streams)."""
    write_stdout(dumps(obj, pretty=False, ascii_only=not _stdout_is_unicode()) + "\n")


# ----------------------------------------------------------------------------------------------- stderr


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print(*args: Any, **kwargs: Any) -> None:
    """Print on stderr; a stderr that is closed or full is ignored (there is nowhere left to report it)."""
    with contextlib.suppress(OSError, ValueError):
        err().print(*args, **kwargs)


def info(message: str) -> None:
    if not _state["quiet"]:
        _print(_escape(message), style="dim")


def debug(message: str) -> None:
    if _state["verbose"] >= 1 and not _state["quiet"]:
        _print(_escape(message), style="dim")


def warn(message: str) -> None:
    _print("[yellow]gaia: warning:[/] " + _escape(message))


def error(message: str) -> None:
    """Errors are shown even with -q: one line."""
    _print("[bold red]gaia: error:[/] " + _escape(message))


def show(renderable: Any) -> None:
    """A rich renderable (a table) on stderr."""
    _print(renderable)


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Info and progress off for a block (inner work of a loop that reports for itself)."""
    before = _state["quiet"]
    _state["quiet"] = True
    try:
        yield
    finally:
        _state["quiet"] = before


class _Progress:
    def __init__(self, bar, task):
        self._bar, self._task = bar, task

    def advance(self, n: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, **fields)


@contextlib.contextmanager
def progress(description: str, total: float | None = None) -> Iterator[_Progress]:
    """A progress bar on stderr; nothing at all with -q or when stderr is not a terminal."""
    if _state["quiet"] or not err().is_terminal:
        yield _Progress(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.progress import TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=err(), transient=True) as bar:
        yield _Progress(bar, bar.add_task(description, total=total))
