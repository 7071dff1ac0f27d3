"""Options shared by several commands, defined once.

Each is an `Annotated` type to use in a command's signature, e.g. `seed: Seed = RUN.seed`, or a function that
makes one where commands word a part of the help their own way, e.g. `images: Images("a single --data") = None`
(named like a type, as it stands where a type does): an option's name, its type and the wording commands share
are here, once. typer takes a default only from the signature (never from `Annotated`), so defaults are not
here: a run-control option (--device, --seed, --workers, --amp, --checkpoint-every, --log-every, --stop-after,
--resume, --restart) defaults to a field of the command's `RunControl`, `RUN = defaults("<command>")`
(gaia_cli.engine.runcontrol), the same one its request holds. `-q` and `-v` set console state through
callbacks, so a command only has to declare them.

Nothing here imports torch (`gaia --help` reads this module); the command modules import the heavy packages
inside their functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

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
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write the result to this file instead of stdout.", dir_okay=False),
]
OutputH5 = Annotated[
    Path,
    typer.Option("--output", "-o", help="The HDF5 file to write; a manifest line goes to stdout.", dir_okay=False),
]

# ----------------------------------------------------- run control (defaults: the command's RunControl)

Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same result.")]
Device = Annotated[
    str,
    typer.Option("--device", help="Where to compute: auto, cpu, cuda or cuda:N (auto picks cuda when present)."),
]


def ComputeDevice(what: str) -> Any:
    """`--compute-device`, where --device names a latency profile: 'Where {what}: auto, cpu, cuda or cuda:N.'"""
    return Annotated[str, typer.Option("--compute-device", help=f"Where {what}: auto, cpu, cuda or cuda:N.")]


Workers = Annotated[int, typer.Option("--workers", help="Data-loading worker processes.")]
Amp = Annotated[bool, typer.Option("--amp", help="Mixed precision (fp16 autocast with loss scaling; CUDA only).")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints (OUTPUT.ckpt.h5).")]
LogEvery = Annotated[int, typer.Option("--log-every", help="Steps between log lines.")]
StopAfter = Annotated[
    Optional[int], typer.Option("--stop-after", help="Stop after this many steps with a checkpoint (split a run into jobs).")]


def _resume(file: str, how: str) -> Any:
    return Annotated[bool, typer.Option("--resume", help=f"Continue from {file}, {how}.")]


def _restart(file: str) -> Any:
    return Annotated[bool, typer.Option(
        "--restart", help=f"Discard an interrupted run's {file} and start over (a new run refuses to replace one).")]


# a training run's checkpoint; rank's journal of finished candidates
Resume = _resume("OUTPUT.ckpt.h5", "exactly where it stopped")
Restart = _restart("OUTPUT.ckpt.h5")
ResumeJournal = _resume("OUTPUT.journal.jsonl", "skipping the candidates it holds")
RestartJournal = _restart("OUTPUT.journal.jsonl")

# ----------------------------------------------------------------------------------- inputs

SPACE = "a preset (ar50, ar77, ar101, ar50to101, small, tiny) or a gaia/space file"


def Space(what: str, more: str = "") -> Any:
    """`--space`: '{what}: a preset (...) or a gaia/space file{more}.'"""
    return Annotated[Optional[str], typer.Option("--space", help=f"{what}: {SPACE}{more}.")]


SpaceArgument = Annotated[str, typer.Argument(help=f"{SPACE[0].upper()}{SPACE[1:]}.")]  # space show, space sample


def Data(what: str, more: str = "") -> Any:
    """`--data`, one dataset: '{what} (COCO format){more}.'"""
    return Annotated[Optional[str], typer.Option("--data", help=f"{what} (COCO format){more}.")]


def Datasets(kind: str) -> Any:
    """`--data`, repeated: 'A COCO {kind} set; repeat for several (then give --labels).'"""
    return Annotated[list[str], typer.Option("--data", help=f"A COCO {kind} set; repeat for several (then give --labels).")]


def Images(of: str = "--data") -> Any:
    """`--images`: 'Image folder of {of} (default: found beside it).'"""
    return Annotated[Optional[Path], typer.Option(
        "--images", help=f"Image folder of {of} (default: found beside it).", file_okay=False)]


def Weights(text: str) -> Any:
    """`--weights`: a gaia/weights file (or a manifest line); what it must hold, `text`, is each command's own."""
    return Annotated[Optional[str], typer.Option("--weights", help=text)]


def Arch(what: str) -> Any:
    """`--arch`: '{what}; - reads stdin.'"""
    return Annotated[Optional[str], typer.Option("--arch", help=f"{what}; - reads stdin.")]


def Labels(use: str, space: str = "A") -> Any:
    """`--labels`: '{space} gaia/labels space (from unify-labels): {use}.'"""
    return Annotated[Optional[str], typer.Option("--labels", help=f"{space} gaia/labels space (from unify-labels): {use}.")]


def Recalibrate(images: str, whose: str = "", more: str = "", **settings: Any) -> Any:
    """`--recalibrate`: '{images} to recalibrate {whose} BN statistics with{more}.'"""
    whose = f"{whose} " if whose else ""
    return Annotated[Optional[int], typer.Option(
        "--recalibrate", help=f"{images} to recalibrate {whose}BN statistics with{more}.", **settings)]


def RecalibrateData(default: str = "default: --data's") -> Any:
    """`--recalibrate-data`: 'Training images for --recalibrate ({default}).'"""
    return Annotated[Optional[str], typer.Option(
        "--recalibrate-data", help=f"Training images for --recalibrate ({default}).")]


# ------------------------------------------------------------------------ batches and training

BatchSize = Annotated[int, typer.Option("--batch-size", help="Images per step on each process.")]  # training, features
ForwardBatchSize = Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")]  # eval, predict
WeightDecay = Annotated[float, typer.Option("--weight-decay", help="SGD weight decay (not on BN and biases).")]
ClipGrad = Annotated[float, typer.Option("--clip-grad", help="Clip the gradient norm to this (0: off).")]
# commands that train a supernet's paths (train-supernet, pretrain)
Rules = Annotated[str, typer.Option(
    "--rules", help="Path sampling: gaia (one of GAIA's prescribed rules drawn at random each step, the paper's), gaia-cycle (the rules in turn, each followed by uniform), sandwich, uniform, or a comma list of rules (in turn).")]
PathsPerStep = Annotated[int, typer.Option(
    "--paths-per-step", help="Paths per step, their gradients averaged; with --rules sandwich: the largest, the smallest and the rest uniform (BigNAS: 4).")]
