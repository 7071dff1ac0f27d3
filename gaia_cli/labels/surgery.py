"""Classifier weight surgery (GAIA 4.2.3): fit a pre-trained box predictor to a target dataset's categories.

For each target category:
- `kept`: it is one of the pre-trained classes (by the label space's map when the dataset is in it, else by
  name: case, punctuation and plurals aside). Its classification row and its 4 box-regression rows are the
  pre-trained ones.
- `borrowed`: it is not, but word vectors are at hand (a label space was given): it takes the rows of the
  pre-trained class whose name is most similar, and the report says which and how similar.
- `new`: neither; the rows are freshly initialised as torchvision initialises them (a warning says so).
The background row (0) is always kept.

`grow_predictor` extends a supernet's predictor to a label space grown from its classes (GAIA 3.1.1: "the
last fc layer extends corresponding new ways while the others remain unchanged"): the old classes keep their
rows at their ids, each new class borrows the rows of its nearest old class by word vectors.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gaia_cli import console
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import keys
from gaia_cli.labels.space import LabelSpace
from gaia_cli.labels.unify import profile, similarity_matrix
from gaia_cli.labels.vectors import load_vectors


def match_classes(source: list[str], target: list[dict[str, Any]], labels: LabelSpace | None = None,
                  vectors=None) -> list[dict[str, Any]]:
    """For each target category, where its rows come from: {"category", "how", "from", "similarity"}."""
    by_key: dict[str, int] = {}
    for label, name in enumerate(source, start=1):
        for k in keys(name):
            by_key.setdefault(k, label)
    mapped: dict[int, int] = {}
    if labels is not None:
        try:  # the dataset is part of the label space the supernet was trained on
            unified = labels.map_for(target)
        except BadInput:  # it is not: names and vectors decide
            unified = {}
        label_of_name = {name: i for i, name in enumerate(source, start=1)}
        mapped = {cid: label_of_name[labels.categories[uid - 1]["name"]] for cid, uid in unified.items()
                  if labels.categories[uid - 1]["name"] in label_of_name}
    profiles = None
    if vectors is not None:
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


def vectors_for(labels: LabelSpace) -> Any:
    """The word vectors a label space was built with (its `vectors.source`), else the default ones."""
    from pathlib import Path

    meta = (labels.extra or {}).get("vectors") or {}
    source = meta.get("source")
    if source and Path(source).is_file():
        return load_vectors(source, meta.get("format", "auto"))
    return load_vectors()


def grow_predictor(predictor: nn.Module, old: list[str], new: list[str], vectors=None,
                   source: str | None = None) -> tuple[nn.Module, list[dict[str, Any]]]:
    """(a predictor for `new`, the surgery report): `new` must start with `old`, in order (label k stays k).

    The old classes' rows are copied unchanged, so right after the extension their logits and box deltas are
    those of the old predictor; each added class borrows its nearest old class's rows (`match_classes`).
    """
    for k, (was, now) in enumerate(zip(old, new), start=1):
        if was != now:
            raise BadInput(f"label {k} is {was!r} in the --init supernet but {now!r} here: the old classes must keep "
                           f"their ids (grow the label space with unify-labels --base)", source)
    if len(new) < len(old):
        raise BadInput(f"has {len(new)} classes, fewer than the --init supernet's {len(old)}: a label space can "
                       f"only grow (unify-labels --base)", source)
    added = [{"id": k, "name": n} for k, n in enumerate(new[len(old):], start=len(old) + 1)]
    report = [{"category": n, "how": "kept", "from": n, "similarity": 1.0} for n in old]
    report += match_classes(old, added, None, vectors)
    return fit_predictor(predictor, old, report), report
