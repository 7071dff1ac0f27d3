"""`predict` as a library call: detections of a static model on image files, in COCO results format.

`image_id` comes from a COCO file's `images` (matched by file name) when `--coco` is given, else from a
file's numeric stem (`000123.jpg` -> 123), else the file's position in the list (1, 2, ...). `category_id`
is the COCO file's id of the class (matched by name) with `--coco`, else the class's index (1..C).

The command's workflow; evaluation's own pass over a COCO dataset is gaia_cli.engine.metrics.predict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gaia_cli import console, devices
from gaia_cli.artifacts import parse_json, read_input
from gaia_cli.checks import check_options
from gaia_cli.data.coco import IMAGE_SUFFIXES
from gaia_cli.errors import BadInput
from gaia_cli.labels.names import keys
from gaia_cli.nn.exported import load_any
from gaia_cli.tasks.requests import PredictRequest


def image_files(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise BadInput("no such image or folder", p)
    if not files:
        raise BadInput("no images found in " + ", ".join(inputs))
    return files


def run(r: PredictRequest) -> list[dict[str, Any]]:
    from PIL import Image
    from torchvision.transforms.functional import to_tensor

    check_options({"--score": r.score, "--batch-size": r.batch_size}, "predict")
    device = devices.resolve(r.device)
    model, meta = load_any(r.weights, device)
    if meta["role"] != "model":
        raise BadInput("predict takes a static model (from finetune, or eval's extraction); for a supernet, "
                       "run gaia finetune first", r.weights)
    classes = meta["classes"]
    files = image_files(r.inputs)
    ids = {}
    category_of = {i: i for i in range(1, len(classes) + 1)}
    if r.coco:
        src = read_input(r.coco)
        obj = parse_json(src.data, src.name)
        if not isinstance(obj, dict) or not isinstance(obj.get("images"), list) \
                or not isinstance(obj.get("categories"), list):
            what = f"a {obj['kind']} artifact" if isinstance(obj, dict) and isinstance(obj.get("kind"), str) \
                else "not a COCO annotations file"
            raise BadInput(f"is {what}; --coco takes the COCO annotations the images come from (its 'images' "
                           "and 'categories')", src.name)
        by_name = {Path(im["file_name"]).name: im["id"] for im in obj.get("images", []) if isinstance(im, dict)}
        ids = {f: by_name.get(f.name) for f in files}
        missing = [f.name for f, i in ids.items() if i is None]
        if missing:
            raise BadInput(f"images not listed in it: {', '.join(missing[:3])}", src.name)
        cat_by_key = {k: c["id"] for c in obj.get("categories", []) for k in keys(c["name"])}
        category_of = {i: next((cat_by_key[k] for k in keys(n) if k in cat_by_key), None)
                       for i, n in enumerate(classes, start=1)}
    else:
        for position, f in enumerate(files, start=1):
            ids[f] = int(f.stem) if f.stem.isdigit() else position
    model.to(device).eval()
    results: list[dict[str, Any]] = []
    if r.draw:
        r.draw.mkdir(parents=True, exist_ok=True)
    with console.progress("predicting", total=len(files)) as bar, torch.no_grad():
        for start in range(0, len(files), r.batch_size):
            batch = files[start: start + r.batch_size]
            pictures = []
            for f in batch:
                try:
                    with Image.open(f) as img:
                        pictures.append(img.convert("RGB"))
                except (OSError, ValueError, SyntaxError) as exc:
                    raise BadInput(f"cannot read the image ({exc})", f) from None
            outputs = model([to_tensor(p).to(device) for p in pictures])
            for f, picture, out in zip(batch, pictures, outputs):
                keep = out["scores"] >= r.score
                found, names = [], []
                for box, score, label in zip(out["boxes"][keep].tolist(), out["scores"][keep].tolist(),
                                             out["labels"][keep].tolist()):
                    if category_of.get(label) is None:
                        continue
                    x1, y1, x2, y2 = box
                    found.append({"image_id": ids[f], "category_id": category_of[label],
                                  "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
                    names.append(classes[label - 1])
                if r.draw:
                    draw_boxes(picture, found, names).save(r.draw / (f.stem + ".png"))
                results += found
            bar.advance(len(batch))
    return results


def draw_boxes(picture, detections: list[dict[str, Any]], names: list[str]):
    """The picture with each detection's box, class name and score drawn on it."""
    from PIL import ImageDraw

    canvas = picture.copy()
    pen = ImageDraw.Draw(canvas)
    for d, name in zip(detections, names):
        x, y, w, h = d["bbox"]
        pen.rectangle((x, y, x + w, y + h), outline=(255, 64, 64), width=2)
        pen.text((x + 2, max(y - 11, 0)), f"{name} {d['score']:.2f}", fill=(255, 255, 0))
    return canvas
