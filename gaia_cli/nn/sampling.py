"""IoU-balanced negative sampling for the RoI head (Libra R-CNN; GAIA 4.2.2 trains with it).

torchvision samples a RoI head's negatives uniformly (`BalancedPositiveNegativeSampler`), and most negatives
overlap no object at all, so hard negatives are rare in a batch. IoU-balanced sampling as Libra R-CNN's
released sampler does it (mmdetection's `IoUBalancedNegSampler`, `floor_thr=-1, floor_fraction=0,
num_bins=3`): the IoU range from 0 to the largest IoU of any of the image's proposals with an object (1 in
training, where the objects' own boxes are proposals too) is cut into `num_bins` equal bins, the negatives
(best IoU below the background threshold, 0.5) of each bin give floor(count / num_bins) at random, and the rest
is filled up at random from the negatives left. With the boxes among the proposals the bins are [0, 1/3),
[1/3, 2/3) and [2/3, 1): half the sampled negatives come from IoU [1/3, 0.5) when there are enough.
Positives are drawn as torchvision draws them (a quarter of the batch at most).

`IoUBalancedSampler` has torchvision's sampler interface (`sampler(labels) -> (positive masks, negative
masks)`), so the RoI heads use it in place of theirs; the IoUs come from the heads' matching step, which
hands them over (`set_ious`) before it samples (gaia_cli.nn.ignore.IgnoreRegionRoIHeads).
"""

from __future__ import annotations

import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from gaia_cli.nn.ignore import use_ignore_regions


def iou_balanced_choice(indices: torch.Tensor, ious: torch.Tensor, count: int, high: float, num_bins: int = 3) -> torch.Tensor:
    """`count` of `indices` (whose IoUs are `ious`): floor(count / num_bins) from each of `num_bins` equal IoU
    ranges of [0, high), the rest at random from those left (Libra R-CNN's `sample_via_interval`)."""
    if count >= len(indices):
        return indices
    edges = torch.linspace(0.0, high, num_bins + 1, device=ious.device)
    bins = torch.bucketize(ious, edges[1:-1], right=True)
    chosen = []
    for b in range(num_bins):
        members = indices[bins == b]
        chosen.append(members[torch.randperm(len(members), device=members.device)[: count // num_bins]])
    picked = torch.cat(chosen)
    if len(picked) < count:  # a range ran short: fill up from the rest at random
        rest = indices[~torch.isin(indices, picked)]
        picked = torch.cat([picked, rest[torch.randperm(len(rest), device=rest.device)[: count - len(picked)]]])
    return picked


class IoUBalancedSampler(BalancedPositiveNegativeSampler):
    """torchvision's sampler with IoU-balanced negatives: labels >= 1 positive, 0 negative, -1 left out."""

    def __init__(self, batch_size_per_image: int, positive_fraction: float, num_bins: int = 3):
        super().__init__(batch_size_per_image, positive_fraction)
        self.num_bins = num_bins
        self.ious: list[torch.Tensor] | None = None

    def set_ious(self, ious: list[torch.Tensor]) -> None:
        """Each proposal's best IoU with an object, per image, for the next call."""
        self.ious = ious

    def __call__(self, matched_idxs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if self.ious is None or len(self.ious) != len(matched_idxs):
            raise RuntimeError("IoUBalancedSampler needs the proposals' IoUs (set_ious) before each call")
        pos_masks, neg_masks = [], []
        for labels, ious in zip(matched_idxs, self.ious):
            pos = torch.where(labels >= 1)[0]
            neg = torch.where(labels == 0)[0]
            pos = pos[torch.randperm(len(pos), device=pos.device)[: int(self.batch_size_per_image * self.positive_fraction)]]
            count = min(self.batch_size_per_image - len(pos), len(neg))
            high = float(ious.max()) if len(ious) else 1.0  # the largest IoU of all the image's proposals
            neg = iou_balanced_choice(neg, ious[neg], count, high, self.num_bins) if high > 0 else \
                neg[torch.randperm(len(neg), device=neg.device)[:count]]
            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[pos] = 1
            neg_mask[neg] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        self.ious = None  # one use: the next batch brings its own
        return pos_masks, neg_masks


def use_iou_balanced_sampling(model) -> None:
    """Switch a gaia Faster R-CNN's RoI heads to IoU-balanced negatives (same state, other sampling)."""
    use_ignore_regions(model)  # its RoI heads hand the IoUs over
    old = model.roi_heads.fg_bg_sampler
    model.roi_heads.fg_bg_sampler = IoUBalancedSampler(old.batch_size_per_image, old.positive_fraction)
