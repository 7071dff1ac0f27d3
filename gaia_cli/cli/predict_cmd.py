"""`gaia predict`: detections of a fine-tuned model on images, in COCO results format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Device, ForwardBatchSize, Output, Quiet, Verbose
from gaia_cli.engine.runcontrol import defaults
from gaia_cli.tasks.requests import PredictRequest

DEFAULT = PredictRequest  # the options' defaults, written once there
RUN = defaults("predict")  # its --device default


@command(
    "predict",
    inputs=("weights", "inputs", "coco"), outputs=("output",), output_folders=("draw",),
    epilog=(
        "Examples:\n\n"
        "  gaia predict model.h5 photos/ --score 0.5 > detections.json\n\n"
        "  gaia predict model.h5 val/ --coco val.json --draw drawn/   # ids from val.json; pictures to look at"
    ),
)
def predict(
    weights: Annotated[str, typer.Argument(help="A static model (gaia/weights, role model), an exported model (gaia export: ONNX or TorchScript), or a manifest line.")],
    inputs: Annotated[list[str], typer.Argument(help="Images or folders of images.")],
    score: Annotated[float, typer.Option("--score", help="Keep detections scoring at least this.")] = DEFAULT.score,
    coco: Annotated[Optional[str], typer.Option("--coco", help="A COCO file giving image ids (by file name) and category ids (by name).")] = None,
    draw: Annotated[Optional[Path], typer.Option("--draw", help="Save each image with its detections drawn into this folder.", file_okay=False)] = None,
    batch_size: ForwardBatchSize = DEFAULT.batch_size,
    output: Output = None,
    device: Device = RUN.device,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Detect objects in images; print the detections in COCO results format (loadable by pycocotools)."""
    from gaia_cli.tasks.predict import run

    console.emit_json(run(PredictRequest(weights, inputs, score, coco, draw, batch_size, device)), output)
