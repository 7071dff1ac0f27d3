"""COCO evaluation of a detector on a COCO-format dataset, by pycocotools (its prints kept off stdout).

The model's classes are matched to the dataset's categories by name (case, punctuation and plurals aside);
detections of classes the dataset lacks are dropped, and a dataset category the model lacks is an error.
Returns AP, AP50, AP75, APs, APm, APl (in %) and the AP of each category.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from gaia_cli import console
from gaia_cli.data.coco import CocoDataset, pycocotools_quiet
from gaia_cli.data.dataset import DetectionDataset, collate_detection
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import keys

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def label_map(classes: list[str], coco: CocoDataset) -> dict[int, int]:
    """Model label -> dataset category id, by name; BadInput if a dataset category has no class."""
    by_key: dict[str, int] = {}
    for label, name in enumerate(classes, start=1):
        for k in keys(name):
            by_key.setdefault(k, label)
    mapping, missing = {}, []
    for cat in coco.categories:
        label = next((by_key[k] for k in keys(cat["name"]) if k in by_key), None)
        if label is None:
            missing.append(cat["name"])
        else:
            mapping[label] = cat["id"]
    if missing:
        raise BadInput(f"categories the model does not know: {', '.join(missing[:8])}"
                       f"{' ...' if len(missing) > 8 else ''} (the model has {len(classes)} classes)", coco.source)
    return mapping


@torch.no_grad()
def predict(model: nn.Module, coco: CocoDataset, label_to_category: dict[int, int], device: torch.device,
            batch_size: int = 4, workers: int = 0) -> list[dict[str, Any]]:
    """Detections on every image of `coco` in COCO results format."""
    model.eval()
    dataset = DetectionDataset(coco, label_of_category={cid: 1 for cid in coco.category_ids})
    results: list[dict[str, Any]] = []
    batches = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_detection, num_workers=workers)
    with console.progress("evaluating", total=len(dataset)) as bar:
        for images, targets in batches:
            outputs = model([img.to(device) for img in images])
            for out, target in zip(outputs, targets):
                image_id = int(target["image_id"])
                for box, score, label in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                    if label in label_to_category:
                        x1, y1, x2, y2 = box
                        results.append({"image_id": image_id, "category_id": label_to_category[label],
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
            bar.advance(len(images))
    return results


def coco_metrics(coco: CocoDataset, results: list[dict[str, Any]]) -> dict[str, Any]:
    from pycocotools.cocoeval import COCOeval

    gt = coco.to_coco()
    names = {c["id"]: c["name"] for c in coco.categories}
    if not results:  # pycocotools cannot load an empty result list; nothing detected scores 0
        return {**{m: 0.0 for m in METRICS}, "per_category": {n: 0.0 for n in names.values()}, "detections": 0}
    with pycocotools_quiet():
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(float(s), 0.0) * 100 for s in evaluator.stats[:6]]  # -1 means "no such objects"
    precision = evaluator.eval["precision"]  # [iou, recall, category, area, max dets]
    per_category = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        per_category[names[cat_id]] = float(np.mean(p[p > -1]) * 100) if (p > -1).any() else 0.0
    return {**dict(zip(METRICS, stats)), "per_category": per_category, "detections": len(results)}


def evaluate(model: nn.Module, classes: list[str], coco: CocoDataset, device: torch.device,
             batch_size: int = 4, workers: int = 0) -> dict[str, Any]:
    results = predict(model, coco, label_map(classes, coco), device, batch_size, workers)
    return coco_metrics(coco, results)
