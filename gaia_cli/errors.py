"""The exceptions that carry gaia's exit codes.

Library code raises these; `gaia_cli.cli.app.main` turns them into one line on stderr and an exit code:
`BadInput` (a file or option the user gave is wrong) exits 2, `RunFailure` (something went wrong while
running: a NaN loss, a device error) exits 1.
"""

from __future__ import annotations

import os


class GaiaError(Exception):
    """Base of gaia's expected errors. `path` names the file at fault, when there is one."""

    exit_code = 1

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else os.fspath(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class BadInput(GaiaError):
    """Bad usage or bad input: exit code 2."""

    exit_code = 2


class RunFailure(GaiaError):
    """A failure while running: exit code 1."""

    exit_code = 1


def io_failure(exc: OSError, path: str | os.PathLike | None, action: str = "write") -> RunFailure:
    """An OSError as one line: the file, what gaia was doing with it, and the system's reason (exit 1)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return RunFailure(f"cannot {action} it: {reason}", path)
