"""Training phases and the learning rate (GAIA 4.2.2).

A phase trains the supernet on the paths of one space for some epochs. GAIA's anchor-based progressive
shrinking (ABPS) is three phases: AR101 for 24 epochs (learning rate / 10 at epochs 16 and 21), then AR77 and
AR50 for 13 epochs each (/ 10 at 8 and 11), each shrink starting with one extra epoch of warm-up and the
learning rate restarted. The first phase warms up linearly over `warmup_iters` (Detectron2's 1000), but
never over more than `WARMUP_FRACTION` of its steps: a short run on a small dataset reaches its rate too.

Written `SPACE:EPOCHS[:STEP,STEP...]`, phases separated by `;`: `ar101:24:16,21;ar77:13:8,11;ar50:13:8,11`.

A phase may instead decay on a cosine (Montage pre-training, 4.1): from the base rate to 0 over its epochs,
its first `warmup_iters` steps warmed up linearly from `warmup_factor` of the rate (the paper: 0.2 to 0.8).
A cosine phase may be counted in steps instead (`iterations`; Montage: 64k): it runs as many epochs as those
steps need, ends at its last step (within an epoch), and its cosine reaches 0 there.
"""

from __future__ import annotations

import dataclasses
import math

from gaia_cli.errors import BadInput

ABPS = "ar101:24:16,21;ar77:13:8,11;ar50:13:8,11"
WARMUP_FACTOR = 0.001
WARMUP_FRACTION = 0.1  # the warm-up of a first phase takes at most this share of the phase's steps
FINETUNE_SCHEDULES = ("1x", "fast", "custom")  # finetune's --schedule (and rank's); their phases: tasks.finetune


@dataclasses.dataclass(frozen=True)
class Phase:
    space: str
    epochs: int
    steps: tuple[int, ...]  # epochs (from the phase's first non-warm-up epoch) after which lr *= decay
    warmup_epochs: int = 0  # whole epochs of linear warm-up before them (1 at each shrink)
    decay: float = 0.1
    cosine: bool = False  # decay on a cosine to 0 instead of at `steps`
    warmup_factor: float = WARMUP_FACTOR  # the first step's share of the rate when warming up
    iterations: int | None = None  # a cosine phase counted in steps: it ends after this many

    @property
    def total_epochs(self) -> int:
        return self.warmup_epochs + self.epochs

    def length(self, per_epoch: int) -> int:
        """The phase's steps, for `per_epoch` steps an epoch."""
        return self.iterations if self.iterations is not None else self.total_epochs * per_epoch


def iterations_phase(space: str, iterations: int, per_epoch: int, **kwargs) -> Phase:
    """A cosine phase of `iterations` steps (the epochs it needs, the last one cut short)."""
    return Phase(space, -(-iterations // per_epoch), (), cosine=True, iterations=iterations, **kwargs)


def default_steps(epochs: int) -> tuple[int, ...]:
    """GAIA's decay points scaled to the phase: 16 and 21 of 24 epochs."""
    return tuple(sorted({max(1, round(epochs * 16 / 24)), max(1, round(epochs * 21 / 24))} - {epochs}))


LATE = "late"  # train-supernet --lr-steps late: the from-scratch recipe's drops


def late_steps(epochs: int) -> tuple[int, ...]:
    """The rate kept high longer: drops at 5/6 and 23/24 of the epochs (20 and 23 of 24). A supernet trained
    from scratch for 960 toy steps scores every path AP50 87-91 with them, 81-85 at GAIA's 2/3 and 7/8
    (bench_recipe's lr-x4-late and lr-x4)."""
    return tuple(sorted({max(1, round(epochs * 5 / 6)), max(1, epochs * 23 // 24)} - {epochs}))


def parse_phases(spec: str) -> list[Phase]:
    phases = []
    for i, part in enumerate(p.strip() for p in spec.split(";") if p.strip()):
        fields = part.split(":")
        if len(fields) not in (2, 3) or not fields[1].isdigit() or int(fields[1]) < 1:
            raise BadInput(f"phase {part!r} must be SPACE:EPOCHS[:STEP,STEP...] (e.g. ar77:13:8,11)")
        epochs = int(fields[1])
        try:
            steps = tuple(int(x) for x in fields[2].split(",") if x) if len(fields) == 3 else default_steps(epochs)
        except ValueError:
            raise BadInput(f"phase {part!r}: learning-rate steps must be epoch numbers") from None
        if any(not 0 < s < epochs for s in steps) or list(steps) != sorted(steps):
            raise BadInput(f"phase {part!r}: steps must be increasing epochs inside the phase")
        phases.append(Phase(fields[0], epochs, steps, warmup_epochs=1 if i > 0 else 0))
    if not phases:
        raise BadInput("no phases given")
    return phases


def learning_rate(base: float, phase: Phase, epoch: float, iteration_in_phase: int, warmup_iters: int) -> float:
    """The rate at a point of a phase: `epoch` counts from the phase's start (fractions within an epoch)."""
    factor = phase.warmup_factor
    if epoch < phase.warmup_epochs:  # the warm-up epoch at a shrink
        return base * (factor + (1 - factor) * epoch / phase.warmup_epochs)
    trained = epoch - phase.warmup_epochs
    if phase.cosine:
        done = iteration_in_phase / phase.iterations if phase.iterations else trained / phase.epochs
        rate = base * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    else:
        rate = base * phase.decay ** sum(trained >= s for s in phase.steps)
    if phase.warmup_epochs == 0 and iteration_in_phase < warmup_iters:
        alpha = iteration_in_phase / warmup_iters
        rate *= factor * (1 - alpha) + alpha
    return rate


def effective_warmup(warmup_iters: int, phase_steps: int) -> int:
    """Warm-up steps of a first phase: the lesser of `warmup_iters` and a tenth of the phase (at least 1 when
    `warmup_iters` asks for any), so the run spends at least 90% of its steps at its scheduled rate."""
    if warmup_iters <= 0:
        return 0
    return max(1, min(warmup_iters, int(WARMUP_FRACTION * phase_steps)))


def describe(base: float, phases: list[Phase], per_epoch: int, warmup_iters: int) -> list[dict]:
    """The effective schedule of each phase in steps: what a training command logs when it starts."""
    out, start = [], 0
    warmup = effective_warmup(warmup_iters, phases[0].length(per_epoch))
    for phase in phases:
        steps = phase.length(per_epoch)
        entry = {"phase": phase.space, "steps": steps, "first_step": start + 1, "base_lr": base}
        if phase.warmup_epochs:
            entry["warmup_steps"] = phase.warmup_epochs * per_epoch
        else:
            entry["warmup_steps"] = min(warmup, steps)
        entry["warmup_from"] = phase.warmup_factor
        if phase.cosine:
            entry["decay"] = "cosine to 0"
        else:
            entry["decay"] = {"factor": phase.decay,
                              "at_steps": [start + (phase.warmup_epochs + s) * per_epoch for s in phase.steps]}
        out.append(entry)
        start += steps
    return out


def schedule_line(entry: dict) -> str:
    """One phase of `describe` as a line for the log."""
    decay = entry["decay"]
    decay_text = decay if isinstance(decay, str) else (
        f"x{decay['factor']:g} after steps {', '.join(map(str, decay['at_steps']))}" if decay["at_steps"] else "none")
    return (f"schedule {entry['phase']}: {entry['steps']} steps from step {entry['first_step']}, base rate "
            f"{entry['base_lr']:.3g}, warm-up {entry['warmup_steps']} steps from x{entry['warmup_from']:g}, "
            f"decay {decay_text}")
