"""What `gaia inspect` says of a `gaia/selection` and a `gaia/features` file."""

from __future__ import annotations

from typing import Any

import numpy as np


def selection_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """What `gaia inspect` says of a selection: counts per dataset and category, score quantiles."""
    images = [im for im in obj.get("images", []) if isinstance(im, dict)]
    scores = np.array([im["score"] for im in images if isinstance(im.get("score"), (int, float))], dtype=np.float64)
    per_dataset: dict[str, int] = {}
    per_category: dict[str, int] = {}
    for im in images:
        per_dataset[str(im.get("dataset"))] = per_dataset.get(str(im.get("dataset")), 0) + 1
        per_category[str(im.get("category"))] = per_category.get(str(im.get("category")), 0) + 1
    quantiles = None
    if len(scores):
        qs = np.quantile(scores, [0, 0.25, 0.5, 0.75, 1]).round(4).tolist()
        quantiles = dict(zip(("min", "q25", "median", "q75", "max"), qs))
    return {"strategy": obj.get("strategy"), "images": len(images), "per_dataset": per_dataset,
            "per_category": per_category, "score": quantiles}


def features_summary(meta: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Rows, images, dimension, model and label space of a features cache."""
    model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    return {"rows": (shapes.get("vectors") or (0,))[0], "dim": (shapes.get("vectors") or (0, 0))[-1],
            "images": (shapes.get("done") or (0,))[0], "dataset": meta.get("dataset"),
            "model": {k: model.get(k) for k in ("weights", "arch", "digest")},
            "label_space": meta.get("label_space")}
