"""How a command module declares its command without knowing the app: `@command(name, epilog=...)`.

The decorator only records the name and typer's `app.command` settings on the function and returns it
unchanged; `gaia_cli.cli.app` imports the command modules and registers what they declare, in one place.
So no command module imports the app (no import circle), and a command function stays a plain function
that a test or another module can import and call.

A command also declares which of its parameters name files it reads and files it writes
(`inputs=("data", "weights"), outputs=("output",)`; `files(...)` does the same for a command of a typer
group). `app.py` registers every command through `guarded`, which checks the parsed arguments before the
command body runs, the same way for every command:

- every output can be written (`artifacts.check_output_path`), and no two outputs name the same file;
- each output is locked for this run alone (`artifacts.output_lock`), until the body ends;
- no output is an input: compared by file identity (st_dev, st_ino, through symlinks) with every input
  file (`-` stands for the file a manifest line on stdin names; a manifest line for the file it names), an
  existing image under an input folder (`--images`, predict's folders) is an input, and so is one a dataset
  lists in its image folder; an output folder (`predict --draw`) must not be, or lie inside, an input
  folder, nor hold an input image. A refusal is one line naming both, exit 2, before any work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, TypeVar

from gaia_cli.data.coco import IMAGE_SUFFIXES  # the images a command may read under an input folder

F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__gaia_command__"
_FILES = "__gaia_files__"


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """A command's name and the keywords for typer's `app.command` (epilog, help, ...)."""

    name: str
    settings: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Files:
    """Which parameters of a command name what it reads and what it writes.

    inputs: files or folders read (a str, a Path or a list of them; `-`, manifest lines and `NAME=PATH`
    understood); datasets: those of `inputs` that are COCO files (their listed images are inputs too);
    outputs: files written (None or `-`: not written, or stdout); output_folders: folders written into;
    implied: a function of the arguments that returns more outputs as (label, path), e.g. a checkpoint.
    """

    inputs: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    output_folders: tuple[str, ...] = ()
    implied: Callable[[dict[str, Any]], list[tuple[str, Path]]] | None = None


def command(name: str, *, inputs: tuple[str, ...] = (), datasets: tuple[str, ...] = (),
            outputs: tuple[str, ...] = (), output_folders: tuple[str, ...] = (),
            implied: Callable[[dict[str, Any]], list[tuple[str, Path]]] | None = None,
            **settings: Any) -> Callable[[F], F]:
    """Declare the decorated function as the command `name`; `settings` go to typer's `app.command`.

    `inputs`, `datasets`, `outputs`, `output_folders` and `implied` declare its files (see `Files`).
    """
    declare = files(inputs=inputs, datasets=datasets, outputs=outputs, output_folders=output_folders,
                    implied=implied)

    def mark(func: F) -> F:
        setattr(func, _ATTR, CommandSpec(name, dict(settings)))
        return declare(func)

    return mark


def files(*, inputs: tuple[str, ...] = (), datasets: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
          output_folders: tuple[str, ...] = (),
          implied: Callable[[dict[str, Any]], list[tuple[str, Path]]] | None = None) -> Callable[[F], F]:
    """Declare which parameters of the decorated command name its input and output files (see `Files`)."""
    roles = Files(tuple(inputs), tuple(datasets), tuple(outputs), tuple(output_folders), implied)

    def mark(func: F) -> F:
        known = set(inspect.signature(func).parameters)
        unknown = [n for n in (*roles.inputs, *roles.datasets, *roles.outputs, *roles.output_folders)
                   if n not in known]
        if unknown or not set(roles.datasets) <= set(roles.inputs):
            raise ValueError(f"{func.__name__}: files() names {unknown or roles.datasets} (not its inputs)")
        setattr(func, _FILES, roles)
        return func

    return mark


def declared(module: ModuleType) -> list[tuple[CommandSpec, Callable[..., Any]]]:
    """The commands that `module` defines (not ones it imports), in the order it defines them."""
    found = []
    for obj in vars(module).values():
        spec = getattr(obj, _ATTR, None) if inspect.isfunction(obj) else None
        if isinstance(spec, CommandSpec) and obj.__module__ == module.__name__:
            found.append((spec, obj))
    return found


def declared_files(func: Callable[..., Any]) -> Files | None:
    return getattr(func, _FILES, None)


def guarded(func: F) -> F:
    """`func` run inside `guard` of its declared files (the function itself when it declares none).

    The wrapper keeps the signature (functools.wraps), so typer builds the same options from it.
    """
    roles = declared_files(func)
    if roles is None or not (roles.outputs or roles.output_folders or roles.implied):
        return func

    @functools.wraps(func)
    def run(**kwargs: Any) -> Any:
        with guard(roles, kwargs, _labels(func)):
            return func(**kwargs)

    run.__gaia_guarded__ = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


# -------------------------------------------------------------------------------------------- the guard


def checkpoint(args: dict[str, Any]) -> list[tuple[str, Path]]:
    """`implied` of the training commands: their checkpoint OUTPUT.ckpt.h5."""
    from gaia_cli.engine.checkpoints import checkpoint_path

    out = args.get("output")
    if out is None or os.fspath(out) == "-":
        return []
    return [("the checkpoint", checkpoint_path(Path(out)))]


def _labels(func: Callable[..., Any]) -> dict[str, str]:
    """How a message names each parameter: `-o` for an output, else its long option; an argument: ''."""
    labels = {}
    for name, param in inspect.signature(func, eval_str=True).parameters.items():
        info = next((m for m in getattr(param.annotation, "__metadata__", ()) if hasattr(m, "param_decls")), None)
        # in Annotated, typer takes a first positional '--name' (stored as the default) as a declaration
        decls = [d for d in (getattr(info, "default", None), *(getattr(info, "param_decls", None) or ()))
                 if isinstance(d, str) and d.startswith("-")]
        labels[name] = "-o" if "-o" in decls else next((d for d in decls if d.startswith("--")), "")
    return labels


@dataclasses.dataclass
class _Input:
    label: str  # '--data', or '' for an argument
    shown: str  # the path as the user gave it (or as a manifest names it)
    path: Path
    ident: tuple[int, int]
    folder: bool
    dataset: bool

    def __str__(self) -> str:
        return f"{self.label} {self.shown}".strip()


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [os.fspath(v) for v in items if v is not None and not isinstance(v, bool) and os.fspath(v) != ""]


def _manifest_target(text: bytes | str) -> str | None:
    from gaia_cli import artifacts

    found = artifacts._as_manifest(text)
    return found["path"] if found else None


def _named(spec: str) -> Iterator[tuple[str, Path]]:
    """The files an input spec names, as (shown, path), without reading any whole: the path itself, the file
    a manifest line names (given literally, on stdin, or as a file's first line); `NAME=PATH` its PATH."""
    from gaia_cli import artifacts
    from gaia_cli.errors import GaiaError

    target = _manifest_target(spec) if spec.lstrip().startswith("{") else None
    if target is not None:
        yield target, Path(target)
        return
    if spec == "-":
        try:
            data = artifacts._read_stdin()  # cached: the command reads the same bytes
        except GaiaError:
            return  # a terminal, torchrun, too much: the command says so itself
        target = None if data[:8] == artifacts.HDF5_SIGNATURE else _manifest_target(data[:8192])
        if target is not None:
            yield target, Path(target)
        return
    path = Path(spec)
    if not os.path.lexists(path):
        if "=" in spec:  # unify-labels' NAME=SOURCE
            yield from _named(spec.split("=", 1)[1])
        return  # a preset or built-in name
    yield spec, path
    if path.is_file():
        with contextlib.suppress(OSError):
            with open(path, "rb") as fh:
                head = fh.read(8192)
            target = None if head[:8] == artifacts.HDF5_SIGNATURE else _manifest_target(head)
            if target is not None:
                yield target, Path(target)


def _inputs(roles: Files, args: dict[str, Any], labels: dict[str, str]) -> list[_Input]:
    from gaia_cli.artifacts import file_identity

    found = []
    for name in roles.inputs:
        for spec in _values(args.get(name)):
            for shown, path in _named(spec):
                ident = file_identity(path)
                if ident is not None:
                    found.append(_Input(labels.get(name, ""), shown, path, ident, path.is_dir(),
                                        name in roles.datasets))
    return found


def _ancestors(path: Path) -> Iterator[Path]:
    """The folders above `path` (its symlinks resolved), nearest first."""
    yield from Path(os.path.realpath(path)).parents


def _lists_image(dataset: Path, out: Path) -> bool:
    """Whether the COCO file `dataset` may list `out` among its images: `out` lies in the dataset's tree (its
    image folder is found at most one level up) and its name occurs in the file. Read only in this case."""
    real_out, base = Path(os.path.realpath(out)), Path(os.path.realpath(dataset)).parent.parent
    if base not in real_out.parents:
        return False
    try:
        with open(dataset, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return json.dumps(out.name)[1:-1].encode() in data or out.name.encode() in data


def _refuse(message: str):
    from gaia_cli.errors import BadInput

    return BadInput(message + "; an output never replaces an input: write it elsewhere")


def _check_file_output(label: str, out: Path, inputs: list[_Input]) -> None:
    import stat

    from gaia_cli.artifacts import file_identity

    ident = file_identity(out)
    if ident is None:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISCHR(os.stat(out).st_mode):
            return  # /dev/null, a terminal: written, never replaced
    for src in inputs:
        if src.ident == ident:
            raise _refuse(f"{label} {out} is the input {src}")
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        return
    folders = {src.ident: src for src in inputs if src.folder}
    for folder in _ancestors(out):
        src = folders.get(file_identity(folder))
        if src is not None:
            raise _refuse(f"{label} {out} is an image in the input folder {src}")
    for src in inputs:
        if src.dataset and not src.folder and _lists_image(src.path, out):
            raise _refuse(f"{label} {out} is an image of the input {src}")


def _check_folder_output(label: str, out: Path, inputs: list[_Input]) -> None:
    from gaia_cli.artifacts import file_identity

    ident = file_identity(out)
    for src in inputs:
        if ident is not None and src.ident == ident:
            raise _refuse(f"{label} {out} is the input {src}")
    folders = {src.ident: src for src in inputs if src.folder}
    for folder in _ancestors(out):
        src = folders.get(file_identity(folder))
        if src is not None:
            raise _refuse(f"{label} {out} lies inside the input folder {src}")
    if ident is not None:  # what goes into an output folder are pictures: none may replace an input's
        for src in inputs:
            real = Path(os.path.realpath(src.path))
            if not src.folder and real.suffix.lower() in IMAGE_SUFFIXES and file_identity(real.parent) == ident:
                raise _refuse(f"{label} {out} holds the input image {src}")


def _same_target(a: Path, b: Path) -> bool:
    from gaia_cli.artifacts import file_identity

    ia, ib = file_identity(a), file_identity(b)
    if ia is not None or ib is not None:
        return ia == ib
    return os.path.realpath(a) == os.path.realpath(b)


@contextlib.contextmanager
def guard(roles: Files, args: dict[str, Any], labels: dict[str, str] | None = None) -> Iterator[None]:
    """Check a command's outputs against its inputs and lock them for the block (see the module's doc)."""
    from gaia_cli.artifacts import check_output_path, output_lock

    labels = labels or {}
    outs: list[tuple[str, Path, bool]] = []  # (label, path, is a folder)
    for name in roles.outputs:
        outs += [(labels.get(name) or name, Path(v), False) for v in _values(args.get(name)) if v != "-"]
    for name in roles.output_folders:
        outs += [(labels.get(name) or name.upper(), Path(v), True) for v in _values(args.get(name))]
    locked = list(outs)  # an implied output (a checkpoint) is covered by the lock of the output it belongs to
    if roles.implied is not None:
        outs += [(label, Path(path), False) for label, path in roles.implied(args)]
    for label, path, folder in outs:
        if not folder:
            check_output_path(path)
    for i, (label, path, _) in enumerate(outs):
        for other, other_path, _ in outs[:i]:
            if _same_target(path, other_path):
                from gaia_cli.errors import BadInput

                raise BadInput(f"{other} {other_path} and {label} {path} name the same file; give each its own")
    with contextlib.ExitStack() as locks:
        for label, path, folder in locked:
            if not folder or Path(os.path.realpath(path)).parent.is_dir():
                locks.enter_context(output_lock(path))
        inputs = _inputs(roles, args, labels)
        for label, path, folder in outs:
            (_check_folder_output if folder else _check_file_output)(label, path, inputs)
        yield
