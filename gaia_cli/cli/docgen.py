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
              "0 success; 1 a failure while running; 2 bad usage or bad input; 130 interrupted."]
    if see_also:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{name}\\fR(1)" for name in see_also)]
    return "\n".join(lines) + "\n"


def man_pages() -> dict[str, str]:
    root = typer.main.get_command(app)
    names = sorted(root.commands)
    pages = {}
    with typer._click.Context(root, info_name=PROG) as ctx:
        commands = {f"gaia {n}": root.commands[n].get_short_help_str(200) for n in names}
        pages[f"{PROG}.1"] = _page(PROG, "transfer learning for object detection", f"{PROG} COMMAND [OPTIONS]",
                                   root.help or "", ctx, [p for p in root.params if not p.hidden],
                                   [f"gaia-{n}" for n in names], root.epilog, commands)
        for name in names:
            cmd = root.commands[name]
            with typer._click.Context(cmd, info_name=name, parent=ctx) as sub:
                args = " ".join(p.name.upper() for p in cmd.params if p.param_type_name == "argument")
                pages[f"{PROG}-{name}.1"] = _page(f"{PROG}-{name}", cmd.get_short_help_str(200),
                                                  f"{PROG} {name} [OPTIONS] {args}".rstrip(), cmd.help or "", sub,
                                                  [p for p in cmd.params if not p.hidden], [PROG], cmd.epilog)
    return pages


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
