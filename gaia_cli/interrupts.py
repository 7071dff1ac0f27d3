"""Stopping long loops cleanly on SIGINT/SIGTERM.

Raising from a signal handler can land anywhere, even in a weakref callback or `__del__`, where Python
prints the exception and carries on. Long loops (training, extraction) instead install `StopRequested`,
whose handler only sets a flag, and check it at a safe point; a second signal raises at once.

Either way the signal is recorded in `received`, so that `main()` exits 128 + its number: 130 for SIGINT,
143 for SIGTERM, as shells do.
"""

from __future__ import annotations

import signal
from typing import Any

from gaia_cli import console

received: int | None = None  # the last SIGINT/SIGTERM this process got (None: none yet)


def reset() -> None:
    global received
    received = None


def record(signum: int) -> None:
    global received
    received = signum


def exit_code() -> int:
    """128 + the signal that interrupted the run (SIGINT when none was recorded: Ctrl-C's KeyboardInterrupt)."""
    return 128 + int(received if received is not None else signal.SIGINT)


def raise_interrupt(signum, frame) -> None:  # noqa: ARG001
    """A handler for the time outside `StopRequested`: record the signal and stop at once."""
    record(signum)
    raise KeyboardInterrupt()


class StopRequested:
    """SIGINT/SIGTERM inside the block set `requested` (and say `message`); the loop decides when to stop."""

    def __init__(self, message: str = "stopping; signal again to stop at once"):
        self.message = message
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopRequested":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        record(signum)
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt()
        self.requested = True
        console.warn(self.message)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
