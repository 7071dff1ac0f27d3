"""`gaia finetune`: a supernet path (or a static model) fitted to the user's task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import checkpoint, command
from gaia_cli.cli.options import (
    Amp, Arch, BatchSize, CheckpointEvery, Data, Device, Images, Labels, OutputH5, Quiet, Recalibrate, Restart, Resume,
    Seed, StopAfter, Verbose, Weights, Workers)
from gaia_cli.engine.recipes import describe as _describe_recipe
from gaia_cli.tasks.requests import FinetuneRequest

DEFAULT = FinetuneRequest  # the options' defaults, written once there
RUN = DEFAULT.run  # finetune's run control (gaia_cli.engine.runcontrol)


def _implied_outputs(args: dict) -> list[tuple[str, Path]]:
    """What finetune writes besides -o: the checkpoint, the head stage's checkpoint with --two-stage, and the
    split with --percent or --shots when --split-out is not given."""
    from gaia_cli.engine.checkpoints import default_split_path, head_checkpoint_path

    found = checkpoint(args)
    out = Path(args["output"])
    if args.get("two_stage"):
        found.append(("the head stage's checkpoint", head_checkpoint_path(out)))
    if (args.get("percent") is not None or args.get("shots") is not None) and args.get("split_out") is None:
        found.append(("the split", default_split_path(out)))
    return found


@command(
    "finetune",
    inputs=("weights", "data", "arch", "val", "images", "labels", "extra_data"), datasets=("data", "val"),
    outputs=("output", "split_out"), implied=_implied_outputs,
    epilog=(
        "Examples:\n\n"
        "  gaia finetune --weights supernet.h5 --arch arch.json --data train.json --val val.json -o model.h5\n\n"
        "  gaia search --latency 25 --device v100 | gaia finetune --weights supernet.h5 --arch - --data train.json -o model.h5\n\n"
        "  gaia finetune ... --freeze backbone --percent 10 --schedule fast --metric mr   # INTERN's linear probe\n\n"
        "  gaia finetune ... --recipe gaia      # GAIA's: head loss x5, IoU-balanced sampling, 1x"
    ),
)
def finetune(
    weights: Weights("A supernet (with --arch) or a static model (gaia/weights)."),
    data: Data("The target training set"),
    output: OutputH5,
    arch: Arch("The path to extract from the supernet") = None,
    val: Annotated[Optional[str], typer.Option("--val", help="Evaluate on this set after each epoch.")] = None,
    images: Images() = None,
    labels: Labels("new categories borrow the rows of their nearest class by word vectors", "The supernet's") = None,
    schedule: Annotated[str, typer.Option("--schedule", help="1x (13 epochs, /5 after 8 and 11), fast (2 epochs: a warm-up epoch, then one at the rate /10) or custom.")] = DEFAULT.schedule,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of --schedule custom.")] = DEFAULT.epochs,
    lr_steps: Annotated[Optional[str], typer.Option("--lr-steps", help="Epochs after which the rate drops (custom).")] = None,
    lr_decay: Annotated[float, typer.Option("--lr-decay", help="Factor at each step (custom).")] = DEFAULT.lr_decay,
    lr_per_image: Annotated[Optional[float], typer.Option("--lr-per-image", help="Learning rate per image of a step (default: the recipe's; GAIA: 0.0001875).", show_default=False)] = None,
    head_loss_weight: Annotated[Optional[float], typer.Option("--head-loss-weight", help="Factor on the RoI head's losses (default: the recipe's; GAIA: 5, as its supernet).", show_default=False)] = None,
    iou_balanced: Annotated[Optional[bool], typer.Option("--iou-balanced/--no-iou-balanced", help="IoU-balanced negatives for the RoI head (Libra R-CNN; default: the recipe's).", show_default=False)] = None,
    recipe: Annotated[str, typer.Option("--recipe", help=(
        "Option values in one switch (an option given wins): default = " + _describe_recipe("finetune", "default")
        + "; gaia (GAIA 4.2.3, as the supernet was trained) = " + _describe_recipe("finetune", "gaia") + "."))] = DEFAULT.recipe,
    batch_size: BatchSize = DEFAULT.batch_size,
    warmup_iters: Annotated[int, typer.Option("--warmup-iters", help="Linear warm-up steps (at most a tenth of the run).")] = DEFAULT.warmup_iters,
    freeze: Annotated[str, typer.Option("--freeze", help="none; backbone (Proper Reuse, and INTERN's linear probe: FPN, RPN and RoI heads train on a frozen backbone); or backbone+fpn (the RPN and RoI heads alone).")] = DEFAULT.freeze,
    two_stage: Annotated[int, typer.Option("--two-stage", help="Train the head alone for this many epochs first, then everything.")] = DEFAULT.two_stage,
    extra_data: Annotated[Optional[str], typer.Option("--extra-data", help="Add the upstream images of a gaia/selection (from select-data), mapped into the target's categories.")] = None,
    extra_share: Annotated[Optional[float], typer.Option("--extra-share", help="The share of each epoch's images that --extra-data makes up: the target's images are repeated to fill the rest (default: every image once).", show_default=False)] = None,
    percent: Annotated[Optional[float], typer.Option("--percent", help="Train on INTERN's P% split: P% of each class's instances (rounded down); the other boxes of the chosen images become ignore regions.")] = None,
    shots: Annotated[Optional[int], typer.Option("--shots", help="Train on K instances of each class (the other boxes of their images: ignore regions).")] = None,
    split_out: Annotated[Optional[Path], typer.Option("--split-out", help="Where the split goes (default: OUTPUT.split.json).", dir_okay=False)] = None,
    metric: Annotated[str, typer.Option("--metric", help="ap (COCO) or mr (adds the log-average miss rate MR^-2).")] = DEFAULT.metric,
    recalibrate: Recalibrate("Training images", "the extracted path's") = DEFAULT.recalibrate,
    amp: Amp = RUN.amp,
    workers: Workers = RUN.workers,
    checkpoint_every: CheckpointEvery = RUN.checkpoint_every,
    stop_after: StopAfter = RUN.stop_after,
    resume: Resume = RUN.resume,
    restart: Restart = RUN.restart,
    device: Device = RUN.device,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a path for a target dataset and write model.h5 (gaia/weights, role model).

    Classifier weight surgery keeps the rows of categories the supernet knows and borrows the nearest
    class's rows for the others (with --labels). Prints the manifest line with the final metrics.
    """
    from gaia_cli.tasks.finetune import run

    result = run(FinetuneRequest(weights=weights, data=data, output=output, arch=arch, val=val, images=images,
                                 labels=labels, schedule=schedule, epochs=epochs, lr_steps=lr_steps, lr_decay=lr_decay,
                                 lr_per_image=lr_per_image, head_loss_weight=head_loss_weight,
                                 iou_balanced=iou_balanced, recipe=recipe, batch_size=batch_size, warmup_iters=warmup_iters,
                                 freeze=freeze, two_stage=two_stage, extra_data=extra_data, extra_share=extra_share, percent=percent, shots=shots, split_out=split_out,
                                 metric=metric, recalibrate=recalibrate,
                                 run=replace(RUN, amp=amp, workers=workers, checkpoint_every=checkpoint_every,
                                             stop_after=stop_after, resume=resume, restart=restart, device=device,
                                             seed=seed)))
    if result:
        console.emit_line(result)
