"""Torch datasets that serve COCO data to torchvision detection models.

Each item is `(image, target)`: `image` a float tensor [3, H, W] in [0, 1]; `target` a dict with `boxes`
(float32 [N, 4], x1y1x2y2 pixels), `labels` (int64 [N], 1..C; 0 is background), `image_id` (int64),
`area` (float32 [N]) and `iscrowd` (int64 [N]). Crowd boxes are left out of training targets by default, as
torchvision's detection references and pycocotools' evaluation treat them as "ignore" regions. An annotation
marked `"ignore": 1` (a percentage split's unchosen instances, gaia_cli.data.split) is an ignore region: it
stays in the target with label -1 (`IGNORE_LABEL`), which the detector's RPN and RoI heads treat as neither
object nor background (gaia_cli.nn.ignore).

Labels: a single dataset's categories are numbered 1..C in the order of its `categories` list; combined
datasets use the unified ids of a `gaia/labels` space (label k = unified id k). Transforms are
torchvision.transforms.v2, which move the boxes along with the image.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch.utils.data import ConcatDataset, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from gaia_cli.data.coco import CocoDataset, xyxy
from gaia_cli.errors import BadInput
from gaia_cli.labels.space import LabelSpace

IGNORE_LABEL = -1  # gaia_cli.nn.ignore's (kept here too, so reading data imports no model code)


def default_transforms(train: bool) -> Callable:
    steps: list[Any] = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if train:
        steps.append(T.RandomHorizontalFlip(0.5))
    steps.append(T.SanitizeBoundingBoxes())  # drops boxes a transform made empty
    return T.Compose(steps)


class DetectionDataset(Dataset):
    """One COCO dataset as (image, target) pairs for torchvision's detection models."""

    def __init__(
        self,
        coco: CocoDataset,
        label_of_category: dict[int, int] | None = None,
        transforms: Callable | None = None,
        include_crowd: bool = False,
    ):
        self.coco = coco
        self.label_of_category = label_of_category or {
            cid: i for i, cid in enumerate(coco.category_ids, start=1)}
        unmapped = set(coco.category_ids) - set(self.label_of_category)
        if unmapped:
            raise BadInput(f"categories {sorted(unmapped)} have no label", coco.source)
        self.transforms = transforms if transforms is not None else default_transforms(train=False)
        self.include_crowd = include_crowd

    @classmethod
    def images_only(cls, coco: CocoDataset) -> "DetectionDataset":
        """The dataset's images (and image ids) for inference or BN recalibration: labels are not used."""
        return cls(coco, label_of_category={cid: 1 for cid in coco.category_ids})

    def __len__(self) -> int:
        return len(self.coco.images)

    @property
    def num_classes(self) -> int:
        """Classes the detector needs: the largest label plus background."""
        return max(self.label_of_category.values()) + 1

    def aspect_ratios(self) -> list[float]:
        """width / height of each image, from the annotations (no image is opened)."""
        return [im["width"] / im["height"] for im in self.coco.images]

    def load_image(self, index: int):
        from PIL import Image

        record = self.coco.images[index]
        path = self.coco.image_path(record)
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise BadInput(f"cannot read image {record['file_name']!r} ({exc})", self.coco.source) from None

    def target(self, index: int) -> dict[str, torch.Tensor]:
        record = self.coco.images[index]
        anns = [a for a in self.coco.annotations_of(record["id"])
                if self.include_crowd or not a.get("iscrowd") or a.get("ignore")]
        boxes = torch.tensor([xyxy(a) for a in anns], dtype=torch.float32).reshape(-1, 4)
        return {
            "boxes": boxes,
            "labels": torch.tensor([IGNORE_LABEL if a.get("ignore") else self.label_of_category[a["category_id"]]
                                    for a in anns], dtype=torch.int64),
            "image_id": torch.tensor(record["id"], dtype=torch.int64),
            "area": torch.tensor([a["area"] for a in anns], dtype=torch.float32),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
        }

    def __getitem__(self, index: int):
        image = self.load_image(index)
        target = self.target(index)
        target["boxes"] = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY",
                                                   canvas_size=(image.height, image.width))
        image, target = self.transforms(image, target)
        target["boxes"] = target["boxes"].as_subclass(torch.Tensor)
        return image, target


class CombinedDataset(ConcatDataset):
    """Several datasets in one unified label space: each one's categories go through the `gaia/labels` map."""

    def __init__(self, parts: Sequence[tuple[CocoDataset, str | None]], labels: LabelSpace,
                 transforms: Callable | None = None, include_crowd: bool = False):
        datasets = [
            DetectionDataset(coco, labels.map_for(coco.categories, name, origin=coco.source), transforms,
                             include_crowd)
            for coco, name in parts
        ]
        super().__init__(datasets)
        self.labels = labels

    @property
    def num_classes(self) -> int:
        return len(self.labels.categories) + 1

    def aspect_ratios(self) -> list[float]:
        return [r for d in self.datasets for r in d.aspect_ratios()]


def collate_detection(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Detection batches are lists: images differ in size and targets in box count."""
    images, targets = zip(*batch)
    return list(images), list(targets)
