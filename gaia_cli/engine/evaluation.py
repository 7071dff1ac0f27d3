"""`eval` as a library call: load the weights, pick the path, recalibrate BN, evaluate with pycocotools."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from gaia_cli import console
from gaia_cli.errors import BadInput

DEFAULT_RECALIBRATION = 2000


@dataclasses.dataclass
class EvalRequest:
    weights: str
    data: str
    arch: str | None = None
    images: Path | None = None
    recalibrate: int | None = None
    recalibrate_data: str | None = None
    batch_size: int = 4
    device: str = "auto"
    seed: int = 0


def recalibration_batches(coco, batch_size: int, seed: int):
    """Batches of images of `coco` in a seeded random order (labels unused), grouped by aspect ratio as
    in training: batch norm's statistics are taken over the padded batch tensor, so the batches
    that re-estimate them are made the way the training batches were."""
    from gaia_cli.data.dataset import DetectionDataset
    from gaia_cli.data.sampler import GroupedBatchSampler, aspect_ratio_groups

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
    from gaia_cli.nn.bn import recalibrate

    used = recalibrate(static, recalibration_batches(source, batch_size, seed), count)
    if used < count:
        console.warn(f"recalibrated BN with {used} images ({source.source} has no more), not {count}")
    return {"images": used, "data": source.source}


def select_path(model, meta: dict[str, Any], arch_spec: str | None, source: str):
    """The static model to evaluate: the supernet's path `arch`, or the model itself."""
    from gaia_cli.nn.detector import extract
    from gaia_cli.space.archfile import read_arch

    if meta["role"] == "supernet":
        if arch_spec is None:
            raise BadInput("a supernet holds many paths: choose one with --arch", source)
        arch = meta["space"].check(read_arch(arch_spec, meta["ref"].sha256), arch_spec)
        model.set_arch(arch)
        return extract(model, arch), arch
    if arch_spec is not None and read_arch(arch_spec) != meta["arch"]:
        raise BadInput(f"this model is the path {meta['arch']}; --arch names another", source)
    return model, meta["arch"]


def run(r: EvalRequest) -> dict[str, Any]:
    from gaia_cli import devices
    from gaia_cli.data.coco import load_coco
    from gaia_cli.engine.evaluate import evaluate, label_map
    from gaia_cli.nn.exported import load_any

    from gaia_cli.checks import check_options

    check_options({"--batch-size": r.batch_size, "--recalibrate": r.recalibrate, "--seed": r.seed}, "eval")
    device = devices.resolve(r.device)
    model, meta = load_any(r.weights, device)
    if "exported" in meta and r.recalibrate:
        raise BadInput("is an exported model: its BN statistics are fixed in the file (export again with "
                       "--recalibrate to change them)", r.weights)
    coco = load_coco(r.data, r.images)
    label_map(meta["classes"], coco)  # refuse mismatched categories before any work
    static, arch = select_path(model, meta, r.arch, str(meta["ref"].path))
    static.to(device)
    count = recalibration_count(meta["role"], r.recalibrate)
    recal: dict[str, Any] = {"images": 0}
    if count:
        source = coco if r.recalibrate_data is None else load_coco(r.recalibrate_data)
        recal = recalibrate_path(static, source, count, r.batch_size, r.seed)
    metrics = evaluate(static, meta["classes"], coco, device, r.batch_size)
    console.info(f"{coco.source}: AP {metrics['AP']:.2f} AP50 {metrics['AP50']:.2f} on {len(coco.images)} images")
    out = {"arch": arch.as_dict(), "weights": meta["ref"].as_dict(), "data": coco.ref.as_dict(),
           "recalibration": recal, **metrics}
    if "exported" in meta:
        out["exported"] = meta["exported"]
    return out
