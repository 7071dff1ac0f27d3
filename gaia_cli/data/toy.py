"""A deterministic COCO-format detection dataset of rendered shapes, for tests, examples and CI.

Each category is a shape with its own geometry and a characteristic hue (jittered), drawn on a textured
background: `circle`, `square`, `triangle`, `ring`, `pole` (tall: aspect < 0.5), `plank` (wide: aspect > 2),
`cross`, `diamond`. A dataset draws the first N of them (`--categories`), or those named (`--classes`), in
the order named: two datasets can share some categories and not others. Objects vary in size (small, medium and large in COCO's sense at the default size),
count and overlap (COCO small, medium and large boxes all occur from `--size 320` up); no annotated shape
has more than 30% of its box covered by another, so what is annotated is visible (a later shape is drawn
over an earlier one). About one image in eight is crowded: a dense cluster of small objects, sometimes with a
COCO crowd region (`iscrowd: 1`) over a patch whose objects are not annotated one by one. Images are
landscape, portrait or square, so aspect-ratio grouping has something to group.

Layout of the output folder:

    OUT/train.json  OUT/val.json  OUT/train/000001.png ...  OUT/val/000001.png ...

`file_name`s are relative to OUT (`train/000001.png`), so `train.json` finds its images by itself.
The folder is built under a temp name and renamed into place when complete.
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gaia_cli.artifacts import temp_beside
from gaia_cli.checks import check_options
from gaia_cli.errors import BadInput, io_failure

# name -> (hue, aspect range w/h)
SHAPES: dict[str, tuple[float, tuple[float, float]]] = {
    "circle": (0.00, (0.85, 1.18)),
    "square": (0.14, (0.85, 1.18)),
    "triangle": (0.30, (0.8, 1.25)),
    "ring": (0.45, (0.85, 1.18)),
    "pole": (0.58, (0.18, 0.45)),
    "plank": (0.70, (2.2, 5.0)),
    "cross": (0.82, (0.8, 1.25)),
    "diamond": (0.92, (0.7, 1.4)),
}
MAX_CATEGORIES = len(SHAPES)
ASPECTS = ((4, 3), (3, 4), (1, 1))  # image width:height choices


def _color(rng: np.random.Generator, hue: float) -> tuple[int, int, int]:
    h = (hue + rng.uniform(-0.03, 0.03)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A dim gradient with speckle noise, so the detector cannot key on flat colour alone."""
    a, b = rng.uniform(20, 90, size=3), rng.uniform(20, 90, size=3)
    t = np.linspace(0.0, 1.0, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0.0, 1.0, h)[:, None, None]
    img = a * (1 - t) + b * t
    img = np.broadcast_to(img, (h, w, 3)) + rng.normal(0, 12, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _paper(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Warm light paper with faint blue ruled lines and grain."""
    base = rng.uniform(215, 240) + np.array([8.0, 2.0, -10.0])
    img = np.broadcast_to(base, (h, w, 3)).copy()
    spacing, offset = int(rng.integers(7, 11)), int(rng.integers(0, 7))
    img[offset::spacing, :, :] = base + np.array([-45.0, -30.0, 0.0])
    img += rng.normal(0, 6, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _night(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Near-black navy with sparse bright specks."""
    base = np.array([rng.uniform(4, 14), rng.uniform(6, 18), rng.uniform(28, 50)])
    img = np.broadcast_to(base, (h, w, 3)) + rng.normal(0, 3, size=(h, w, 3))
    stars = rng.random((h, w)) < 0.004
    img[stars] = rng.uniform(180, 255)
    return np.clip(img, 0, 255).astype(np.uint8)


def _halftone(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """White with a grid of grey halftone dots, as printed comics are."""
    step = int(rng.integers(5, 8))
    yy, xx = np.mgrid[0:h, 0:w]
    dots = ((xx % step - step / 2) ** 2 + (yy % step - step / 2) ** 2) < (step * 0.22) ** 2
    img = np.full((h, w, 3), 248.0)
    img[dots] = rng.uniform(170, 205)
    return img.astype(np.uint8)


def _hsv(rng: np.random.Generator, hue: float, saturation: tuple[float, float], value: tuple[float, float]):
    h = (hue + rng.uniform(-0.03, 0.03)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(*saturation), rng.uniform(*value))
    return int(r * 255), int(g * 255), int(b * 255)


@dataclasses.dataclass(frozen=True)
class Style:
    """A visual domain: the background, the shapes' palette (hue kept per category), an outline and its width."""

    name: str
    background: Callable[[np.random.Generator, int, int], np.ndarray]
    color: Callable[[np.random.Generator, float], tuple[int, int, int]]
    outline: tuple[int, int, int] | None = None
    outline_width: int = 1


# the first is the default; its images are what toy-data has always written, byte for byte
STYLES: dict[str, Style] = {s.name: s for s in (
    Style("dim", _background, _color),
    Style("paper", _paper, lambda rng, hue: _hsv(rng, hue, (0.25, 0.45), (0.45, 0.7)), (40, 40, 60), 1),
    Style("night", _night, lambda rng, hue: _hsv(rng, hue, (0.85, 1.0), (0.45, 0.65))),
    Style("comic", _halftone, lambda rng, hue: _hsv(rng, hue, (0.9, 1.0), (0.95, 1.0)), (0, 0, 0), 3),
)}
DEFAULT_STYLE = next(iter(STYLES))


def style_of(name: str) -> Style:
    if name not in STYLES:
        raise BadInput(f"--style {name!r}: the styles are {', '.join(STYLES)}")
    return STYLES[name]


def _outline(draw, name: str, box: tuple[float, float, float, float], color, width: int) -> None:
    """The shape's contour (a style's ink line), drawn over its fill."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if name in ("circle", "ring"):
        draw.ellipse(box, outline=color, width=width)
    elif name in ("square", "pole", "plank"):
        draw.rectangle(box, outline=color, width=width)
    elif name == "triangle":
        draw.line([(cx, y1), (x2, y2), (x1, y2), (cx, y1)], fill=color, width=width)
    elif name == "cross":
        tw, th = w * 0.3, h * 0.3
        draw.line([(cx - tw / 2, y1), (cx + tw / 2, y1), (cx + tw / 2, cy - th / 2), (x2, cy - th / 2),
                   (x2, cy + th / 2), (cx + tw / 2, cy + th / 2), (cx + tw / 2, y2), (cx - tw / 2, y2),
                   (cx - tw / 2, cy + th / 2), (x1, cy + th / 2), (x1, cy - th / 2), (cx - tw / 2, cy - th / 2),
                   (cx - tw / 2, y1)], fill=color, width=width)
    elif name == "diamond":
        draw.line([(cx, y1), (x2, cy), (cx, y2), (x1, cy), (cx, y1)], fill=color, width=width)


def _draw(draw, name: str, box: tuple[float, float, float, float], color, rng: np.random.Generator) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if name == "circle":
        draw.ellipse(box, fill=color)
    elif name in ("square", "pole", "plank"):
        draw.rectangle(box, fill=color)
    elif name == "triangle":
        draw.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=color)
    elif name == "ring":
        draw.ellipse(box, outline=color, width=max(2, int(min(w, h) * 0.2)))
    elif name == "cross":
        tw, th = w * 0.3, h * 0.3
        draw.rectangle((cx - tw / 2, y1, cx + tw / 2, y2), fill=color)
        draw.rectangle((x1, cy - th / 2, x2, cy + th / 2), fill=color)
    elif name == "diamond":
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=color)
    else:  # pragma: no cover - SHAPES and this function are kept in step
        raise ValueError(name)


def _overlap(a, b) -> float:
    """The share of the smaller box that the two boxes have in common.

    A later shape is drawn over an earlier one, so this bounds how much of either can be hidden. IoU does
    not: a small box inside a large one has a small IoU and can vanish under it while still annotated.
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def _place(rng, w, h, aspect_range, side_range, region=None):
    """A box of random size and aspect inside the image (or `region`), in integer pixels."""
    rx1, ry1, rx2, ry2 = region or (0, 0, w, h)
    aspect = float(np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1]))))
    side = rng.uniform(*side_range)  # sqrt(area)
    bw = max(4.0, min(side * np.sqrt(aspect), rx2 - rx1))
    bh = max(4.0, min(side / np.sqrt(aspect), ry2 - ry1))
    x1 = rng.uniform(rx1, max(rx1, rx2 - bw))
    y1 = rng.uniform(ry1, max(ry1, ry2 - bh))
    return (round(x1), round(y1), round(x1 + bw), round(y1 + bh))


def render_image(rng: np.random.Generator, size: int, names: list[str],
                 style: Style | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """One image and its objects: [{"name", "box" (x1y1x2y2), "iscrowd"}], in `style` (default: the first)."""
    from PIL import Image, ImageDraw

    style = style or STYLES[DEFAULT_STYLE]
    aw, ah = ASPECTS[rng.integers(len(ASPECTS))]
    scale = size / max(aw, ah)
    w, h = int(round(aw * scale)), int(round(ah * scale))
    img = Image.fromarray(style.background(rng, w, h))
    pen = ImageDraw.Draw(img)

    def paint(name: str, box, color) -> None:  # the shape, then the style's ink line over it
        _draw(pen, name, box, color, rng)
        if style.outline is not None:
            _outline(pen, name, box, style.outline, style.outline_width)
    objects: list[dict[str, Any]] = []
    crowded = rng.random() < 0.125
    short = min(w, h)
    if crowded:
        # a dense cluster of one class: many small, touching objects, all annotated
        name = names[rng.integers(len(names))]
        cw, ch = rng.uniform(0.4, 0.7) * w, rng.uniform(0.4, 0.7) * h
        cx1, cy1 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        region = (cx1, cy1, cx1 + cw, cy1 + ch)
        for _ in range(int(rng.integers(10, 21))):
            box = _place(rng, w, h, SHAPES[name][1], (0.06 * short, 0.12 * short), region)
            if all(_overlap(box, o["box"]) < 0.3 for o in objects):
                paint(name, box, style.color(rng, SHAPES[name][0]))
                objects.append({"name": name, "box": box, "iscrowd": 0})
        if rng.random() < 0.5:
            # a crowd region: a patch of tiny objects annotated as one ignore box, as COCO does
            name = names[rng.integers(len(names))]
            pw, ph = 0.25 * w, 0.25 * h
            px1, py1 = rng.uniform(0, w - pw), rng.uniform(0, h - ph)
            patch = (px1, py1, px1 + pw, py1 + ph)
            boxes = [_place(rng, w, h, SHAPES[name][1], (0.03 * short, 0.05 * short), patch)
                     for _ in range(int(rng.integers(8, 15)))]
            for box in boxes:
                paint(name, box, style.color(rng, SHAPES[name][0]))
            union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                     max(b[3] for b in boxes))
            objects.append({"name": name, "box": union, "iscrowd": 1})
    else:
        for _ in range(int(rng.integers(1, 7))):
            name = names[rng.integers(len(names))]
            box = _place(rng, w, h, SHAPES[name][1], (0.08 * short, 0.55 * short))
            if all(_overlap(box, o["box"]) < 0.3 for o in objects):  # no annotated shape is mostly hidden
                paint(name, box, style.color(rng, SHAPES[name][0]))
                objects.append({"name": name, "box": box, "iscrowd": 0})
    return img, objects


def _split(rng, out: Path, split: str, count: int, size: int, names: list[str], info: dict,
           style: Style | None = None) -> dict[str, Any]:
    folder = out / split
    folder.mkdir()
    categories = [{"id": i, "name": n, "supercategory": "shape"} for i, n in enumerate(names, start=1)]
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for image_id in range(1, count + 1):
        img, objects = render_image(rng, size, names, style)
        file_name = f"{split}/{image_id:06d}.png"
        img.save(out / file_name, format="PNG", optimize=False)
        images.append({"id": image_id, "file_name": file_name, "width": img.width, "height": img.height})
        for obj in objects:
            x1, y1, x2, y2 = obj["box"]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id[obj["name"]],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float((x2 - x1) * (y2 - y1)),
                "iscrowd": obj["iscrowd"],
            })
    return {"info": {**info, "split": split}, "images": images, "annotations": annotations,
            "categories": categories}


def class_names(categories: int | None = None, classes: list[str] | str | None = None) -> list[str]:
    """The shapes a dataset draws, in category id order: the first `categories` (default 6) of SHAPES, or
    `classes` by name (a list, or a comma-separated string) in the order given."""
    if classes is None:
        categories = 6 if categories is None else categories
        check_options({"--categories": categories}, "toy-data")
        return list(SHAPES)[:categories]
    if categories is not None:
        raise BadInput("give --categories (the first N shapes) or --classes (shapes by name), not both")
    names = [n.strip().lower() for n in (classes.split(",") if isinstance(classes, str) else classes)]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        named = [repr(n) for n in unknown if n]
        what = f"unknown class{'es' if len(named) > 1 else ''} {', '.join(named)}" if named else "an empty name"
        raise BadInput(f"--classes: {what}; the known shapes are {', '.join(SHAPES)}")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice:
        raise BadInput(f"--classes names {twice!r} twice")
    return names


def make_toy_dataset(out: Path, images: int, size: int, seed: int, val_images: int | None = None,
                     categories: int | None = None, force: bool = False,
                     classes: list[str] | str | None = None, style: str = DEFAULT_STYLE) -> dict[str, Any]:
    """Write the toy dataset to `out` (a folder); return a summary. Same arguments, same bytes.

    The shapes are the first `categories` of SHAPES (6 when neither is given), or `classes` by name, in
    the order given (category ids 1..N follow it); giving both is refused. `style` names a visual domain
    (STYLES: background, palette, outline); the default one writes what toy-data always has.
    """
    check_options({"--images": images, "--val-images": val_images, "--size": size, "--categories": categories,
                   "--seed": seed}, "toy-data")
    names = class_names(categories, classes)
    drawn = style_of(style)
    val_images = max(1, -(-images // 4)) if val_images is None else val_images
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not force:
        raise BadInput("already exists and is not an empty folder (use --force to replace it)", out)
    if not out.parent.resolve().is_dir():
        raise BadInput(f"output folder {str(out.parent)!r} does not exist", out)
    info = {"description": "gaia toy shapes", "seed": seed, "size": size, "categories": len(names)}
    if style != DEFAULT_STYLE:  # the default's files stay as they always were
        info["style"] = style
    rng = np.random.default_rng(seed)
    tmp = temp_beside(out.parent.resolve() / out.name, folder=True)  # also removes ones killed runs left
    try:
        summary = {"path": str(out.resolve()), "categories": names}
        if style != DEFAULT_STYLE:
            summary["style"] = style
        for split, count in (("train", images), ("val", val_images)):
            data = _split(rng, tmp, split, count, size, names, info, drawn)
            (tmp / f"{split}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            summary[split] = {"annotations": str((out / f"{split}.json").resolve()), "images": count,
                              "boxes": sum(1 for a in data["annotations"] if not a["iscrowd"]),
                              "crowd_regions": sum(1 for a in data["annotations"] if a["iscrowd"])}
        if out.exists():
            old = out.parent / f".{out.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except OSError as exc:  # a full disk: one line naming the folder (exit 1); the temp folder goes below
        raise io_failure(exc, out) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
