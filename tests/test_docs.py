"""The docs match the CLI: completions and man pages are generated from it and must match it; every command
is documented in docs/commands.md and in the README's table; the command lines in the docs and in each
command's help use options that exist and parse; every relative link in the docs leads somewhere."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"
COMMANDS = REPO / "docs" / "commands.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]


def test_generated_docs_are_up_to_date(tmp_path):
    from gaia_cli.cli import docgen

    for path, text in docgen.generated(REPO).items():
        assert path.is_file(), f"{path} is missing: run `make docs`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make docs`"
    for folder in ("completions", "man"):
        expected = {p.name for p in docgen.generated(REPO) if p.parent.name == folder}
        assert {p.name for p in (REPO / folder).iterdir()} == expected


def test_docgen_writes_every_page(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gaia_cli.cli.docgen", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import typer

    from gaia_cli.cli.app import app

    pages = sorted(p.name for p in (tmp_path / "man").iterdir())
    commands = typer.main.get_command(app).commands
    assert {"inspect", "toy-data", "unify-labels", "space"} <= set(commands)
    expected = ["gaia.1", *(f"gaia-{name}.1" for name in commands)]
    expected += [f"gaia-space-{name}.1" for name in commands["space"].commands]
    assert pages == sorted(expected)
    assert sorted(p.name for p in (tmp_path / "completions").iterdir()) == ["_gaia", "gaia.bash", "gaia.fish"]
    page = (tmp_path / "man" / "gaia-toy-data.1").read_text()
    assert page.startswith(".TH GAIA-TOY-DATA 1") and ".SH EXAMPLES" in page and "\\fB--seed\\fR" in page
    assert "_GAIA_COMPLETE" in (tmp_path / "completions" / "gaia.bash").read_text()


# ------------------------------------------------------------------------------------------------ helpers


def _gaia():
    """The `gaia` click group, built afresh (no range checks installed: only names and types are parsed)."""
    import typer

    from gaia_cli.cli.app import app

    return typer.main.get_command(app)


@functools.cache
def _commands() -> dict[tuple[str, ...], object]:
    """Every runnable command by its path: ("train-supernet",), ("space", "show"), ... (read, never changed)."""
    found = {}

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = command

    walk(_gaia(), ())
    return found


def _options(command) -> set[str]:
    return {name for p in command.params if p.param_type_name == "option" for name in (*p.opts, *p.secondary_opts)}


def _prose(text: str) -> str:
    """The text outside fenced code blocks (whose lines are replaced by empty ones)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def _shell_blocks(text: str) -> list[str]:
    """The lines of ```sh blocks, continuation lines (a trailing backslash) joined."""
    lines, inside = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            inside = stripped in ("```sh", "```bash", "```shell")
            continue
        if inside:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + stripped
            else:
                lines.append(stripped)
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation gone, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6} +(.+?) *#*$", _prose(path.read_text(encoding="utf-8")), flags=re.M):
        slug = _slug(match.group(1))
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _sections(path: Path) -> dict[str, str]:
    """Each `## ` heading of a document with the text under it."""
    parts = re.split(r"^## +(.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def _invocations(line: str) -> list[tuple[tuple[str, ...], list[str], bool]]:
    """The gaia commands a shell line runs, as (command path, its arguments up to a redirection, whether
    they are all there: not so after `xargs`, or with a placeholder such as `...` or `$ARGS`).

    `gaia X ...` and `torchrun ... -m gaia_cli X ...` count; pipes, `&&`, `||` and `;` separate commands.
    """
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: not a command line
        return []
    found, segment = [], []
    for word in [*words, "|"]:
        if word not in ("|", "&&", "||", ";"):
            segment.append(word)
            continue
        for start, word_ in enumerate(segment):
            if word_ == "gaia" or (word_ == "gaia_cli" and start and segment[start - 1] == "-m"):
                rest = segment[start + 1:]
                end = next((i for i, w in enumerate(rest) if re.match(r"^\d*[<>]", w)), len(rest))
                command = _split_command(rest[:end])
                if command is not None:
                    whole = "..." not in command[1] and not any("$" in a for a in command[1]) \
                        and segment[start - 1:start] != ["xargs"]
                    found.append((*command, whole))
                break
        segment = []
    return found


def _split_command(words: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """(command path, arguments) of the words after `gaia`; None for `gaia --help` and the like."""
    groups = {path[0] for path in _commands() if len(path) > 1}
    if not words or words[0].startswith("-") or words[0] == "...":
        return None
    if words[0] in groups:  # `gaia space` alone names the group
        return ((words[0], words[1]), words[2:]) if len(words) > 1 else None
    return (words[0],), words[1:]


def _option_words(args: list[str]) -> list[str]:
    """The option names among a command's arguments: `--x=1` is `--x`; `-` (stdin) and numbers are values."""
    names = []
    for word in args:
        for part in word.strip("[]").split("/"):  # `[--metric M]`, `--percent/--shots`
            if not part.startswith("-") or part == "-" or re.fullmatch(r"-[\d.]+", part):
                continue
            names.append(part.split("=", 1)[0])
    return names


def _inline_commands(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Commands quoted in running text: `gaia search --flops 60`, or a command's name and an option, as in
    `train-supernet --init` or `space sample --pathfilter`."""
    paths = _commands()
    names = {path[0] for path in paths}
    found = []
    for code in re.findall(r"`([^`\n]+)`", _prose(text)):
        words = code.split()
        if words and words[0] in names and any(w.startswith("-") for w in words[1:]):
            code = "gaia " + code
        elif not words or words[0] != "gaia":
            continue
        found += [(path, args) for path, args, _ in _invocations(code)]
    return found


def _help_examples() -> list[str]:
    """The example lines of every command's help (its epilog)."""
    lines = []
    for command in _commands().values():
        lines += _shell_blocks("```sh\n" + (command.epilog or "") + "\n```")
    return lines


# ---------------------------------------------------------------------------------------------- the tests


def test_every_command_has_its_section_in_commands_md():
    paths = _commands()
    top = {path[0] for path in paths}
    headings = list(_sections(COMMANDS))
    documented = {name for h in headings for name in re.findall(r"`gaia ([a-z-]+)`", h)}
    assert sorted(top - documented) == [], "commands without a section in docs/commands.md"
    assert sorted(documented - top) == [], "sections of docs/commands.md for commands that do not exist"
    text = COMMANDS.read_text(encoding="utf-8")
    for path in paths:  # a group's commands (`gaia space show`) are shown in its section
        if len(path) > 1:
            section = next(body for h, body in _sections(COMMANDS).items() if f"`gaia {path[0]}`" in h)
            assert f"gaia {' '.join(path)}" in section, f"gaia {' '.join(path)} is not shown in docs/commands.md"
    assert "## Python API" in text


def test_the_readme_lists_every_command_with_a_link_to_its_section():
    top = {path[0] for path in _commands()}
    rows = re.findall(r"^\| \[`([a-z-]+)`\]\(docs/commands\.md#([\w-]+)\) \|", README.read_text(encoding="utf-8"),
                      flags=re.M)
    listed = {name for name, _ in rows}
    assert sorted(top - listed) == [], "commands missing from the README's table"
    assert sorted(listed - top) == [], "the README's table lists commands that do not exist"
    sections = {_slug(h): h for h in _sections(COMMANDS)}
    for name, anchor in rows:
        assert anchor in sections and f"`gaia {name}`" in sections[anchor], f"{name} links to #{anchor}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_command_lines_in_the_docs_use_options_that_exist_and_parse(doc):
    commands = _commands()
    problems = []
    for line in _shell_blocks(doc.read_text(encoding="utf-8")):
        for path, args, whole in _invocations(line):
            problems += _check(commands, path, args, line, parse=whole)
    assert problems == [], "\n".join(problems)


def test_command_lines_in_each_commands_help_use_options_that_exist_and_parse():
    commands = _commands()
    problems = []
    lines = _help_examples()
    bare = [" ".join(path) for path, c in commands.items()
            if not any(p == path for ln in _shell_blocks("```sh\n" + (c.epilog or "") + "\n```")
                       for p, _, _ in _invocations(ln))]
    assert bare == [], "commands whose help has no example of themselves"
    for line in lines:
        for path, args, whole in _invocations(line):
            problems += _check(commands, path, args, line, parse=whole)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_commands_quoted_in_the_text_use_options_that_exist(doc):
    commands = _commands()
    problems = []
    for path, args in _inline_commands(doc.read_text(encoding="utf-8")):
        problems += _check(commands, path, args, f"`{' '.join((*path, *args))}`", parse=False)
    assert problems == [], "\n".join(problems)


# options of the tools around gaia that the docs quote, and the placeholder of the range message
OTHER_TOOLS = {"--nproc-per-node", "--nproc_per_node", "--index-url", "--option"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_option_quoted_in_the_docs_exists(doc):
    """An option quoted without its command (`--recalibrate`) is one of some gaia command, or of a script in
    benchmarks/ (the docs give their command lines too)."""
    known = {"--help", *OTHER_TOOLS}.union(*(_options(c) for c in _commands().values()))
    scripts = [*(REPO / "benchmarks").glob("*.py"), *(REPO / "benchmarks").glob("*.sh")]
    known |= {name for p in scripts for name in re.findall(r"(--[a-z][\w-]*)", p.read_text(encoding="utf-8"))}
    text = doc.read_text(encoding="utf-8")
    quoted = [*re.findall(r"`([^`\n]+)`", _prose(text)), *_shell_blocks(text)]
    unknown = sorted({name for q in quoted for name in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", q)} - known)
    assert unknown == [], f"options that no gaia command or benchmark has: {unknown}"


def _check(commands, path, args, line, parse) -> list[str]:
    if path not in commands:
        return [f"{' '.join(path)}: no such command, in: {line}"]
    known = _options(commands[path])
    problems = [f"gaia {' '.join(path)} has no option {name}, in: {line}"
                for name in _option_words(args) if name not in known]
    if parse and not problems:  # a whole command line: click parses it (names, arity, types, required)
        from gaia_cli import console

        try:
            commands[path].make_context(" ".join(path), list(args))
        except Exception as exc:  # click's UsageError and BadParameter
            problems.append(f"gaia {' '.join(path)}: {type(exc).__name__}: {exc}, in: {line}")
        finally:
            console.reset()  # -q and -v set console state as they are parsed
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_leads_to_a_file_and_a_heading(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(re.sub(r"`[^`\n]*`", "", doc.read_text(encoding="utf-8")))):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no such heading in {path.name}")
    assert broken == [], "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\n## The `gaia x` part\n")
    assert _anchors(tmp_path / "a.md") == {"a", "the-gaia-x-part"}
    assert _slug("`gaia fit-pathfilter` and `gaia prune`") == "gaia-fit-pathfilter-and-gaia-prune"
    assert _slug("Does it learn?") == "does-it-learn"


def test_every_test_the_docs_name_exists():
    """docs/architecture.md names the tests that hold each guarantee: a renamed or removed one must be seen."""
    defined = {m for p in (REPO / "tests").glob("test_*.py")
               for m in re.findall(r"^def (test_\w+)", p.read_text(encoding="utf-8"), flags=re.M)}
    files = {p.name for p in (REPO / "tests").glob("test_*.py")}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        named = set(re.findall(r"(?<![\w/.])(test_\w+)(?!\.py)\b", text))
        assert sorted(named - defined) == [], f"{doc.name} names tests that do not exist"
        cited = set(re.findall(r"(test_\w+\.py)", text))
        assert sorted(cited - files) == [], f"{doc.name} names test files that do not exist"


def test_every_benchmark_script_is_described():
    readme = README.read_text(encoding="utf-8")
    benchmarks = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for script in sorted((REPO / "benchmarks").glob("bench_*.py")):
        assert script.name in readme, f"{script.name} is not in the README's benchmarks"
        assert f"benchmarks/{script.name}" in benchmarks, f"{script.name} is not described in docs/benchmarks.md"
