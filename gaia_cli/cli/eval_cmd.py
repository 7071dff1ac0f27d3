"""`gaia eval`: COCO metrics of a supernet path or a static model on a COCO-format dataset."""

from __future__ import annotations

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import (
    Arch, Data, Device, ForwardBatchSize, Images, Output, Quiet, Recalibrate, RecalibrateData, Seed, Verbose, Weights)
from gaia_cli.engine.runcontrol import defaults
from gaia_cli.tasks.requests import EvalRequest

DEFAULT = EvalRequest  # the options' defaults, written once there
RUN = defaults("eval")  # its --device and --seed defaults


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
    weights: Weights("A supernet or a static model (gaia/weights), an exported model (gaia export: ONNX or TorchScript), or a manifest line."),
    data: Data("The dataset to evaluate on"),
    arch: Arch("The path to evaluate (needed for a supernet)") = None,
    images: Images() = None,
    recalibrate: Recalibrate("Images", "", " (default: 2000 for a supernet path, 0 for a model)") = None,
    recalibrate_data: RecalibrateData("default: --data's images; no labels are used") = None,
    batch_size: ForwardBatchSize = DEFAULT.batch_size,
    output: Output = None,
    device: Device = RUN.device,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Print COCO metrics (AP, AP50, AP75, APs, APm, APl and AP per category, in %) as JSON.

    A supernet path is extracted into a static model and its batch-norm statistics recalibrated first
    (direct evaluation of a path without it is meaningless). Computed by pycocotools.
    """
    from gaia_cli.tasks.evaluate import run

    metrics = run(EvalRequest(weights, data, arch, images, recalibrate, recalibrate_data, batch_size, device, seed))
    console.emit_json(metrics, output)
