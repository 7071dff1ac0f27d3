"""INTERN's percentage-shot splits (section 9), and K-shot splits, as COCO subsets.

Percentage-shot: each category's instances are shuffled with the seed and the first P% (rounded down) are
kept, so the split keeps the dataset's long-tailed class distribution. Rounding down is kept as it is: a
category with fewer than 100/P instances keeps none (INTERN's choice; the report lists such categories)
rather than being lifted to one, which would over-represent the tail. K-shot keeps the first K of each.
A kept instance brings its image, with all of that image's boxes: a box left out of a kept image would
teach the detector that the object there is background.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaia_cli.data.coco import CocoDataset
from gaia_cli.errors import BadInput


def split(data: CocoDataset, percent: float | None = None, shots: int | None = None, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(COCO dict of the subset, report)."""
    if (percent is None) == (shots is None):
        raise BadInput("give --percent P or --shots K (one of them)")
    from gaia_cli.checks import check_options

    check_options({"--percent": percent, "--shots": shots}, "finetune")
    rng = np.random.default_rng(seed)
    keep_images: set[int] = set()
    per_category = {}
    for cat in data.categories:
        instances = sorted((a for a in data.annotations if a["category_id"] == cat["id"] and not a.get("iscrowd")),
                           key=lambda a: a["id"])
        order = rng.permutation(len(instances))
        count = math.floor(len(instances) * percent / 100) if percent is not None else min(shots, len(instances))
        chosen = [instances[i] for i in order[:count]]
        keep_images.update(a["image_id"] for a in chosen)
        per_category[cat["name"]] = {"instances": len(instances), "kept": count}
    if not keep_images:
        raise BadInput(f"the split keeps no instance (every category has fewer than 100/{percent} instances)"
                       if percent is not None else "the split keeps no instance", data.source)
    images = [im for im in data.images if im["id"] in keep_images]
    annotations = [a for a in data.annotations if a["image_id"] in keep_images]
    subset = {**data.extra, "images": images, "annotations": annotations, "categories": data.categories}
    report = {"percent": percent, "shots": shots, "seed": seed, "images": len(images),
              "per_category": per_category,
              "empty_categories": [n for n, v in per_category.items() if v["kept"] == 0 and v["instances"] > 0]}
    return subset, report
