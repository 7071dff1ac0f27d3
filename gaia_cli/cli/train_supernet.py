"""`gaia train-supernet`: train the weight-sharing detector over a search space (GAIA 3.1.2, 4.2.2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli.cli.commands import checkpoint, command
from gaia_cli.cli.options import (
    Amp, BatchSize, CheckpointEvery, ClipGrad, Datasets, Device, Images, Labels, LogEvery, OutputH5, PathsPerStep, Quiet,
    Restart, Resume, Rules, Seed, Space, StopAfter, Verbose, WeightDecay, Workers)
from gaia_cli.engine.recipes import describe as _describe_recipe
from gaia_cli.tasks.requests import TrainRequest

DEFAULT = TrainRequest  # the options' defaults, written once there
RUN = DEFAULT.run  # train-supernet's run control (gaia_cli.engine.runcontrol)


def _recipe(name: str) -> str:
    return _describe_recipe("train-supernet", name)


@command(
    "train-supernet",
    inputs=("data", "labels", "images", "space", "init"), datasets=("data",), outputs=("output",),
    implied=checkpoint,
    epilog=(
        "Examples:\n\n"
        "  gaia train-supernet --data toy/train.json --space tiny --epochs 4 -o supernet.h5\n\n"
        "  gaia train-supernet --data coco.u.json --data o365.u.json --labels labels.json --space ar50to101 \\\n"
        "      --recipe gaia --batch-size 2 -o supernet.h5      # GAIA's recipe: ABPS, head loss x5, IoU-balanced\n\n"
        "  torchrun --nproc_per_node 8 -m gaia_cli train-supernet ... --resume   # continue a stopped run"
    ),
)
def train_supernet(
    data: Datasets("training"),
    output: OutputH5,
    space: Space("The search space") = DEFAULT.space,
    labels: Labels("it maps every dataset's categories") = None,
    images: Images("a single --data") = None,
    abps: Annotated[bool, typer.Option("--abps", help="GAIA's anchor-based progressive shrinking: ar101:24:16,21;ar77:13:8,11;ar50:13:8,11.")] = DEFAULT.abps,
    phases: Annotated[Optional[str], typer.Option("--phases", help="Phases SPACE:EPOCHS[:STEPS], ';'-separated; each shrink adds a warm-up epoch.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epochs of a single phase over --space (without --abps/--phases; default 12).", show_default=False)] = None,
    lr_steps: Annotated[Optional[str], typer.Option("--lr-steps", help="Epochs after which the rate drops 10x, or late (5/6 and 23/24 of --epochs; the scratch recipe's). Default: the recipe's (2/3 and 7/8 of --epochs without one).", show_default=False)] = None,
    rules: Annotated[Optional[str], typer.Option("--rules", help=Rules.__metadata__[0].help + " Default: the recipe's (gaia); on a pruned --space, uniform over what it allows (DetOFA Algorithm 1).", show_default=False)] = None,
    paths_per_step: Annotated[Optional[int], typer.Option("--paths-per-step", help=PathsPerStep.__metadata__[0].help + " Default: the recipe's.", show_default=False)] = None,
    distill: Annotated[Optional[float], typer.Option("--distill", help="In-place distillation's weight (0: off): each step's first path (the largest) teaches the others through RPN objectness, RoI class and box soft targets on its proposals. Needs --rules sandwich and --paths-per-step 2 or more. Default: the recipe's.", show_default=False)] = None,
    batch_size: BatchSize = DEFAULT.batch_size,
    lr_per_image: Annotated[Optional[float], typer.Option("--lr-per-image", help="Learning rate per image of a step (default: the recipe's; GAIA: 0.00125).", show_default=False)] = None,
    warmup_iters: Annotated[int, typer.Option("--warmup-iters", help="Linear warm-up steps of the first phase (at most a tenth of its steps).")] = DEFAULT.warmup_iters,
    weight_decay: WeightDecay = DEFAULT.weight_decay,
    clip_grad: ClipGrad = DEFAULT.clip_grad,
    head_loss_weight: Annotated[Optional[float], typer.Option("--head-loss-weight", help="Factor on the RoI head's losses (default: the recipe's; GAIA: 5).", show_default=False)] = None,
    iou_balanced: Annotated[Optional[bool], typer.Option("--iou-balanced/--no-iou-balanced", help="IoU-balanced negatives for the RoI head (Libra R-CNN; GAIA trains with it; default: the recipe's).", show_default=False)] = None,
    recipe: Annotated[str, typer.Option("--recipe", help=(
        "Option values in one switch (an option given wins): auto (the default) = scratch without --init, pretrained "
        "with it (the log says which); scratch (a random start) = " + _recipe("scratch") + "; pretrained (a "
        "pre-trained start, GAIA's rate) = " + _recipe("pretrained") + "; gaia (GAIA 4.2.2) = " + _recipe("gaia") + "."))] = DEFAULT.recipe,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from these weights: a gaia/weights backbone or a torchvision ResNet .pth (the backbone), or a gaia/weights supernet of the same space or the space it was pruned from (all of it; with --labels, a label space grown from its classes by unify-labels --base: old classes keep their rows, new ones borrow their nearest class's).", dir_okay=False)] = None,
    amp: Amp = RUN.amp,
    workers: Workers = RUN.workers,
    checkpoint_every: CheckpointEvery = RUN.checkpoint_every,
    log_every: LogEvery = RUN.log_every,
    stop_after: StopAfter = RUN.stop_after,
    resume: Resume = RUN.resume,
    restart: Restart = RUN.restart,
    device: Device = RUN.device,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Train a supernet on COCO-format data and write supernet.h5 (gaia/weights, role supernet).

    Each step trains one path (or several with --paths-per-step) drawn by GAIA's sampling rules, on a batch
    grouped by aspect ratio (every batch full). SGD with momentum 0.9; the rate is --lr-per-image times the
    images of a step, warmed up over at most a tenth of the run, then divided by 10 at the steps; the
    effective schedule is logged when training starts. Checkpoints are written every --checkpoint-every steps and
    when the run is interrupted (Ctrl-C, SIGTERM); --resume continues exactly. Runs under torchrun on several
    processes (NCCL on GPUs, gloo on CPUs) with synchronised batch norm.
    """
    from gaia_cli.tasks.train_supernet import run

    run(TrainRequest(data=data, output=output, space=space, labels=labels, images=images, abps=abps, phases=phases,
                     epochs=epochs, lr_steps=lr_steps, rules=rules, paths_per_step=paths_per_step,
                     distill=distill, batch_size=batch_size, lr_per_image=lr_per_image, warmup_iters=warmup_iters,
                     weight_decay=weight_decay, clip_grad=clip_grad, head_loss_weight=head_loss_weight,
                     iou_balanced=iou_balanced, recipe=recipe, init=init,
                     run=replace(RUN, amp=amp, workers=workers, checkpoint_every=checkpoint_every, log_every=log_every,
                                 stop_after=stop_after, resume=resume, restart=restart, device=device, seed=seed)))
