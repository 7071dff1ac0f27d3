"""The work on one candidate: direct evaluation (stage 1) and fine-tuning by finetune's engine (stage 2 and
the 1x reference).

Direct evaluation extracts the path from the supernet, fits its box predictor to the target's categories
by the same weight surgery finetune does, recalibrates its batch norm on `--recalibrate` target training
images, and measures COCO AP on the validation set (pycocotools) and the validation loss (the detector's
training losses on the validation images, without gradients, batch norm in inference mode). Fine-tuning
runs `gaia_cli.tasks.finetune.run` on the candidate (one loop for both commands) into the ranking's work
folder and measures the fine-tuned model the same way. Every candidate starts from the same seeds, so its
result does not depend on which candidates ran before it in the same process: a resumed or sharded ranking
gives the results of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from gaia_cli import console
from gaia_cli.artifacts import json_artifact
from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import DetectionDataset, collate_detection
from gaia_cli.engine.checkpoints import checkpoint_path
from gaia_cli.engine.metrics import evaluate, label_map
from gaia_cli.engine.recalibration import recalibration_batches
from gaia_cli.engine.train import seed_all
from gaia_cli.labels.space import read_labels
from gaia_cli.labels.surgery import fit_predictor, match_classes, vectors_for
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.detector import extract
from gaia_cli.nn.io import load_detector
from gaia_cli.ranking.candidates import Candidate
from gaia_cli.ranking.settings import Settings
from gaia_cli.space.arch import Arch
from gaia_cli.tasks import finetune

METRIC_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class Target:
    """The supernet and the target task, loaded once per process: what every candidate is measured against."""

    def __init__(self, s: Settings, device: torch.device):
        self.s, self.device = s, device
        self.model, self.meta = load_detector(s.weights)
        self.train = load_coco(s.data, s.images)
        self.val = load_coco(s.val)
        labels = read_labels(s.labels) if s.labels else None
        seed_all(s.run.seed)
        self.surgery = match_classes(self.meta["classes"], self.train.categories, labels,
                                     vectors_for(labels) if labels else None)
        self.classes = [c["name"] for c in self.train.categories]
        to_category = label_map(self.classes, self.val)
        self.val_targets = DetectionDataset(self.val, {cid: label for label, cid in to_category.items()})

    def path(self, arch: Arch) -> nn.Module:
        """The candidate's static model, its predictor fitted to the target's classes (seeded: the same every time)."""
        seed_all(self.s.run.seed)
        self.model.set_arch(arch)
        static = extract(self.model, arch)
        static.roi_heads.box_predictor = fit_predictor(static.roi_heads.box_predictor, self.meta["classes"],
                                                       self.surgery)
        return static.to(self.device)

    def measure(self, model: nn.Module) -> dict[str, Any]:
        """AP (pycocotools) and the validation loss of `model` on the validation set."""
        with console.quietly():
            metrics = evaluate(model, self.classes, self.val, self.device, self.s.batch_size)
        out = {k: metrics[k] for k in METRIC_KEYS}
        out["loss"] = validation_loss(model, self.val_targets, self.device, self.s.batch_size, self.s.run.seed)
        return out

    def direct(self, arch: Arch) -> dict[str, Any]:
        """Stage 1: the path as the supernet holds it, batch norm recalibrated on target training images."""
        static = self.path(arch)
        used = 0
        if self.s.recalibrate:
            with console.quietly():
                used = recalibrate(static, recalibration_batches(self.train, self.s.batch_size, self.s.run.seed),
                                   self.s.recalibrate)
        return {**self.measure(static), "recalibrated": used}

    def finetuned(self, arch: Arch, schedule: str, name: str) -> dict[str, Any]:
        """Stage 2 (or the reference): finetune's engine on the path, then the fine-tuned model measured.

        The model goes to the work folder as NAME.h5 and is removed once measured; its checkpoint stays
        there while it trains, so a ranking resumed after a kill continues the candidate where it stopped.
        """
        s = self.s
        s.work.mkdir(parents=True, exist_ok=True)
        arch_file, out = s.work / f"{name}.arch.json", s.work / f"{name}.h5"
        arch_file.write_text(console.dumps(json_artifact("gaia/arch", arch.as_dict())))
        resume = checkpoint_path(out).is_file()
        request = finetune.FinetuneRequest(
            weights=s.weights, data=s.data, output=out, arch=str(arch_file), val=None, images=s.images,
            labels=s.labels, schedule=schedule, epochs=s.epochs, lr_per_image=s.lr_per_image, recipe=s.recipe,
            batch_size=s.batch_size, warmup_iters=s.warmup_iters, recalibrate=s.recalibrate,
            run=dataclasses.replace(s.run, device=str(self.device), resume=resume, restart=not resume))
        with console.quietly():
            result = finetune.run(request)
        if not result:  # stopped (it cannot be: no --stop-after); nothing to measure
            raise RuntimeError(f"fine-tuning {arch} stopped before its end")
        model, meta = load_detector(out)
        metrics = self.measure(model.to(self.device))
        out.unlink(missing_ok=True)
        arch_file.unlink(missing_ok=True)
        return {**metrics, "schedule": schedule, "steps": (meta.get("training") or {}).get("iterations")}


@torch.no_grad()
def validation_loss(model: nn.Module, dataset, device: torch.device, batch_size: int, seed: int) -> float | None:
    """The mean over validation images of the detector's summed training losses (None if not finite).

    torchvision's detectors return losses only in training mode; batch norm stays in inference mode so the
    statistics are neither used from the batch nor changed. The RPN's and RoI head's box sampling is
    seeded, so the same model gives the same loss.
    """
    from torch.utils.data import DataLoader

    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    total, count = 0.0, 0
    try:
        for images, targets in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_detection):
            images = [img.to(device) for img in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            losses = model(images, targets)
            total += float(sum(v for k, v in losses.items() if k.startswith("loss"))) * len(images)
            count += len(images)
    finally:
        torch.set_rng_state(generator_state)
        model.train(was_training)
    loss = total / max(count, 1)
    return loss if math.isfinite(loss) else None


def evaluate_candidate(target: Target, stage: str, cand: Candidate, schedule: str) -> dict[str, Any]:
    """One candidate's stage on `target`: "direct" (stage 1), else fine-tuned with `schedule` (stage 2 or the
    reference). The same call in this process (ranking.run) and in a --devices worker (ranking.workers)."""
    if stage == "direct":
        return target.direct(cand.arch)
    return target.finetuned(cand.arch, schedule, f"candidate-{cand.id}.{stage}")
