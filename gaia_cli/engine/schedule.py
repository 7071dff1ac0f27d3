"""Training phases and the learning rate (GAIA 4.2.2).

A phase trains the supernet on the paths of one space for some epochs. GAIA's anchor-based progressive
shrinking (ABPS) is three phases: AR101 for 24 epochs (learning rate / 10 at epochs 16 and 21), then AR77 and
AR50 for 13 epochs each (/ 10 at 8 and 11), each shrink starting with one extra epoch of warm-up and the
learning rate restarted. The first phase warms up linearly over `warmup_iters` (Detectron2's 1000).

Written `SPACE:EPOCHS[:STEP,STEP...]`, phases separated by `;`: `ar101:24:16,21;ar77:13:8,11;ar50:13:8,11`.

A phase may instead decay on a cosine (Montage pre-training, 4.1): from the base rate to 0 over its epochs,
its first `warmup_iters` steps warmed up linearly from `warmup_factor` of the rate (the paper: 0.2 to 0.8).
"""

from __future__ import annotations

import dataclasses
import math

from gaia_cli.errors import BadInput

ABPS = "ar101:24:16,21;ar77:13:8,11;ar50:13:8,11"
WARMUP_FACTOR = 0.001


@dataclasses.dataclass(frozen=True)
class Phase:
    space: str
    epochs: int
    steps: tuple[int, ...]  # epochs (from the phase's first non-warm-up epoch) after which lr *= decay
    warmup_epochs: int = 0  # whole epochs of linear warm-up before them (1 at each shrink)
    decay: float = 0.1
    cosine: bool = False  # decay on a cosine to 0 instead of at `steps`
    warmup_factor: float = WARMUP_FACTOR  # the first step's share of the rate when warming up

    @property
    def total_epochs(self) -> int:
        return self.warmup_epochs + self.epochs


def default_steps(epochs: int) -> tuple[int, ...]:
    """GAIA's decay points scaled to the phase: 16 and 21 of 24 epochs."""
    return tuple(sorted({max(1, round(epochs * 16 / 24)), max(1, round(epochs * 21 / 24))} - {epochs}))


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
        rate = base * 0.5 * (1 + math.cos(math.pi * min(1.0, trained / phase.epochs)))
    else:
        rate = base * phase.decay ** sum(trained >= s for s in phase.steps)
    if phase.warmup_epochs == 0 and iteration_in_phase < warmup_iters:
        alpha = iteration_in_phase / warmup_iters
        rate *= factor * (1 - alpha) + alpha
    return rate
