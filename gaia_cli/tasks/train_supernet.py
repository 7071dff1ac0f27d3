"""`train-supernet` as a library call: check the inputs, build the data and the supernet, train, write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gaia_cli import checks, console
from gaia_cli.artifacts import check_output_path
from gaia_cli.data.coco import load_coco
from gaia_cli.data.dataset import CombinedDataset, DetectionDataset, default_transforms
from gaia_cli.data.sampler import aspect_ratio_groups
from gaia_cli.engine import distributed as ddp
from gaia_cli.engine.checkpoints import checkpoint_path, start_checkpoints
from gaia_cli.engine.recipes import applied_line, choose, resolve
from gaia_cli.engine.schedule import ABPS, LATE, default_steps, late_steps, parse_phases
from gaia_cli.engine.train import TrainOptions, Trainer, prepare_replica, seed_all, training_device
from gaia_cli.errors import BadInput
from gaia_cli.labels.space import read_labels
from gaia_cli.nn.detector import Supernet
from gaia_cli.nn.io import init_weights, save_detector
from gaia_cli.nn.sampling import use_iou_balanced_sampling
from gaia_cli.pathfilter.accept import accepting
from gaia_cli.space.arch import read_space
from gaia_cli.space.sampling import parse_rules
from gaia_cli.tasks.requests import TrainRequest


def load_training_data(data: list[str], labels_spec: str | None, images: Path | None):
    """(dataset, classes, input refs) for one or several COCO files, through a label space if given."""
    if not data:
        raise BadInput("give the training data with --data")
    if len(data) > 1 and labels_spec is None:
        raise BadInput("several --data sets need --labels (a label space from gaia unify-labels)")
    if len(data) > 1 and images is not None:
        raise BadInput("--images goes with a single --data; several datasets find their images beside them")
    parts = [load_coco(d, images) for d in data]
    transforms = default_transforms(train=True)
    refs = [p.ref for p in parts]
    if labels_spec is None:
        dataset = DetectionDataset(parts[0], transforms=transforms)
        classes = [c["name"] for c in parts[0].categories]
    else:
        space = read_labels(labels_spec)
        dataset = CombinedDataset([(p, None) for p in parts], space, transforms)
        classes = space.names
    return dataset, classes, refs


def resolve_phases(request: TrainRequest, space) -> list[tuple[Any, Any]]:
    if request.abps and request.phases:
        raise BadInput("--abps is GAIA's default --phases: give one or the other")
    if request.abps or request.phases:
        phases = parse_phases(ABPS if request.abps else request.phases)
    else:
        if request.epochs < 1:
            raise BadInput("--epochs must be at least 1")
        steps = default_steps(request.epochs)
        if request.lr_steps == LATE:
            steps = late_steps(request.epochs)
        elif request.lr_steps:
            try:
                steps = tuple(int(x) for x in request.lr_steps.split(","))
            except ValueError:
                raise BadInput(f"--lr-steps {request.lr_steps!r}: expected epochs such as 8,11, or late") from None
        phases = parse_phases(f"{space.name}:{request.epochs}:{','.join(map(str, steps))}")
        return [(phases[0], space)]
    resolved = []
    for phase in phases:
        sub = space if phase.space == space.name else read_space(phase.space)
        if not space.covers(sub):
            raise BadInput(f"phase space {sub.name!r} is not inside --space {space.name!r}")
        resolved.append((phase, sub))
    return resolved


def apply_recipe(r: TrainRequest) -> tuple[TrainRequest, dict[str, Any], str | None]:
    """The request with the recipe's values where the user left an option unset, what the recipe set, and why
    `auto` picked its recipe (None for a recipe named)."""
    recipe, why = choose(r.recipe, r.init)
    r = dataclasses.replace(r, recipe=recipe)
    keys = ("lr_per_image", "head_loss_weight", "iou_balanced", "rules", "epochs", "phases", "abps", "paths_per_step",
            "distill", "lr_steps")
    values, applied = resolve("train-supernet", recipe, {k: getattr(r, k) for k in keys})
    return dataclasses.replace(r, **values), applied, why


def check_options(r: TrainRequest) -> None:
    checks.check_options({"--epochs": r.epochs, "--batch-size": r.batch_size, "--paths-per-step": r.paths_per_step,
                          "--lr-per-image": r.lr_per_image, "--head-loss-weight": r.head_loss_weight,
                          "--distill": r.distill, "--weight-decay": r.weight_decay, "--clip-grad": r.clip_grad, "--warmup-iters": r.warmup_iters,
                          **r.run.numbers()}, "train-supernet")
    if r.distill and r.rules != "sandwich":
        raise BadInput(f"--distill {r.distill:g} needs --rules sandwich: its teacher is the step's first path, "
                       "the largest under the sandwich rule")
    if r.distill and r.paths_per_step < 2:
        raise BadInput(f"--distill {r.distill:g} needs --paths-per-step 2 or more and --rules sandwich: the step's first path (the largest, "
                       "with --rules sandwich) teaches the others")


def run(r: TrainRequest) -> None:
    rules_given = r.rules is not None
    r, applied, why = apply_recipe(r)
    check_options(r)
    check_output_path(r.output)
    start_checkpoints([checkpoint_path(r.output)], resume=r.run.resume, restart=r.run.restart)
    device = training_device(r.run.device, r.run.amp)
    parse_rules(r.rules)
    space = read_space(r.space)
    uniform_on_pruned = space.pruning is not None and not rules_given
    if uniform_on_pruned:  # DetOFA Algorithm 1, line 11: a ~ U(pruned space), redrawn below its bucket's threshold
        r = dataclasses.replace(r, rules="uniform")
        applied.pop("rules", None)
    try:
        phases = resolve_phases(r, space)
    except BadInput as exc:
        if not applied.get("abps"):
            raise
        raise BadInput(f"--recipe {r.recipe} trains GAIA's ABPS schedule (ar101, ar77, ar50), which --space "
                       f"{space.name} does not hold ({exc.message}); give --epochs N or --phases") from None
    dataset, classes, refs = load_training_data(r.data, r.labels, r.images)

    rank, world = ddp.setup(device)
    try:
        seed_all(r.run.seed)
        model = Supernet(space, len(classes) + 1)
        if r.iou_balanced:
            use_iou_balanced_sampling(model)
        init_report = None
        if r.init:
            init_report = init_weights(model, r.init, classes, read_labels(r.labels) if r.labels else None)
        if init_report and init_report.get("role") == "supernet":
            grown = init_report["classes"]
            borrowed = ", ".join(f"{s['category']} <- {s['from']}" for s in init_report["surgery"] if s["how"] == "borrowed")
            console.info(f"--init: the whole supernet ({init_report['loaded']} tensors); classes: {grown['kept']} kept, "
                         f"{grown['borrowed']} borrowed{' (' + borrowed[:200] + ')' if borrowed else ''}, {grown['new']} new")
        elif init_report:
            console.info(f"--init: loaded {init_report['loaded']} backbone tensors, skipped {len(init_report['skipped'])}")
        prepare_replica(model, device)
        if why:  # said once the inputs are known good: a refused run prints one line
            console.info(f"--recipe auto: {r.recipe} ({why})")
        if uniform_on_pruned:
            console.info("--space is pruned: each step's path is drawn uniformly from what it allows and redrawn "
                         "while its score is below its bucket's threshold (DetOFA Algorithm 1); --rules overrides")
        if applied:
            console.info(applied_line(r.recipe, applied))

        options = TrainOptions(batch_size=r.batch_size, lr_per_image=r.lr_per_image, weight_decay=r.weight_decay,
                               warmup_iters=r.warmup_iters, clip_grad=r.clip_grad or None,
                               head_loss_weight=r.head_loss_weight, rules=r.rules, paths_per_step=r.paths_per_step,
                               distill=r.distill, run=r.run)
        run_key = {"data": [ref.as_dict()["sha256"] for ref in refs], "space": space.to_payload(), "classes": classes,
                   "init": init_report["path"] if init_report else None, "iou_balanced": r.iou_balanced}
        trainer = Trainer(model, dataset, aspect_ratio_groups(dataset.aspect_ratios()), phases, options, device,
                          checkpoint_path(r.output), run_key, wrap_sampler=accepting)
        if r.run.resume:
            trainer.resume()
        console.info(f"training a {space.name} supernet ({space.size():,} paths) on {len(dataset)} images, "
                     f"{len(classes)} classes: {trainer.total_iterations()} steps on {world} process(es), {device}")

        def log(record: dict[str, Any]) -> None:
            parts = " ".join(f"{k.removeprefix('loss_')} {record[k]:.3f}" for k in record if k.startswith("loss_"))
            console.info(f"step {record['iteration']} {record['phase']} lr {record['lr']:.2e} "
                         f"loss {record['loss']:.3f} ({parts})")

        outcome = trainer.train(log)
        if outcome == "stopped":
            console.info(f"stopped after step {trainer.position.iteration}; checkpoint {trainer.checkpoint}: "
                         f"run the same command with --resume to continue")
            return
        digest = ddp.check_replicas(model)
        if world > 1:
            console.info(f"all {world} replicas hold identical weights (sha256 {digest[:16]})")
        if rank == 0:
            extra = {"training": {"iterations": trainer.position.iteration, "seconds": round(trainer.seconds, 1),
                                  "world": world, "phases": trainer.run["phases"], "options": options.run_key(),
                                  "log": trainer.log, "init": init_report}}
            manifest = save_detector(r.output, model.cpu(), classes, extra, refs)
            trainer.checkpoint.unlink(missing_ok=True)
            console.emit_line(manifest)
    finally:
        ddp.teardown()
