"""`gaia eval`: COCO metrics of a supernet path or a static model on a COCO-format dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Device, Output, Quiet, Seed, Verbose


@command(
    "eval",
    inputs=("weights", "data", "arch", "images", "recalibrate_data"), datasets=("data", "recalibrate_data"),
    outputs=("output",),
    epilog=(
        "Examples:\n\n"
        "  gaia eval --weights supernet.h5 --arch arch.json --data toy/val.json --recalibrate-data toy/train.json\n\n"
        "  gaia space sample tiny -n 1 --rule max | gaia eval --weights supernet.h5 --arch - --data toy/val.json\n\n"
        "  gaia eval --weights model.h5 --data val.json -o metrics.json"
    ),
)
def eval_command(
    weights: Annotated[str, typer.Option("--weights", help="A supernet or a static model (gaia/weights), an exported model (gaia export: ONNX or TorchScript), or a manifest line.")],
    data: Annotated[str, typer.Option("--data", help="The COCO-format dataset to evaluate on.")],
    arch: Annotated[Optional[str], typer.Option("--arch", help="The path to evaluate (needed for a supernet); - reads stdin.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Image folder of --data (default: found beside it).", file_okay=False)] = None,
    recalibrate: Annotated[Optional[int], typer.Option("--recalibrate", help="Images to re-estimate BN statistics with (default: 2000 for a supernet path, 0 for a model).")] = None,
    recalibrate_data: Annotated[Optional[str], typer.Option("--recalibrate-data", help="Training images for --recalibrate (default: --data's images; no labels are used).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 4,
    output: Output = None,
    device: Device = "auto",
    seed: Seed = 0,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Print COCO metrics (AP, AP50, AP75, APs, APm, APl and AP per category, in %) as JSON.

    A supernet path is extracted into a static model and its batch-norm statistics recalibrated first
    (direct evaluation of a path without it is meaningless). Computed by pycocotools.
    """
    from gaia_cli.tasks.evaluate import EvalRequest, run

    metrics = run(EvalRequest(weights, data, arch, images, recalibrate, recalibrate_data, batch_size, device, seed))
    console.emit_json(metrics, output)
