"""COCO evaluation of a detector on a COCO-format dataset, by pycocotools (its prints kept off stdout).

The model's classes are matched to the dataset's categories by name (case, punctuation and plurals aside);
detections of classes the dataset lacks are dropped, and a dataset category the model lacks is an error.
Returns AP, AP50, AP75, APs, APm, APl (in %) and the AP of each category.

Machinery: the `eval` command's workflow is gaia_cli.tasks.evaluate, and the path it measures is made ready by
gaia_cli.engine.recalibration; `predict` here is evaluation's pass over a COCO dataset, not the `predict`
command (gaia_cli.tasks.predict).
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
    dataset = DetectionDataset.images_only(coco)
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


def log_average_miss_rate(coco: CocoDataset, results: list[dict[str, Any]], iou: float = 0.5) -> dict[str, Any]:
    """MR^-2, the Caltech/CityPersons metric (lower is better), in %.

    For each category: detections sorted by score are matched greedily to unmatched ground truth at IoU
    >= 0.5 (a match to a crowd region is ignored, neither true nor false); the miss rate is read at 9 false
    positives per image (FPPI) log-spaced in [0.01, 1], and MR^-2 is the geometric mean of those 9 values
    (a curve that never reaches an FPPI counts at its last miss rate, as Caltech's toolbox does).
    """
    from torchvision.ops import box_iou

    def xyxy(b):
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]

    points = np.logspace(-2, 0, 9)
    n_images = len(coco.images)
    per_category = {}
    for cat in coco.categories:
        gts: dict[int, list] = {}
        crowds: dict[int, list] = {}
        for a in coco.annotations:
            if a["category_id"] == cat["id"]:
                (crowds if a.get("iscrowd") else gts).setdefault(a["image_id"], []).append(xyxy(a["bbox"]))
        total = sum(len(v) for v in gts.values())
        if total == 0:
            continue
        dets = sorted((r for r in results if r["category_id"] == cat["id"]), key=lambda r: -r["score"])
        used = {img: np.zeros(len(boxes), bool) for img, boxes in gts.items()}
        tp, fp = [], []
        for d in dets:
            box = torch.tensor([xyxy(d["bbox"])])
            img = d["image_id"]
            hit, ignore = False, False
            if img in gts:
                ious = box_iou(box, torch.tensor(gts[img]))[0].numpy()
                ious[used[img]] = -1
                j = int(ious.argmax())
                if ious[j] >= iou:
                    used[img][j] = True
                    hit = True
            if not hit and img in crowds:
                inter = box_iou(box, torch.tensor(crowds[img]))[0].numpy()
                ignore = bool((inter >= iou).any())
            if ignore:
                continue
            tp.append(hit)
            fp.append(not hit)
        tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
        miss = 1 - tp_c / total if len(tp_c) else np.array([1.0])
        fppi = fp_c / n_images if len(fp_c) else np.array([0.0])
        sampled = []
        for f in points:
            below = np.flatnonzero(fppi <= f)
            sampled.append(miss[below[-1]] if len(below) else 1.0)
        per_category[cat["name"]] = float(np.exp(np.mean(np.log(np.maximum(sampled, 1e-10)))) * 100)
    mean = float(np.mean(list(per_category.values()))) if per_category else 100.0
    return {"MR-2": mean, "per_category_mr": per_category}
