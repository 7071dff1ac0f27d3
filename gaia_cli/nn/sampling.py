"""IoU-balanced negative sampling for the RoI head (Libra R-CNN; GAIA 4.2.2 trains with it).

torchvision samples a RoI head's negatives uniformly, and most negatives overlap no object at all, so hard
negatives are rare in a batch. IoU-balanced sampling splits the negatives (best IoU below the background
threshold, 0.5) into `num_bins` equal IoU ranges and draws the same number from each, filling up at random
when a range runs short. Positives are drawn as torchvision draws them (a quarter of the batch at most).
"""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import box_iou


def iou_balanced_choice(indices: torch.Tensor, ious: torch.Tensor, count: int, high: float, num_bins: int = 3) -> torch.Tensor:
    """`count` of `indices`, spread evenly over `num_bins` IoU ranges of [0, high)."""
    if count >= len(indices):
        return indices
    edges = torch.linspace(0.0, high, num_bins + 1, device=ious.device)
    bins = torch.bucketize(ious, edges[1:-1], right=True)
    chosen = []
    per_bin = [count // num_bins + (1 if b < count % num_bins else 0) for b in range(num_bins)]
    for b, want in enumerate(per_bin):
        members = indices[bins == b]
        chosen.append(members[torch.randperm(len(members), device=members.device)[:want]])
    picked = torch.cat(chosen)
    if len(picked) < count:  # a range ran short: fill up from the rest at random
        rest = indices[~torch.isin(indices, picked)]
        picked = torch.cat([picked, rest[torch.randperm(len(rest), device=rest.device)[: count - len(picked)]]])
    return picked


class IoUBalancedRoIHeads(RoIHeads):
    """torchvision's RoI heads with IoU-balanced negatives (set on a model by `use_iou_balanced_sampling`)."""

    num_bins = 3

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        # remembered for `subsample`, which select_training_samples calls next with the labels alone
        self._best_iou = [box_iou(g, p).max(dim=0).values if g.numel() else p.new_zeros(len(p))
                          for p, g in zip(proposals, gt_boxes)]
        return super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)

    def subsample(self, labels):
        size = self.fg_bg_sampler.batch_size_per_image
        fraction = self.fg_bg_sampler.positive_fraction
        high = self.proposal_matcher.low_threshold
        sampled = []
        for labels_img, ious in zip(labels, self._best_iou):
            pos = torch.where(labels_img >= 1)[0]
            neg = torch.where(labels_img == 0)[0]
            pos = pos[torch.randperm(len(pos), device=pos.device)[: int(size * fraction)]]
            neg = iou_balanced_choice(neg, ious[neg], min(size - len(pos), len(neg)), high, self.num_bins)
            sampled.append(torch.cat([pos, neg]))
        return sampled


def use_iou_balanced_sampling(model) -> None:
    """Switch a torchvision Faster R-CNN's RoI heads to IoU-balanced negatives (same state, other sampling)."""
    model.roi_heads.__class__ = IoUBalancedRoIHeads
