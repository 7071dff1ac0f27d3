"""`export` as a library call: build the static model, export it to a temp file beside the output, check it
against PyTorch, and only then put it in place (a failed check or a refused input writes nothing)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gaia_cli import __version__, console
from gaia_cli.artifacts import atomic_path, manifest
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.export.check import check_images, compare
from gaia_cli.export.model import deploy_model
from gaia_cli.export.write import DEFAULT_OPSET, FORMATS, check_opset, export_onnx, export_torchscript, parse_size
from gaia_cli.nn.exported import ExportedDetector, need_onnx

DEFAULT_CHECK_IMAGES = 8


@dataclasses.dataclass
class ExportRequest:
    weights: str
    output: Path
    format: str = "onnx"
    arch: str | None = None
    size: str | None = None  # ONNX: the input size (fixed unless dynamic); default the arch's scale square
    dynamic: bool = False
    opset: int | None = None  # ONNX only; None: DEFAULT_OPSET
    check: str | None = None  # a COCO dataset whose images the check runs on; None: generated images
    check_images: int = DEFAULT_CHECK_IMAGES
    recalibrate: int | None = None
    recalibrate_data: str | None = None
    seed: int = 0


def check_request(r: ExportRequest) -> None:
    check_options({"--check-images": r.check_images, "--recalibrate": r.recalibrate, "--seed": r.seed,
                   "--opset": r.opset}, "export")
    if r.format not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)} (got {r.format!r})")
    if r.format == "onnx":
        need_onnx()
        if r.opset is not None:
            check_opset(r.opset)
    else:
        given = [o for o, v in (("--opset", r.opset), ("--size", r.size), ("--dynamic", r.dynamic)) if v]
        if given:
            raise BadInput(f"{', '.join(given)} {'is an ONNX option' if len(given) == 1 else 'are ONNX options'}: "
                           "a TorchScript model takes images of any size")


def run(r: ExportRequest) -> tuple[dict[str, str], dict[str, Any]]:
    """(the manifest of the file written, the check's report)."""
    check_request(r)
    onnx = r.format == "onnx"
    opset = (r.opset or DEFAULT_OPSET) if onnx else None
    if r.size is not None:
        parse_size(r.size, 0)  # refused before any work
    if r.check is not None:
        load_coco(r.check)  # refused before any work (read again for its images below)
    model, meta = deploy_model(r.weights, r.arch, r.recalibrate, r.recalibrate_data, seed=r.seed)
    arch = meta["arch"]
    size = parse_size(r.size, arch.scale)
    dynamic = r.dynamic or not onnx
    info = {"format": r.format, "opset": opset, "input_size": list(size), "dynamic": dynamic,
            "classes": meta["classes"], "arch": arch.as_dict(), "detector": meta["detector"],
            "source": meta["ref"].as_dict(), "recalibration": meta["recalibration"], "gaia_version": __version__,
            "input": "image: float32 [3, H, W], RGB in [0, 1]",
            "outputs": "boxes [N, 4] x1y1x2y2 in input pixels, labels [N] int64 (k: classes[k-1]), scores [N]"}
    images = check_images(r.check, r.check_images, None if dynamic else size, arch.scale, r.seed)
    if not images:
        raise BadInput("has no images to check the export on", r.check)
    heads = model.roi_heads
    with atomic_path(r.output) as tmp:
        if onnx:
            export_onnx(model, tmp, size, r.dynamic, opset, info)
        else:
            export_torchscript(model, tmp, info)
        report = compare(model, ExportedDetector(tmp, r.format), images, heads.score_thresh, heads.detections_per_img)
        source = r.check or "generated toy images"
        worst = report["worst"]
        if not report["ok"]:
            raise RunFailure(
                f"the exported model disagrees with PyTorch on {report['images']} images of {source}; worst "
                f"{worst['image']}: {worst['unmatched']} of {worst['detections']} detections without a partner within "
                f"{report['tolerance']['box_pixels']} px and score {report['tolerance']['score']} (nothing written)")
    console.info(f"exported {arch} to {r.format}{f' (opset {opset})' if onnx else ''}, input "
                 f"{'any size' if dynamic else f'{size[0]}x{size[1]}'}; checked on {report['images']} images of "
                 f"{source}: {report['detections']} detections, all matched (largest differences: box "
                 f"{report['max_box_diff']:.2g} px, score {report['max_score_diff']:.2g}; tolerance "
                 f"{report['tolerance']['box_pixels']} px, {report['tolerance']['score']})")
    return manifest(f"gaia/{r.format}", r.output), report
