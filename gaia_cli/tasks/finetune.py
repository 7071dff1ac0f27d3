"""`finetune` as a library call: from a supernet path (or a static model) to a detector for the user's task.

Steps: extract the path (recalibrating its BN statistics on the training images), fit the box predictor
to the target categories by weight surgery, optionally freeze the backbone (and FPN), optionally cut a
percentage-shot or K-shot split, then train with the shared engine on a fine-tuning schedule, evaluating on
`--val` after each epoch. Schedules (GAIA 4.2.3): `1x` is 13 epochs at 0.0001875 per image, divided by 5
after epochs 8 and 11; `fast` (GAIA's fast-finetuning) is 2 epochs in all, as
the authors configure it: a warm-up epoch, then one at the rate divided by 10; `custom` takes `--epochs` and `--lr-steps`.

Frozen parts ("Proper Reuse"): their weights and batch-norm statistics stay as they are (BN becomes
torchvision's FrozenBatchNorm2d), they leave the optimiser and autograd, so no activations are kept for
them. `backbone` freezes the backbone and trains FPN, RPN and RoI heads (also INTERN's linear probe);
`backbone+fpn` trains the RPN and RoI heads alone. `--two-stage E` trains the head alone for E epochs, then
everything. `--recipe gaia` trains as GAIA's supernet did (head losses x5, IoU-balanced RoI sampling;
gaia_cli.engine.recipes). Percentage and K-shot splits mark the unchosen instances of chosen images as
ignore regions (gaia_cli.data.split).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gaia_cli import console, devices
from gaia_cli.artifacts import check_output_path
from gaia_cli.checks import check_options
from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import DetectionDataset, default_transforms
from gaia_cli.data.extra import extra_datasets, target_repeats
from gaia_cli.data.sampler import aspect_ratio_groups
from gaia_cli.data.split import split
from gaia_cli.engine import distributed as ddp
from gaia_cli.engine.checkpoints import checkpoint_path, default_split_path, head_checkpoint_path, start_checkpoints
from gaia_cli.engine.metrics import coco_metrics, label_map, log_average_miss_rate, predict
from gaia_cli.engine.recalibration import recalibration_batches, select_path
from gaia_cli.engine.recipes import applied_line, resolve
from gaia_cli.engine.schedule import FINETUNE_SCHEDULES, Phase, default_steps
from gaia_cli.engine.train import TrainOptions, Trainer, seed_all
from gaia_cli.errors import BadInput
from gaia_cli.labels.space import read_labels
from gaia_cli.labels.surgery import fit_predictor, match_classes, vectors_for
from gaia_cli.nn.bn import recalibrate
from gaia_cli.nn.elastic import ElasticBatchNorm2d
from gaia_cli.nn.io import load_detector, save_detector
from gaia_cli.nn.sampling import use_iou_balanced_sampling
from gaia_cli.pathfilter.accept import accepting
from gaia_cli.space.arch import SearchSpace
from gaia_cli.tasks.requests import FinetuneRequest

FREEZE = ("none", "backbone", "backbone+fpn")


def phases_for(r: FinetuneRequest):
    if r.schedule == "1x":
        return [Phase("finetune", 13, (8, 11), decay=0.2)]
    if r.schedule == "fast":  # the authors' configuration: 2 epochs in all, the first a warm-up, the second /10
        return [Phase("finetune", 1, (0,), warmup_epochs=1, decay=0.1)]
    if r.epochs < 1:
        raise BadInput("--epochs must be at least 1")
    try:
        steps = tuple(int(x) for x in r.lr_steps.split(",")) if r.lr_steps else default_steps(r.epochs)
    except ValueError:
        raise BadInput(f"--lr-steps {r.lr_steps!r}: expected epochs such as 8,11") from None
    if any(not 0 < s < r.epochs for s in steps):
        raise BadInput("--lr-steps must be epochs inside --epochs")
    return [Phase("finetune", r.epochs, steps, decay=r.lr_decay)]


def set_frozen(model: nn.Module, parts: str) -> list[str]:
    """Freeze `parts` of a static Faster R-CNN; returns the frozen module names."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    modules = {"backbone": [model.backbone.body], "backbone+fpn": [model.backbone.body, model.backbone.fpn]}[parts]
    for module in modules:
        for name, child in list(module.named_modules()):
            if isinstance(child, nn.BatchNorm2d):
                # made where the model lives: a frozen BN left on the CPU breaks a model on the GPU
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps).to(child.running_var.device)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key).detach())
                parent = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
                setattr(parent, name.rsplit(".", 1)[-1], frozen)
        for p in module.parameters():
            p.requires_grad_(False)
    return ["backbone.body"] + (["backbone.fpn"] if parts == "backbone+fpn" else [])


def thaw(model: nn.Module) -> None:
    """Undo `set_frozen`: trainable parameters and ordinary batch norm with the same statistics."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in list(model.named_modules()):
        if isinstance(child, FrozenBatchNorm2d):
            bn = nn.BatchNorm2d(child.weight.numel(), eps=child.eps).to(child.weight.device)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, key).copy_(getattr(child, key))
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[-1], bn)
    for p in model.parameters():
        p.requires_grad_(True)


def run(r: FinetuneRequest) -> dict[str, Any]:
    values, applied = resolve("finetune", r.recipe, {k: getattr(r, k) for k in ("lr_per_image", "head_loss_weight",
                                                                               "iou_balanced")})
    r = dataclasses.replace(r, **values)
    if r.freeze not in FREEZE:
        raise BadInput(f"--freeze must be one of {', '.join(FREEZE)}")
    if r.schedule not in FINETUNE_SCHEDULES:
        raise BadInput(f"--schedule must be one of {', '.join(FINETUNE_SCHEDULES)}")
    if r.metric not in ("ap", "mr"):
        raise BadInput("--metric must be ap or mr")

    check_options({"--epochs": r.epochs, "--lr-decay": r.lr_decay, "--lr-per-image": r.lr_per_image,
                   "--head-loss-weight": r.head_loss_weight,
                   "--batch-size": r.batch_size, "--warmup-iters": r.warmup_iters, "--two-stage": r.two_stage,
                   "--percent": r.percent, "--extra-share": r.extra_share, "--shots": r.shots, "--recalibrate": r.recalibrate, **r.run.numbers()},
                  "finetune")
    if r.extra_share is not None and not r.extra_data:
        raise BadInput("--extra-share needs --extra-data")
    if r.two_stage and r.freeze != "none":
        raise BadInput("--two-stage freezes and thaws by itself: leave --freeze out")
    check_output_path(r.output)

    start_checkpoints(checkpoints(r.output), resume=r.run.resume, restart=r.run.restart)
    device = devices.resolve(r.run.device)
    if r.run.amp and device.type != "cuda":
        raise BadInput("--amp needs a CUDA device")
    phases = phases_for(r)
    if applied and r.recipe != "default":
        console.info(applied_line(r.recipe, applied))

    seed_all(r.run.seed)  # before the surgery draws the new classes' rows: the same --seed, the same model
    model, meta = load_detector(r.weights)
    static, arch = select_path(model, meta, r.arch, str(meta["ref"].path))
    train = load_coco(r.data, r.images)
    val = load_coco(r.val) if r.val else None
    split_report = None
    if r.percent is not None or r.shots is not None:
        subset, split_report = split(train, r.percent, r.shots, r.run.seed)
        out = r.split_out or default_split_path(r.output)
        console.emit_json(subset, out)
        train = load_coco(out, train.image_root)
        console.info(f"split: {split_report['images']} images; kept {split_report['kept']} of {split_report['instances']} "
                     f"instances ({split_report['kept_percent']:g}%), {split_report['ignored']} more in those images made "
                     f"ignore regions; per class (kept/ignored/of): " + ", ".join(
                         f"{n} {v['kept']}/{v['ignored']}/{v['instances']}" for n, v in list(split_report["per_category"].items())[:10])
                     + (" ..." if len(split_report["per_category"]) > 10 else ""))
        if split_report["empty_categories"]:
            console.warn(f"the split keeps no instance of {', '.join(split_report['empty_categories'][:5])} "
                         f"(rounded down, as INTERN does)")
    if len(train.images) < r.batch_size:
        raise BadInput(f"the training set has {len(train.images)} images, fewer than --batch-size {r.batch_size}", r.data)
    labels = read_labels(r.labels) if r.labels else None
    surgery = match_classes(meta["classes"], train.categories, labels, vectors_for(labels) if labels else None)
    static.roi_heads.box_predictor = fit_predictor(static.roi_heads.box_predictor, meta["classes"], surgery)
    classes = [c["name"] for c in train.categories]
    if val is not None:
        label_map(classes, val)
    if meta["role"] == "supernet" and r.recalibrate:
        static.to(device)  # recalibrate where the model will train, not on the CPU it was loaded on
        used = recalibrate(static, recalibration_batches(train, r.batch_size, r.run.seed), r.recalibrate)
        console.info(f"recalibrated the path's BN statistics on {used} training images")
    counts = {h: sum(1 for s in surgery if s["how"] == h) for h in ("kept", "borrowed", "new")}
    console.info(f"classifier surgery: {counts['kept']} kept, {counts['borrowed']} borrowed, {counts['new']} new")

    rank, world = ddp.setup(device)
    try:
        return _train(r, static, arch, meta, train, val, classes, surgery, split_report, phases, device, rank, world)
    finally:
        ddp.teardown()


def checkpoints(output: Path) -> list[Path]:
    """The run's checkpoints: OUTPUT.ckpt.h5, and OUTPUT.head.ckpt.h5 of --two-stage's first stage."""
    return [checkpoint_path(output), head_checkpoint_path(output)]


def use_sync_bn(model: nn.Module) -> None:
    """Batch norm synchronised over ranks (torch's SyncBatchNorm refuses CPUs; gaia's elastic BN does both)."""
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = ElasticBatchNorm2d  # the same parameters and buffers; it adds only the sync mode
            m.sync = True


def _train(r, static, arch, meta, train, val, classes, surgery, split_report, phases, device, rank, world):
    if rank != 0:
        console.set_verbosity(quiet=True)
    torch.manual_seed(r.run.seed)
    static.to(device)
    if world > 1:
        use_sync_bn(static)
    ddp.broadcast_params(static)
    if r.iou_balanced:
        use_iou_balanced_sampling(static)
    dataset = DetectionDataset(train, transforms=default_transforms(train=True))
    ratios = dataset.aspect_ratios()
    if r.extra_data:
        from torch.utils.data import ConcatDataset

        extra, extra_report = extra_datasets(r.extra_data, train.categories, default_transforms(train=True))
        for part in extra_report:
            console.info(f"--extra-data: {part['images']} images, {part['boxes']} boxes from {part['dataset']}")
        repeat = target_repeats(len(dataset), sum(len(d) for d in extra), r.extra_share)
        if r.extra_share is not None:
            console.info(f"--extra-share {r.extra_share:g}: the target's {len(dataset)} images {repeat} times an epoch "
                         f"beside {sum(len(d) for d in extra)} extra images")
        ratios = ratios * repeat + [x for d in extra for x in d.aspect_ratios()]
        dataset = ConcatDataset([dataset] * repeat + extra)
    groups = aspect_ratio_groups(ratios)
    one_path = SearchSpace("path", [[d] for d in arch.depth], [[w] for w in arch.width], [arch.scale])

    def evaluate_epoch(epoch: int) -> dict[str, Any] | None:
        if val is None:
            return None
        with console.quietly():
            results = predict(static, val, label_map(classes, val), device, r.batch_size)
        metrics = coco_metrics(val, results)
        if r.metric == "mr":
            metrics.update(log_average_miss_rate(val, results))
        shown = f"MR-2 {metrics['MR-2']:.2f}" if r.metric == "mr" else f"AP {metrics['AP']:.2f}"
        console.info(f"epoch {epoch}: {shown} on {val.source}")
        return {"epoch": epoch, **{k: v for k, v in metrics.items() if not k.startswith("per_category")}}

    stages = [("head", r.two_stage), ("all", None)] if r.two_stage else [("all", None)]
    trainers = []
    for stage, epochs in stages:
        frozen = set_frozen(static, "backbone+fpn") if stage == "head" else (
            set_frozen(static, r.freeze) if r.freeze != "none" else [])
        stage_phases = phases if epochs is None else [dataclasses.replace(phases[0], epochs=epochs,
                                                                          steps=tuple(s for s in phases[0].steps if s < epochs))]
        options = TrainOptions(batch_size=r.batch_size, lr_per_image=r.lr_per_image, warmup_iters=r.warmup_iters,
                               head_loss_weight=r.head_loss_weight, rules="uniform", run=r.run)
        run_key = {"data": train.ref.sha256, "extra_data": r.extra_data, "extra_share": r.extra_share, "weights": meta["ref"].sha256, "arch": arch.as_dict(), "stage": stage,
                   "freeze": frozen, "classes": classes, "schedule": r.schedule, "iou_balanced": r.iou_balanced}
        ckpt = checkpoints(r.output)[1 if stage == "head" else 0]
        trainer = Trainer(static, dataset, groups, [(p, one_path) for p in stage_phases], options, device, ckpt, run_key,
                          wrap_sampler=accepting)
        if r.run.resume and ckpt.is_file():
            trainer.resume()
        console.info(f"fine-tuning {arch} ({stage}{', frozen: ' + ', '.join(frozen) if frozen else ''}): "
                     f"{trainer.total_iterations()} steps")
        outcome = trainer.train(on_epoch=evaluate_epoch)
        if outcome == "stopped":
            console.info(f"stopped; run the same command with --resume to continue ({trainer.checkpoint})")
            return {}
        if stage == "head":
            trainer.save()  # the finished first stage, so a resumed run skips it
        thaw(static)
        if world > 1:
            use_sync_bn(static)
        trainers.append(trainer)

    history = [h for t in trainers for h in t.history]
    final = history[-1] if history else {}
    extra = {"arch": arch.as_dict(), "detector": (meta["space"].detector if meta["role"] == "supernet" else meta["detector"]),
             "surgery": surgery, "history": history, "split": split_report,
             "training": {"schedule": r.schedule, "freeze": r.freeze, "two_stage": r.two_stage, "recipe": r.recipe,
                          "head_loss_weight": r.head_loss_weight, "iou_balanced": r.iou_balanced,
                          "iterations": sum(t.position.iteration for t in trainers),
                          "log": [rec for t in trainers for rec in t.log]}}
    ddp.check_replicas(static)
    if rank != 0:
        return {}
    for m in static.modules():  # saved as ordinary batch norm
        if isinstance(m, nn.BatchNorm2d):
            m.__class__ = nn.BatchNorm2d
    manifest = save_detector(r.output, static.cpu(), classes, extra, [train.ref, meta["ref"]])
    for t in trainers:
        t.checkpoint.unlink(missing_ok=True)
    return {**manifest, "metrics": final}
