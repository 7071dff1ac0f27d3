"""Stopping long loops cleanly on SIGINT/SIGTERM.

Raising from a signal handler can land anywhere, even in a weakref callback or `__del__`, where Python
prints the exception and carries on. Long loops (training, extraction) instead install `StopRequested`,
whose handler only sets a flag, and check it at a safe point; a second signal raises at once.
"""

from __future__ import annotations

import signal
from typing import Any

from gaia_cli import console


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
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt()
        self.requested = True
        console.warn(self.message)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
