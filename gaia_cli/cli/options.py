"""Options shared by several commands, defined once.

Each is an `Annotated` type to use in a command's signature, e.g. `seed: Seed = 0`. `-q` and `-v` set
console state through callbacks, so a command only has to declare them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gaia_cli import console


def _set_verbose(value: int) -> int:
    console.set_verbosity(verbose=value)
    return value


def _set_quiet(value: bool) -> bool:
    console.set_verbosity(quiet=value)
    return value


Verbose = Annotated[
    int,
    typer.Option("--verbose", "-v", count=True, callback=_set_verbose, is_eager=True,
                 help="More detail on stderr (tables, tracebacks on error). Repeat for more."),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", callback=_set_quiet, is_eager=True,
                 help="No progress or info on stderr (errors still show)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same result.")]
Device = Annotated[
    str,
    typer.Option("--device", help="Where to compute: auto, cpu, cuda or cuda:N (auto picks cuda when present)."),
]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write the result to this file instead of stdout.", dir_okay=False),
]
OutputH5 = Annotated[
    Path,
    typer.Option("--output", "-o", help="The HDF5 file to write; a manifest line goes to stdout.", dir_okay=False),
]

# training commands (train-supernet, finetune) share the engine and these options
BatchSize = Annotated[int, typer.Option("--batch-size", help="Images per step on each process.")]
Amp = Annotated[bool, typer.Option("--amp", help="Mixed precision (fp16 autocast with loss scaling; CUDA only).")]
Workers = Annotated[int, typer.Option("--workers", help="Data-loading worker processes.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints (OUTPUT.ckpt.h5).")]
StopAfter = Annotated[
    Optional[int], typer.Option("--stop-after", help="Stop after this many steps with a checkpoint (split a run into jobs).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from OUTPUT.ckpt.h5, exactly where it stopped.")]
Restart = Annotated[bool, typer.Option(
    "--restart", help="Discard an interrupted run's OUTPUT.ckpt.h5 and start over (a new run refuses to replace one).")]
LogEvery = Annotated[int, typer.Option("--log-every", help="Steps between log lines.")]
WeightDecay = Annotated[float, typer.Option("--weight-decay", help="SGD weight decay (not on BN and biases).")]
ClipGrad = Annotated[float, typer.Option("--clip-grad", help="Clip the gradient norm to this (0: off).")]
# commands that train a supernet's paths (train-supernet, pretrain)
Rules = Annotated[str, typer.Option(
    "--rules", help="Path sampling: gaia (one of GAIA's prescribed rules drawn at random each step, the paper's), gaia-cycle (the rules in turn, each followed by uniform), sandwich, uniform, or a comma list of rules (in turn).")]
PathsPerStep = Annotated[int, typer.Option(
    "--paths-per-step", help="Paths per step, their gradients averaged; with --rules sandwich: the largest, the smallest and the rest uniform (BigNAS: 4).")]
