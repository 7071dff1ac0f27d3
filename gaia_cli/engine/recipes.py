"""Training recipes: named sets of option values (`--recipe`), so a paper's setting is one switch.

An option the user gives wins over the recipe; the recipe fills in only what is left unset, and the run logs
what the recipe set. The values (GAIA 4.2.2 and 4.2.3):

- `train-supernet --recipe gaia`: the RoI head's losses x5 ("we multiply the loss weights of head by a factor
  of 5"), IoU-balanced sampling for the RoI head (Libra R-CNN's, "IoU-sampling [45] is applied"), the
  prescribed rules drawn at random each step, 0.00125 per image, and, unless --epochs or --phases is given,
  the ABPS schedule (AR101 24 epochs, then AR77 and AR50 13 each), which needs a space that holds ar101,
  ar77 and ar50 (ar50to101).
- `train-supernet --recipe scratch`: `pretrained` at four times GAIA's rate (0.005 per image) with the rate's
  drops late (`--lr-steps late`: at 5/6 and 23/24 of the epochs), for a supernet trained from a random start
  (GAIA's rate is set for pre-trained backbones and learns slowly from scratch: bench_recipe's toy supernet,
  960 steps, mean AP of 5 paths 26-28 at GAIA's rate, 42.1 at twice it, 46.0 at four times, 54.5 at four
  times with the late drops (every path AP50 87.1-91.4); six times collapses to background).
- `train-supernet --recipe pretrained`: GAIA's rate (0.00125 per image) for a start from pre-trained weights
  (`--init`), head losses x1, torchvision's uniform RoI sampling, one phase of --epochs (12).
- `train-supernet --recipe auto` (the default): `scratch` without `--init`, `pretrained` with it; the log
  says which and why.
- `finetune --recipe gaia`: fine-tuning "consistent with the training setting of supernet": the RoI head's
  losses x5 and IoU-balanced sampling, on the 1x schedule at 0.0001875 per image (the defaults).
- `finetune --recipe default`: head losses x1, torchvision's uniform RoI sampling, the rate above.
"""

from __future__ import annotations

from typing import Any

from gaia_cli.errors import BadInput

ABPS_SCHEDULE = "abps"  # the value of `schedule` that means GAIA's --abps phases

RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "train-supernet": {
        "pretrained": {"lr_per_image": 0.00125, "head_loss_weight": 1.0, "iou_balanced": False, "rules": "gaia",
                       "paths_per_step": 1, "distill": 0.0, "epochs": 12},
        "gaia": {"lr_per_image": 0.00125, "head_loss_weight": 5.0, "iou_balanced": True, "rules": "gaia",
                 "paths_per_step": 1, "distill": 0.0, "schedule": ABPS_SCHEDULE},
        "scratch": {"lr_per_image": 0.005, "head_loss_weight": 1.0, "iou_balanced": False, "rules": "gaia",
                    "paths_per_step": 1, "distill": 0.0, "epochs": 12, "lr_steps": "late"},
    },
    "finetune": {
        "default": {"lr_per_image": 0.0001875, "head_loss_weight": 1.0, "iou_balanced": False},
        "gaia": {"lr_per_image": 0.0001875, "head_loss_weight": 5.0, "iou_balanced": True},
    },
}

OPTION_NAMES = {"lr_per_image": "--lr-per-image", "head_loss_weight": "--head-loss-weight",
                "iou_balanced": "--iou-balanced", "rules": "--rules", "paths_per_step": "--paths-per-step",
                "distill": "--distill", "epochs": "--epochs", "lr_steps": "--lr-steps", "schedule": "--abps", "abps": "--abps"}


AUTO = "auto"  # train-supernet's default --recipe: scratch without --init, pretrained with it


def names(command: str) -> tuple[str, ...]:
    return ((AUTO,) if command == "train-supernet" else ()) + tuple(RECIPES[command])


def choose(recipe: str, init: object) -> tuple[str, str | None]:
    """train-supernet's recipe: `recipe` itself, or for `auto` the one that fits the start, with the reason."""
    if recipe != AUTO:
        return recipe, None
    if init is None:
        return "scratch", "no --init: a random start, which GAIA's rate for pre-trained backbones trains slowly"
    return "pretrained", "--init: a pre-trained start, trained at GAIA's rate"


def describe(command: str, recipe: str) -> str:
    """What `recipe` sets, as options: '--lr-per-image 0.00125, --head-loss-weight 5, ...'."""
    parts = []
    for key, value in RECIPES[command][recipe].items():
        option = OPTION_NAMES[key]
        if key == "iou_balanced":
            parts.append(option if value else f"--no-{option[2:]}")
        elif key == "schedule":
            parts.append("--abps (unless --epochs or --phases)")
        else:
            parts.append(f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}")
    return ", ".join(parts)


def resolve(command: str, recipe: str, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the values to train with, those the recipe set): each key of `given` left None takes the recipe's.

    train-supernet's `schedule` is special: the gaia recipe's ABPS applies only when neither --epochs nor
    --phases nor --abps was given (`given["epochs"]`, `given["phases"]`, `given["abps"]`); it comes back as
    `abps: True`.
    """
    if recipe not in RECIPES[command]:
        raise BadInput(f"--recipe must be one of {', '.join(names(command))} (got {recipe!r})")
    values = dict(given)
    applied: dict[str, Any] = {}
    for key, value in RECIPES[command][recipe].items():
        if key == "schedule":
            if not (given.get("epochs") is not None or given.get("phases") or given.get("abps")):
                values["abps"] = applied["abps"] = True
            continue
        if given.get(key) is None:
            values[key] = applied[key] = value
    if command == "train-supernet" and values.get("epochs") is None:
        values["epochs"] = RECIPES[command]["pretrained"]["epochs"]  # unused with --abps/--phases
    return values, applied


def applied_line(recipe: str, applied: dict[str, Any]) -> str:
    """The log line saying what a recipe set: '--recipe gaia: --head-loss-weight 5.0, --iou-balanced, ...'."""
    def option(key: str, value: Any) -> str:
        name = OPTION_NAMES[key]
        if isinstance(value, bool):
            return name if value else f"--no-{name[2:]}"
        return f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"

    return f"--recipe {recipe}: " + ", ".join(option(k, v) for k, v in applied.items())
