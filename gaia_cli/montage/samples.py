"""The `gaia/montage-samples` HDF5 file that `extract-montage` writes and `pretrain` reads.

Tensors (n samples):
    pixels      uint8 [total]    every crop's H x W x 3 RGB bytes, one after another (chunked, gzip)
    offsets     int64 [n + 1]    sample i is pixels[offsets[i]:offsets[i + 1]]
    sizes       int32 [n, 2]     its height and width
    labels      int32 [n]        class index: 1..C (classes[k - 1]), 0 for background (negatives)
    categories  int64 [n]        the source dataset's category id (-1 for negatives)
    groups      int8  [n]        0 = S (0.5 <= w/h <= 1.5), 1 = T (w/h < 0.5), 2 = W (w/h > 1.5)
    boxes       float32 [n, 4]   the crop in its source image (x, y, w, h pixels)
    objects     float32 [n, 4]   the object's own box (NaN for negatives)
    sources     int64 [n, 2]     (dataset index, image id)
Meta: `classes` (names), `datasets` (path, sha256, image folder), `options` (the extraction's), `counts`.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from gaia_cli.artifacts import H5Artifact, InputRef, sha256_file
from gaia_cli.errors import BadInput
from gaia_cli.montage import GROUPS

KIND = "gaia/montage-samples"


class MontageSamples:
    """Random access to the crops of a samples file, safe to hand to DataLoader workers.

    The small per-sample arrays are read once; the pixels through an h5py handle that each process opens
    for itself on first use (an h5py file must not cross a fork).
    """

    def __init__(self, spec: str | os.PathLike):
        with H5Artifact(spec, KIND) as art:
            self.path = art.path
            self.header = art.header
            self.classes: list[str] = art.meta("classes")
            self.options: dict[str, Any] = art.meta("options")
            self.datasets: list[dict[str, Any]] = art.meta("datasets")
            try:
                f = art._file["tensors"]
                self.offsets = f["offsets"][()]
                self.sizes = f["sizes"][()]
                self.labels = f["labels"][()]
                self.groups = f["groups"][()]
                self.boxes = f["boxes"][()]
                self.objects = f["objects"][()]
                self.pixel_count = int(f["pixels"].shape[0])
            except (KeyError, OSError) as exc:
                raise BadInput(f"incomplete montage-samples file ({exc})", art.path) from None
        if not isinstance(self.classes, list) or not self.classes:
            raise BadInput("has no classes", self.path)
        self._validate()
        self._handle = self._pixels = None
        self._pid = None

    def _validate(self) -> None:
        """Refuse a damaged or hand-made file here, with one line, rather than deep inside a data loader."""
        n = len(self.labels)
        if not (len(self.offsets) == n + 1 and self.sizes.shape == (n, 2) and len(self.groups) == n
                and self.boxes.shape == (n, 4) and self.objects.shape == (n, 4)):
            raise BadInput("inconsistent montage-samples file (array lengths differ)", self.path)
        if n == 0:
            raise BadInput("holds no samples", self.path)
        problems = []
        if self.offsets[0] != 0 or self.offsets[-1] != self.pixel_count:
            problems.append(f"offsets span {self.offsets[0]}..{self.offsets[-1]} of {self.pixel_count} pixel bytes")
        if (self.sizes < 1).any() or not np.array_equal(np.diff(self.offsets), self.sizes[:, 0] * self.sizes[:, 1] * 3):
            problems.append("sample sizes do not match their offsets")
        if self.labels.min() < 0 or self.labels.max() > len(self.classes):
            problems.append(f"labels outside 0..{len(self.classes)}")
        if not np.isin(self.groups, (0, 1, 2)).all():
            problems.append("groups other than 0 (S), 1 (T), 2 (W)")
        if problems:
            raise BadInput("damaged montage-samples file: " + "; ".join(problems), self.path)

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def ref(self) -> InputRef:
        """Path and sha256 (reads the whole file: asked for once, when the output records its inputs)."""
        return InputRef(str(self.path), sha256_file(self.path))

    @property
    def identity(self) -> dict[str, Any]:
        """What tells this file from another without hashing gigabytes (a resumed run checks it)."""
        return {"created": self.header.get("created"), "command": self.header.get("command"),
                "bytes": self.path.stat().st_size, "samples": len(self)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"] = state["_pid"] = state["_pixels"] = None
        return state

    @property
    def num_classes(self) -> int:
        """Classifier outputs: the classes plus background (index 0)."""
        return len(self.classes) + 1

    def members(self, group: int) -> np.ndarray:
        return np.flatnonzero(self.groups == group)

    def check_groups(self) -> dict[str, int]:
        """Samples per group; BadInput when a group a montage needs is empty."""
        counts = {name: int((self.groups == g).sum()) for g, name in enumerate(GROUPS)}
        need = {"S": 2, "T": 1, "W": 1}
        short = [f"{name} has {counts[name]} (needs at least {n})" for name, n in need.items() if counts[name] < n]
        if short:
            raise BadInput("a montage needs 2 S-, 1 T- and 1 W-sample, but group " + "; group ".join(short)
                           + ": extract from more data, or widen --enlarge so crops change shape", self.path)
        return counts

    def area(self, index: int) -> float:
        """The area of the sample's bounding box in its source image, which orders a montage's two S-samples:
        the object's box for a positive (not the context around it), the crop for a negative."""
        box = self.objects[index] if not np.isnan(self.objects[index, 0]) else self.boxes[index]
        return float(box[2] * box[3])

    def crop(self, index: int) -> np.ndarray:
        """Sample `index` as uint8 [H, W, 3]."""
        if self._handle is None or self._pid != os.getpid():
            import h5py

            # a chunk cache of 16 MiB: neighbouring crops share chunks
            self._handle = h5py.File(self.path, "r", rdcc_nbytes=16 * 2**20)
            self._pixels = self._handle["tensors/pixels"]
            self._pid = os.getpid()
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        h, w = (int(x) for x in self.sizes[index])
        return self._pixels[start:stop].reshape(h, w, 3)
