"""COCO-format detection datasets: loading, validation with a report, and the image folder.

A dataset is an annotations JSON (`images`, `annotations`, `categories`) plus an image folder that the
`file_name`s are relative to. Validation never crashes on a bad record: it drops or repairs it and counts it
in a `ValidationReport`. What cannot be repaired (no images, no categories, a `file_name` that escapes the
image folder) is refused with `BadInput`. The cleaned dataset is indexed with pycocotools, whose prints are
kept off stdout.

Boxes: COCO stores `[x, y, w, h]` in pixels; gaia serves `[x1, y1, x2, y2]`. Boxes that reach outside the
image are clipped to it (counted); boxes with no area after clipping are dropped (counted).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from gaia_cli import console
from gaia_cli.artifacts import InputRef, parse_json, read_input
from gaia_cli.errors import BadInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}  # what a folder of images holds

EXAMPLES_KEPT = 5  # examples kept per problem in a report


@dataclasses.dataclass
class ValidationReport:
    """Counts of what validation repaired or dropped, with a few examples of each."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    PROBLEMS = {
        "images_missing": "images not found on disk (dropped with their boxes)",
        "images_unreadable": "images that could not be decoded (dropped with their boxes)",
        "images_duplicate_id": "images whose id was already used (dropped)",
        "images_bad_record": "image records without id/file_name/size (dropped)",
        "annotations_duplicate_id": "annotations whose id was already used (dropped)",
        "annotations_unknown_image": "annotations of an image id not in `images` (dropped)",
        "annotations_unknown_category": "annotations of a category id not in `categories` (dropped)",
        "annotations_bad_record": "annotations without a 4-number bbox (dropped)",
        "boxes_clipped": "boxes reaching outside their image (clipped)",
        "boxes_degenerate": "boxes of zero or negative width or height (dropped)",
        "boxes_outside": "boxes wholly outside their image (dropped)",
        "categories_duplicate_id": "categories listed twice with the same id and name (dropped)",
    }

    def add(self, problem: str, example: str) -> None:
        assert problem in self.PROBLEMS, problem
        self.counts[problem] = self.counts.get(problem, 0) + 1
        kept = self.examples.setdefault(problem, [])
        if len(kept) < EXAMPLES_KEPT:
            kept.append(example)

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": {k: {"count": v, "meaning": self.PROBLEMS[k], "examples": self.examples.get(k, [])}
                         for k, v in sorted(self.counts.items())},
        }

    def summary(self) -> str:
        return "; ".join(f"{v} {self.PROBLEMS[k].split(' (')[0]}" for k, v in sorted(self.counts.items()))


@dataclasses.dataclass
class CocoDataset:
    """A validated COCO dataset: records as plain dicts, the image folder, and where it came from."""

    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    image_root: Path
    source: str
    ref: InputRef
    report: ValidationReport
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # `info`, `licenses`, ...

    def __post_init__(self) -> None:  # runs again on dataclasses.replace, so a subset indexes itself
        self._by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in self.images}
        for ann in self.annotations:
            self._by_image[ann["image_id"]].append(ann)

    def annotations_of(self, image_id: int) -> list[dict[str, Any]]:
        return self._by_image[image_id]

    @property
    def category_ids(self) -> list[int]:
        return [c["id"] for c in self.categories]

    def image_path(self, image: dict[str, Any]) -> Path:
        return self.image_root / image["file_name"]

    def to_dict(self) -> dict[str, Any]:
        """The cleaned dataset as a COCO dict (boxes back in [x, y, w, h])."""
        return {**self.extra, "images": self.images, "annotations": self.annotations,
                "categories": self.categories}

    def to_coco(self):
        """A pycocotools `COCO` index of the cleaned dataset (its prints kept off stdout)."""
        from pycocotools.coco import COCO

        coco = COCO()
        coco.dataset = self.to_dict()
        with pycocotools_quiet():
            coco.createIndex()
        return coco


@contextlib.contextmanager
def pycocotools_quiet() -> Iterator[None]:
    """pycocotools prints progress to stdout; send it to stderr with -v, else nowhere."""
    target = sys.stderr if console.verbose() else io.StringIO()
    with contextlib.redirect_stdout(target):
        yield


# ------------------------------------------------------------------------------------------ image folder


def find_image_root(ann_path: Path | None, first_file_name: str | None) -> Path:
    """Where the `file_name`s live when no folder is given.

    Tried in order: the annotation file's folder; COCO's own layout (`annotations/instances_val2017.json`
    next to `val2017/`); a folder named like the file's stem; an `images/` folder beside it. The first that
    holds the first image wins; if none does, the annotation file's folder.
    """
    base = (ann_path.parent if ann_path else Path(".")).resolve()
    if ann_path is None or first_file_name is None:
        return base
    stem = ann_path.stem
    split = stem.split("instances_", 1)[1] if "instances_" in stem else stem
    candidates = [base, base.parent / split, base / split, base / stem, base / "images", base.parent / "images"]
    for root in candidates:
        if (root / first_file_name).is_file():
            return root
    return base


def _escapes(file_name: str) -> bool:
    if not file_name or os.path.isabs(file_name) or PurePosixPath(file_name).is_absolute():
        return True
    if len(file_name) > 1 and file_name[1] == ":":  # a Windows drive
        return True
    return ".." in PurePosixPath(file_name.replace("\\", "/")).parts


# ------------------------------------------------------------------------------------------------ loading


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_id(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def load_coco(
    spec: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    *,
    check_files: bool = True,
    decode_images: bool = False,
    require_annotations: bool = True,
    strict: bool = False,
) -> CocoDataset:
    """Load and validate a COCO detection dataset.

    `check_files` checks that every image exists on disk; `decode_images` also decodes each one (slow, for
    `gaia inspect --check-images`). `strict` turns any problem in the report into `BadInput`.
    """
    src = read_input(spec)
    name = src.name
    obj = parse_json(src.data, name)
    if not isinstance(obj, dict) or not all(k in obj for k in ("images", "categories")):
        raise BadInput("not a COCO detection file (needs 'images', 'annotations' and 'categories')", name)
    for key in ("images", "annotations", "categories"):
        if not isinstance(obj.get(key, []), list):
            raise BadInput(f"'{key}' must be a list", name)
    if not obj["categories"]:
        raise BadInput("has no categories", name)
    if not obj["images"]:
        raise BadInput("has no images", name)
    if require_annotations and not obj.get("annotations"):
        raise BadInput("has no annotations", name)

    report = ValidationReport()
    categories = _clean_categories(obj["categories"], report, name)

    first = next((im.get("file_name") for im in obj["images"] if isinstance(im, dict)), None)
    if image_root is not None:
        root = Path(image_root)
        if not root.is_dir():
            raise BadInput("image folder does not exist", root)
        root = root.resolve()
    else:
        root = find_image_root(src.path, first if isinstance(first, str) else None)
    images = _clean_images(obj["images"], root, report, name, check_files, decode_images)
    if not images:
        raise BadInput(f"none of its {len(obj['images'])} images were usable under {root}: "
                       + _why_no_images(report), name)
    sizes = {im["id"]: (im["width"], im["height"]) for im in images}
    dropped_images = {im["id"] for im in obj["images"] if isinstance(im, dict) and _is_id(im.get("id"))}
    dropped_images -= set(sizes)
    annotations = _clean_annotations(obj.get("annotations", []), sizes, dropped_images,
                                     {c["id"] for c in categories}, report)
    if require_annotations and not annotations:
        raise BadInput("has no usable annotations after validation (" + report.summary() + ")", name)
    if strict and not report.ok:
        raise BadInput("failed validation: " + report.summary(), name)
    if not report.ok:
        console.warn(f"{name}: " + report.summary())
    extra = {k: v for k, v in obj.items() if k not in ("images", "annotations", "categories")}
    return CocoDataset(images, annotations, categories, root, name, src.ref, report, extra)


def _why_no_images(report: ValidationReport) -> str:
    """Why no image was kept: missing files (wrong folder?) and undecodable ones are told apart."""
    counts, examples = report.counts, report.examples
    parts = []
    if counts.get("images_missing"):
        parts.append(f"{counts['images_missing']} not found (first: {examples['images_missing'][0]})")
    if counts.get("images_unreadable"):
        parts.append(f"{counts['images_unreadable']} could not be decoded (first: {examples['images_unreadable'][0]})")
    if counts.get("images_bad_record") or counts.get("images_duplicate_id"):
        parts.append(f"{counts.get('images_bad_record', 0) + counts.get('images_duplicate_id', 0)} bad records")
    hint = "; give the image folder with --images" if counts.get("images_missing") else ""
    return ", ".join(parts) + hint


def _clean_categories(records: list[Any], report: ValidationReport, name: str) -> list[dict[str, Any]]:
    seen: dict[int, str] = {}
    out = []
    for cat in records:
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise BadInput(f"category record {cat!r:.80} needs an integer 'id' and a 'name'", name)
        if cat["id"] in seen:
            if seen[cat["id"]] != cat["name"]:
                raise BadInput(f"category id {cat['id']} is used by both {seen[cat['id']]!r} and "
                               f"{cat['name']!r}", name)
            report.add("categories_duplicate_id", f"id {cat['id']} ({cat['name']})")
            continue
        seen[cat["id"]] = cat["name"]
        out.append(dict(cat))
    return out


def _clean_images(records, root, report, name, check_files, decode_images) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for im in records:
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            report.add("images_bad_record", f"{im!r:.80}")
            continue
        if _escapes(im["file_name"]):
            raise BadInput(f"image {im['id']} has file_name {im['file_name']!r}, which escapes the image "
                           f"folder (absolute paths and '..' are refused)", name)
        if im["id"] in seen:
            report.add("images_duplicate_id", f"id {im['id']} ({im['file_name']})")
            continue
        path = root / im["file_name"]
        if check_files and not path.is_file():
            report.add("images_missing", im["file_name"])
            continue
        im = dict(im)
        has_size = _is_number(im.get("width")) and _is_number(im.get("height"))
        if decode_images or (check_files and not has_size):
            size = _image_size(path, decode=decode_images)
            if size is None:
                report.add("images_unreadable", im["file_name"])
                continue
            if not has_size:
                im["width"], im["height"] = size
        if not (_is_number(im.get("width")) and _is_number(im.get("height"))) or min(im["width"], im["height"]) <= 0:
            report.add("images_bad_record", f"id {im['id']}: no positive width/height")
            continue
        seen.add(im["id"])
        out.append(im)
    return out


def _image_size(path: Path, decode: bool) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if decode:
                img.load()
            return img.size
    except (OSError, ValueError, SyntaxError):  # PIL raises all three for bad files
        return None


def _clean_annotations(records, sizes, dropped_images, category_ids, report) -> list[dict[str, Any]]:
    out = []
    seen: set[int] = set()
    for ann in records:
        if not isinstance(ann, dict) or not _is_id(ann.get("id")) or not _is_id(ann.get("image_id")):
            report.add("annotations_bad_record", f"{ann!r:.80}")
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            report.add("annotations_bad_record", f"id {ann['id']}: bbox {bbox!r:.40}")
            continue
        if ann["id"] in seen:
            report.add("annotations_duplicate_id", f"id {ann['id']}")
            continue
        seen.add(ann["id"])
        if ann["image_id"] in dropped_images:
            continue  # its image was dropped and counted already
        if ann["image_id"] not in sizes:
            report.add("annotations_unknown_image", f"id {ann['id']} -> image {ann['image_id']}")
            continue
        if ann.get("category_id") not in category_ids:
            report.add("annotations_unknown_category", f"id {ann['id']} -> category {ann.get('category_id')}")
            continue
        width, height = sizes[ann["image_id"]]
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            report.add("boxes_degenerate", f"id {ann['id']}: bbox {bbox}")
            continue
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            report.add("boxes_outside", f"id {ann['id']}: bbox {bbox} in a {width}x{height} image")
            continue
        ann = dict(ann)
        if (x1, y1, x2, y2) != (x, y, x + w, y + h):
            report.add("boxes_clipped", f"id {ann['id']}: bbox {bbox}")
            ann["bbox"] = [x1, y1, x2 - x1, y2 - y1]
        ann.setdefault("area", (x2 - x1) * (y2 - y1))
        ann.setdefault("iscrowd", 0)
        out.append(ann)
    return out


def xyxy(ann: dict[str, Any]) -> list[float]:
    x, y, w, h = ann["bbox"]
    return [x, y, x + w, y + h]
