"""`gaia select-data`: upstream images relevant to a small target set (GAIA 3.2.2), as a gaia/selection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Arch, BatchSize, Device, Labels, Output, Quiet, Recalibrate, Seed, Verbose, Weights, Workers
from gaia_cli.selection.request import SelectRequest

DEFAULT = SelectRequest  # the options' defaults, written once there
RUN = DEFAULT.run  # select-data's run control (gaia_cli.engine.runcontrol)


@command(
    "select-data",
    inputs=("weights", "arch", "target", "upstream", "labels"), datasets=("target",),
    outputs=("output",), output_folders=("features",),
    epilog=(
        "Examples:\n\n"
        "  gaia select-data --weights supernet.h5 --arch arch.json --target target/train.json --upstream coco=coco.json --upstream o365=o365.json --labels labels.json > selection.json\n\n"
        "  gaia select-data ... --strategy top-k --k 5\n\n"
        "  torchrun --nproc-per-node 8 -m gaia_cli select-data --weights supernet.h5 --arch arch.json --upstream o365=o365.json --features-only\n\n"
        "  gaia finetune ... --data target/train.json --extra-data selection.json"
    ),
)
def select_data(
    weights: Weights("The model whose fc7 features compare images: a supernet (with --arch) or a static model."),
    upstream: Annotated[list[str], typer.Option("--upstream", help="An upstream dataset as NAME=PATH (COCO format, images beside it); repeat for each.")],
    target: Annotated[Optional[str], typer.Option("--target", help="The target's few training images (COCO format); not needed with --features-only.")] = None,
    arch: Arch("The supernet's path to use") = None,
    labels: Labels("categories compared by unified id (default: the target's categories, matched by name); a target category outside it gets no images") = None,
    strategy: Annotated[str, typer.Option("--strategy", help="most-similar (best over all pairs, up to --budget), top-k (k per target image and category) or random (the control).")] = DEFAULT.strategy,
    k: Annotated[int, typer.Option("--k", help="top-k: upstream images per target image and category; also sets the default --budget.")] = DEFAULT.k,
    budget: Annotated[Optional[int], typer.Option("--budget", help="Images to choose (default: k x the target's image-category pairs; top-k: all it finds).")] = None,
    min_per_category: Annotated[int, typer.Option("--min-per-category", help="At least this many chosen images per target category, within the budget (0: none asked; the paper asks nothing of the selection, gaia 2 by default: measured better).")] = DEFAULT.min_per_category,
    features: Annotated[Optional[Path], typer.Option("--features", help="The folder of gaia/features caches, one per dataset (default: WEIGHTS.features/ beside the weights).", file_okay=False)] = None,
    features_only: Annotated[bool, typer.Option("--features-only", help="Fill the caches and print what was computed, without selecting (runs under torchrun).")] = DEFAULT.features_only,
    recalibrate: Recalibrate("Upstream images", "a supernet path's") = DEFAULT.recalibrate,
    batch_size: BatchSize = DEFAULT.batch_size,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Upstream vectors compared at a time (memory is bounded by this).")] = DEFAULT.chunk_rows,
    workers: Workers = RUN.workers,
    output: Output = None,
    device: Device = RUN.device,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Choose upstream images whose per-category fc7 features are closest to the target's; print a gaia/selection.

    Each image's represent vector for a category is the L2-normalised mean of the box head's output (fc7) at
    its boxes of that category; only vectors of the same category are compared (cosine). Features are cached
    per model and dataset (--features), so a second run computes only new images. The output feeds
    finetune --extra-data; gaia inspect summarises it.
    """
    from gaia_cli.selection.select import run

    result = run(SelectRequest(weights=weights, target=target, upstream=upstream, arch=arch, labels=labels,
                               strategy=strategy, k=k, budget=budget, min_per_category=min_per_category,
                               features=features, features_only=features_only, recalibrate=recalibrate,
                               batch_size=batch_size, chunk_rows=chunk_rows,
                               run=replace(RUN, workers=workers, device=device, seed=seed)))
    if result is not None:
        console.emit_json(result, output)
