"""Checks of the numeric options that every training command shares, in one place.

Each names the option a user typed (`--batch-size`), what it must be and what it was, in one line.
"""

from __future__ import annotations

from typing import Mapping

from gaia_cli.errors import BadInput


def check_numbers(*, at_least_one: Mapping[str, int | None] = {}, positive: Mapping[str, float | None] = {},
                  not_negative: Mapping[str, float | None] = {}) -> None:
    """BadInput for the first option out of its range; None values (options left unset) pass."""
    for name, value in at_least_one.items():
        if value is not None and value < 1:
            raise BadInput(f"{name} must be at least 1 (got {value})")
    for name, value in positive.items():
        if value is not None and not value > 0:
            raise BadInput(f"{name} must be positive (got {value})")
    for name, value in not_negative.items():
        if value is not None and not value >= 0:
            raise BadInput(f"{name} must not be negative (got {value})")
