"""Sample extraction (Montage 3.1): positives from ground-truth boxes, negatives from the background.

Positives: each box (not a crowd region; shorter side at least `min_size` px) is enlarged by a factor drawn
uniformly from `enlarge` (both sides alike, so the shape is kept), shifted at random so it still holds the
whole object, and clipped to the image: the crop takes in some context around the object.

Negatives: boxes of the sizes of the image's own objects (or, in an image without objects, log-uniform
between `min_size` and half the image's shorter side), placed at random where they overlap no box at all
(IoU 0 with every annotation, crowd regions and skipped small boxes included). One negative per
`negative_ratio` positives over the whole dataset, spread evenly over the images. An image with no room for
its share gives fewer; the shortfall is reported.

Each crop is resized so its longer side is at most `max_side` (never enlarged), stored as uint8 RGB, and
put in a group by its aspect ratio: S (0.5 <= w/h <= 1.5), T (< 0.5) or W (> 1.5).

Every image draws from a generator seeded by (seed, dataset, image id), and images are written in dataset
order whatever the number of worker processes, so the output is a function of the inputs and the seed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from gaia_cli import console
from gaia_cli.artifacts import (atomic_path, check_h5_write, check_output_path, h5_writer, manifest, read_input,
                                write_h5_meta)
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco, xyxy
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.interrupts import StopRequested
from gaia_cli.labels.space import read_labels
from gaia_cli.montage import GROUPS, group_of
from gaia_cli.montage.assemble import MontageDataset, Template, preview_grid
from gaia_cli.montage.samples import KIND, MontageSamples

MAX_ENLARGE = 4.0  # a crop at most 4x the object's sides: beyond that the object is a detail of the sample
NEGATIVE_TRIES = 200  # placements tried per negative before it counts as a shortfall


@dataclasses.dataclass(frozen=True)
class ExtractOptions:
    enlarge: tuple[float, float] = (1.0, 1.5)  # context: factor on the box's sides, uniform in this range
    negative_ratio: float = 10.0  # positives per negative (the paper's 10:1)
    min_size: int = 16  # objects whose box is narrower or shorter than this (pixels) are not samples
    max_side: int = 224  # crops are shrunk so their longer side is at most this
    seed: int = 0


@dataclasses.dataclass
class ImageTask:
    """What one worker needs to cut one image's samples."""

    dataset: int
    index: int  # the image's position in its dataset: with the seed and the dataset, its generator's seed
    image_id: int
    path: str
    positives: list[tuple[list[float], int, int]]  # (x1y1x2y2 box, label, category id)
    obstacles: list[list[float]]  # every annotated box (x1y1x2y2): negatives keep clear of them
    negatives: int  # this image's share of negatives


@dataclasses.dataclass
class Sample:
    pixels: np.ndarray  # uint8 [h, w, 3]
    label: int  # class index (1..C), 0 for background
    category: int  # the source category id, -1 for background
    group: int
    box: tuple[float, float, float, float]  # the crop in the source image, x y w h
    obj: tuple[float, float, float, float]  # the object's box, x y w h (NaN for background)


# ------------------------------------------------------------------------------------------------ rules


def enlarge_box(box: list[float], width: int, height: int, factor: float, rng: np.random.Generator) -> tuple[int, ...]:
    """`box` (x1y1x2y2) scaled by `factor` about a random point, holding the whole box, clipped; integer."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    nw, nh = w * factor, h * factor
    nx1 = x1 - rng.uniform(0.0, nw - w)
    ny1 = y1 - rng.uniform(0.0, nh - h)
    return (max(0, math.floor(nx1)), max(0, math.floor(ny1)),
            min(width, math.ceil(nx1 + nw)), min(height, math.ceil(ny1 + nh)))


def overlaps_any(box: tuple[int, ...] | list[float], obstacles: np.ndarray) -> bool:
    """Whether `box` (x1y1x2y2) shares any area with one of `obstacles` [N, 4] (IoU > 0)."""
    if len(obstacles) == 0:
        return False
    iw = np.minimum(box[2], obstacles[:, 2]) - np.maximum(box[0], obstacles[:, 0])
    ih = np.minimum(box[3], obstacles[:, 3]) - np.maximum(box[1], obstacles[:, 1])
    return bool(np.any((iw > 0) & (ih > 0)))


def random_negatives(count: int, obstacles: np.ndarray, sizes: list[tuple[float, float]], width: int, height: int,
                     min_size: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Up to `count` integer boxes (x1y1x2y2) inside the image that overlap no obstacle.

    A box takes the size of one of `sizes` (the image's objects), or a log-uniform size when there are none;
    a size that does not fit is shrunk step by step, never below `min_size`.
    """
    out: list[tuple[int, int, int, int]] = []
    if min(width, height) < min_size:
        return out
    top = max(min_size, min(width, height) / 2)
    for _ in range(count):
        if sizes:
            w, h = sizes[rng.integers(len(sizes))]
        else:
            w = h = math.exp(rng.uniform(math.log(min_size), math.log(top)))
        for attempt in range(NEGATIVE_TRIES):
            if attempt and attempt % 40 == 0:  # crowded image: try smaller boxes
                w, h = w * 0.7, h * 0.7
            bw = int(round(min(max(w, min_size), width)))
            bh = int(round(min(max(h, min_size), height)))
            x1 = int(rng.integers(0, width - bw + 1))
            y1 = int(rng.integers(0, height - bh + 1))
            box = (x1, y1, x1 + bw, y1 + bh)
            if not overlaps_any(box, obstacles):
                out.append(box)
                break
    return out


def negative_share(index: int, images: int, total: int) -> int:
    """Image `index`'s share of `total` negatives spread over `images` as evenly as integers allow."""
    base, rest = divmod(total, images)
    return base + (1 if index < rest else 0)


# ---------------------------------------------------------------------------------------------- worker


def _crop(image, box: tuple[int, ...], max_side: int) -> np.ndarray:
    from PIL import Image

    crop = image.crop(box)
    w, h = crop.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        crop = crop.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    return np.asarray(crop, dtype=np.uint8)


def cut_image(task: ImageTask, options: ExtractOptions) -> tuple[list[Sample], int]:
    """The samples of one image, and how many of its negatives found no room."""
    from PIL import Image

    rng = np.random.default_rng([options.seed, task.dataset, task.index])
    try:
        with Image.open(task.path) as img:
            image = img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadInput(f"cannot read image {task.path} ({exc})") from None
    width, height = image.size
    samples = []
    lo, hi = options.enlarge
    for box, label, category in task.positives:
        crop_box = enlarge_box(box, width, height, rng.uniform(lo, hi) if hi > lo else lo, rng)
        if crop_box[2] - crop_box[0] < 1 or crop_box[3] - crop_box[1] < 1:
            continue
        pixels = _crop(image, crop_box, options.max_side)
        samples.append(Sample(pixels, label, category, group_of(pixels.shape[1], pixels.shape[0]),
                              _xywh(crop_box), _xywh(box)))
    obstacles = np.asarray(task.obstacles, dtype=np.float64).reshape(-1, 4)
    sizes = [(b[2] - b[0], b[3] - b[1]) for b, _, _ in task.positives]
    negatives = random_negatives(task.negatives, obstacles, sizes, width, height, options.min_size, rng)
    nan = (math.nan,) * 4
    for box in negatives:
        pixels = _crop(image, box, options.max_side)
        samples.append(Sample(pixels, 0, -1, group_of(pixels.shape[1], pixels.shape[0]), _xywh(box), nan))
    return samples, task.negatives - len(negatives)


def _xywh(box) -> tuple[float, float, float, float]:
    return (float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1]))


# -------------------------------------------------------------------------------------------- planning


class Plan:
    """The images of every dataset as tasks, made one at a time (a large dataset's boxes are not copied).

    `counts` (made by one pass over the annotations) decides the negatives: `negatives_wanted` in all,
    spread evenly over the images.
    """

    def __init__(self, datasets: list[Any], label_maps: list[dict[int, int]], options: ExtractOptions):
        self.datasets, self.label_maps, self.options = datasets, label_maps, options
        self._xyxy = xyxy
        positives = skipped_crowd = skipped_small = 0
        for coco in datasets:
            for record in coco.images:
                if not -2**63 <= record["id"] < 2**63:
                    raise BadInput(f"image id {record['id']} does not fit in 64 bits", coco.source)
            for ann in coco.annotations:
                box = xyxy(ann)
                if ann.get("iscrowd"):
                    skipped_crowd += 1
                elif min(box[2] - box[0], box[3] - box[1]) < options.min_size:
                    skipped_small += 1
                else:
                    positives += 1
        self.images = sum(len(c.images) for c in datasets)
        wanted = round(positives / options.negative_ratio) if options.negative_ratio > 0 else 0
        self.counts = {"positives": positives, "negatives_wanted": wanted, "skipped_crowd": skipped_crowd,
                       "skipped_small": skipped_small}

    def __len__(self) -> int:
        return self.images

    def __iter__(self) -> Iterator[ImageTask]:
        n = 0
        for d, (coco, label_map) in enumerate(zip(self.datasets, self.label_maps)):
            for index, record in enumerate(coco.images):
                positives, obstacles = [], []
                for ann in coco.annotations_of(record["id"]):
                    box = self._xyxy(ann)
                    obstacles.append(box)
                    if not ann.get("iscrowd") and min(box[2] - box[0], box[3] - box[1]) >= self.options.min_size:
                        positives.append((box, label_map[ann["category_id"]], ann["category_id"]))
                yield ImageTask(d, index, record["id"], str(coco.image_path(record)), positives, obstacles,
                                negative_share(n, self.images, self.counts["negatives_wanted"]))
                n += 1


def _worker_signals() -> None:
    """Workers leave SIGINT to the main process, which stops them; SIGTERM ends them (the main process then
    finds its pool broken and stops too)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_tasks(tasks: Iterable[ImageTask], options: ExtractOptions, workers: int,
              stop: Any = None) -> Iterator[tuple[ImageTask, tuple[list[Sample], int]]]:
    """Each task with its samples, in task order, cut by `workers` processes (0: in this one).

    At most 8 tasks per worker are in flight, so the crops of images cut but not yet written stay bounded
    when writing (compression, in this process) is slower than cutting. While waiting, `stop.requested` is
    polled (KeyboardInterrupt when set); a worker that dies (killed, out of memory) ends the run with an
    error instead of leaving it waiting.
    """
    if workers <= 0:
        for task in tasks:
            if stop is not None and stop.requested:
                raise KeyboardInterrupt()
            yield task, cut_image(task, options)
        return
    import collections
    import concurrent.futures
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    # forkserver/spawn would re-import torch in every worker; the work needs only PIL and numpy
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_signals)
    try:
        pending: collections.deque = collections.deque()
        queue = iter(tasks)
        for task in queue:
            pending.append((task, pool.submit(cut_image, task, options)))
            if len(pending) >= 8 * workers:
                break
        while pending:
            task, future = pending.popleft()
            while True:
                if stop is not None and stop.requested:
                    raise KeyboardInterrupt()
                try:
                    result = future.result(timeout=0.25)
                    break
                except concurrent.futures.TimeoutError:
                    continue
                except BrokenProcessPool:
                    if stop is not None and stop.requested:
                        raise KeyboardInterrupt() from None
                    raise RunFailure("a worker process died while cutting images (killed, or out of memory?); "
                                     "try fewer --workers") from None
            following = next(queue, None)
            if following is not None:
                pending.append((following, pool.submit(cut_image, following, options)))
            yield task, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- output


class SampleWriter:
    """Appends samples to an open HDF5 file: pixels in one flat, chunked, compressed uint8 dataset.

    The per-sample fields (about 80 bytes a sample) grow in numpy arrays and are written at `close`.
    """

    CHUNK = 1 << 16  # 64 KiB: a crop read decompresses about one or two chunks
    FIELDS = {"sizes": (np.int32, 2), "labels": (np.int32, 0), "categories": (np.int64, 0), "groups": (np.int8, 0),
              "boxes": (np.float32, 4), "objects": (np.float32, 4), "sources": (np.int64, 2), "offsets": (np.int64, 0)}

    def __init__(self, f):
        self.f = f
        self.pixels = f.create_dataset("tensors/pixels", shape=(0,), maxshape=(None,), dtype=np.uint8,
                                       chunks=(self.CHUNK,), compression="gzip", compression_opts=1)
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.written = 0
        self.count = 0
        self.end = 0  # pixel bytes so far, written or buffered
        self.arrays = {k: np.zeros((1024, width) if width else 1024, dtype) for k, (dtype, width) in self.FIELDS.items()}

    def add(self, sample: Sample, dataset: int, image_id: int) -> None:
        if self.count == len(self.arrays["labels"]):
            self.arrays = {k: np.concatenate([a, np.zeros_like(a)]) for k, a in self.arrays.items()}
        flat = sample.pixels.reshape(-1)
        self.buffer.append(flat)
        self.buffered += flat.size
        i, a = self.count, self.arrays
        a["offsets"][i] = self.end
        self.end += flat.size
        a["sizes"][i] = sample.pixels.shape[:2]
        a["labels"][i], a["categories"][i], a["groups"][i] = sample.label, sample.category, sample.group
        a["boxes"][i], a["objects"][i], a["sources"][i] = sample.box, sample.obj, (dataset, image_id)
        self.count += 1
        if self.buffered >= 64 * self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        block = np.concatenate(self.buffer)
        self.pixels.resize((self.written + block.size,))
        self.pixels[self.written:] = block
        self.written += block.size
        self.buffer, self.buffered = [], 0

    def close(self) -> int:
        """Write the per-sample arrays; returns the number of samples."""
        self.flush()
        n = self.count
        for name, values in self.arrays.items():
            data = values[:n]
            if name == "offsets":
                data = np.append(data, self.end)
            self.f.create_dataset(f"tensors/{name}", data=data)
        return n


# ------------------------------------------------------------------------------------------------- run


@dataclasses.dataclass
class ExtractRequest:
    data: list[str]
    output: Any
    labels: str | None = None
    images: Any = None
    options: ExtractOptions = dataclasses.field(default_factory=ExtractOptions)
    workers: int = 4
    preview: int = 0
    preview_out: Any = None
    preview_size: int = 224


def check_request(r: ExtractRequest) -> None:
    o = r.options
    check_options({"--ratio": o.negative_ratio, "--min-size": o.min_size, "--max-side": o.max_side,
                   "--workers": r.workers, "--preview": r.preview, "--preview-size": r.preview_size, "--seed": o.seed},
                  "extract-montage")
    lo, hi = o.enlarge
    if not 1.0 <= lo <= hi <= MAX_ENLARGE:
        raise BadInput(f"--enlarge {lo},{hi}: factors must satisfy 1 <= LOW <= HIGH <= {MAX_ENLARGE:g} "
                       f"(1 keeps the box as it is)")
    if bool(r.preview) != (r.preview_out is not None):
        raise BadInput("--preview N and --preview-out FILE go together")
    if r.preview_out is not None and str(r.preview_out).lower().rsplit(".", 1)[-1] not in ("png", "jpg", "jpeg"):
        raise BadInput(f"--preview-out {r.preview_out}: the picture must be a .png or .jpg file")


def load_sources(r: ExtractRequest) -> tuple[list[Any], list[dict[int, int]], list[str]]:
    """The datasets, each one's category -> class index map, and the class names."""
    if not r.data:
        raise BadInput("give the detection data with --data")
    if len(r.data) > 1 and r.labels is None:
        raise BadInput("several --data sets need --labels (a label space from gaia unify-labels)")
    if len(r.data) > 1 and r.images is not None:
        raise BadInput("--images goes with a single --data; several datasets find their images beside them")
    datasets = [load_coco(d, r.images) for d in r.data]
    if r.labels is None:
        coco = datasets[0]
        return datasets, [{cid: i for i, cid in enumerate(coco.category_ids, start=1)}], \
            [c["name"] for c in coco.categories]
    space = read_labels(r.labels)
    return datasets, [space.map_for(c.categories, origin=c.source) for c in datasets], space.names


def run(r: ExtractRequest) -> None:
    check_request(r)
    check_output_path(r.output)
    if r.preview_out is not None:
        check_output_path(r.preview_out)
        if Path(r.preview_out).resolve() == Path(r.output).resolve():
            raise BadInput("--preview-out and -o name the same file", r.output)

        Template(r.preview_size, option="--preview-size")  # a bad size fails before the work
    datasets, label_maps, classes = load_sources(r)
    written = {Path(r.output).resolve(), *([Path(r.preview_out).resolve()] if r.preview_out else [])}
    for source in [c.ref.path for c in datasets] + ([r.labels] if r.labels else []):
        if source != "-" and Path(source).resolve() in written:
            raise BadInput("an output would overwrite this input; write elsewhere", source)
    tasks = Plan(datasets, label_maps, r.options)
    counts = tasks.counts
    if counts["positives"] == 0:
        raise BadInput(f"no object boxes to extract: {counts['skipped_small']} are smaller than --min-size "
                       f"{r.options.min_size} px and {counts['skipped_crowd']} are crowd regions",
                       r.data[0] if len(r.data) == 1 else None)
    console.info(f"extracting {counts['positives']:,} positives and {counts['negatives_wanted']:,} negatives from "
                 f"{len(tasks):,} images with {r.workers or 'no'} worker process(es)")
    inputs = [c.ref for c in datasets]
    if r.labels is not None:
        inputs.append(read_input(r.labels).ref)
    shortfall = 0
    per_group = [0, 0, 0]
    negatives = 0
    with atomic_path(r.output) as tmp:
        with h5_writer(tmp) as f:
            writer = SampleWriter(f)
            with StopRequested("stopping: the output will not be written") as stop, \
                    console.progress("extracting", total=len(tasks)) as bar:
                for task, (samples, short) in run_tasks(tasks, r.options, min(r.workers, len(tasks)), stop):
                    for sample in samples:
                        writer.add(sample, task.dataset, task.image_id)
                        per_group[sample.group] += 1
                        negatives += sample.label == 0
                    shortfall += short
                    bar.advance(1)
                    check_h5_write(f)  # a full disk ends the run now, not after all the images
            n = writer.close()
            summary = {"samples": n, "positives": n - negatives, "negatives": negatives,
                       "negatives_without_room": shortfall, "skipped_small": counts["skipped_small"],
                       "skipped_crowd": counts["skipped_crowd"], "images": len(tasks),
                       "groups": dict(zip(GROUPS, per_group))}
            write_h5_meta(f, KIND, {
                "classes": classes,
                "datasets": [{"path": str(c.ref.path), "sha256": c.ref.sha256, "image_root": str(c.image_root)}
                             for c in datasets],
                "options": {**dataclasses.asdict(r.options), "enlarge": list(r.options.enlarge)},
                "counts": summary,
            }, inputs)
    if shortfall:
        console.warn(f"{shortfall} negatives found no background free of boxes (crowded images): "
                     f"{negatives} of {counts['negatives_wanted']} wanted")
    empty = [g for g, c in zip(GROUPS, per_group) if c == 0]
    if empty:
        console.warn(f"group(s) {', '.join(empty)} have no samples: pretrain needs S, T and W samples")
    console.info(f"{n:,} samples ({n - negatives:,} positive, {negatives:,} negative); groups "
                 + ", ".join(f"{g} {c:,}" for g, c in zip(GROUPS, per_group)))
    if r.preview:
        _write_preview(r, classes)
    console.emit_line({**manifest(KIND, r.output), "samples": n, "negatives": negatives,
                       "groups": dict(zip(GROUPS, per_group))})


def _write_preview(r: ExtractRequest, classes: list[str]) -> None:
    samples = MontageSamples(r.output)
    try:
        dataset = MontageDataset(samples, Template(r.preview_size, option="--preview-size"), length=r.preview)
    except BadInput as exc:
        console.warn(f"no preview: {exc.message}")
        return
    grid = preview_grid(dataset, r.preview, r.options.seed, classes)
    suffix = str(r.preview_out).lower().rsplit(".", 1)[-1]
    with atomic_path(r.preview_out) as tmp:
        grid.save(tmp, format="PNG" if suffix == "png" else "JPEG")
    console.info(f"preview of {r.preview} montages: {r.preview_out}")
