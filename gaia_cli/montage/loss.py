"""Soft labels and the dense classification loss (Montage 3.3), and the network they train.

The backbone's last feature map X [C, h, w] goes through a 1x1 conv to K = C + 1 classes (background is 0).
Each position (j, k) gets a soft label sum_i w_i^{jk} y_i over the four regions' one-hot labels y_i, and a
cross-entropy against it; the loss is the mean over the four regions of each region's mean position loss.

Weights w [h, w, 4]:
- `block`: 1 for the region the position's centre lies in (pixel 32k for position k: see
  `Template.position_regions`), 0 elsewhere: dense per-position classification, which is `erf` with tau = 1
  (the paper's remark); its pooled-per-block variant differs only in averaging logits before the loss.
- `erf` (Eq. 2): from the position's effective receptive field G^{jk} (the magnitude of the gradient of the
  position's features with respect to the input pixels): w_i is the share of G inside region R_i. The
  position's own region r gets max(tau, share_r); the other regions split the rest, 1 - w_r, in proportion
  to their shares. (Eq. 2 as printed divides the other regions' shares by the ERF outside R_r, which sums
  them to 1 on top of w_r; scaled by 1 - w_r, each position's weights sum to 1, and with w_r equal to its
  share the weights are exactly the shares.) tau = 1 is `block`.
- `global`: one label for the whole montage, the regions' labels weighted by their areas, against the
  classifier's output averaged over all positions (global average pooling; CutMix-like).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gaia_cli.montage.assemble import Template, feature_size
from gaia_cli.nn.elastic import ElasticConv2d
from gaia_cli.nn.resnet import ElasticResNet
from gaia_cli.space.arch import Arch

MODES = ("erf", "block", "global")
# the normalisation torchvision's detectors apply to their input (GeneralizedRCNNTransform), so pre-trained
# features see the same pixels in pre-training and in detection
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def block_weights(position_regions: torch.Tensor) -> torch.Tensor:
    """[h, w, 4]: one-hot of each position's own region."""
    return F.one_hot(position_regions.long(), 4).float()


def erf_weights(shares: torch.Tensor, position_regions: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 2: [h, w, 4] weights from ERF shares [h, w, 4] (each position's shares sum to 1)."""
    own = block_weights(position_regions).to(shares)
    own_share = (shares * own).sum(-1)
    rest = shares * (1 - own)
    rest_sum = rest.sum(-1)
    w_own = torch.where(rest_sum > 0, torch.clamp(own_share, min=tau), torch.ones_like(own_share))
    others = torch.where(rest_sum[..., None] > 0, rest * ((1 - w_own) / rest_sum.clamp_min(1e-12))[..., None],
                         torch.zeros_like(rest))
    return own * w_own[..., None] + others


def receptive_field_shares(features: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                           masks: torch.Tensor) -> torch.Tensor:
    """[h, w, 4]: for each position of `features(images)`, the share of its ERF in each region.

    G^{jk} is |d (sum over channels of X[:, :, j, k]) / d input|, summed over the batch and colour channels
    (Luo et al.'s effective receptive field, measured with the network's current weights). `masks` [4, H, W].
    """
    x = images.detach().clone().requires_grad_(True)
    feats = features(x)
    h, w = feats.shape[-2:]
    masks = masks.to(x.device, torch.float32)
    shares = torch.zeros(h, w, 4, device=x.device)
    for j in range(h):
        for k in range(w):
            (grad,) = torch.autograd.grad(feats[:, :, j, k].sum(), x, retain_graph=True)
            g = grad.abs().sum(dim=(0, 1)).float()
            total = g.sum()
            if total > 0:
                shares[j, k] = (masks * g).sum(dim=(1, 2)) / total
    return shares


class MontageNet(nn.Module):
    """An elastic ResNet with a 1x1 conv classifier on its last feature map, and the montage loss.

    forward(images, targets) in training mode -> {"loss_montage": ..., "accuracy": ...}: `images` a list
    (or batch) of uint8 [3, S, S] montages, `targets` dicts with "labels" int64 [4] (regions R1..R4).
    The soft-label weights are a buffer, so checkpoints keep them and ranks share them.
    """

    def __init__(self, depth: tuple[int, ...], width: tuple[int, ...], num_classes: int, template: Template,
                 mode: str = "erf", tau: float = 0.7):
        super().__init__()
        self.body = ElasticResNet(depth, width)
        self.classifier = ElasticConv2d(4 * width[-1], num_classes, 1, bias=True)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)
        self.template, self.mode, self.tau = template, mode, tau
        side = feature_size(template.size)
        regions = torch.as_tensor(template.position_regions(side))
        self.register_buffer("position_regions", regions, persistent=False)
        self.register_buffer("areas", torch.as_tensor(template.areas(), dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("soft_weights", block_weights(regions))  # ERF weights replace these

    def set_arch(self, arch: Arch) -> None:
        self.body.set_arch(arch)

    def normalise(self, images) -> torch.Tensor:
        batch = torch.stack(list(images)) if isinstance(images, (list, tuple)) else images
        return (batch.float() - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)["3"]

    def forward(self, images, targets=None):
        x = self.normalise(images)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.classifier(self.features(x))
        if targets is None:
            return logits
        labels = torch.stack([t["labels"] for t in targets])
        return montage_loss(logits, labels, self.soft_weights, self.position_regions, self.mode, self.areas)

    @torch.no_grad()
    def set_shares(self, shares: torch.Tensor) -> None:
        """New ERF shares [h, w, 4] -> the soft-label weights (only the `erf` mode uses them)."""
        if self.mode == "erf":
            self.soft_weights.copy_(erf_weights(shares.to(self.soft_weights), self.position_regions, self.tau))


def montage_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, position_regions: torch.Tensor,
                 mode: str, areas: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss of `logits` [B, K, h, w] for montages with region labels `labels` [B, 4]."""
    logits = logits.float()
    num_classes = logits.shape[1]
    onehot = F.one_hot(labels, num_classes).float()  # [B, 4, K]
    region_logits = torch.stack([logits[:, :, position_regions == i].mean(-1) for i in range(4)], 1)  # [B, 4, K]
    accuracy = (region_logits.argmax(-1) == labels).float().mean().detach()
    if mode == "global":
        target = (areas.view(1, 4, 1) * onehot).sum(1)
        return {"loss_montage": F.cross_entropy(logits.mean(dim=(2, 3)), target), "accuracy": accuracy}
    soft = torch.einsum("hwi,bik->bkhw", weights.float(), onehot)
    loss_map = -(soft * F.log_softmax(logits, dim=1)).sum(1)  # [B, h, w]
    per_region = torch.stack([loss_map[:, position_regions == i].mean() for i in range(4)])
    return {"loss_montage": per_region.mean(), "accuracy": accuracy}


def masks_tensor(template: Template) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(template.masks()))
