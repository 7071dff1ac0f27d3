"""What a training run keeps beside its output, and what a new run does with it (no torch here).

The names: OUTPUT.ckpt.h5 (every training command), OUTPUT.head.ckpt.h5 (finetune --two-stage's first
stage), OUTPUT.split.json (finetune's --percent/--shots split without --split-out); the CLI's output guard
and rank read them too. The guard: `start_checkpoints` refuses or discards an interrupted run's checkpoint
before any work, `checkpoint_step` reads the step one holds. The checkpoint's contents are the Trainer's
(gaia_cli.engine.train).
"""

from __future__ import annotations

from pathlib import Path

from gaia_cli import console
from gaia_cli.artifacts import H5Artifact
from gaia_cli.errors import BadInput


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name.removesuffix(".h5") + ".ckpt.h5")


def head_checkpoint_path(output: Path) -> Path:
    """finetune --two-stage's first-stage checkpoint: OUTPUT.head.ckpt.h5."""
    return output.with_name(output.name.removesuffix(".h5") + ".head.ckpt.h5")


def default_split_path(output: Path) -> Path:
    """Where finetune writes a --percent/--shots split without --split-out: OUTPUT.split.json."""
    return output.with_name(output.name.removesuffix(".h5") + ".split.json")


def checkpoint_step(path: Path) -> int:
    """The step an interrupted run's checkpoint holds (its `state` meta: position.iteration); BadInput if unreadable."""
    try:
        with H5Artifact(path, "gaia/checkpoint") as art:
            step = art.meta("state")["position"]["iteration"]
    except BadInput as exc:
        raise BadInput(f"cannot be read as a checkpoint ({exc.message})", path) from None
    except (OSError, KeyError, TypeError) as exc:
        raise BadInput(f"cannot be read as a checkpoint ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(step, int) or isinstance(step, bool):
        raise BadInput(f"cannot be read as a checkpoint (its step is {step!r})", path)
    return step


def start_checkpoints(checkpoints: list[Path], *, resume: bool, restart: bool) -> None:
    """What every training command does with a leftover checkpoint, before any work: a new run never destroys one.

    With --resume the Trainer continues from it. Without, an interrupted run's checkpoint is refused (exit 2,
    naming it and its step), and so is one that cannot be read; --restart discards them (rank 0 deletes; the
    process group is not up yet, so the rank comes from torchrun's environment) and the run starts over.
    """
    import os

    if resume and restart:
        raise BadInput("--resume continues the interrupted run and --restart discards it: give one, not both")
    if resume:
        return
    for path in checkpoints:
        if not (path.exists() or path.is_symlink()):
            continue
        if path.exists() and not path.is_file():  # a folder, FIFO or device is no one's checkpoint: never removed
            raise BadInput("is not a regular file, and the checkpoint goes there; move it away", path)
        if restart:
            if int(os.environ.get("RANK", "0")) == 0:  # the other ranks leave it to rank 0
                try:
                    held = f" (step {checkpoint_step(path)})"
                except BadInput:
                    held = " (unreadable)"
                path.unlink(missing_ok=True)
                console.info(f"--restart: discarded the interrupted run's checkpoint {path}{held}")
            continue
        try:
            step = checkpoint_step(path)
        except BadInput as exc:
            raise BadInput(f"{exc.message}; pass --restart to discard it and start over", path) from None
        raise BadInput(f"holds an interrupted run at step {step}: pass --resume to continue it, or --restart to "
                       f"discard it and start over", path)
