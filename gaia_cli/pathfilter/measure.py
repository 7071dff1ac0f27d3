"""Measuring supernet paths for the path filter: each path extracted, its batch norm recalibrated, then its
validation loss (the filter's target, DetOFA Eq. 5) and its COCO AP.

The validation loss is the detector's training loss (RPN and RoI head, classification and boxes) on the
validation images, with batch norm in inference mode and the random samplers of the RPN and RoI head
seeded, averaged over the images: the same number for the same path and weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gaia_cli import console
from gaia_cli.data.dataset import DetectionDataset, collate_detection
from gaia_cli.engine.metrics import evaluate, label_map
from gaia_cli.engine.recalibration import recalibration_batches
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.detector import extract


@torch.no_grad()
def validation_loss(model: nn.Module, dataset, device: torch.device, batch_size: int = 4, seed: int = 0) -> float:
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    total, seen = 0.0, 0
    for images, targets in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_detection):
        losses = model([i.to(device) for i in images],
                       [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets])
        total += float(sum(losses.values())) * len(images)
        seen += len(images)
    model.train(was_training)
    return total / max(seen, 1)


class PathMeter:
    """Measures paths of one supernet on one validation set."""

    def __init__(self, supernet, classes: list[str], val_coco, calibration_coco, recalibrate: int,
                 device: torch.device, batch_size: int = 4, seed: int = 0, with_ap: bool = True):
        self.supernet, self.classes, self.coco = supernet, classes, val_coco
        self.calibration, self.recalibrate, self.device = calibration_coco, recalibrate, device
        self.batch_size, self.seed, self.with_ap = batch_size, seed, with_ap
        mapping = label_map(classes, val_coco)  # model label -> dataset category
        self.dataset = DetectionDataset(val_coco, label_of_category={c: label for label, c in mapping.items()})

    def __call__(self, arch) -> dict[str, Any]:
        self.supernet.set_arch(arch)
        static = extract(self.supernet, arch).to(self.device)
        with console.quietly():
            if self.recalibrate:
                recalibrate(static, recalibration_batches(self.calibration, self.batch_size, self.seed),
                            self.recalibrate)
            loss = validation_loss(static, self.dataset, self.device, self.batch_size, self.seed)
            ap = evaluate(static, self.classes, self.coco, self.device, self.batch_size)["AP"] if self.with_ap else None
        return {"loss": loss, "ap": ap}
