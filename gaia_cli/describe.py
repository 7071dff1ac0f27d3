"""Summaries of any file gaia reads: JSON artifacts, HDF5 artifacts, COCO datasets (`gaia inspect`)."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from gaia_cli.artifacts import HDF5_SIGNATURE, HEADER_KEYS, H5Artifact, check_header, parse_json, read_input
from gaia_cli.data.coco import load_coco
from gaia_cli.errors import BadInput
from gaia_cli.pathfilter.report import report_lines
from gaia_cli.selection.report import features_summary, selection_summary

# COCO's area ranges for APs / APm / APl
SMALL, MEDIUM = 32**2, 96**2


def describe(spec: str | os.PathLike, image_root: str | None = None, check_images: bool = False,
             strict: bool = False) -> dict[str, Any]:
    """A JSON-ready summary of an artifact or a COCO dataset."""
    if os.fspath(spec) != "-" and Path(spec).is_file():  # an HDF5 file is opened, never read whole
        with open(spec, "rb") as fh:
            if fh.read(8) == HDF5_SIGNATURE:
                return describe_h5(Path(spec))
    src = read_input(spec)
    if src.data[:8] == HDF5_SIGNATURE:
        if src.path is None:
            raise BadInput("an HDF5 file cannot come through stdin; pass its path or manifest line", src.name)
        return describe_h5(src.path)
    obj = parse_json(src.data, src.name)
    if isinstance(obj, dict) and "kind" in obj:
        check_header(obj, None, src.name)
        return describe_json_artifact(obj, src.name)
    if isinstance(obj, dict) and "images" in obj and "categories" in obj:
        return describe_coco(spec if src.path is None else src.path, image_root, check_images, strict)
    raise BadInput("is neither a gaia artifact (no 'kind') nor a COCO dataset (no 'images'/'categories')",
                   src.name)


def _shape_of(value: Any) -> Any:
    if isinstance(value, list):
        return {"items": len(value)}
    if isinstance(value, dict):
        return {"keys": len(value)}
    return value


def describe_json_artifact(obj: dict[str, Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"format": "json", "path": name}
    out.update({k: obj[k] for k in HEADER_KEYS if k in obj})
    out["payload"] = {k: _shape_of(v) for k, v in obj.items() if k not in HEADER_KEYS}
    if obj["kind"] == "gaia/labels":
        out["summary"] = {
            "categories": len(obj.get("categories", [])),
            "datasets": {d.get("name"): len(d.get("categories", [])) for d in obj.get("datasets", [])},
        }
    elif obj["kind"] == "gaia/selection":
        out["summary"] = selection_summary(obj)
    return out


def describe_h5(path: Path) -> dict[str, Any]:
    with H5Artifact(path) as art:
        shapes = art.tensor_shapes()
        meta = {name: art.meta(name) for name in art.meta_names() if name != "header"}
        summary = {}
        if art.kind == "gaia/montage-samples":
            summary = {"summary": {**meta.get("counts", {}), "classes": meta.get("classes"),
                                   "options": meta.get("options")}}
        elif art.kind == "gaia/pathfilter":
            rep = meta.get("report") or {}
            summary = {"summary": {"edges": (meta.get("filter") or {}).get("edges"),
                                   "measured": len(meta.get("measurements") or []),
                                   "training": {k: v for k, v in (meta.get("training") or {}).items() if k != "history"},
                                   "report": rep, "table": report_lines(rep) if rep else []}}
        elif art.kind == "gaia/features":
            summary = {"summary": features_summary(meta, shapes)}
        elif art.kind == "gaia/weights":
            summary = {"summary": {"role": meta.get("role"), "classes": len(meta.get("classes") or [])}}
        return {
            "format": "hdf5",
            "path": str(path),
            **art.header,
            "bytes": path.stat().st_size,
            "tensors": len(shapes),
            "parameters": int(sum(math.prod(s) for s in shapes.values())),
            "meta": {k: (v if not isinstance(v, (list, dict)) else _shape_of(v)) for k, v in meta.items()},
            **summary,
        }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def describe_coco(spec, image_root: str | None, check_images: bool, strict: bool) -> dict[str, Any]:
    data = load_coco(spec, image_root, decode_images=check_images, strict=strict)
    per_cat = {c["id"]: 0 for c in data.categories}
    sizes = {"small": 0, "medium": 0, "large": 0}
    groups = {"S": 0, "T": 0, "W": 0}  # Montage's aspect groups of boxes (w/h): S in [0.5, 1.5]
    boxes_per_image: dict[int, int] = {im["id"]: 0 for im in data.images}
    crowd = 0
    for ann in data.annotations:
        if ann.get("iscrowd"):
            crowd += 1
            continue
        per_cat[ann["category_id"]] += 1
        boxes_per_image[ann["image_id"]] += 1
        w, h = ann["bbox"][2], ann["bbox"][3]
        area = w * h
        sizes["small" if area < SMALL else "medium" if area < MEDIUM else "large"] += 1
        ratio = w / h
        groups["T" if ratio < 0.5 else "W" if ratio > 1.5 else "S"] += 1
    return {
        "format": "coco",
        "path": data.source,
        "image_root": str(data.image_root),
        "images": len(data.images),
        "annotations": len(data.annotations),
        "boxes": sum(per_cat.values()),
        "crowd_regions": crowd,
        "images_without_boxes": sum(1 for n in boxes_per_image.values() if n == 0),
        "categories": [{"id": c["id"], "name": c["name"], "boxes": per_cat[c["id"]]} for c in data.categories],
        "boxes_per_image": _stats(list(boxes_per_image.values())),
        "image_width": _stats([im["width"] for im in data.images]),
        "image_height": _stats([im["height"] for im in data.images]),
        "box_sizes": sizes,
        "box_aspect_groups": groups,
        "validation": data.report.as_dict(),
    }


def table(summary: dict[str, Any]):
    """A rich table of a summary, for -v."""
    from rich.table import Table

    if summary.get("format") == "coco":
        tab = Table(title=f"{summary['path']}: {summary['images']} images, {summary['boxes']} boxes")
        tab.add_column("id", justify="right")
        tab.add_column("category")
        tab.add_column("boxes", justify="right")
        for cat in summary["categories"]:
            tab.add_row(str(cat["id"]), cat["name"], str(cat["boxes"]))
        return tab
    tab = Table(title=str(summary.get("path")))
    tab.add_column("field")
    tab.add_column("value")
    for key, value in summary.items():
        tab.add_row(key, str(value))
    return tab
