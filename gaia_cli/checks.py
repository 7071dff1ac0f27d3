"""The range of every number a user gives, in one place: each command's numeric options and files' fields.

`OPTIONS` holds the range of every numeric option by its name, and `COMMAND_OPTIONS` a command's own where
the same name means something else there (`toy-data --size` is an image, `pretrain --size` a montage). The
CLI checks every numeric option of every command against them while it parses the command line (`guard`),
so a bad number is refused before any work; library calls check their requests against the same table
(`check_options`). Fields of files (an arch's depths, widths and scale; a space's choices) are bounded by
`FIELDS` (`check_field`). A float must also be finite: nan and inf are refused everywhere.

One line each, exit 2: `--option must be ... (got X)`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

from gaia_cli.errors import BadInput

MAX_PIXELS = 8192  # an image, montage or input side: 8K, far above any detector's input
MAX_CLASSES = 100_000  # a box predictor's classes (LVIS: 1,203; a unified space of many sets: a few thousand)
MAX_SEED = 2**32 - 1  # numpy's generators take seeds below 2^32
MAX_WORKERS = max(64, 4 * (os.cpu_count() or 1))  # processes: not a fork bomb
MAX_CATEGORIES = 8  # toy-data's shapes (gaia_cli.data.toy.SHAPES)


@dataclasses.dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (either may be open, or absent); floats must be finite as well.

    `zero` also allows 0 below `low` (`--ratio`: 0 means none at all).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    zero: bool = False

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.zero and value == 0:
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        lo, hi = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            if not (self.low_open or self.high_open) and float(self.low).is_integer() and float(self.high).is_integer():
                text = f"between {lo} and {hi}"
            else:
                text = f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = ("positive" if self.low == 0 else f"more than {lo}") if self.low_open else f"at least {lo}"
        elif self.high is not None:
            text = f"less than {hi}" if self.high_open else f"at most {hi}"
        else:
            text = "a finite number"
        return f"0 or {text}" if self.zero else text


def _number(x: float | None) -> str:
    if isinstance(x, int) and abs(x) >= 10**15:  # 10^30 as 1.000e+30, not thirty-one digits
        from decimal import Decimal

        return f"{Decimal(x):.3e}"
    return f"{x:g}" if isinstance(x, float) else str(x)


AT_LEAST_1 = Range(1)
NOT_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
SHARE = Range(0, 1)  # a probability or a fraction of a whole

# every numeric option of every command (tests/test_numbers.py fails on one missing here)
OPTIONS: dict[str, Range] = {
    "--seed": Range(0, MAX_SEED),
    "--batch-size": AT_LEAST_1,
    "--workers": Range(0, MAX_WORKERS),
    "--epochs": AT_LEAST_1,
    "--checkpoint-every": AT_LEAST_1,
    "--stop-after": AT_LEAST_1,
    "--log-every": AT_LEAST_1,
    "--paths-per-step": AT_LEAST_1,
    "--warmup-iters": NOT_NEGATIVE,
    "--lr-per-image": POSITIVE,
    "--weight-decay": NOT_NEGATIVE,
    "--clip-grad": NOT_NEGATIVE,
    "--head-loss-weight": POSITIVE,
    "--distill": NOT_NEGATIVE,
    "--lr-decay": POSITIVE,
    "--two-stage": NOT_NEGATIVE,
    "--percent": Range(0, 100, low_open=True),
    "--extra-share": Range(0, 1, low_open=True, high_open=True),
    "--shots": AT_LEAST_1,
    "--recalibrate": NOT_NEGATIVE,
    "--classes": Range(2, MAX_CLASSES),  # the background included
    # pretrain
    "--split": Range(0.1, 0.5),
    "--tau": SHARE,
    "--erf-every": AT_LEAST_1,
    "--erf-images": AT_LEAST_1,
    "--iterations": AT_LEAST_1,
    # export
    "--check-images": AT_LEAST_1,
    "--opset": Range(11, 20),  # the TorchScript-based ONNX exporter's range for torchvision's detectors
    # predict
    "--score": SHARE,
    # search
    "--latency": POSITIVE,
    "--flops": POSITIVE,
    "--top": AT_LEAST_1,
    "--population": Range(2),
    "--generations": NOT_NEGATIVE,
    "--parent-ratio": Range(0, 1, low_open=True, high_open=True),
    "--mutation-ratio": SHARE,
    "--mutate-prob": SHARE,
    "--scale-mutate-prob": SHARE,
    # space sample
    "-n": AT_LEAST_1,
    # bench-latency
    "--sample": NOT_NEGATIVE,
    "--fit-archs": NOT_NEGATIVE,
    "--warmup": NOT_NEGATIVE,
    "--runs": AT_LEAST_1,
    # extract-montage
    "--ratio": Range(0.1, zero=True),  # positives per negative: at most ten negatives per positive
    "--min-size": Range(1, MAX_PIXELS),
    "--max-side": Range(8, MAX_PIXELS),
    "--preview": NOT_NEGATIVE,
    "--preview-size": Range(1, MAX_PIXELS),  # the montage template checks what fits
    # toy-data
    "--images": AT_LEAST_1,
    "--val-images": AT_LEAST_1,
    "--categories": Range(1, MAX_CATEGORIES),
    # unify-labels
    "--threshold": Range(0, 1, low_open=True),
    "--margin": Range(0, 1, high_open=True),
    # fit-pathfilter, prune
    "--paths-per-bucket": AT_LEAST_1,
    "--buckets": Range(1, 100),
    "--path-ratio": Range(0, 1, high_open=True),  # 0: no path pruning
    "--op-ratio": Range(0, 1, high_open=True),
    "--op-ratio-all": Range(0, 1, high_open=True),
    "--op-ratio-bucket": Range(0, 1, high_open=True),
    "--samples": AT_LEAST_1,
    # select-data
    "--k": AT_LEAST_1,
    "--budget": AT_LEAST_1,
    "--min-per-category": NOT_NEGATIVE,
    "--chunk-rows": AT_LEAST_1,
    # rank
    "--per-group": AT_LEAST_1,
    "--depth-ranges": AT_LEAST_1,
    "--keep": Range(0, 1, low_open=True),
    # numbers inside text options
    "--pareto": POSITIVE,  # each latency budget
}
COMMAND_OPTIONS: dict[str, dict[str, Range]] = {
    "toy-data": {"--size": Range(32, 4096)},
    "pretrain": {"--size": Range(1, MAX_PIXELS)},  # the montage template checks what fits
    "fit-pathfilter": {"--path-ratio": Range(0, 1, low_open=True, high_open=True)},  # the weakest judged
}

# fields of files: an arch's (and a space's choices of) blocks per stage, channels and input side
FIELDS: dict[str, Range] = {
    "depth": Range(1, 100),  # blocks in one stage (ResNet-152's third stage has 36)
    "width": Range(1, 4096),  # a stage's mid channels (ResNet's widest: 512); a stage outputs 4x
    "scale": Range(32, MAX_PIXELS),
    # the detector parts a space fixes
    "fpn_channels": Range(1, 4096),
    "box_head_dim": Range(1, 65536),
    "proposals": Range(1, 100_000),
    "proposals_train": Range(1, 100_000),
    "roi_samples_per_image": Range(1, 100_000),
    "anchor_sizes": Range(1, MAX_PIXELS),
    # latency profiles
    "ms": NOT_NEGATIVE,  # a measured time
    "coefficient": Range(),  # a fitted coefficient: any finite number
    "classes": Range(2, MAX_CLASSES),
}


def rule(option: str, command: str | None = None) -> Range | None:
    """The range of `option` (of `command`, e.g. "toy-data" or "space sample"), None if it has none."""
    return COMMAND_OPTIONS.get(command or "", {}).get(option) or OPTIONS.get(option)


def check_value(name: str, value: Any, allowed: Range, source: str | None = None) -> None:
    """BadInput `NAME must be ... (got X)` unless `value` lies in `allowed`; None (left unset) passes."""
    if value is None or isinstance(value, bool):
        return
    shown = _number(value) if isinstance(value, (int, float)) else repr(value)
    if not isinstance(value, (int, float)):
        raise BadInput(f"{name} must be a number (got {shown})", source)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"{name} must be a finite number (got {shown})", source)
    if not allowed.holds(value):
        raise BadInput(f"{name} must be {allowed.describe()} (got {shown})", source)


def check_options(values: Mapping[str, Any], command: str | None = None) -> None:
    """Check options by name (`{"--batch-size": 2, ...}`) against the table: BadInput for the first out of range."""
    for option, value in values.items():
        allowed = rule(option, command)
        if allowed is None:
            raise KeyError(f"{option} has no range in gaia_cli.checks.OPTIONS")
        check_value(option, value, allowed)


def check_field(name: str, value: Any, source: str | None = None, field: str | None = None) -> None:
    """A number read from a file (`field` names its range in FIELDS when `name` says more, e.g. 'width[2]')."""
    check_value(f"'{name}'", value, FIELDS[field or name], source)


# ----------------------------------------------------------------------------------------------- the CLI


def numeric_options(command) -> list[tuple[str, Any]]:
    """(command path, parameter) for each numeric option under a click command (a group: every command)."""
    found = []

    def walk(cmd, path: list[str]) -> None:
        subcommands = getattr(cmd, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
            return
        for param in cmd.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and descriptor.annotation in (int, float) and not getattr(param, "count", False):
                found.append((" ".join(path), param))

    walk(command, [])
    return found


def option_name(param) -> str:
    """The name a user types: the long form where there is one (`--batch-size`, or `-n`)."""
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def guard(command) -> Any:
    """Check every numeric option of every command under `command` (the `gaia` group) as it is parsed."""
    for path, param in numeric_options(command):
        allowed = rule(option_name(param), path)
        if allowed is None:  # tests/test_numbers.py keeps this from happening
            continue
        param.callback = _checking(option_name(param), allowed, param.callback)
    return command


def _checking(name: str, allowed: Range, then):
    def callback(ctx, param, value):
        check_value(name, value, allowed)
        return then(ctx, param, value) if then is not None else value

    return callback


def parse_shard(spec: str | None) -> tuple[int, int]:
    """A job array's `--shard I/N` (I from 0 to N - 1, as `sbatch --array=0-N-1` numbers its tasks) as (I, N);
    None is the whole run, (0, 1). `rank` and `fit-pathfilter` count their shards the same way."""
    if spec is None:
        return 0, 1
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError:
        raise BadInput(f"--shard {spec!r}: expected I/N, e.g. 0/4 (I from 0 to N-1)") from None
    if count < 1 or not 0 <= index < count:
        raise BadInput(f"--shard {spec!r}: I must lie in 0..N-1 and N be at least 1")
    return index, count
