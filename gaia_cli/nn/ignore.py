"""Ignore regions: boxes that are neither object nor background (a percentage split's unchosen instances).

A training target may hold ignore regions as boxes labelled `IGNORE_LABEL` (-1) beside its objects (labels
1..C); the datasets emit them for annotations marked `"ignore": 1` (see gaia_cli.data.dataset). They travel
with the objects through the transforms (flips, resizing, sanitising). In the model:

- the RPN matches its anchors to the objects alone; an anchor that would be background (0) but lies mostly
  inside an ignore region (intersection over the anchor's area above `IGNORE_IOF`, 0.5) is left out of the
  loss (-1), as mmdetection's `ignore_iof_thr` does;
- the RoI heads do the same for their proposals: matched to the objects alone, a background proposal mostly
  inside an ignore region is left out of the sampled batch (-1, torchvision's "between thresholds").

An object's positive anchors and proposals stay positive. Without ignore regions both behave exactly as
torchvision's. Detection models get these parts from `use_ignore_regions` (gaia_cli.nn.detector does it for
every model it builds); the RoI heads also hand each proposal's best IoU with an object to a sampler that
asks for it (IoU-balanced sampling, gaia_cli.nn.sampling).
"""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import box_area, box_iou

from gaia_cli.data.dataset import IGNORE_LABEL  # noqa: F401  (one value for the data and the model)
IGNORE_IOF = 0.5  # a box this much inside an ignore region (intersection over its own area) is ignored


def intersection_over_first(boxes: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """[N] the largest share of each box's area that lies inside one of `regions` (0 without regions)."""
    if regions.numel() == 0 or boxes.numel() == 0:
        return boxes.new_zeros(len(boxes))
    lt = torch.max(boxes[:, None, :2], regions[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    return (inter / box_area(boxes).clamp(min=1e-6)[:, None]).max(dim=1).values


def split_ignore(boxes: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(object boxes, ignore regions) of one target."""
    ignore = labels == IGNORE_LABEL
    return boxes[~ignore], boxes[ignore]


class IgnoreRegionRPN(RegionProposalNetwork):
    """torchvision's RPN whose background anchors inside ignore regions are left out of the loss."""

    def assign_targets_to_anchors(self, anchors, targets):
        objects, regions = [], []
        for t in targets:
            boxes, ignored = split_ignore(t["boxes"], t["labels"]) if "labels" in t else (t["boxes"], t["boxes"][:0])
            objects.append({"boxes": boxes})
            regions.append(ignored)
        labels, matched = super().assign_targets_to_anchors(anchors, objects)
        for anchors_in_image, labels_in_image, ignored in zip(anchors, labels, regions):
            if ignored.numel():
                inside = intersection_over_first(anchors_in_image, ignored.to(anchors_in_image.dtype)) > IGNORE_IOF
                labels_in_image[inside & (labels_in_image == 0)] = -1.0
        return labels, matched


class IgnoreRegionRoIHeads(RoIHeads):
    """torchvision's RoI heads whose background proposals inside ignore regions are left out of the batch."""

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        # the ignore regions keep their places in gt_boxes (select_training_samples indexes it with the
        # matches), but as empty boxes, which match no proposal
        hidden, regions, best_iou = [], [], []
        for p, boxes, labels in zip(proposals, gt_boxes, gt_labels):
            ignore = labels == IGNORE_LABEL
            hidden.append(torch.where(ignore[:, None], torch.zeros_like(boxes), boxes))
            regions.append(boxes[ignore])
            objects = boxes[~ignore]
            best_iou.append(box_iou(objects, p).max(dim=0).values if len(objects) else p.new_zeros(len(p)))
        matched_idxs, labels = super().assign_targets_to_proposals(proposals, hidden, gt_labels)
        for p, labels_in_image, ignored in zip(proposals, labels, regions):
            if ignored.numel():
                inside = intersection_over_first(p, ignored) > IGNORE_IOF
                labels_in_image[inside & (labels_in_image == 0)] = -1
        if hasattr(self.fg_bg_sampler, "set_ious"):
            self.fg_bg_sampler.set_ious(best_iou)
        return matched_idxs, labels


def use_ignore_regions(model) -> None:
    """Give a torchvision Faster R-CNN the ignore-aware RPN and RoI heads (same state, same behaviour without
    ignore regions)."""
    if not isinstance(model.rpn, IgnoreRegionRPN):
        model.rpn.__class__ = IgnoreRegionRPN
    if not isinstance(model.roi_heads, IgnoreRegionRoIHeads):
        model.roi_heads.__class__ = IgnoreRegionRoIHeads
