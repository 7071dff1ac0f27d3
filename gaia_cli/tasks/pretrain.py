"""`pretrain` as a library call: Montage pre-training of the supernet's backbone (or of one arch).

The shared engine (`Trainer`) runs it: each step draws a path by the supernet's rules (DetOFA pre-trains
the whole supernet; a fixed `--arch` is a space of one path), trains it on a batch of montages with the
dense loss, and averages gradients over ranks. SGD, weight decay 1e-4 (not on BN and biases), the rate
warmed up linearly from a quarter of its value (the paper: 0.2 to 0.8) and then decayed on a cosine to 0.

In the `erf` mode the soft-label weights are recomputed from the network's own input gradients before the
first step (from the randomly initialised weights, as in the paper) and every `erf_every` steps after, on a
fixed set of `erf_images` montages, averaged over the space's largest and smallest paths (each path has
its own receptive fields; those two bound them). Rank 0 computes them and broadcasts them; they are a
buffer of the model, so checkpoints keep them and a resumed run continues with the same ones.

The output is the backbone: `gaia/weights` of role `backbone`, torchvision's tensor names, with the space
(and the arch, for a fixed one), which `train-supernet --init` loads; beside it the dense head's 1x1 conv
(`montage_head.weight`, `montage_head.bias`), which `--init` skips and `fit-pathfilter` measures paths with.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gaia_cli import checks, console
from gaia_cli.artifacts import check_output_path, write_h5
from gaia_cli.engine import distributed as ddp
from gaia_cli.engine.checkpoints import checkpoint_path, start_checkpoints
from gaia_cli.engine.data import epoch_batches
from gaia_cli.engine.schedule import Phase, iterations_phase
from gaia_cli.engine.train import TrainOptions, Trainer, prepare_replica, seed_all, training_device
from gaia_cli.errors import BadInput
from gaia_cli.montage import HEAD_PREFIX
from gaia_cli.montage.assemble import MontageDataset, Template
from gaia_cli.montage.loss import MODES, MontageNet, masks_tensor, receptive_field_shares
from gaia_cli.montage.samples import MontageSamples
from gaia_cli.pathfilter.accept import accepting
from gaia_cli.space.arch import SearchSpace, read_space
from gaia_cli.space.archfile import read_arch
from gaia_cli.space.sampling import parse_rules
from gaia_cli.tasks.requests import PretrainRequest

PAPER_ITERATIONS, PAPER_BATCH = 64_000, 512  # Montage 4.1: 64k iterations at batch 512
ERF_EPOCH = 2**31 - 1  # the montages the ERF is measured on: item keys no training epoch uses
WARMUP_FACTOR = 0.25  # Montage 4.1: warm-up from 0.2 to 0.8


def check_options(r: PretrainRequest) -> None:
    if r.mode not in MODES:
        raise BadInput(f"--mode {r.mode!r} is not one of {', '.join(MODES)}")
    checks.check_options({"--size": r.size, "--split": r.split, "--tau": r.tau, "--erf-every": r.erf_every,
                          "--erf-images": r.erf_images, "--epochs": r.epochs, "--iterations": r.iterations,
                          "--batch-size": r.batch_size,
                          "--paths-per-step": r.paths_per_step, "--lr-per-image": r.lr_per_image,
                          "--weight-decay": r.weight_decay, "--clip-grad": r.clip_grad, "--warmup-iters": r.warmup_iters,
                          **r.run.numbers()}, "pretrain")
    if r.space is not None and r.arch is not None:
        raise BadInput("give --space (pre-train the supernet) or --arch (one path), not both")
    if r.epochs is not None and r.iterations is not None:
        raise BadInput("give --epochs or --iterations (the length of the run), not both")


def paper_iterations(batch_size: int, world: int) -> int:
    """Montage's compute (64k steps of 512 montages, 4.1) as steps of `batch_size` montages on `world` processes."""
    return max(1, round(PAPER_ITERATIONS * PAPER_BATCH / (batch_size * world)))


def single_arch_space(arch) -> Any:
    """A space of one path: pre-training a fixed arch through the same engine."""
    return SearchSpace("arch", [[d] for d in arch.depth], [[w] for w in arch.width], [arch.scale],
                       anchors={"arch": arch})


class ErfUpdater:
    """Recomputes the ERF-adaptive soft-label weights every `every` steps (at step 0 first)."""

    def __init__(self, trainer, space, request: PretrainRequest):
        self.trainer, self.model, self.dataset, self.device = trainer, trainer.model, trainer.dataset, trainer.device
        self.every, self.count = request.erf_every, min(request.erf_images, len(self.dataset))
        self.archs = list(dict.fromkeys([space.max_arch, space.min_arch]))
        self.masks = masks_tensor(self.model.template)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The updates so far (kept in the trainer's history, which checkpoints carry across a resume)."""
        return [entry["erf"] for entry in self.trainer.history if "erf" in entry]

    def __call__(self, iteration: int) -> None:
        if iteration % self.every:
            return

        rank, world = ddp.world()
        if rank == 0:
            images = torch.stack([self.dataset[(i, ERF_EPOCH)][0] for i in range(self.count)]).to(self.device)
            self.model.eval()
            shares = torch.zeros_like(self.model.soft_weights)
            for arch in self.archs:
                self.model.set_arch(arch)
                with torch.autocast(self.device.type, enabled=False):
                    shares += receptive_field_shares(self.model.features, self.model.normalise(images), self.masks)
            self.model.set_shares(shares / len(self.archs))
        if world > 1:
            torch.distributed.broadcast(self.model.soft_weights, 0)
        own = (self.model.soft_weights * torch.nn.functional.one_hot(self.model.position_regions, 4)).sum(-1)
        entry = {"iteration": iteration, "own_weight_mean": round(float(own.mean()), 4),
                 "own_weight_min": round(float(own.min()), 4)}
        self.trainer.history.append({"erf": entry})
        console.info(f"ERF soft labels at step {iteration}: own-region weight mean {entry['own_weight_mean']:.3f}, "
                     f"min {entry['own_weight_min']:.3f}")


def run(r: PretrainRequest) -> None:
    check_options(r)
    check_output_path(r.output)
    start_checkpoints([checkpoint_path(r.output)], resume=r.run.resume, restart=r.run.restart)
    device = training_device(r.run.device, r.run.amp)
    parse_rules(r.rules)
    template = Template(r.size, r.split)
    arch = read_arch(r.arch) if r.arch else None
    space = single_arch_space(arch) if arch else read_space(r.space or "ar50to101")
    rules = "uniform" if arch else r.rules
    samples = MontageSamples(r.samples)
    if r.output.resolve() == samples.path.resolve():
        raise BadInput("-o names the samples file itself; write the backbone elsewhere", r.output)
    dataset = MontageDataset(samples, template)

    rank, world = ddp.setup(device)
    try:
        seed_all(r.run.seed)
        top = space.max_arch
        model = MontageNet(top.depth, top.width, samples.num_classes, template, r.mode, r.tau)
        prepare_replica(model, device)

        if r.epochs is not None:
            phase = Phase(space.name, r.epochs, (), cosine=True, warmup_factor=WARMUP_FACTOR)
        else:
            steps = r.iterations or paper_iterations(r.batch_size, world)
            per_epoch = len(epoch_batches([0] * len(dataset), r.batch_size, r.run.seed, 0, rank, world))
            phase = iterations_phase(space.name, steps, per_epoch, warmup_factor=WARMUP_FACTOR)
            images = steps * r.batch_size * world
            source = "--iterations" if r.iterations else \
                f"the paper's compute, {PAPER_ITERATIONS:,} steps of {PAPER_BATCH}, at {r.batch_size * world} a step"
            console.info(f"{steps:,} steps of {r.batch_size * world} montages ({images:,} montages, "
                         f"{images / PAPER_ITERATIONS / PAPER_BATCH:.3g}x the paper's): {source}")
        options = TrainOptions(batch_size=r.batch_size, lr_per_image=r.lr_per_image, weight_decay=r.weight_decay,
                               warmup_iters=r.warmup_iters, clip_grad=r.clip_grad or None, rules=rules,
                               paths_per_step=r.paths_per_step, run=r.run)
        pretraining = {"template": {"size": template.size, "split": template.split}, "mode": r.mode, "tau": r.tau,
                       "erf_every": r.erf_every, "erf_images": r.erf_images}
        run_key = {"samples": samples.identity, "space": space.to_payload(), **pretraining}
        trainer = Trainer(model, dataset, [0] * len(dataset), [(phase, space)], options, device,
                          checkpoint_path(r.output), run_key, wrap_sampler=accepting)
        if r.run.resume:
            trainer.resume()
        erf = ErfUpdater(trainer, space, r) if r.mode == "erf" else None
        console.info(f"pre-training {'arch ' + str(arch) if arch else f'the {space.name} supernet ({space.size():,} paths)'}"
                     f" on {len(samples):,} samples ({samples.num_classes - 1} classes + background): "
                     f"{len(dataset):,} montages of {template.size} px per epoch, {trainer.total_iterations()} steps "
                     f"on {world} process(es), {device}")

        def log(record: dict[str, Any]) -> None:
            console.info(f"step {record['iteration']} lr {record['lr']:.2e} loss {record['loss']:.3f} "
                         f"region accuracy {record['accuracy']:.3f}")

        outcome = trainer.train(log, before_step=erf)
        if outcome == "stopped":
            console.info(f"stopped after step {trainer.position.iteration}; checkpoint {trainer.checkpoint}: "
                         f"run the same command with --resume to continue")
            return
        digest = ddp.check_replicas(model)
        if world > 1:
            console.info(f"all {world} replicas hold identical weights and soft labels (sha256 {digest[:16]})")
        if rank == 0:
            meta = {"role": "backbone", "space": space.to_payload(), "classes": samples.classes,
                    "pretraining": {**pretraining, "iterations": trainer.position.iteration,
                                    "seconds": round(trainer.seconds, 1), "world": world,
                                    "options": options.run_key(), "log": trainer.log,
                                    "erf_updates": erf.history if erf else [],
                                    "soft_weights": model.soft_weights.cpu().tolist()}}
            if arch:
                meta["arch"] = arch.as_dict()
            state = {k: v for k, v in model.body.state_dict().items()}
            # the dense head too (fit-pathfilter measures paths with it); --init skips these names
            state.update({HEAD_PREFIX + k: v for k, v in model.classifier.state_dict().items()})
            manifest = write_h5(r.output, "gaia/weights", state, meta, [samples.ref])
            trainer.checkpoint.unlink(missing_ok=True)
            final = trainer.last_record or {}
            console.emit_line({**manifest, "iterations": trainer.position.iteration,
                               "loss": _rounded(final.get("loss")), "accuracy": _rounded(final.get("accuracy"))})
    finally:
        ddp.teardown()


def _rounded(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)
