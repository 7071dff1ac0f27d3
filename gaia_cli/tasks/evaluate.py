"""`eval` as a library call: load the weights, pick the path, recalibrate BN, evaluate with pycocotools.

The command's workflow; the machinery it runs is gaia_cli.engine.recalibration (the path and its batch norm)
and gaia_cli.engine.metrics (COCO AP).
"""

from __future__ import annotations

from typing import Any

from gaia_cli import console, devices
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco
from gaia_cli.engine.metrics import evaluate, label_map
from gaia_cli.engine.recalibration import recalibrate_path, recalibration_count, select_path
from gaia_cli.errors import BadInput
from gaia_cli.nn.exported import load_any
from gaia_cli.tasks.requests import EvalRequest


def run(r: EvalRequest) -> dict[str, Any]:
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
