"""How a run is carried out, apart from what it computes: one frozen `RunControl`, each default written once.

Every training and feature request (train-supernet, finetune, pretrain, select-data, rank's stages) holds one as
`run`, and the engine's `TrainOptions` takes it as it is. The commands' --device, --seed, --workers, --amp,
--checkpoint-every, --log-every, --stop-after, --resume and --restart take their defaults from here as well
(gaia_cli.cli.options), so a request made in a library call and the command line agree.

A command whose runs need other defaults has them in `DEFAULTS`, with the reason; `defaults(command)` is what
its request and its --help use. No torch here: the command line reads this module to show its help.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunControl:
    device: str = "auto"  # auto, cpu, cuda or cuda:N (auto: cuda when present)
    seed: int = 0  # the same seed gives the same result
    workers: int = 2  # data-loading worker processes (0: load in the process itself)
    amp: bool = False  # mixed precision (CUDA only)
    checkpoint_every: int = 500  # steps between checkpoints (OUTPUT.ckpt.h5)
    log_every: int = 20  # steps between log lines
    stop_after: int | None = None  # stop after this many steps, with a checkpoint (a run split into jobs)
    resume: bool = False  # continue an interrupted run from its checkpoint (rank: its journal)
    restart: bool = False  # discard an interrupted run's checkpoint (rank: its journal) and start over

    def numbers(self) -> dict[str, Any]:
        """The numeric fields by option name, for gaia_cli.checks.check_options."""
        return {"--workers": self.workers, "--checkpoint-every": self.checkpoint_every,
                "--log-every": self.log_every, "--stop-after": self.stop_after, "--seed": self.seed}


DEFAULTS: dict[str, RunControl] = {
    # pretrain assembles its montages in the data-loading workers (four crops read, resized and pasted into
    # each, and its soft labels built), more work per image than a detection batch: twice the workers. Its
    # runs are long in steps (the paper's compute is 512,000 steps of the default 64 montages on one
    # process): a checkpoint every 1000 of them.
    "pretrain": RunControl(workers=4, checkpoint_every=1000),
    # rank fine-tunes its candidates, with --devices in daemonic worker processes, which may not start
    # processes of their own (DataLoader workers included): loading in the process itself.
    "rank": RunControl(workers=0),
}


def defaults(command: str) -> RunControl:
    """The run control a command's request and its --help default to."""
    return DEFAULTS.get(command, RunControl())
