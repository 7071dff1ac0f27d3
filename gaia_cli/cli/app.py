"""The `gaia` command: one typer app, the subcommands its modules declare registered here, and `main()`.

`main()` maps outcomes to exit codes: 0 success, 1 a failure while running, 2 bad usage or bad input, 130
interrupted (SIGINT or SIGTERM). Expected errors print one line on stderr; tracebacks only with -v.
"""

from __future__ import annotations

import signal
import sys
import traceback

import typer

from gaia_cli import __version__, console
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
        bench_latency, eval_cmd, extract_montage, finetune_cmd, inspect_cmd, predict_cmd, pretrain_cmd, search_cmd,
        space_cmd, toy_data, train_supernet, unify_labels)
    from gaia_cli.cli.commands import declared

    for module in (bench_latency, eval_cmd, extract_montage, finetune_cmd, inspect_cmd, predict_cmd, pretrain_cmd,
                   search_cmd, toy_data, train_supernet, unify_labels):
        for spec, func in declared(module):
            app.command(spec.name, **spec.settings)(func)
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


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `gaia` console script."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    command = typer.main.get_command(app)
    try:
        # typer handles usage errors (exit 2), --help and Ctrl-C (exit 130) itself in standalone mode.
        command.main(args=argv, prog_name="gaia", standalone_mode=True)
    except console.StdoutClosed:
        sys.exit(0)
    except GaiaError as exc:
        if console.verbose():
            traceback.print_exc(file=sys.stderr)
        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: one line, traceback with -v
        if console.verbose():
            traceback.print_exc(file=sys.stderr)
        console.error(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)")
        sys.exit(1)
