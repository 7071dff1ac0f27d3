"""Classifier weight surgery (GAIA 4.2.3): fit a pre-trained box predictor to a target dataset's categories.

For each target category:
- `kept`: it is one of the pre-trained classes (by the label space's map when the dataset is in it, else by
  name: case, punctuation and plurals aside). Its classification row and its 4 box-regression rows are the
  pre-trained ones.
- `borrowed`: it is not, but word vectors are at hand (a label space was given): it takes the rows of the
  pre-trained class whose name is most similar, and the report says which and how similar.
- `new`: neither; the rows are freshly initialised as torchvision initialises them (a warning says so).
The background row (0) is always kept.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gaia_cli import console
from gaia_cli.labels.names import keys
from gaia_cli.labels.space import LabelSpace


def match_classes(source: list[str], target: list[dict[str, Any]], labels: LabelSpace | None = None,
                  vectors=None) -> list[dict[str, Any]]:
    """For each target category, where its rows come from: {"category", "how", "from", "similarity"}."""
    by_key: dict[str, int] = {}
    for label, name in enumerate(source, start=1):
        for k in keys(name):
            by_key.setdefault(k, label)
    mapped: dict[int, int] = {}
    if labels is not None:
        from gaia_cli.errors import BadInput

        try:  # the dataset is part of the label space the supernet was trained on
            unified = labels.map_for(target)
        except BadInput:  # it is not: names and vectors decide
            unified = {}
        label_of_name = {name: i for i, name in enumerate(source, start=1)}
        mapped = {cid: label_of_name[labels.categories[uid - 1]["name"]] for cid, uid in unified.items()
                  if labels.categories[uid - 1]["name"] in label_of_name}
    profiles = None
    if vectors is not None:
        from gaia_cli.labels.unify import profile, similarity_matrix

        profiles = [profile(n, vectors, None) for n in source]
    report = []
    for cat in target:
        label = mapped.get(cat["id"]) or next((by_key[k] for k in keys(cat["name"]) if k in by_key), None)
        if label is not None:
            report.append({"category": cat["name"], "how": "kept", "from": source[label - 1], "similarity": 1.0})
            continue
        if profiles is not None:
            sim, _ = similarity_matrix([profile(cat["name"], vectors, None)], profiles)
            best = int(sim[0].argmax())
            if sim[0, best] > 0:
                report.append({"category": cat["name"], "how": "borrowed", "from": source[best],
                               "similarity": round(float(sim[0, best]), 4)})
                continue
        report.append({"category": cat["name"], "how": "new", "from": None, "similarity": None})
    return report


def fit_predictor(predictor: nn.Module, source: list[str], report: list[dict[str, Any]]) -> nn.Module:
    """A FastRCNNPredictor for the target categories with rows taken as `report` says."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    rep = predictor.cls_score.in_features
    fitted = FastRCNNPredictor(rep, len(report) + 1)
    row_of = {name: i for i, name in enumerate(source, start=1)}
    with torch.no_grad():
        cls_w, cls_b = predictor.cls_score.weight, predictor.cls_score.bias
        box_w, box_b = predictor.bbox_pred.weight, predictor.bbox_pred.bias
        sources = [0] + [row_of[r["from"]] if r["how"] != "new" else None for r in report]
        for target_row, source_row in enumerate(sources):
            if source_row is None:
                continue
            fitted.cls_score.weight[target_row] = cls_w[source_row]
            fitted.cls_score.bias[target_row] = cls_b[source_row]
            fitted.bbox_pred.weight[4 * target_row: 4 * target_row + 4] = box_w[4 * source_row: 4 * source_row + 4]
            fitted.bbox_pred.bias[4 * target_row: 4 * target_row + 4] = box_b[4 * source_row: 4 * source_row + 4]
    new = [r["category"] for r in report if r["how"] == "new"]
    if new:
        console.warn(f"{len(new)} categories start from fresh classifier rows ({', '.join(new[:5])}"
                     f"{' ...' if len(new) > 5 else ''}); give --labels to borrow the rows of similar classes")
    return fitted
