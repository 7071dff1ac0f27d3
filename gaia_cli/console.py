"""The one place that writes: data to stdout, everything for people to stderr.

Commands never call `print`. They hand data to `emit_*` (stdout, or `-o FILE`) and messages to `info`,
`warn`, `error`; progress bars come from `progress()` and draw on stderr only. Verbosity is process-wide
state set by the shared `-q/-v` options. rich honours `NO_COLOR` by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Iterator

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


def write_stdout(text: str) -> None:
    """Write data to stdout; a closed pipe raises StdoutClosed instead of a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise StdoutClosed() from None


def dumps(obj: Any, pretty: bool = True) -> str:
    return json.dumps(obj, indent=1 if pretty else None, ensure_ascii=False, sort_keys=False)


def emit_json(obj: Any, output: str | os.PathLike | None = None, pretty: bool = True) -> None:
    """Write a JSON document to `output` (atomically) or, when it is None or '-', to stdout."""
    text = dumps(obj, pretty) + "\n"
    if output is None or os.fspath(output) == "-":
        write_stdout(text)
        return
    from gaia_cli.artifacts import atomic_write

    with atomic_write(output, "w") as fh:
        fh.write(text)
    info(f"wrote {output}")


def emit_line(obj: Any) -> None:
    """One compact JSON line on stdout (manifests, JSON-lines streams)."""
    write_stdout(dumps(obj, pretty=False) + "\n")


# ----------------------------------------------------------------------------------------------- stderr


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def info(message: str) -> None:
    if not _state["quiet"]:
        err().print(_escape(message), style="dim")


def debug(message: str) -> None:
    if _state["verbose"] >= 1 and not _state["quiet"]:
        err().print(_escape(message), style="dim")


def warn(message: str) -> None:
    err().print("[yellow]gaia: warning:[/] " + _escape(message))


def error(message: str) -> None:
    """Errors are shown even with -q: one line."""
    err().print("[bold red]gaia: error:[/] " + _escape(message))


def show(renderable: Any) -> None:
    """A rich renderable (a table) on stderr."""
    err().print(renderable)


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
