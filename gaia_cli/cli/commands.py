"""How a command module declares its command without knowing the app: `@command(name, epilog=...)`.

The decorator only records the name and typer's `app.command` settings on the function and returns it
unchanged; `gaia_cli.cli.app` imports the command modules and registers what they declare, in one place.
So no command module imports the app (no import circle), and a command function stays a plain function
that a test or another module can import and call.
"""

from __future__ import annotations

import dataclasses
import inspect
from types import ModuleType
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__gaia_command__"


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """A command's name and the keywords for typer's `app.command` (epilog, help, ...)."""

    name: str
    settings: dict[str, Any]


def command(name: str, **settings: Any) -> Callable[[F], F]:
    """Declare the decorated function as the command `name`; `settings` go to typer's `app.command`."""

    def mark(func: F) -> F:
        setattr(func, _ATTR, CommandSpec(name, dict(settings)))
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
