"""Montage assembly (Montage 3.2): four samples stitched on a fixed template.

The template is a square of `size` pixels cut at `a = round(split * size)` along both axes into four regions,
numbered as the loss numbers them:

    R1 [0, a) x [0, a)         top-left      the smaller S-sample (by its object's box area)
    R2 [a, size) x [0, a)      top-right     the W-sample (a wide region: (1 - split) / split : 1)
    R3 [0, a) x [a, size)      bottom-left   the T-sample (a tall region)
    R4 [a, size) x [a, size)   bottom-right  the larger S-sample

(x ranges first). The default split 1/3 makes the wide and tall regions 2:1 and 1:2, the middle of their
groups' shapes, and gives the larger S-sample the biggest region. Each sample is resized to fill its region
(its group bounds the distortion) and flipped left-right with probability 1/2, so there are no padded
pixels. Regions tile the square; their masks partition it. The template is fixed for a run, which is what
lets the ERF-adaptive soft labels be computed once for every montage.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import Dataset

from gaia_cli.checks import check_options
from gaia_cli.errors import BadInput
from gaia_cli.montage.samples import MontageSamples

REGION_GROUPS = (0, 2, 1, 0)  # S (smaller), W, T, S (larger)
REGION_NAMES = ("S small", "W", "T", "S large")
STRIDE = 32  # of the ResNet's last stage


def feature_size(size: int) -> int:
    """The side of a ResNet's last feature map for a `size` input (stem conv, max pool, 3 strided stages)."""
    for _ in range(5):
        size = (size - 1) // 2 + 1
    return size


@dataclasses.dataclass(frozen=True)
class Template:
    size: int = 224
    split: float = 1 / 3

    option: str = dataclasses.field(default="--size", compare=False)  # the size's name in messages

    def __post_init__(self) -> None:
        check_options({"--split": self.split}, "pretrain")  # the top-left region's share of a side
        if self.size < 2 * STRIDE:
            raise BadInput(f"{self.option} {self.size} is too small: a montage needs at least {2 * STRIDE} pixels")
        counts = np.bincount(self.position_regions().ravel(), minlength=4)
        if counts.min() == 0:
            side = feature_size(self.size)
            raise BadInput(f"{self.option} {self.size} with --split {self.split:.3g} leaves a region without a "
                           f"position on the {side}x{side} feature map; use a larger {self.option} (or a split "
                           f"nearer 0.5)")

    @property
    def cut(self) -> int:
        return int(round(self.split * self.size))

    @property
    def regions(self) -> list[tuple[int, int, int, int]]:
        """Each region as (x1, y1, x2, y2), R1..R4."""
        a, s = self.cut, self.size
        return [(0, 0, a, a), (a, 0, s, a), (0, a, a, s), (a, a, s, s)]

    @cached_property
    def region_map(self) -> np.ndarray:
        """[size, size] int: the region (0..3) of each pixel."""
        out = np.empty((self.size, self.size), dtype=np.int64)
        for i, (x1, y1, x2, y2) in enumerate(self.regions):
            out[y1:y2, x1:x2] = i
        return out

    def masks(self) -> np.ndarray:
        """[4, size, size] bool: M^i of the paper's Eq. 2."""
        return np.stack([self.region_map == i for i in range(4)])

    def areas(self) -> np.ndarray:
        """Each region's share of the montage (sums to 1): the global strategy's label weights."""
        return np.bincount(self.region_map.ravel(), minlength=4) / self.size**2

    def position_regions(self, side: int | None = None) -> np.ndarray:
        """[h, w] int: the region of each feature-map position, by where its centre falls in the input.

        Every stride-2 layer of the ResNet (3x3 or 7x7 with "same" padding, the 3x3 max pool, the 1x1
        projections) centres output k on input 2k, so position k of the last map is centred on pixel 32k.
        """
        side = side or feature_size(self.size)
        centres = np.minimum(np.arange(side) * STRIDE, self.size - 1)
        return self.region_map[np.ix_(centres, centres)]


def fit(crop: np.ndarray, width: int, height: int) -> np.ndarray:
    """`crop` resized to exactly width x height (bilinear, antialiased when shrinking)."""
    from PIL import Image

    if crop.shape[1] == width and crop.shape[0] == height:
        return crop
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.BILINEAR))


def assemble(crops: list[np.ndarray], template: Template, flips: list[bool] | None = None) -> np.ndarray:
    """The montage [size, size, 3] uint8 of four crops given in region order R1..R4."""
    canvas = np.empty((template.size, template.size, 3), dtype=np.uint8)
    for i, (crop, (x1, y1, x2, y2)) in enumerate(zip(crops, template.regions)):
        piece = fit(crop, x2 - x1, y2 - y1)
        if flips is not None and flips[i]:
            piece = piece[:, ::-1]
        canvas[y1:y2, x1:x2] = piece
    return canvas


class MontageDataset(Dataset):
    """`length` montages of random samples: item i -> (image uint8 [3, S, S], {"labels": int64 [4]}).

    Picks and flips draw from torch's random state, which the training engine seeds per (seed, epoch, item),
    so a montage is a function of those and nothing else. A montage takes two different S-samples (the one
    whose object's box is smaller goes top-left), one T- and one W-sample, each uniformly from its group.
    """

    def __init__(self, samples: MontageSamples, template: Template, length: int | None = None):
        self.samples, self.template = samples, template
        samples.check_groups()
        self.members = [samples.members(g) for g in range(3)]
        self.length = length if length is not None else max(1, math.ceil(len(samples) / 4))

    def __len__(self) -> int:
        return self.length

    def pick(self) -> list[int]:
        s, t, w = self.members
        first = int(torch.randint(len(s), ()))
        second = int(torch.randint(len(s) - 1, ()))
        second += second >= first  # two different S-samples, in constant time
        pair = sorted((int(s[first]), int(s[second])), key=self.samples.area)
        return [pair[0], int(w[torch.randint(len(w), ()).item()]), int(t[torch.randint(len(t), ()).item()]), pair[1]]

    def __getitem__(self, index: int):
        chosen = self.pick()
        flips = (torch.rand(4) < 0.5).tolist()
        canvas = assemble([self.samples.crop(i) for i in chosen], self.template, flips)
        labels = torch.as_tensor(self.samples.labels[chosen].astype(np.int64))
        return torch.from_numpy(canvas).permute(2, 0, 1).contiguous(), {"labels": labels,
                                                                       "samples": torch.as_tensor(chosen)}


def preview_grid(dataset: MontageDataset, count: int, seed: int, classes: list[str]):
    """A PIL image of `count` montages in a grid, region borders drawn and each region's class written."""
    from PIL import Image, ImageDraw

    size = dataset.template.size
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    gap = 4
    grid = Image.new("RGB", (columns * (size + gap) + gap, rows * (size + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    names = ["background", *classes]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for n in range(count):
            image, target = dataset[n]
            x0 = gap + (n % columns) * (size + gap)
            y0 = gap + (n // columns) * (size + gap)
            grid.paste(Image.fromarray(image.permute(1, 2, 0).numpy()), (x0, y0))
            for (x1, y1, x2, y2), label in zip(dataset.template.regions, target["labels"].tolist()):
                draw.rectangle((x0 + x1, y0 + y1, x0 + x2 - 1, y0 + y2 - 1), outline=(255, 255, 255))
                draw.text((x0 + x1 + 2, y0 + y1 + 1), names[label], fill=(255, 255, 0))
    return grid
