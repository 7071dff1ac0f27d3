"""The training loop that `train-supernet` runs (and that fine-tuning shares).

Each step: set the learning rate; draw the step's path(s) from the phase's `PathSampler` (one by default,
several with the sandwich rule, their gradients averaged); forward the batch through each path (with
`distill` > 0, the step's first path is the teacher of the others: in-place distillation, gaia_cli.nn.distill);
stop on a non-finite loss; average gradients over ranks; clip; SGD step. The model returns a dict: its `loss*` entries
are summed into the loss (those of the RoI head multiplied by `head_loss_weight`; GAIA uses 5 for its many
classes), any other entry (an accuracy, say) is only logged.

A checkpoint (HDF5, `gaia/checkpoint`: weights, momentum buffers, the sampler's and torch's random states,
the position in the schedule and the log) is written every `checkpoint_every` steps, when SIGINT/SIGTERM
asks the run to stop (at the next step boundary), and at `stop_after`. Resuming restores all of it, so on a
CPU a run stopped and resumed ends with the same weights as one that never stopped. The checkpoint's name and
what a new run does with a leftover one are gaia_cli.engine.checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gaia_cli import console, devices
from gaia_cli.artifacts import H5Artifact, write_h5
from gaia_cli.engine import distributed as ddp
from gaia_cli.engine.data import SeededDataset, epoch_batches, loader
from gaia_cli.engine.runcontrol import RunControl
from gaia_cli.engine.schedule import Phase, describe, effective_warmup, learning_rate, schedule_line
from gaia_cli.errors import BadInput, RunFailure
from gaia_cli.interrupts import StopRequested
from gaia_cli.nn.distill import Distiller
from gaia_cli.nn.elastic import ElasticBatchNorm2d
from gaia_cli.space.arch import SearchSpace
from gaia_cli.space.sampling import PathSampler

HEAD_LOSSES = ("loss_classifier", "loss_box_reg")


def weighted_loss(losses: dict[str, Any], head_loss_weight: float):
    """The loss a step minimises: the sum of the model's `loss*` entries, the RoI head's (HEAD_LOSSES) times
    `head_loss_weight` (GAIA 4.2.2: "we multiply the loss weights of head by a factor of 5")."""
    return sum(v * (head_loss_weight if k in HEAD_LOSSES else 1.0) for k, v in losses.items() if k.startswith("loss"))


@dataclasses.dataclass
class TrainOptions:
    batch_size: int = 2  # images per step on each rank
    lr_per_image: float = 0.00125  # GAIA 4.2.2; the rate is this times the images of a step over all ranks
    momentum: float = 0.9
    weight_decay: float = 1e-4  # not applied to batch-norm weights and biases
    warmup_iters: int = 1000
    clip_grad: float | None = 10.0
    head_loss_weight: float = 1.0
    rules: str = "gaia"
    paths_per_step: int = 1
    distill: float = 0.0  # in-place distillation's weight (0: off); the step's first path teaches the others
    run: RunControl = RunControl()  # amp, workers, checkpoint_every, log_every, seed, stop_after (device: the Trainer's)

    def run_key(self) -> dict[str, Any]:
        """The options a resumed run must share with the run it continues: all but how it is run, except AMP
        and the seed (workers, checkpoints, logging, stopping, the device, resuming may change)."""
        key = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "run"}
        return {**key, "amp": self.run.amp, "seed": self.run.seed}


def training_device(spec: str, amp: bool) -> torch.device:
    """The device of `--device`, refusing `--amp` where there is no CUDA."""
    device = devices.resolve(spec)
    if amp and device.type != "cuda":
        raise BadInput("--amp needs a CUDA device (on the CPU, train in fp32)")
    return device


def prepare_replica(model: nn.Module, device: torch.device) -> None:
    """This rank's share of the set-up that follows building `model`:

    quiet output off rank 0; the model on `device` (channels-last and cudnn autotuning on CUDA); elastic
    batch norm synchronised over ranks when there are several; rank 0's weights on every rank.
    """
    rank, world = ddp.world()
    if rank != 0:
        console.set_verbosity(quiet=True)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    if world > 1:
        for m in model.modules():
            if isinstance(m, ElasticBatchNorm2d):
                m.sync = True
    ddp.broadcast_params(model)


def seed_all(seed: int) -> None:
    """torch's, Python's and numpy's global generators (model initialisation draws from them)."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
            (no_decay if is_norm or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclasses.dataclass
class Position:
    iteration: int = 0
    phase: int = 0
    epoch: int = 0  # within the phase
    batch: int = 0  # next batch within the epoch
    iteration_in_phase: int = 0


class Trainer:
    """Trains `model` (a `Supernet`) through `phases` on `dataset` (items: (image, target)).

    `wrap_sampler(sampler, log_every)` is what each phase's path sampler becomes: the commands pass
    gaia_cli.pathfilter.accept.accepting, so that a pruned space (gaia prune) redraws the paths it does not
    allow; None keeps the samplers as they are."""

    def __init__(self, model: nn.Module, dataset, group_ids: list[int], phases: list[tuple[Phase, SearchSpace]],
                 options: TrainOptions, device: torch.device, checkpoint: Path, run: dict[str, Any],
                 wrap_sampler: Callable[[PathSampler, int], Any] | None = None):
        self.model, self.options, self.device = model, options, device
        self.dataset = SeededDataset(dataset, options.run.seed)
        self.group_ids = group_ids
        self.phases = phases
        self.checkpoint = checkpoint
        self.rank, self.world = ddp.world()
        # as JSON would give it back from a checkpoint, so the two compare equal
        self.run = json.loads(json.dumps({**run, "options": options.run_key(), "world": self.world,
                                          "phases": [dataclasses.asdict(p) for p, _ in phases]}))
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(_param_groups(model, options.weight_decay), lr=0.0,
                                         momentum=options.momentum)
        self.scaler = torch.amp.GradScaler("cuda", enabled=options.run.amp)
        self.position = Position()
        self.samplers = [PathSampler(space, options.rules, seed=options.run.seed * 1000 + i) for i, (_, space) in
                         enumerate(phases)]
        # a pruned space (gaia prune) redraws the paths it does not allow (DetOFA Algorithm 1, lines 11-14)
        if wrap_sampler is not None:
            self.samplers = [wrap_sampler(s, options.run.log_every) for s in self.samplers]
        self.distiller = None
        if options.distill > 0 and options.paths_per_step > 1:
            self.distiller = Distiller(model)
        self.log: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.last_checkpoint: int | None = None
        self.last_record: dict[str, Any] | None = None  # the latest step's losses (logged or not)

    # ------------------------------------------------------------------------------------------ schedule

    def iterations_per_epoch(self) -> int:
        return len(epoch_batches(self.group_ids, self.options.batch_size, self.options.run.seed, 0, self.rank, self.world))

    def total_iterations(self) -> int:
        per_epoch = self.iterations_per_epoch()
        return sum(p.length(per_epoch) for p, _ in self.phases)

    def schedule(self) -> list[dict[str, Any]]:
        """The effective schedule, phase by phase, in steps (warm-up capped to a tenth of the first phase)."""
        base = self.options.lr_per_image * self.options.batch_size * self.world
        return describe(base, [p for p, _ in self.phases], self.iterations_per_epoch(), self.options.warmup_iters)

    def _global_epoch(self) -> int:
        return sum(p.total_epochs for p, _ in self.phases[: self.position.phase]) + self.position.epoch

    # -------------------------------------------------------------------------------------------- loop

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None,
              on_epoch: Callable[[int], dict[str, Any] | None] | None = None,
              before_step: Callable[[int], None] | None = None) -> str:
        """Run to the end (returns "done") or to `stop_after` ("stopped").

        `on_epoch(epoch)` runs after each epoch (an evaluation, say); what it returns joins `self.history`,
        which checkpoints keep. `before_step(iteration)` runs before each step (iterations done so far), on
        every rank; what it changes in the model's state is checkpointed with it.
        """
        opts, pos = self.options, self.position
        base_lr = opts.lr_per_image * opts.batch_size * self.world
        per_epoch = self.iterations_per_epoch()
        warmup = effective_warmup(opts.warmup_iters, self.phases[0][0].length(per_epoch))
        for entry in self.schedule():
            console.info(schedule_line(entry))
        self.model.train()
        started = time.perf_counter()
        message = "stopping after this step (a checkpoint will be written); signal again to stop at once"
        with StopRequested(message) as stop, console.progress("training", total=self.total_iterations()) as bar:
            bar.advance(pos.iteration)
            while pos.phase < len(self.phases):
                phase, space = self.phases[pos.phase]
                while pos.epoch < phase.total_epochs and pos.iteration_in_phase < phase.length(per_epoch):
                    batches = epoch_batches(self.group_ids, opts.batch_size, opts.run.seed, self._global_epoch(),
                                            self.rank, self.world)
                    left = phase.length(per_epoch) - pos.iteration_in_phase  # a phase counted in steps ends within an epoch
                    for images, targets in loader(self.dataset, batches[pos.batch:pos.batch + left], opts.run.workers):
                        if before_step is not None:
                            before_step(pos.iteration)
                            self.model.train()
                        lr = learning_rate(base_lr, phase, pos.epoch + pos.batch / per_epoch,
                                           pos.iteration_in_phase, warmup)
                        record = self._step(images, targets, lr, self.samplers[pos.phase])
                        self.last_record = record
                        pos.iteration += 1
                        pos.iteration_in_phase += 1
                        pos.batch += 1
                        bar.advance(1)
                        self.seconds += time.perf_counter() - started
                        started = time.perf_counter()
                        if pos.iteration % opts.run.log_every == 0 or pos.iteration == 1:
                            record.update(iteration=pos.iteration, phase=space.name, epoch=self._global_epoch())
                            self.log.append(record)
                            if on_step:
                                on_step(record)
                        if pos.iteration % opts.run.checkpoint_every == 0:
                            self.save()
                        if opts.run.stop_after is not None and pos.iteration >= opts.run.stop_after:
                            self.save()
                            return "stopped"
                        if not ddp.all_true(not stop.requested, self.device):
                            self.save()
                            raise KeyboardInterrupt()
                    if on_epoch is not None:
                        entry = on_epoch(self._global_epoch() + 1)
                        self.model.train()
                        if entry is not None:
                            self.history.append(entry)
                    pos.epoch += 1
                    pos.batch = 0
                pos.phase += 1
                pos.epoch = pos.iteration_in_phase = 0
        return "done"

    def _step(self, images, targets, lr: float, sampler: PathSampler) -> dict[str, Any]:
        opts = self.options
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = [img.to(self.device, non_blocking=True) for img in images]
        targets = [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]
        archs = ddp.broadcast_object(sampler.next_step(opts.paths_per_step))
        totals: dict[str, float] = {}
        finite = True
        for i, arch in enumerate(archs):
            if hasattr(self.model, "set_arch"):  # a supernet; a static model is its one path already
                self.model.set_arch(arch)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=opts.run.amp):
                if self.distiller is not None:
                    self.distiller.start("teacher" if i == 0 else "student")
                losses = self.model(images, targets)
                if self.distiller is not None:
                    if i == 0:
                        self.distiller.keep_teacher()
                    else:
                        losses.update(self.distiller.student_losses(opts.distill))
            loss = weighted_loss(losses, opts.head_loss_weight)
            # averaged over the step's paths: summed (BigNAS, once-for-all), 3 paths at 0.005 per image
            # collapsed to predicting background on the toy task (bench_recipe, README)
            loss = loss / len(archs)
            # decided together before any backward pass: sync-BN's backward holds collectives of its own
            finite = ddp.all_true(bool(torch.isfinite(loss).item()), self.device)
            if not finite:
                failed = arch
                break
            self.scaler.scale(loss).backward()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(archs)
        if self.distiller is not None:
            self.distiller.end_step()
        if not finite:
            # a resumed run keeps its options, the rate among them: a lower one means a new run (--restart)
            where = f" (last good checkpoint: {self.checkpoint}, iteration {self.last_checkpoint}). Run again " \
                    f"with a lower learning rate or more warm-up, and --restart to discard that checkpoint" \
                if self.last_checkpoint is not None else \
                " (no checkpoint was written yet). Run again with a lower learning rate or more warm-up"
            raise RunFailure(f"the loss is not finite at iteration {self.position.iteration + 1} on path {failed}; "
                             f"stopped{where}")
        ddp.average_gradients(self.params)
        self.scaler.unscale_(self.optimizer)
        grad_norm = None
        if opts.clip_grad:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, opts.clip_grad))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        record = {"lr": lr, "loss": sum(v for k, v in totals.items() if k.startswith("loss")), **totals, "archs": [a.as_dict() for a in archs]}
        if grad_norm is not None:
            record["grad_norm"] = grad_norm if math.isfinite(grad_norm) else None
        return record

    # -------------------------------------------------------------------------------------- checkpoints

    def _state(self) -> dict[str, Any]:
        return {"position": dataclasses.asdict(self.position), "samplers": [s.state() for s in self.samplers],
                "log": self.log, "history": self.history, "seconds": self.seconds, "run": self.run,
                "scaler": self.scaler.state_dict()}

    def save(self) -> None:
        """Write the checkpoint (rank 0), atomically; check first that every replica holds the same weights.

        Each rank's random state is kept: RoI and anchor sampling draw from it according to each rank's own
        boxes, so the ranks' states differ, and each must get its own back on resume.
        """
        ddp.check_replicas(self.model)
        states = ddp.gather_object(torch.get_rng_state())
        cuda_states = ddp.gather_object(torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else []
        failure: Exception | None = None
        if self.rank == 0:
            try:
                tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
                for i, p in enumerate(self.params):
                    buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
                    if buf is not None:
                        tensors[f"momentum/{i}"] = buf
                tensors.update({f"rng/torch/{r}": state for r, state in enumerate(states)})
                tensors.update({f"rng/cuda/{r}": state for r, state in enumerate(cuda_states)})
                write_h5(self.checkpoint, "gaia/checkpoint", tensors, {"state": self._state()})
            except Exception as exc:  # reported to every rank below, so none waits for the others forever
                failure = exc
        if not ddp.all_true(failure is None, self.device):
            if failure is not None:
                raise failure
            raise RunFailure("rank 0 could not write the checkpoint; see its error")
        self.last_checkpoint = self.position.iteration

    def resume(self) -> None:
        """Continue from the checkpoint; refuse one written by a different run."""
        if not self.checkpoint.is_file():
            raise BadInput("no checkpoint to resume from (run without --resume to start)", self.checkpoint)
        with H5Artifact(self.checkpoint, "gaia/checkpoint") as art:
            state = art.meta("state")
            differs = sorted(k for k in set(state["run"]) | set(self.run) if state["run"].get(k) != self.run.get(k))
            if differs:
                raise BadInput(f"the checkpoint is of another run (it differs in {', '.join(differs)}); "
                               f"use the same command line, or start afresh without --resume", self.checkpoint)
            self.model.load_state_dict({k[len("model/"):]: v for k, v in art.tensors("model/").items()})
            for name, buf in art.tensors("momentum/").items():
                p = self.params[int(name.split("/")[1])]
                self.optimizer.state[p]["momentum_buffer"] = buf.to(self.device)
            torch.set_rng_state(art.tensors(f"rng/torch/{self.rank}")[f"rng/torch/{self.rank}"])
            if self.device.type == "cuda":
                name = f"rng/cuda/{self.rank}"
                torch.cuda.set_rng_state(art.tensors(name)[name], self.device)
        self.position = Position(**state["position"])
        for sampler, s in zip(self.samplers, state["samplers"]):
            sampler.load_state(s)
        self.log, self.seconds, self.history = state["log"], state["seconds"], state.get("history", [])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.last_checkpoint = self.position.iteration
        console.info(f"resuming at iteration {self.position.iteration} of {self.total_iterations()}")
