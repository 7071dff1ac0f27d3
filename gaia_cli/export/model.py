"""The model an export writes: one static path as a plain torchvision `FasterRCNN` in eval mode.

gaia's detectors use RPN and RoI-head subclasses that leave ignore regions out of the training losses
(gaia_cli.nn.ignore); in eval mode they compute exactly what torchvision's do. TorchScript compiles the
training branches too, which those subclasses write in plain Python, so the deployed model gets torchvision's
own classes back: its outputs are unchanged (the check that follows every export shows it).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from gaia_cli import console
from gaia_cli.data.coco import load_coco
from gaia_cli.engine.recalibration import recalibrate_path, recalibration_count, select_path
from gaia_cli.errors import BadInput
from gaia_cli.nn.io import load_detector


def plain_torchvision(model: nn.Module) -> nn.Module:
    """`model` with torchvision's own RPN and RoI heads (same state, eval behaviour identical), in eval mode."""
    if isinstance(model.rpn, RegionProposalNetwork):
        model.rpn.__class__ = RegionProposalNetwork
    if isinstance(model.roi_heads, RoIHeads):
        model.roi_heads.__class__ = RoIHeads
        if hasattr(model.roi_heads, "fg_bg_sampler") and type(model.roi_heads.fg_bg_sampler).__module__.startswith("gaia_cli"):
            from torchvision.models.detection import _utils

            sampler = model.roi_heads.fg_bg_sampler  # IoU-balanced sampling: training only
            model.roi_heads.fg_bg_sampler = _utils.BalancedPositiveNegativeSampler(
                sampler.batch_size_per_image, sampler.positive_fraction)
    return model.eval()


def deploy_model(weights: str, arch: str | None, recalibrate: int | None, recalibrate_data: str | None,
                 batch_size: int = 4, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """(the static model to export, on the CPU, in eval mode; its meta: classes, arch, detector, ref).

    A supernet needs `arch`, and its path's BN statistics are re-estimated on `recalibrate` images of
    `recalibrate_data` (default 2000, as `gaia eval`), without which a path's accuracy means nothing."""
    model, meta = load_detector(weights)
    source = str(meta["ref"].path)
    if meta["role"] == "supernet" and arch is None:
        raise BadInput("a supernet holds many paths: choose the one to export with --arch", source)
    if meta["role"] == "supernet" and recalibrate_data is None:
        raise BadInput("a supernet path's BN statistics must be re-estimated before it is deployed: give "
                       "--recalibrate-data (training images)", source)
    static, chosen = select_path(model, meta, arch, source)
    count = recalibration_count(meta["role"], recalibrate)
    if count and recalibrate_data is None:
        raise BadInput("--recalibrate needs --recalibrate-data (the images to re-estimate BN statistics on)")
    recal: dict[str, Any] = {"images": 0}
    if count:
        recal = recalibrate_path(static, load_coco(recalibrate_data), count, batch_size, seed)
        console.info(f"recalibrated the path's BN statistics on {recal['images']} images of {recal['data']}")
    detector = meta.get("detector") or meta["space"].detector
    return plain_torchvision(static.cpu()), {"classes": meta["classes"], "arch": chosen, "detector": detector,
                                             "ref": meta["ref"], "recalibration": recal}
