"""Measuring paths of a Montage-pretrained supernet backbone for the path filter (DetOFA 3.3 and 4.1: the
filter is first fitted on the paths of a classification supernet, then fine-tuned on detection paths).

Each path's target is pretrain's own dense classification loss (`montage_loss`) with the soft-label weights
the pre-training ended with (stored in the file: no ERF is recomputed) and its mode and tau, averaged over a
fixed, seeded set of montages, after the path's batch norm is recalibrated on other montages. The montage
size is pretrain's template (pretrain does not sample the input scale), so a path's scale only places it in
a FLOPs bucket. There is no AP: `ap` is null.
"""

from __future__ import annotations

from typing import Any

import torch

from gaia_cli import console
from gaia_cli.artifacts import H5Artifact
from gaia_cli.engine.data import SeededDataset
from gaia_cli.errors import BadInput
from gaia_cli.montage import HEAD_PREFIX
from gaia_cli.montage.assemble import MontageDataset, Template
from gaia_cli.montage.loss import MontageNet
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.io import read_header

MEASURE_EPOCH = 2**31 - 2  # item keys of the montages losses are measured on (ERF_EPOCH - 1: no training epoch)
CALIBRATION_EPOCH = 2**31 - 3  # and those BN is recalibrated on
MEASURED_MONTAGES = 64  # the fixed set each path's loss is averaged over


def load_montage_net(spec: str) -> tuple[Any, dict[str, Any]]:
    """The pre-trained supernet backbone with its dense head (a `MontageNet`), from pretrain's backbone file."""
    header = read_header(spec, ("backbone",), "a backbone from gaia pretrain (with montage samples as --data)")
    with H5Artifact(spec, "gaia/weights") as art:
        state = art.tensors()
    space, classes, ref, path = header.space, header.classes, header.ref, header.path
    pre = header.meta.get("pretraining")
    if not isinstance(pre, dict) or space is None or not classes:
        raise BadInput("is a backbone without its pretraining settings, space or classes (not from gaia pretrain)",
                       path)
    if not any(k.startswith(HEAD_PREFIX) for k in state):
        raise BadInput("has no dense classification head (written by an older gaia pretrain): re-run pretrain "
                       "with this version", path)
    template = Template(pre["template"]["size"], pre["template"]["split"])
    top = space.max_arch
    model = MontageNet(top.depth, top.width, len(classes) + 1, template, pre["mode"], pre["tau"])
    head = {k[len(HEAD_PREFIX):]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    body = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
    try:
        model.body.load_state_dict(body)
        model.classifier.load_state_dict(head)
        model.soft_weights.copy_(torch.tensor(pre["soft_weights"], dtype=torch.float32))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise BadInput(f"weights do not fit the backbone they describe ({str(exc).splitlines()[0]})", path) from None
    return model.eval(), {"space": space, "classes": classes, "ref": ref, "pretraining": pre}


class MontageMeter:
    """Measures paths of one pre-trained supernet on one samples file: {"loss": mean dense loss, "ap": None}."""

    def __init__(self, model, samples, recalibrate: int, device: torch.device, batch_size: int = 4, seed: int = 0):
        self.model, self.device, self.batch_size = model.to(device), device, batch_size
        self.recalibrate = recalibrate
        dataset = SeededDataset(MontageDataset(samples, model.template), seed)
        self.measured = self._batches(dataset, MEASURED_MONTAGES, MEASURE_EPOCH)
        self.calibration = self._batches(dataset, recalibrate, CALIBRATION_EPOCH)

    def _batches(self, dataset, count: int, epoch: int) -> list[tuple[list[torch.Tensor], list[dict]]]:
        items = [dataset[(i, epoch)] for i in range(count)]  # a function of (seed, epoch, i) alone
        return [([im for im, _ in items[k:k + self.batch_size]], [t for _, t in items[k:k + self.batch_size]])
                for k in range(0, count, self.batch_size)]

    @torch.no_grad()
    def __call__(self, arch) -> dict[str, Any]:
        model = self.model
        model.set_arch(arch)
        if self.recalibrate:
            with console.quietly():
                recalibrate(model, (images for images, _ in self.calibration), self.recalibrate,
                            forward=lambda batch: model.features(model.normalise(batch)))
        model.eval()
        total, seen = 0.0, 0
        for images, targets in self.measured:
            out = model([im.to(self.device) for im in images],
                        [{"labels": t["labels"].to(self.device)} for t in targets])
            total += float(out["loss_montage"]) * len(images)
            seen += len(images)
        return {"loss": total / max(seen, 1), "ap": None}
