"""The workflows' requests, without torch: each command's options and their defaults, written once.

The workflow modules (finetune, train_supernet, pretrain, evaluate, predict) import their request from here, and
the command line (gaia_cli.cli) takes its option defaults from these classes, so that `gaia --help` imports no
torch and no default is typed twice.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gaia_cli.engine.runcontrol import RunControl, defaults


@dataclasses.dataclass
class FinetuneRequest:
    weights: str
    data: str
    output: Path
    arch: str | None = None
    val: str | None = None
    images: Path | None = None
    labels: str | None = None
    schedule: str = "1x"
    epochs: int = 13
    lr_steps: str | None = None
    lr_decay: float = 0.2
    lr_per_image: float | None = None  # None: the recipe's (0.0001875)
    head_loss_weight: float | None = None  # None: the recipe's (1; gaia 5)
    iou_balanced: bool | None = None  # None: the recipe's (off; gaia on)
    recipe: str = "default"  # gaia_cli.engine.recipes
    batch_size: int = 2
    warmup_iters: int = 100
    freeze: str = "none"
    two_stage: int = 0
    extra_data: str | None = None
    extra_share: float | None = None  # None: each --extra-data image and each target image once an epoch
    percent: float | None = None
    shots: int | None = None
    split_out: Path | None = None
    metric: str = "ap"
    recalibrate: int = 2000
    run: RunControl = defaults("finetune")


@dataclasses.dataclass
class TrainRequest:
    data: list[str]
    output: Path
    space: str = "ar50to101"
    labels: str | None = None
    images: Path | None = None
    abps: bool = False
    phases: str | None = None
    epochs: int | None = None  # None: the recipe's (12, or ABPS with --recipe gaia)
    lr_steps: str | None = None
    rules: str | None = None  # None: the recipe's (gaia)
    paths_per_step: int | None = None  # None: the recipe's (1 in every recipe today)
    distill: float | None = None  # None: the recipe's (0: off)
    batch_size: int = 2
    lr_per_image: float | None = None  # None: the recipe's (scratch 0.005; pretrained and gaia 0.00125)
    warmup_iters: int = 1000
    weight_decay: float = 1e-4
    clip_grad: float = 10.0
    head_loss_weight: float | None = None  # None: the recipe's (1; gaia 5)
    iou_balanced: bool | None = None  # None: the recipe's (off; gaia on)
    recipe: str = "auto"  # gaia_cli.engine.recipes: auto is scratch without --init, pretrained with it
    init: Path | None = None
    run: RunControl = defaults("train-supernet")


@dataclasses.dataclass
class PretrainRequest:
    samples: str
    output: Path
    space: str | None = None
    arch: str | None = None
    size: int = 224
    split: float = 1 / 3
    mode: str = "erf"
    tau: float = 0.7
    erf_every: int = 5000
    erf_images: int = 16
    epochs: int | None = None  # an epoch is a montage per 4 samples
    iterations: int | None = None  # steps; neither given: the paper's compute (64k x 512 montages) at this batch
    batch_size: int = 64
    lr_per_image: float = 0.8 / 512
    warmup_iters: int = 1250
    weight_decay: float = 1e-4
    clip_grad: float = 0.0
    rules: str = "gaia"
    paths_per_step: int = 1
    run: RunControl = defaults("pretrain")  # more workers, rarer checkpoints: see engine.runcontrol


@dataclasses.dataclass
class EvalRequest:
    weights: str
    data: str
    arch: str | None = None
    images: Path | None = None
    recalibrate: int | None = None
    recalibrate_data: str | None = None
    batch_size: int = 4
    device: str = defaults("eval").device
    seed: int = defaults("eval").seed


@dataclasses.dataclass
class PredictRequest:
    weights: str
    inputs: list[str]
    score: float = 0.3
    coco: str | None = None
    draw: Path | None = None
    batch_size: int = 4
    device: str = defaults("predict").device
