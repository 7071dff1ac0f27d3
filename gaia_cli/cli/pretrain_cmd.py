"""`gaia pretrain`: Montage pre-training of the supernet's backbone on detection data alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Optional

import typer

from gaia_cli.cli.commands import checkpoint, command
from gaia_cli.cli.options import (
    Amp, Arch, BatchSize, CheckpointEvery, ClipGrad, Device, LogEvery, OutputH5, PathsPerStep, Quiet, Restart, Resume, Rules,
    Seed, Space, StopAfter, Verbose, WeightDecay, Workers)
from gaia_cli.tasks.requests import PretrainRequest

DEFAULT = PretrainRequest  # the options' defaults, written once there
RUN = DEFAULT.run  # more workers and rarer checkpoints than the other commands: see gaia_cli.engine.runcontrol


@command(
    "pretrain",
    inputs=("samples", "space", "arch"), outputs=("output",), implied=checkpoint,
    epilog=(
        "Examples:\n\n"
        "  gaia pretrain samples.h5 --space ar50to101 -o backbone.h5\n\n"
        "  gaia pretrain samples.h5 --arch arch.json --mode block --epochs 50 -o backbone.h5\n\n"
        "  gaia pretrain samples.h5 --space tiny --size 128 --epochs 4 -o backbone.h5 && \\\n"
        "      gaia train-supernet --data train.json --space tiny --init backbone.h5 -o supernet.h5\n\n"
        "  torchrun --nproc_per_node 8 -m gaia_cli pretrain samples.h5 -o backbone.h5 --amp --batch-size 64"
    ),
)
def pretrain(
    samples: Annotated[str, typer.Argument(help="Samples from extract-montage (gaia/montage-samples; a manifest line or - works).")],
    output: OutputH5,
    space: Space("Pre-train this supernet's backbone, a path per step", " (default ar50to101)") = None,
    arch: Arch("Pre-train one fixed arch instead (gaia/arch JSON)") = None,
    size: Annotated[int, typer.Option("--size", help="Side of the square montage (pixels).")] = DEFAULT.size,
    split: Annotated[float, typer.Option("--split", help="Where the template is cut, as a share of the side: the top-left region is split x split.")] = DEFAULT.split,
    mode: Annotated[str, typer.Option("--mode", help="Soft labels: erf (ERF-adaptive, the paper's), block (one label per region) or global (one area-weighted label).")] = DEFAULT.mode,
    tau: Annotated[float, typer.Option("--tau", help="ERF mode: the least weight of a position's own region's label.")] = DEFAULT.tau,
    erf_every: Annotated[int, typer.Option("--erf-every", help="ERF mode: recompute the soft labels from the network's input gradients every this many steps.")] = DEFAULT.erf_every,
    erf_images: Annotated[int, typer.Option("--erf-images", help="ERF mode: montages the receptive fields are measured on.")] = DEFAULT.erf_images,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Length in epochs (an epoch is a montage per 4 samples) instead of --iterations.", show_default=False)] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="Length in steps (default: the paper's compute, 64k steps of 512 montages, scaled to the montages of a step: 64000 x 512 / (batch x processes); printed at start).", show_default=False)] = None,
    batch_size: BatchSize = DEFAULT.batch_size,
    lr_per_image: Annotated[float, typer.Option("--lr-per-image", help="Peak learning rate per montage of a step (the paper: 0.8 for 512).")] = DEFAULT.lr_per_image,
    warmup_iters: Annotated[int, typer.Option("--warmup-iters", help="Steps of linear warm-up from a quarter of the rate (at most a tenth of the run).")] = DEFAULT.warmup_iters,
    weight_decay: WeightDecay = DEFAULT.weight_decay,
    clip_grad: ClipGrad = DEFAULT.clip_grad,
    rules: Rules = DEFAULT.rules,
    paths_per_step: PathsPerStep = DEFAULT.paths_per_step,
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
    """Pre-train a backbone on Montage-assembled samples and write backbone.h5 (gaia/weights, role backbone).

    Each montage stitches 2 S-samples, 1 T- and 1 W-sample on a fixed template (smaller S top-left, W
    top-right, T bottom-left, larger S bottom-right), assembled in the data-loading workers. The backbone's
    last feature map goes through a 1x1 conv to the classes plus background, with a cross-entropy at every
    position against soft labels; the loss is the mean of the four regions' losses. With --space, every step
    trains a path drawn by the supernet's rules, so the whole supernet is pre-trained (DetOFA); with --arch,
    one network. SGD with momentum 0.9, warm-up then cosine decay; checkpoints, --resume, --amp and torchrun
    as in train-supernet. stdout: the manifest line with the last loss and region accuracy. Load the result
    with train-supernet --init.
    """
    from gaia_cli.tasks.pretrain import run

    run(PretrainRequest(samples=samples, output=output, space=space, arch=arch, size=size, split=split, mode=mode,
                        tau=tau, erf_every=erf_every, erf_images=erf_images, epochs=epochs, iterations=iterations,
                        batch_size=batch_size,
                        lr_per_image=lr_per_image, warmup_iters=warmup_iters, weight_decay=weight_decay,
                        clip_grad=clip_grad, rules=rules, paths_per_step=paths_per_step,
                        run=replace(RUN, amp=amp, workers=workers, checkpoint_every=checkpoint_every,
                                    log_every=log_every, stop_after=stop_after, resume=resume, restart=restart,
                                    device=device, seed=seed)))
