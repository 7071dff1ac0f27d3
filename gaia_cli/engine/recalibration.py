"""A supernet path made ready to measure: the static model picked from loaded weights (`select_path`), its
batch norm re-estimated on seeded batches grouped by aspect ratio (`recalibration_batches`,
`recalibrate_path`, `recalibration_count`).

Machinery shared by `eval` (gaia_cli.tasks.evaluate, the command's workflow), finetune, export, search,
fit-pathfilter, select-data and rank; the COCO metrics themselves are gaia_cli.engine.metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaia_cli import console
from gaia_cli.data.dataset import DetectionDataset
from gaia_cli.data.sampler import GroupedBatchSampler, aspect_ratio_groups
from gaia_cli.errors import BadInput
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.detector import extract
from gaia_cli.space.archfile import read_arch

DEFAULT_RECALIBRATION = 2000


def recalibration_batches(coco, batch_size: int, seed: int):
    """Batches of images of `coco` in a seeded random order (labels unused), grouped by aspect ratio as
    in training: batch norm's statistics are taken over the padded batch tensor, so the batches
    that re-estimate them are made the way the training batches were."""
    dataset = DetectionDataset.images_only(coco)
    order = np.random.default_rng(seed).permutation(len(dataset)).tolist()
    groups = aspect_ratio_groups(dataset.aspect_ratios())
    for batch in GroupedBatchSampler(order, groups, batch_size):
        yield [dataset[i][0] for i in batch]


def recalibration_count(role: str, given: int | None) -> int:
    """How many images re-estimate BN: the number given, else 2000 for a supernet path and 0 for a model."""
    return given if given is not None else (DEFAULT_RECALIBRATION if role == "supernet" else 0)


def recalibrate_path(static, source, count: int, batch_size: int, seed: int) -> dict[str, Any]:
    """BN statistics of `static` re-estimated on `count` images of dataset `source`; the report for the output
    ({"images", "data"}), with a warning when the dataset has fewer images."""
    used = recalibrate(static, recalibration_batches(source, batch_size, seed), count)
    if used < count:
        console.warn(f"recalibrated BN with {used} images ({source.source} has no more), not {count}")
    return {"images": used, "data": source.source}


def select_path(model, meta: dict[str, Any], arch_spec: str | None, source: str):
    """The static model to evaluate: the supernet's path `arch`, or the model itself."""
    if meta["role"] == "supernet":
        if arch_spec is None:
            raise BadInput("a supernet holds many paths: choose one with --arch", source)
        arch = meta["space"].check(read_arch(arch_spec, meta["ref"].sha256), arch_spec)
        model.set_arch(arch)
        return extract(model, arch), arch
    if arch_spec is not None and read_arch(arch_spec) != meta["arch"]:
        raise BadInput(f"this model is the path {meta['arch']}; --arch names another", source)
    return model, meta["arch"]
