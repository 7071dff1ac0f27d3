"""Represent vectors (GAIA 3.2.2) and their cache, the `gaia/features` HDF5 file.

For an image and a category present in it, the represent vector is the mean over the image's ground-truth
boxes of that category (crowd regions left out) of the box head's output, fc7: RoIAlign of the FPN maps at
the box, through the two-layer box head, as the detector computes it for a proposal. The mean is
L2-normalised, so the cosine of two vectors is their dot product.

Layout of a `gaia/features` file (schema 1), one per (model, dataset):

    /meta/model        {"digest": sha256 of the model's tensors, "weights": ..., "arch": ..., "dim": D}
    /meta/dataset      {"name": ..., "path": the COCO file, resolved}
    /meta/label_space  null (the dataset's own category ids) or {"path", "sha256"} of the gaia/labels file
                       whose unified ids the category ids are
    /meta/categories   [{"id", "name"}, ...] of the ids used
    /tensors/image_ids     int64 [R]      one row per (image, category), rows of an image together
    /tensors/category_ids  int64 [R]
    /tensors/vectors       float16 [R, D] chunked
    /tensors/done          int64 [M]      every image computed (one without boxes has no row)

A file is written whole, atomically; a second run reads it, computes only the images it lacks and writes
the union. Under `torchrun` each process computes its share of the missing images, in blocks that rank 0
gathers and writes as they come, so memory is bounded by a block.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from gaia_cli.artifacts import H5Artifact, atomic_path, check_h5_write, h5_writer, write_h5_meta
from gaia_cli.errors import BadInput

KIND = "gaia/features"
ROWS_PER_CHUNK = 4096  # HDF5 chunk of the vectors (8 MB at D = 1024)


# ---------------------------------------------------------------------------------------- represent vectors


def represent(fc7: torch.Tensor, categories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(categories [C] sorted, vectors [C, D]): per category, the L2-normalised mean of its boxes' fc7 rows.

    fc7 [N, D] are the box head's outputs for an image's N boxes; categories [N] their category ids.
    """
    cats, inverse = categories.unique(return_inverse=True)
    sums = torch.zeros(len(cats), fc7.shape[1], dtype=torch.float32, device=fc7.device)
    sums.index_add_(0, inverse, fc7.float())
    counts = torch.bincount(inverse, minlength=len(cats)).clamp(min=1).to(sums)
    return cats, torch.nn.functional.normalize(sums / counts[:, None], dim=1)


def box_features(features: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_sizes: list[tuple[int, int]],
                 roi_pool: torch.nn.Module, box_head: torch.nn.Module) -> list[torch.Tensor]:
    """fc7 at each image's boxes (x1y1x2y2 in the pixels of the transformed images): [n_i, D] per image."""
    pooled = roi_pool(features, boxes, image_sizes)
    out = box_head(pooled)
    return list(out.split([len(b) for b in boxes]))


@torch.no_grad()
def image_vectors(model, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]):
    """For each image: (categories [C], unit vectors [C, D]) of a static torchvision Faster R-CNN in eval mode.

    `targets` hold `boxes` (x1y1x2y2 pixels of the original image) and `labels` (category ids); the model's
    own transform resizes the images and the boxes alike, as for a proposal at inference.
    """
    out: list[tuple[torch.Tensor, torch.Tensor | None]] = [(torch.zeros(0, dtype=torch.int64), None)] * len(images)
    # ignore regions (label -1, a percentage split's unchosen instances) are no category's evidence
    targets = [{"boxes": t["boxes"][t["labels"] >= 0], "labels": t["labels"][t["labels"] >= 0]} for t in targets]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(targets):
        if len(t["boxes"]):
            groups.setdefault(tuple(images[i].shape), []).append(i)
    # images of one size at a time: a batch pads its images to the largest, and the padding would change
    # a vector with the company its image keeps (a vector is the image's own, whichever process computes it)
    for keep in groups.values():
        image_list, scaled = model.transform([images[i] for i in keep], [dict(targets[i]) for i in keep])
        features = model.backbone(image_list.tensors)
        fc7 = box_features(features, [t["boxes"] for t in scaled], image_list.image_sizes,
                           model.roi_heads.box_roi_pool, model.roi_heads.box_head)
        for i, rows, t in zip(keep, fc7, scaled):
            out[i] = represent(rows, t["labels"])
    return out


# --------------------------------------------------------------------------------------------- the cache


@dataclasses.dataclass
class Identity:
    """What a cache file must have been computed with: the model, the dataset, the label space."""

    model: dict[str, Any]
    dataset: dict[str, Any]
    label_space: dict[str, Any] | None
    categories: list[dict[str, Any]]

    @property
    def dim(self) -> int:
        return int(self.model["dim"])


def cache_path(folder: Path, name: str, annotations: str) -> Path:
    """`FOLDER/NAME-XXXXXXXX.h5`: the dataset's name and a digest of its resolved path (two files of one name
    never share a cache)."""
    digest = hashlib.sha256(os.fsencode(os.path.realpath(annotations))).hexdigest()[:8]
    return folder / f"{name}-{digest}.h5"


class Cache:
    """A `gaia/features` file opened for reading (or absent): its rows, its images, read in chunks."""

    def __init__(self, path: Path, identity: Identity | None = None):
        import h5py

        self.path = Path(path)
        self.rows = 0
        self.done: np.ndarray = np.zeros(0, dtype=np.int64)
        self._art = None
        if not self.path.exists():
            return
        self._art = H5Artifact(self.path, KIND)
        try:
            if identity is not None:
                check_identity(self._art, identity)
            self.model = self._art.meta("model")
            self.label_space = self._art.meta("label_space")
            self.categories = self._art.meta("categories")
            f = self._art._file
            try:
                self._ids, self._cats, self._vecs = (f["tensors/image_ids"], f["tensors/category_ids"],
                                                     f["tensors/vectors"])
                self.done = f["tensors/done"][()]
            except KeyError as exc:
                raise BadInput(f"is not a complete {KIND} file ({exc})", self.path) from None
            if not isinstance(self._vecs, h5py.Dataset) or self._vecs.ndim != 2:
                raise BadInput(f"is not a complete {KIND} file (vectors are not a matrix)", self.path)
            self.rows = int(self._vecs.shape[0])
            self.dim = int(self._vecs.shape[1])
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._art is not None:
            self._art.close()
            self._art = None

    def chunks(self, rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(start, image ids, category ids, vectors fp16) of consecutive rows, `rows` at a time."""
        for start in range(0, self.rows, rows):
            end = min(start + rows, self.rows)
            yield start, self._ids[start:end], self._cats[start:end], self._vecs[start:end]

    def everything(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image ids, category ids, vectors) of every row (for a small dataset: the target)."""
        if not self.rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float16)
        return self._ids[()], self._cats[()], self._vecs[()]

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, category ids) of the given rows (any order)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        order = np.unique(rows)
        ids, cats = self._ids[order], self._cats[order]
        where = np.searchsorted(order, rows)
        return ids[where], cats[where]

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        order = np.unique(rows)
        return self._vecs[order][np.searchsorted(order, rows)] if len(rows) else np.zeros((0, self.dim), np.float16)


def check_identity(art, identity: Identity) -> None:
    """Refuse a cache computed by another model, for another dataset or in another label space."""
    model, dataset, space = art.meta("model"), art.meta("dataset"), art.meta("label_space")
    if not isinstance(model, dict) or model.get("digest") != identity.model["digest"]:
        what = (f"{model.get('weights')}" + (f" path {model.get('arch')}, BN recalibrated on "
                                             f"{model.get('recalibrate')} images" if model.get("arch") else "")
                if isinstance(model, dict) else "an unknown model")
        raise BadInput(f"holds the features of another model ({what}); give another --features folder, "
                       "or remove the file", art.path)
    if not isinstance(dataset, dict) or dataset.get("path") != identity.dataset["path"]:
        raise BadInput(f"holds the features of another dataset ({dataset.get('path') if isinstance(dataset, dict) else '?'})",
                       art.path)
    mine = (space or {}).get("sha256") if isinstance(space, dict) or space is None else "?"
    wanted = (identity.label_space or {}).get("sha256")
    if mine != wanted:
        said = f"the label space {space.get('path')}" if isinstance(space, dict) else "the dataset's own categories"
        want = f"--labels {identity.label_space['path']}" if identity.label_space else "no --labels"
        raise BadInput(f"holds features in another label space ({said}), not the one asked for ({want}); give "
                       "the same --labels, or another --features folder", art.path)


def update_cache(path: Path, identity: Identity, missing: list[int],
                 compute: Callable[[list[int]], Iterator[list[tuple[int, np.ndarray, np.ndarray]]]],
                 inputs=None) -> dict[str, Any]:
    """Write `path` with its cached rows and those of the `missing` images, computed block by block.

    `compute(missing)` yields blocks: lists of (image id, category ids [C], vectors [C, D] fp16) per image.
    Nothing is written when nothing is missing. Returns what was done.
    """
    old = Cache(path, identity) if path.exists() else None
    try:
        if not missing:
            return {"path": str(path), "computed": 0, "rows": old.rows if old else 0,
                    "images": len(old.done) if old else 0}
        with atomic_path(path) as tmp:
            with h5_writer(tmp) as f:
                meta = {"model": identity.model, "dataset": identity.dataset, "label_space": identity.label_space,
                        "categories": identity.categories}
                write_h5_meta(f, KIND, meta, inputs)
                d = identity.dim
                chunk = (ROWS_PER_CHUNK, d)
                ids = f.create_dataset("tensors/image_ids", (0,), "int64", maxshape=(None,), chunks=(ROWS_PER_CHUNK,))
                cats = f.create_dataset("tensors/category_ids", (0,), "int64", maxshape=(None,), chunks=(ROWS_PER_CHUNK,))
                vecs = f.create_dataset("tensors/vectors", (0, d), "float16", maxshape=(None, d), chunks=chunk)
                done: list[np.ndarray] = [old.done] if old else []

                def append(i: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
                    n = len(i)
                    if not n:
                        return
                    end = ids.shape[0] + n
                    for ds in (ids, cats, vecs):
                        ds.resize(end, axis=0)
                    ids[end - n:], cats[end - n:], vecs[end - n:] = i, c, v
                    check_h5_write(f)

                if old is not None:
                    for _, i, c, v in old.chunks(ROWS_PER_CHUNK * 4):
                        append(i, c, v)
                    old.close()
                computed = 0
                for block in compute(missing):
                    rows = [(image_id, c, v) for image_id, c, v in block]
                    done.append(np.array([r[0] for r in rows], dtype=np.int64))
                    computed += len(rows)
                    rows = [r for r in rows if len(r[1])]
                    if rows:
                        append(np.concatenate([np.full(len(c), image_id, np.int64) for image_id, c, _ in rows]),
                               np.concatenate([c for _, c, _ in rows]).astype(np.int64),
                               np.concatenate([v for _, _, v in rows]).astype(np.float16))
                all_done = np.concatenate(done) if done else np.zeros(0, np.int64)
                f.create_dataset("tensors/done", data=all_done.astype(np.int64))
                total = int(ids.shape[0])
        return {"path": str(path), "computed": computed, "rows": total, "images": int(len(all_done))}
    finally:
        if old is not None:
            old.close()


def model_digest(model: torch.nn.Module) -> str:
    """sha256 of a model's tensors by name: the identity of the model that computed a cache."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
