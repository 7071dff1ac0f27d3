"""The ResNet backbones: elastic (the supernet's) and static (an extracted path's), with the same names.

Both follow torchvision's ResNet: a 7x7/2 stem and 3x3/2 max pool, then 4 stages of bottleneck blocks
(1x1 -> 3x3 with the stage's stride -> 1x1 to 4x the width, a projection shortcut in each stage's first
block). Module names are torchvision's (`conv1`, `bn1`, `layer1.0.conv2`, ...), so a static model's state
dict is the supernet's with each tensor cut to its leading slice.

The elastic backbone keeps the first `depth[i]` blocks of stage i (GAIA: "only layers and channels of the
lower index are kept") and runs each block at the stage's active width. The static one is made of
torchvision's own `Bottleneck` blocks and needs nothing from the supernet.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from gaia_cli.nn.elastic import ElasticBatchNorm2d, ElasticConv2d
from gaia_cli.space.arch import Arch

RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}


def _init(module: nn.Module) -> None:
    """torchvision's ResNet initialisation (its default, without zero-initialised residual branches)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ElasticBottleneck(nn.Module):
    def __init__(self, in_max: int, mid_max: int, stride: int, project: bool):
        super().__init__()
        self.conv1 = ElasticConv2d(in_max, mid_max, 1)
        self.bn1 = ElasticBatchNorm2d(mid_max)
        self.conv2 = ElasticConv2d(mid_max, mid_max, 3, stride=stride, padding=1)
        self.bn2 = ElasticBatchNorm2d(mid_max)
        self.conv3 = ElasticConv2d(mid_max, 4 * mid_max, 1)
        self.bn3 = ElasticBatchNorm2d(4 * mid_max)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(ElasticConv2d(in_max, 4 * mid_max, 1, stride=stride),
                                         ElasticBatchNorm2d(4 * mid_max)) if project else None)

    def set_width(self, mid: int) -> None:
        self.conv1.active_out = self.conv2.active_out = mid
        self.conv3.active_out = 4 * mid
        if self.downsample is not None:
            self.downsample[0].active_out = 4 * mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ElasticResNet(nn.Module):
    """A ResNet holding the largest arch of a space; `set_arch` picks the path that `forward` runs.

    forward(x [N, 3, H, W]) -> OrderedDict {"0": C2, "1": C3, "2": C4, "3": C5} (strides 4, 8, 16, 32).
    """

    def __init__(self, max_depth: tuple[int, ...], max_width: tuple[int, ...]):
        super().__init__()
        self.conv1 = ElasticConv2d(3, max_width[0], 7, stride=2, padding=3)
        self.bn1 = ElasticBatchNorm2d(max_width[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_max = max_width[0]
        for i, (blocks, mid) in enumerate(zip(max_depth, max_width[1:])):
            stride = 1 if i == 0 else 2
            layer = [ElasticBottleneck(in_max if b == 0 else 4 * mid, mid, stride if b == 0 else 1, b == 0)
                     for b in range(blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            in_max = 4 * mid
        self.depth = list(max_depth)
        _init(self)

    def set_arch(self, arch: Arch) -> None:
        self.conv1.active_out = arch.width[0]
        self.depth = list(arch.depth)
        for i, mid in enumerate(arch.width[1:]):
            for block in getattr(self, f"layer{i + 1}"):
                block.set_width(mid)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = OrderedDict()
        for i in range(4):
            for block in getattr(self, f"layer{i + 1}")[: self.depth[i]]:
                x = block(x)
            out[str(i)] = x
        return out


class StaticResNet(nn.Module):
    """One path as a plain ResNet of torchvision `Bottleneck`s (children in forward order, for
    torchvision's `BackboneWithFPN`, which reads `layer1`..`layer4`)."""

    def __init__(self, arch: Arch):
        super().__init__()
        self.conv1 = nn.Conv2d(3, arch.width[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(arch.width[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = arch.width[0]
        for i, (blocks, mid) in enumerate(zip(arch.depth, arch.width[1:])):
            stride = 1 if i == 0 else 2
            downsample = nn.Sequential(nn.Conv2d(in_ch, 4 * mid, 1, stride=stride, bias=False), nn.BatchNorm2d(4 * mid))
            layer = [Bottleneck(in_ch, mid, stride, downsample)]
            layer += [Bottleneck(4 * mid, mid) for _ in range(blocks - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            in_ch = 4 * mid
        _init(self)
