"""INTERN's percentage-shot splits (section 9), and K-shot splits, as COCO subsets.

Percentage-shot: each category's instances are shuffled with the seed and the first P% (rounded down) are
kept, so the split keeps the dataset's long-tailed class distribution and exactly P% of each class's instances
(to within the rounding: less than one instance per class). Rounding down is kept as it is: a category with
fewer than 100/P instances keeps none (INTERN's choice; the report lists such categories) rather than being
lifted to one, which would over-represent the tail. K-shot keeps the first K of each.

A kept instance brings its image. The image's other instances are not part of the split, yet they are there
in the pixels: dropping their boxes would teach the detector that those objects are background, and keeping
them would train on more than P%. They stay as ignore regions (`"ignore": 1`, and `"iscrowd": 1` so that COCO
evaluation of the split treats them as pycocotools treats crowds): neither object nor background in training
(gaia_cli.nn.ignore). The report counts, per class, the instances, those kept and those made ignore regions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaia_cli.checks import check_options
from gaia_cli.data.coco import CocoDataset
from gaia_cli.errors import BadInput


def split(data: CocoDataset, percent: float | None = None, shots: int | None = None, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(COCO dict of the subset, report)."""
    if (percent is None) == (shots is None):
        raise BadInput("give --percent P or --shots K (one of them)")

    check_options({"--percent": percent, "--shots": shots}, "finetune")
    rng = np.random.default_rng(seed)
    chosen_ids: set[int] = set()
    per_category = {}
    for cat in data.categories:
        instances = sorted((a for a in data.annotations if a["category_id"] == cat["id"] and not a.get("iscrowd")
                            and not a.get("ignore")), key=lambda a: a["id"])
        order = rng.permutation(len(instances))
        count = math.floor(len(instances) * percent / 100) if percent is not None else min(shots, len(instances))
        chosen_ids.update(instances[i]["id"] for i in order[:count])
        per_category[cat["name"]] = {"instances": len(instances), "kept": count, "ignored": 0}
    keep_images = {a["image_id"] for a in data.annotations if a["id"] in chosen_ids}
    if not keep_images:
        raise BadInput(f"the split keeps no instance (every category has fewer than 100/{percent} instances)"
                       if percent is not None else "the split keeps no instance", data.source)
    name_of = {c["id"]: c["name"] for c in data.categories}
    images = [im for im in data.images if im["id"] in keep_images]
    annotations = []
    for a in data.annotations:
        if a["image_id"] not in keep_images:
            continue
        if a["id"] in chosen_ids or a.get("iscrowd") or a.get("ignore"):
            annotations.append(a)
        else:  # in a chosen image, not chosen: an ignore region
            annotations.append({**a, "ignore": 1, "iscrowd": 1})
            per_category[name_of[a["category_id"]]]["ignored"] += 1
    subset = {**data.extra, "images": images, "annotations": annotations, "categories": data.categories}
    total = sum(v["instances"] for v in per_category.values())
    kept = sum(v["kept"] for v in per_category.values())
    report = {"percent": percent, "shots": shots, "seed": seed, "images": len(images),
              "instances": total, "kept": kept, "ignored": sum(v["ignored"] for v in per_category.values()),
              "kept_percent": round(100 * kept / total, 2) if total else 0.0,
              "per_category": per_category,
              "empty_categories": [n for n, v in per_category.items() if v["kept"] == 0 and v["instances"] > 0]}
    return subset, report
