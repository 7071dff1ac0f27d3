"""FLOPs and parameters of an arch, counted analytically (no model is built; ~20 us an arch).

Counts are multiply-accumulates (MACs) of the convolutions and fully connected layers, the convention of
detection papers' "FLOPs" (GAIA's Table 2 counts with input [3, S, S]), and what
`torch.utils.flop_counter` reports divided by 2. Biases, batch norm, activations, pooling, upsampling,
RoIAlign and box post-processing are not counted. The input is [3, S, S] as given to the backbone (no
padding to a multiple of 32). The whole detector adds the FPN, the RPN head over all five levels (P2-P6),
and the RoI box head and predictor for a fixed number of proposals (`detector.proposals`, 1000 by default:
torchvision's test-time `rpn_post_nms_top_n_test`).

Parameters are the trainable parameters of the extracted static model (`torch` counts them the same way).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from gaia_cli.space.detector import ANCHOR_RATIOS, DEFAULT_DETECTOR

if TYPE_CHECKING:  # annotations only: gaia_cli.space.arch imports pruning, which counts FLOPs here
    from gaia_cli.space.arch import Arch


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@dataclasses.dataclass
class Cost:
    macs: int = 0
    params: int = 0

    def conv(self, size_out: int, c_in: int, c_out: int, kernel: int, bias: bool = False, bn: bool = False) -> None:
        self.macs += size_out * size_out * c_in * c_out * kernel * kernel
        self.params += c_in * c_out * kernel * kernel + (c_out if bias else 0) + (2 * c_out if bn else 0)

    def linear(self, rows: int, c_in: int, c_out: int) -> None:
        self.macs += rows * c_in * c_out
        self.params += c_in * c_out + c_out


def backbone_cost(arch: Arch) -> tuple[Cost, list[tuple[int, int]]]:
    """The ResNet's cost, and each stage output's (side, channels) for the FPN."""
    cost = Cost()
    s = conv_out(arch.scale, 7, 2, 3)
    cost.conv(s, 3, arch.width[0], 7, bn=True)
    s = conv_out(s, 3, 2, 1)  # max pool
    c_in = arch.width[0]
    levels = []
    for stage, (blocks, mid) in enumerate(zip(arch.depth, arch.width[1:])):
        out = 4 * mid
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            s_out = conv_out(s, 3, stride, 1)
            cost.conv(s, c_in, mid, 1, bn=True)
            cost.conv(s_out, mid, mid, 3, bn=True)
            cost.conv(s_out, mid, out, 1, bn=True)
            if block == 0:
                cost.conv(conv_out(s, 1, stride, 0), c_in, out, 1, bn=True)
            s, c_in = s_out, out
        levels.append((s, out))
    return cost, levels


def detector_cost(arch: Arch, num_classes: int, detector: dict[str, int] | None = None) -> dict[str, Cost]:
    """Cost of each part of the detector: backbone, fpn, rpn, roi_heads."""
    d = {**DEFAULT_DETECTOR, **(detector or {})}
    f, a, rep, n = d["fpn_channels"], len(d.get("anchor_ratios", ANCHOR_RATIOS)), d["box_head_dim"], d["proposals"]
    backbone, levels = backbone_cost(arch)
    fpn = Cost()
    for side, channels in levels:
        fpn.conv(side, channels, f, 1, bias=True)
        fpn.conv(side, f, f, 3, bias=True)
    sides = [side for side, _ in levels] + [conv_out(levels[-1][0], 1, 2, 0)]  # P6 by max pool
    rpn = Cost()
    for side in sides:
        rpn.macs += side * side * (f * f * 9 + f * a + f * 4 * a)
    rpn.params = f * f * 9 + f + f * a + a + f * 4 * a + 4 * a  # one head shared by all levels
    roi = Cost()
    roi.linear(n, f * 7 * 7, rep)
    roi.linear(n, rep, rep)
    roi.linear(n, rep, num_classes)
    roi.linear(n, rep, 4 * num_classes)
    return {"backbone": backbone, "fpn": fpn, "rpn": rpn, "roi_heads": roi}


def summary(arch: Arch, num_classes: int = 81, detector: dict[str, int] | None = None) -> dict[str, Any]:
    """FLOPs (GMACs) and parameters (millions) of the backbone and of the whole detector, as JSON."""
    parts = detector_cost(arch, num_classes, detector)
    total = Cost(sum(p.macs for p in parts.values()), sum(p.params for p in parts.values()))
    return {
        "arch": arch.as_dict(),
        "input": [3, arch.scale, arch.scale],
        "num_classes": num_classes,
        "backbone": {"gflops": parts["backbone"].macs / 1e9, "mparams": parts["backbone"].params / 1e6},
        "detector": {"gflops": total.macs / 1e9, "mparams": total.params / 1e6},
        "parts": {k: {"macs": v.macs, "params": v.params} for k, v in parts.items()},
        "proposals": {**DEFAULT_DETECTOR, **(detector or {})}["proposals"],
    }


def detector_gflops(arch: Arch, num_classes: int = 81, detector: dict[str, Any] | None = None) -> float:
    """The detector's GMACs, from a closed form (~5x faster than `detector_cost`, which tests it), cached."""
    d = {**DEFAULT_DETECTOR, **(detector or {})}
    return _total_gmacs(arch, num_classes, d["fpn_channels"], d["box_head_dim"], d["proposals"],
                        len(d.get("anchor_ratios", ANCHOR_RATIOS)))


@functools.lru_cache(maxsize=500_000)
def _total_gmacs(arch: Arch, classes: int, f: int, rep: int, proposals: int, a: int = len(ANCHOR_RATIOS)) -> float:
    s = (arch.scale - 1) // 2 + 1  # stem conv 7x7/2, pad 3
    macs = s * s * 3 * arch.width[0] * 49
    s = (s - 1) // 2 + 1  # max pool 3x3/2, pad 1
    c_in = arch.width[0]
    sides = []
    for stage, (blocks, mid) in enumerate(zip(arch.depth, arch.width[1:])):
        out = 4 * mid
        s_out = s if stage == 0 else (s - 1) // 2 + 1
        # first block: 1x1 in->mid at s, 3x3 mid->mid at s_out, 1x1 mid->out at s_out, projection in->out at s_out
        macs += s * s * c_in * mid + s_out * s_out * (9 * mid * mid + mid * out + c_in * out)
        macs += (blocks - 1) * s_out * s_out * (out * mid + 9 * mid * mid + mid * out)
        sides.append((s_out, out))
        s, c_in = s_out, out
    for side, channels in sides:
        macs += side * side * (channels * f + 9 * f * f)  # FPN lateral and output convs
    levels = [side for side, _ in sides] + [(sides[-1][0] - 1) // 2 + 1]
    macs += sum(side * side for side in levels) * (9 * f * f + f * a + 4 * f * a)  # RPN head
    macs += proposals * (f * 49 * rep + rep * rep + rep * classes + rep * 4 * classes)  # RoI head
    return macs / 1e9


def detector_gflops_rows(rows, num_classes: int = 81, detector: dict[str, Any] | None = None):
    """`detector_gflops` of many archs at once: `rows` is [N, 10] integers (4 depths, 5 widths, the scale);
    the same closed form on numpy arrays (the search's batches of candidates)."""
    import numpy as np

    d = {**DEFAULT_DETECTOR, **(detector or {})}
    f, rep, proposals = d["fpn_channels"], d["box_head_dim"], d["proposals"]
    a = len(d.get("anchor_ratios", ANCHOR_RATIOS))
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 10)
    depth, width, scale = rows[:, :4], rows[:, 4:9], rows[:, 9]
    s = (scale - 1) // 2 + 1
    macs = s * s * 3 * width[:, 0] * 49
    s = (s - 1) // 2 + 1
    c_in = width[:, 0]
    sides = []
    for stage in range(4):
        mid, blocks = width[:, stage + 1], depth[:, stage]
        out = 4 * mid
        s_out = s if stage == 0 else (s - 1) // 2 + 1
        macs = macs + s * s * c_in * mid + s_out * s_out * (9 * mid * mid + mid * out + c_in * out)
        macs = macs + (blocks - 1) * s_out * s_out * (out * mid + 9 * mid * mid + mid * out)
        sides.append((s_out, out))
        s, c_in = s_out, out
    for side, channels in sides:
        macs = macs + side * side * (channels * f + 9 * f * f)
    last = (sides[-1][0] - 1) // 2 + 1
    macs = macs + (sum(side * side for side, _ in sides) + last * last) * (9 * f * f + f * a + 4 * f * a)
    macs = macs + proposals * (f * 49 * rep + rep * rep + rep * num_classes + rep * 4 * num_classes)
    return macs / 1e9
