"""The `gaia` command: one typer app, the subcommands its modules declare registered here, and `main()`.

`main()` maps outcomes to exit codes: 0 success, 1 a failure while running (an I/O failure too: a full disk,
a stdout that cannot be written), 2 bad usage or bad input, 128 + the signal when interrupted (130 for
SIGINT, 143 for SIGTERM). Every error is one line on stderr, usage errors too; tracebacks only with -v.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import traceback

import typer

from gaia_cli import __version__, checks, console, interrupts
from gaia_cli.errors import GaiaError

app = typer.Typer(
    name="gaia",
    help=(
        "Transfer learning for object detection: a unified label space, a weight-sharing supernet, "
        "latency-bounded search and fine-tuning, as commands that exchange typed files.\n\n"
        "stdout carries data (JSON, or a manifest line for HDF5 outputs); everything else goes to stderr."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.write_stdout(f"gaia {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Transfer learning for object detection."""


def _register() -> None:
    # The one place commands join `app`: the modules declare theirs with `commands.command` and never import
    # `app`; importing them is cheap (no torch at module level). `space` is a typer group of its own.
    from gaia_cli.cli import (
        bench_latency, eval_cmd, export_cmd, extract_montage, finetune_cmd, inspect_cmd, predict_cmd, pretrain_cmd, rank_cmd,
        search_cmd, select_data, space_cmd, toy_data, train_supernet, unify_labels)
    from gaia_cli.cli import pathfilter_cmd  # DetOFA: fit-pathfilter, prune
    from gaia_cli.cli.commands import declared, guarded

    # `guarded`: each command's declared outputs are checked against its inputs and locked before its body
    for module in (bench_latency, eval_cmd, export_cmd, extract_montage, finetune_cmd, inspect_cmd, predict_cmd, pretrain_cmd,
                   rank_cmd, search_cmd, select_data, toy_data, train_supernet, unify_labels, pathfilter_cmd):
        for spec, func in declared(module):
            app.command(spec.name, **spec.settings)(guarded(func))
    for info in space_cmd.space_app.registered_commands:
        info.callback = guarded(info.callback)
    app.add_typer(space_cmd.space_app, name="space")


_register()


def _examples_epilog() -> str:
    """The top-level help's examples: the first example of each command, taken from its own help."""
    lines = []
    commands = list(app.registered_commands)
    for group in app.registered_groups:  # a group shows its first command's example
        commands += group.typer_instance.registered_commands[:1]
    for info in sorted(commands, key=lambda c: c.name or ""):
        examples = [ln.split("  #")[0].strip() for ln in (info.epilog or "").splitlines()]
        first = next((ln for ln in examples if ln.startswith("gaia ")), None)
        if first:
            lines.append(f"  {first}")
    return "Examples:\n\n" + "\n\n".join(lines)


app.info.epilog = _examples_epilog()


def _guard_std_fds() -> None:
    """Open /dev/null on a standard fd that was closed when gaia started (`gaia ... >&-`).

    Otherwise the next file opened (an output's temp) would take that number, and anything written to
    "stdout" or "stderr" would land in it. sys.stdout stays None, so data written to it still fails.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                opened = os.open(os.devnull, os.O_RDWR)
                if opened != fd:
                    os.dup2(opened, fd)
                    os.close(opened)


def _usage_line(exc) -> str:
    """A click/typer usage error as one line: what is wrong, and where the help is."""
    ctx = getattr(exc, "ctx", None)
    text = " ".join(exc.format_message().split()).removesuffix(".")
    if ctx is None:
        return text
    where = ctx.command_path.removeprefix("gaia").strip()
    return f"{where + ': ' if where else ''}{text}; see '{ctx.command_path} -h'"


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether `exc` is a click exception called `name` (typer vendors click in some versions, not in others)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _one_line(message: str) -> str:
    """An error message as one line. An error raised in a DataLoader worker comes back with the worker's
    traceback in its message: its last line is the error itself (the traceback is for -v)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else message
    if "Original Traceback" in message:
        return re.sub(r"^[\w.]+: ", "", lines[-1], count=1)
    return lines[0] + " ..."


def _fail(message: str, code: int) -> None:
    if console.verbose():
        traceback.print_exc(file=sys.stderr)
    console.error(_one_line(message))
    sys.exit(code)


def _interrupted() -> None:
    console.error("interrupted" + (" (SIGTERM)" if interrupts.received == signal.SIGTERM else ""))
    sys.exit(interrupts.exit_code())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `gaia` console script."""
    interrupts.reset()
    # a signal the parent set to be ignored (`gaia ... &` in a script ignores SIGINT) stays ignored
    handlers = {sig: signal.signal(sig, interrupts.raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    _guard_std_fds()
    command = typer.main.get_command(app)
    checks.guard(command)  # every numeric option of every command is checked for range as it is parsed
    try:
        # standalone_mode=False: usage errors come here (one line below, not click's box); --help, --version
        # and typer.Exit return their code; typer turns Ctrl-C into code 130 (the signal is in `interrupts`).
        code = command.main(args=argv, prog_name="gaia", standalone_mode=False)
        if code == 130 and interrupts.received is not None:
            raise KeyboardInterrupt()
        sys.exit(code if isinstance(code, int) else 0)
    except console.StdoutClosed:
        sys.exit(0)
    except GaiaError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except OSError as exc:  # an I/O failure that no one named a file for: still one line, exit 1
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 1)
    except MemoryError:
        _fail("out of memory", 1)
    except Exception as exc:
        if _is_a(exc, "NoArgsIsHelpError"):  # `gaia` or `gaia space` alone: the help is already on stdout
            sys.exit(2)
        if _is_a(exc, "UsageError"):  # `-n abc`, an unknown option, `-o DIR`
            _fail(_usage_line(exc), 2)
        if _is_a(exc, "ClickException"):
            _fail(" ".join(exc.format_message().split()), getattr(exc, "exit_code", 1))
        if _is_a(exc, "Abort"):  # click without typer's own main turns Ctrl-C into Abort
            if isinstance(exc.__cause__, KeyboardInterrupt) or interrupts.received is not None:
                _interrupted()
            _fail("aborted", 1)
        # an unexpected failure: one line, and the traceback with -v (then the line does not ask for -v)
        hint = "" if console.verbose() else " (run with -v for the traceback)"
        _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", 1)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
