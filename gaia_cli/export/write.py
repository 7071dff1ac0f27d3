"""Writing an exported detector with torch's own exporters, gaia's metadata inside the file.

The exported model takes one RGB image, float32 [3, H, W] in [0, 1] (the input `image`), and returns its
detections in that image's pixels: `boxes` [N, 4] (x1, y1, x2, y2), `labels` [N] (int64, 1..C: label k is
`classes[k - 1]`) and `scores` [N], as torchvision's detectors do after their transform (resize to the
arch's scale, normalisation) and post-processing (per-class NMS, the top 100), which the file holds too.

- ONNX: `torch.onnx.export` (the TorchScript-based exporter, which torchvision's detection models are
  written for; opsets 11-20, default 17). Input size fixed at `--size`, or free height and width with
  `--dynamic`; gaia letterboxes an image into a fixed-size graph (gaia_cli.nn.exported). gaia's metadata goes into the model's `metadata_props` under the key `gaia` (JSON).
- TorchScript: `torch.jit.script` (the whole model, input size always free), saved with the metadata as the
  extra file `gaia.json`. `torch.jit.load` gives a module whose call returns (losses, detections).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection._utils import BoxCoder

from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.nn.exported import EXTRA_FILE, META_KEY, need_onnx

FORMATS = ("onnx", "torchscript")
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 11, 20, 17  # the TorchScript-based ONNX exporter's range for these models


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise BadInput(f"--opset {opset} is not supported: torch's exporter writes these detectors at opsets "
                       f"{MIN_OPSET}-{MAX_OPSET}")


class TracingBoxCoder(BoxCoder):
    """torchvision's box coder whose `decode` has no branch on the number of boxes.

    `BoxCoder.decode` reshapes only `if box_sum > 0`; a tracer takes that branch once, on the example, and
    bakes it in: traced on an example that leaves no proposal, the graph then fails on an image that leaves
    one (ONNX Runtime: Reshape {1, 4C - 1} to {-1, 4} in the RoI post-processing). The same reshapes, written
    with explicit sizes, hold for any count, zero included."""

    def decode(self, rel_codes: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        concat_boxes = torch.cat(boxes, dim=0)
        count = concat_boxes.shape[0]
        pred = self.decode_single(rel_codes.reshape(count, rel_codes.shape[-1]), concat_boxes)
        return pred.reshape(count, pred.shape[-1] // 4, 4)


def traceable(model: nn.Module) -> nn.Module:
    """`model` with box coders a tracer cannot specialise to the example's proposal count."""
    for coder in (model.rpn.box_coder, model.roi_heads.box_coder):
        coder.__class__ = TracingBoxCoder
    return model


def export_onnx(model: nn.Module, path: Path, size: tuple[int, int], dynamic: bool, opset: int,
                meta: dict[str, Any]) -> None:
    """`model` as ONNX at `path`, traced on a [3, *size] example, with `meta` as metadata."""
    import warnings

    onnx, _ = need_onnx()
    traceable(model)
    example = torch.rand(3, *size, generator=torch.Generator().manual_seed(0))
    axes = {"image": {1: "height", 2: "width"}, "boxes": {0: "detections"}, "labels": {0: "detections"},
            "scores": {0: "detections"}} if dynamic else {"boxes": {0: "detections"}, "labels": {0: "detections"},
                                                          "scores": {0: "detections"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python values: torchvision's, expected
            torch.onnx.export(model, ([example],), str(path), dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["boxes", "labels", "scores"], dynamic_axes=axes,
                              do_constant_folding=True)
    except (torch.onnx.errors.UnsupportedOperatorError, torch.onnx.errors.SymbolicValueError) as exc:
        raise BadInput(f"the model cannot be exported at opset {opset}: {str(exc).splitlines()[0]}") from None
    except RuntimeError as exc:
        raise RunFailure(f"torch's ONNX exporter failed: {str(exc).strip().splitlines()[0][:200]}") from None
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "gaia"
    onnx.save(proto, str(path))


def export_torchscript(model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice: still torch's exporter
        try:
            scripted = torch.jit.script(model)
        except (RuntimeError, torch.jit.frontend.FrontendError) as exc:
            raise BadInput(f"the model cannot be compiled to TorchScript: {str(exc).strip().splitlines()[0]}") from None
        torch.jit.save(scripted, str(path), _extra_files={EXTRA_FILE: json.dumps(meta)})


def parse_size(spec: str | None, scale: int) -> tuple[int, int]:
    """`--size` as (height, width): 'H,W', 'HxW' or one number for a square; default the arch's scale square."""
    if spec is None:
        return scale, scale
    parts = spec.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise BadInput(f"--size {spec!r}: expected HEIGHT,WIDTH or one number") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(16 <= v <= 8192 for v in values):
        raise BadInput(f"--size {spec!r}: expected HEIGHT,WIDTH, each 16-8192 pixels")
    return values[0], values[1]
