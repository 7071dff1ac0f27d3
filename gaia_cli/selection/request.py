"""select-data's request, without torch: its options and their defaults, written once (the workflow,
gaia_cli.selection.select, and the command line both take it from here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gaia_cli.engine.runcontrol import RunControl, defaults


@dataclasses.dataclass
class SelectRequest:
    weights: str
    target: str | None
    upstream: list[str]
    arch: str | None = None
    labels: str | None = None
    strategy: str = "most-similar"
    k: int = 5
    budget: int | None = None
    min_per_category: int = 2
    features: Path | None = None
    features_only: bool = False
    recalibrate: int = 200
    batch_size: int = 8
    chunk_rows: int = 8192
    run: RunControl = defaults("select-data")  # device, seed, workers (it trains nothing: no checkpoints)
