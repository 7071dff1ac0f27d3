"""`gaia export`: a fine-tuned model (or a supernet's path) as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console
from gaia_cli.cli.commands import command
from gaia_cli.cli.options import Arch, OutputH5, Quiet, Recalibrate, RecalibrateData, Seed, Verbose
from gaia_cli.engine.runcontrol import defaults

RUN = defaults("export")  # its --seed default


@command(
    "export",
    inputs=("weights", "arch", "check", "recalibrate_data"), datasets=("check", "recalibrate_data"),
    outputs=("output",),
    epilog=(
        "Examples:\n\n"
        "  gaia export model.h5 --format onnx -o model.onnx --check val.json\n\n"
        "  gaia export model.h5 --format onnx --dynamic --opset 17 -o model.onnx\n\n"
        "  gaia export model.h5 --format torchscript -o model.pt\n\n"
        "  gaia export supernet.h5 --arch arch.json --recalibrate-data train.json -o path.onnx\n\n"
        "  gaia eval --weights model.onnx --data val.json      # eval, predict and bench-latency read the file"
    ),
)
def export(
    weights: Annotated[str, typer.Argument(help="A static model (gaia/weights, role model), a supernet with --arch, or a manifest line.")],
    output: OutputH5,
    format: Annotated[str, typer.Option("--format", help="onnx (ONNX Runtime, TensorRT) or torchscript (torch.jit.load).")] = "onnx",
    arch: Arch("The path to export from a supernet (as eval takes it)") = None,
    size: Annotated[Optional[str], typer.Option("--size", help="ONNX input size HEIGHT,WIDTH (or one number); fixed unless --dynamic. Default: the arch's scale, square.", show_default=False)] = None,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="ONNX: free input height and width (TorchScript always takes any size).")] = False,
    opset: Annotated[Optional[int], typer.Option("--opset", help="ONNX opset, 11-20 (default 17).", show_default=False)] = None,
    check: Annotated[Optional[str], typer.Option("--check", help="A COCO dataset whose images the export is checked on (default: generated toy images).")] = None,
    check_images: Annotated[int, typer.Option("--check-images", help="Images to check on.")] = 8,
    recalibrate: Recalibrate("Images", "a supernet path's", " (default 2000; 0 for a model)", show_default=False) = None,
    recalibrate_data: RecalibrateData("needed for a supernet path") = None,
    seed: Seed = RUN.seed,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Export a detector for deployment and check it: ONNX or TorchScript, the whole torchvision Faster R-CNN
    (transform, backbone, FPN, RPN, RoI heads, post-processing) taking one RGB image [3, H, W] in [0, 1] and
    returning boxes, labels and scores. The classes and the arch are in the file's metadata. After writing,
    the exported model runs on the check images beside gaia's PyTorch model: every detection must match
    (same label, box within 0.05 px, score within 0.001), or the command fails (exit 1) naming the worst
    image and writes nothing. ONNX needs the extra: pip install 'gaia-cli[export]'.
    """
    from gaia_cli.export.run import ExportRequest, run

    manifest, _ = run(ExportRequest(weights, output, format, arch, size, dynamic, opset, check, check_images,
                                    recalibrate, recalibrate_data, seed))
    console.emit_line(manifest)
