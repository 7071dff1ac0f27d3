"""Upstream images chosen for a target task (`gaia/selection`, written by `select-data`), as extra data.

The reader lives with the datasets, below the selection that writes the file (gaia_cli.selection.select), so
that finetune's `--extra-data` needs nothing of the selection package.

Layout (JSON, schema 1), beside the header keys:

    "datasets": [{"name": "coco", "path": "/data/coco/instances_train2017.json", "images": null}, ...]
        each upstream COCO file; `images` is its image folder when it is not found beside the file
    "images": [{"dataset": "coco", "image_id": 42, "score": 0.87}, ...]
        the chosen images; `score` is the selection's own measure (optional)

`extra_datasets` serves the chosen images with their boxes mapped into the target's categories: through the
label space select-data used (its `label_space`, checked by sha256), as select-data matched them, so that a
category unify-labels merged under another name keeps its boxes; without one, by name (case, punctuation and
plurals aside). Boxes of categories the target does not have are left out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gaia_cli.artifacts import read_input, read_json_artifact
from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import DetectionDataset
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import keys
from gaia_cli.labels.space import read_labels

KIND = "gaia/selection"


def extra_datasets(spec: str, target_categories: list[dict[str, Any]], transforms=None):
    """(DetectionDatasets of the selected images in the target's labels, report)."""
    art = read_json_artifact(spec, KIND)
    name = art.source.name
    entries, chosen = art.data.get("datasets"), art.data.get("images")
    if not isinstance(entries, list) or not isinstance(chosen, list) or not chosen:
        raise BadInput("a selection needs 'datasets' and a non-empty 'images' list", name)
    labels = _label_space(art.data.get("label_space"), name)
    label_of_key: dict[str, int] = {}
    label_of_unified: dict[int, int] = {}
    label_of_id: dict[int, int] = {}
    for label, cat in enumerate(target_categories, start=1):
        label_of_id.setdefault(cat["id"], label)
        for k in keys(cat["name"]):
            label_of_key.setdefault(k, label)
    if labels is not None:
        for cid, unified in labels.unified_ids(target_categories, None).items():
            label_of_unified.setdefault(unified, label_of_id[cid])
    wanted: dict[str, set[int]] = {}
    for item in chosen:
        if not isinstance(item, dict) or not isinstance(item.get("image_id"), int):
            raise BadInput(f"selection entry {item!r:.60} needs 'dataset' and an integer 'image_id'", name)
        wanted.setdefault(item.get("dataset"), set()).add(item["image_id"])
    parts, report = [], []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise BadInput("each selection dataset needs a 'name' and a 'path'", name)
        ids = wanted.pop(entry.get("name"), set())
        if not ids:
            continue
        upstream = load_coco(entry["path"], entry.get("images"))
        if labels is not None:
            unified = labels.unified_ids(upstream.categories, entry.get("name"))
            mapping = {cid: label_of_unified.get(u) for cid, u in unified.items()}
        else:
            mapping = {c["id"]: next((label_of_key[k] for k in keys(c["name"]) if k in label_of_key), None)
                       for c in upstream.categories}
        mapping = {cid: label for cid, label in mapping.items() if label is not None}
        images = [im for im in upstream.images if im["id"] in ids]
        missing = ids - {im["id"] for im in images}
        if missing:
            raise BadInput(f"{len(missing)} selected images are not in {entry['path']} (e.g. id {min(missing)})", name)
        annotations = [a for a in upstream.annotations if a["image_id"] in ids and a["category_id"] in mapping]
        categories = [c for c in upstream.categories if c["id"] in mapping]
        if not categories:
            raise BadInput(f"no category of {entry['path']} is one of the target's", name)
        subset = dataclasses.replace(upstream, images=images, annotations=annotations, categories=categories)
        parts.append(DetectionDataset(subset, label_of_category=mapping, transforms=transforms))
        report.append({"dataset": entry.get("name"), "images": len(images), "boxes": len(annotations),
                       "categories": sorted({c["name"] for c in categories})})
    if wanted:
        raise BadInput(f"images are selected from datasets it does not list: {', '.join(map(str, wanted))}", name)
    return parts, report


def _label_space(record: Any, name: str):
    """The label space a selection was made in (None when it was made without one), refused when its file is
    gone or has changed since."""
    if not record:
        return None

    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise BadInput("its 'label_space' needs a 'path' and a 'sha256'", name)
    try:
        sha = read_input(record["path"]).ref.sha256
    except BadInput:
        raise BadInput(f"the label space it was selected in, {record['path']}, cannot be read", name) from None
    if record.get("sha256") and sha != record["sha256"]:
        raise BadInput(f"the label space it was selected in, {record['path']}, has changed since", name)
    return read_labels(record["path"])


def target_repeats(target: int, extra: int, share: float | None) -> int:
    """How many times an epoch the target's `target` images come, so that the `extra` images make up about
    `share` of the epoch (finetune's --extra-share); once without a share, or when once already gives less."""
    if share is None or target == 0:
        return 1
    return max(1, round((1 - share) / share * extra / target))
