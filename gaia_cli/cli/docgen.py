"""Reference docs generated from the CLI itself: shell completions and man pages.

    python -m gaia_cli.cli.docgen [ROOT]     # writes ROOT/completions/ and ROOT/man/ (ROOT: the repository)

The output depends only on the CLI's definition (no dates), so a test can regenerate it and compare with
the checked-in files. Completion scripts are typer's; they call back into `gaia` with `_GAIA_COMPLETE` set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer._completion_shared import get_completion_script

from gaia_cli import __version__
from gaia_cli.cli.app import app

PROG = "gaia"
COMPLETE_VAR = "_GAIA_COMPLETE"
SHELLS = {"bash": "gaia.bash", "zsh": "_gaia", "fish": "gaia.fish"}


def completions() -> dict[str, str]:
    return {name: get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell) + "\n"
            for shell, name in SHELLS.items()}


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, and a leading '.' or "'" that roff would read as a request."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _param_lines(ctx, param) -> list[str]:
    if param.param_type_name == "argument":
        return [".TP", f"\\fI{param.name.upper()}\\fR", _roff(param.help or "")]
    names = ", ".join(f"\\fB{_roff(o)}\\fR" for o in [*param.opts, *param.secondary_opts])
    if not (param.is_flag or param.count):
        names += f" \\fI{_roff(param.display_type(ctx))}\\fR"
    help_text = param.help or ""
    if param.default not in (None, False, 0, "") and not param.is_flag:
        help_text += f" [default: {param.default}]"
    if param.required:
        help_text += " [required]"
    return [".TP", names, _roff(help_text)]


def _examples(epilog: str | None) -> list[str]:
    """The epilog's example lines as a no-fill roff block."""
    lines = [ln.strip() for ln in (epilog or "").splitlines() if ln.strip() and ln.strip() != "Examples:"]
    return [".SH EXAMPLES", ".nf", *(_roff(ln) for ln in lines), ".fi"] if lines else []


def _page(title: str, summary: str, synopsis: str, body: str, ctx, params, see_also: list[str],
          epilog: str | None = None, commands: dict[str, str] | None = None) -> str:
    lines = [
        f'.TH {title.upper()} 1 "" "gaia {__version__}" "gaia manual"',
        ".SH NAME",
        f"{_roff(title)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f".B {_roff(synopsis)}",
        ".SH DESCRIPTION",
        _roff(body),
    ]
    if commands:
        lines.append(".SH COMMANDS")
        for name, summary in commands.items():
            lines += [".TP", f"\\fB{_roff(name)}\\fR", _roff(summary)]
    lines += _examples(epilog)
    if params:
        lines.append(".SH OPTIONS")
        for param in params:
            lines.extend(_param_lines(ctx, param))
    lines += [".SH EXIT STATUS",
              "0 success; 1 a failure while running; 2 bad usage or bad input; 130 interrupted (SIGINT), 143 (SIGTERM)."]
    if see_also:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{name}\\fR(1)" for name in see_also)]
    return "\n".join(lines) + "\n"


def _pages(cmd, path: list[str], parent) -> dict[str, str]:
    """The page of `cmd` (at `path`, e.g. ["gaia", "space", "show"]) and of its subcommands, if a group."""
    name = "-".join(path)
    pages: dict[str, str] = {}
    with typer._click.Context(cmd, info_name=path[-1], parent=parent) as ctx:
        params = [p for p in cmd.params if not p.hidden]
        subs = sorted(getattr(cmd, "commands", {}) or {})
        if subs:
            commands = {" ".join([*path, n]): cmd.commands[n].get_short_help_str(200) for n in subs}
            synopsis = f"{' '.join(path)} COMMAND [OPTIONS]"
            see_also = [f"{name}-{n}" for n in subs]
        else:
            commands = None
            args = " ".join(p.name.upper() for p in params if p.param_type_name == "argument")
            synopsis = f"{' '.join(path)} [OPTIONS] {args}".rstrip()
            see_also = ["-".join(path[:-1])]
        summary = "transfer learning for object detection" if len(path) == 1 else cmd.get_short_help_str(200)
        pages[f"{name}.1"] = _page(name, summary, synopsis, cmd.help or "", ctx, params, see_also,
                                   cmd.epilog, commands)
        for sub in subs:
            pages.update(_pages(cmd.commands[sub], [*path, sub], ctx))
    return pages


def man_pages() -> dict[str, str]:
    return _pages(typer.main.get_command(app), [PROG], None)


def generated(root: Path) -> dict[Path, str]:
    """Every generated file, by its path under `root`."""
    out = {root / "completions" / name: text for name, text in completions().items()}
    out.update({root / "man" / name: text for name, text in man_pages().items()})
    return out


def write(root: Path) -> list[Path]:
    files = generated(root)
    for folder in {p.parent for p in files}:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # a removed command's page goes too
            if stale not in files:
                stale.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written, file=sys.stderr)
