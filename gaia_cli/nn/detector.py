"""The detection supernet and its static sub-networks, both torchvision `FasterRCNN`s.

The supernet is torchvision's Faster R-CNN (RPN, RoI heads and image transform unchanged) over an elastic
ResNet and an FPN whose lateral 1x1 convs take whatever width the active stages give them. `set_arch(arch)`
activates a path: the backbone's depths and widths, and the transform's input scale (shorter side = scale,
longer side at most scale x 1333/800, Detectron2's ratio).

`extract(supernet, arch)` returns a plain torchvision `FasterRCNN` over a static ResNet and torchvision's own
`BackboneWithFPN`, holding the leading slices of the supernet's tensors; `build_static` makes the same
model from an arch alone, to load weights into. In eval mode the two give the same detections.

Both take ignore regions in their training targets (boxes labelled -1: neither object nor background), through
the RPN and RoI heads of gaia_cli.nn.ignore, which behave as torchvision's when a target has none.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from gaia_cli.nn.elastic import ElasticConv2d
from gaia_cli.nn.ignore import use_ignore_regions
from gaia_cli.nn.resnet import RETURN_LAYERS, ElasticResNet, StaticResNet
from gaia_cli.space.arch import Arch, SearchSpace
from gaia_cli.space.detector import ANCHOR_RATIOS, DEFAULT_DETECTOR


def max_size_for(scale: int) -> int:
    return int(round(scale * 1333 / 800))


def _heads(num_classes: int, detector: dict[str, Any], scale: int) -> dict[str, Any]:
    d = {**DEFAULT_DETECTOR, **detector}
    f, rep = d["fpn_channels"], d["box_head_dim"]
    return {
        "rpn_anchor_generator": AnchorGenerator(tuple((s,) for s in d["anchor_sizes"]),
                                                (tuple(d.get("anchor_ratios", ANCHOR_RATIOS)),) * 5),
        "box_head": TwoMLPHead(f * 7 * 7, rep),
        "box_predictor": FastRCNNPredictor(rep, num_classes),
        "min_size": scale,
        "max_size": max_size_for(scale),
        "rpn_post_nms_top_n_test": d["proposals"],
        "rpn_post_nms_top_n_train": d["proposals_train"],
        "box_batch_size_per_image": d["roi_samples_per_image"],
    }


class ElasticFPN(FeaturePyramidNetwork):
    """torchvision's FPN whose lateral 1x1 convs use the leading input channels of their largest width."""

    def __init__(self, in_max: list[int], out_channels: int):
        super().__init__(in_max, out_channels, extra_blocks=LastLevelMaxPool())
        for block, channels in zip(self.inner_blocks, in_max):
            conv = ElasticConv2d(channels, out_channels, 1, bias=True)
            nn.init.kaiming_uniform_(conv.weight, a=1)  # torchvision's FPN initialisation
            nn.init.constant_(conv.bias, 0)
            block[0] = conv


class ElasticBackboneWithFPN(nn.Module):
    """forward(x) -> OrderedDict of FPN maps "0".."3" and "pool" (P2..P6), each `out_channels` wide."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        top = space.max_arch
        self.body = ElasticResNet(top.depth, top.width)
        self.out_channels = space.detector["fpn_channels"]
        self.fpn = ElasticFPN([4 * w for w in top.width[1:]], self.out_channels)

    def forward(self, x: torch.Tensor):
        return self.fpn(self.body(x))


class Supernet(FasterRCNN):
    """A weight-sharing Faster R-CNN over every arch of `space` (GAIA 3.1.2).

    Training mode: forward(images, targets) -> dict of losses; eval mode: forward(images) -> list of
    {"boxes" [N, 4] x1y1x2y2 pixels, "labels" [N], "scores" [N]}, as torchvision's detectors.
    """

    def __init__(self, space: SearchSpace, num_classes: int):
        super().__init__(ElasticBackboneWithFPN(space), num_classes=None,
                         **_heads(num_classes, space.detector, space.max_arch.scale))
        use_ignore_regions(self)
        self.space = space
        self.num_classes = num_classes
        self.arch = space.max_arch
        self.set_arch(self.arch)

    def set_arch(self, arch: Arch) -> None:
        self.space.check(arch)
        self.backbone.body.set_arch(arch)
        self.transform.min_size = (arch.scale,)
        self.transform.max_size = max_size_for(arch.scale)
        self.arch = arch


def build_static(arch: Arch, num_classes: int, detector: dict[str, Any] | None = None) -> FasterRCNN:
    """A static Faster R-CNN for `arch`, built from torchvision parts (weights freshly initialised)."""
    d = {**DEFAULT_DETECTOR, **(detector or {})}
    backbone = BackboneWithFPN(StaticResNet(arch), RETURN_LAYERS, [4 * w for w in arch.width[1:]],
                               d["fpn_channels"], extra_blocks=LastLevelMaxPool())
    model = FasterRCNN(backbone, num_classes=None, **_heads(num_classes, d, arch.scale))
    use_ignore_regions(model)
    return model


def slice_state(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`target`'s keys filled with the leading slices of `source`'s tensors."""
    out = {}
    for name, like in target.items():
        tensor = source[name]
        out[name] = tensor[tuple(slice(0, n) for n in like.shape)].clone() if like.dim() else tensor.clone()
    return out


def extract(supernet: Supernet, arch: Arch) -> FasterRCNN:
    """The sub-network `arch` of `supernet` as a static model that needs nothing from the supernet."""
    supernet.space.check(arch)
    static = build_static(arch, supernet.num_classes, supernet.space.detector)
    static.load_state_dict(slice_state(supernet.state_dict(), static.state_dict()))
    static.to(next(supernet.parameters()).device)
    return static.train(supernet.training)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)
