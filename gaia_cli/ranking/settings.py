"""What every candidate of a ranking is measured and fine-tuned with: `Settings`, the ranking request's part
that the stages need (picklable: it travels to --devices workers). No torch here: `gaia rank --help` takes its
defaults from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gaia_cli.engine.runcontrol import RunControl, defaults

DEPTH_RANGES = 5  # rank --depth-ranges: the authors' sampling rules bin total depth into 5 ranges


@dataclasses.dataclass
class Settings:
    weights: str | None = None  # the supernet, the target training and validation sets: given for a ranking
    data: str | None = None  # (only --compare goes without them)
    val: str | None = None
    images: Path | None = None
    labels: str | None = None
    recalibrate: int = 200
    batch_size: int = 2
    schedule: str = "fast"  # stage 2's (the reference's schedule is its own)
    epochs: int = 13
    lr_per_image: float = 0.0001875
    recipe: str = "default"  # finetune --recipe of stage 2
    warmup_iters: int = 100
    run: RunControl = defaults("rank")  # device: where candidates are computed (--compute-device); resume and
    # restart: the ranking's journal (each candidate's fine-tuning resumes on its own)
    work: Path | None = None  # where fine-tuning writes its models and checkpoints
